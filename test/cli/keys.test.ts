/** `bridge keys`: writes a server and a client key file, and never replaces them without --force. */
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { bridgeBin, tempFolder } from "../helpers.js";

function keysCli(args: string[]) {
  const r = spawnSync(process.execPath, [bridgeBin, "keys", ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout + r.stderr };
}

test("keys refuses to overwrite existing keys without --force, naming the files; --force replaces them", () => {
  const dir = tempFolder("bridge-keys-cli-");
  try {
    const first = keysCli(["--dir", dir]);
    assert.is(first.code, 0, first.out);
    const serverFile = join(dir, "server.json");
    const clientFile = join(dir, "client.json");
    const before = [readFileSync(serverFile, "utf8"), readFileSync(clientFile, "utf8")];

    const again = keysCli(["--dir", dir]);
    assert.is(again.code, 1, again.out);
    assert.match(again.out, serverFile);
    assert.match(again.out, clientFile);
    assert.match(again.out, "--force");
    assert.equal([readFileSync(serverFile, "utf8"), readFileSync(clientFile, "utf8")], before, "the old keys are untouched");

    const forced = keysCli(["--dir", dir, "--force"]);
    assert.is(forced.code, 0, forced.out);
    assert.is.not(readFileSync(serverFile, "utf8"), before[0]);
    assert.is.not(readFileSync(clientFile, "utf8"), before[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("keys into a folder that exists leaves its mode (a shared one stays shared), into a new one makes it private; a file or empty --dir is named", () => {
  const shared = tempFolder("bridge-keys-shared-");
  try {
    chmodSync(shared, 0o755);
    assert.is(keysCli(["--dir", shared]).code, 0);
    assert.is(statSync(shared).mode & 0o777, 0o755, "an existing folder's mode was changed");
    assert.is(statSync(join(shared, "server.json")).mode & 0o777, 0o600);
    const fresh = join(shared, "new", "keys");
    assert.is(keysCli(["--dir", fresh]).code, 0);
    assert.is(statSync(fresh).mode & 0o777, 0o700);
    const file = join(shared, "a-file");
    writeFileSync(file, "x");
    const onFile = keysCli(["--dir", file]);
    assert.is(onFile.code, 1);
    assert.match(onFile.out, `--dir ${file}: a file, not a folder`);
    assert.match(keysCli(["--dir", ""]).out, "--dir takes a value; it was given none");
  } finally {
    rmSync(shared, { recursive: true, force: true });
  }
});

test.run();
