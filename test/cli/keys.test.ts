/** `bridge keys`: writes a server and a client key file, and never replaces them without --force. */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
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

test.run();
