/**
 * `--backend tcp://` with CURVE keys: a backend started as `bridge serve` does (python -m
 * bridge_backend with --curve-keys) trains a tiny run; one that goes away fails the calls in flight; a non-finite loss stops a stage with a clear
 * error and keeps the last good checkpoint.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BackendClient, BackendDiedError, BackendError } from "../../ts/backend/client.js";
import { generateKeys, loadClientKeys } from "../../ts/backend/keys.js";
import { serve } from "../../ts/commands/serve.js";
import { train } from "../../ts/commands/train.js";
import { backendPython, projectRoot, pythonSourceDir } from "../../ts/paths.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { tempFolder, testWithData } from "../helpers.js";

const tiny = join(projectRoot, "configs", "tiny.yaml");

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

testWithData(test, "train --backend tcp:// --keys client.json uses a served backend", async (dataDir) => {
  const dir = tempFolder("bridge-remote-");
  const keys = generateKeys(join(dir, "keys"));
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const server = spawn(backendPython(), ["-m", "bridge_backend", "--endpoint", endpoint, "--curve-keys", keys.serverFile, "--watch-stdin"], {
    env: { ...process.env, PYTHONPATH: pythonSourceDir, OMP_NUM_THREADS: "1" }, // as tiny.yaml's threads: 1
    stdio: ["pipe", "ignore", "ignore"],
  });
  try {
    const r = await train({
      config: tiny,
      set: ["stages.lm.steps=5", "stages.siamese.steps=5"],
      run: "remote",
      quiet: true,
      dataDir,
      runsDir: dir,
      backend: endpoint,
      keys: keys.clientFile,
    });
    assert.is(r.stages.length, 2);
    assert.ok(existsSync(join(dir, "remote", "checkpoints", "1-siamese.pt")));
    let err: Error | null = null;
    await train({ config: tiny, run: "nokeys", quiet: true, dataDir, runsDir: dir, backend: endpoint }).catch((e: Error) => (err = e));
    assert.match((err as unknown as Error).message, /CURVE keys/);
  } finally {
    server.stdin.end();
    server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a served backend: paths confined to --root, one session per client, a server.json others can read refused", async () => {
  const dir = tempFolder("bridge-serve-");
  const root = join(dir, "root");
  mkdirSync(root);
  const keys = generateKeys(join(dir, "keys"));
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const server = spawn(backendPython(), ["-m", "bridge_backend", "--endpoint", endpoint, "--curve-keys", keys.serverFile, "--watch-stdin", "--root", root], {
    env: { ...process.env, PYTHONPATH: pythonSourceDir, OMP_NUM_THREADS: "1" },
    stdio: ["pipe", "ignore", "ignore"],
  });
  const curve = loadClientKeys(keys.clientFile);
  const first = await BackendClient.connect(endpoint, { curve });
  try {
    await first.call("build", { preset: "tiny", vocab_sz: 40, seed: 0, head_hidden: 16 });
    await first.call("save", { path: "inside.pt" }); // relative: under the root
    assert.ok(existsSync(join(root, "inside.pt")));
    for (const path of [join(dir, "outside.pt"), "../outside.pt", join(root, "..", "outside.pt")]) {
      const err = await first.call("save", { path }).catch((e: Error) => e);
      assert.instance(err, BackendError, path);
      assert.match((err as Error).message, `is outside this backend's root ${root}`);
    }
    symlinkSync(dir, join(root, "escape"));
    assert.match(((await first.call("load", { path: "escape/keys/server.json" }).catch((e: Error) => e)) as Error).message, "is outside this backend's root");
    assert.not.ok(existsSync(join(dir, "outside.pt")));
    // a second client starts from nothing: the first one's model is not there for it
    const second = await BackendClient.connect(endpoint, { curve });
    try {
      const err = await second.call("save", { path: "theirs.pt" }).catch((e: Error) => e);
      assert.instance(err, BackendError);
      assert.match((err as Error).message, "no model in this backend");
      await first.call("save", { path: "again.pt" }); // and the first client's model is still its own
    } finally {
      await second.close();
    }
  } finally {
    await first.close();
    server.stdin.end();
    server.kill("SIGKILL");
  }
  try {
    chmodSync(keys.serverFile, 0o644);
    const err = await Promise.resolve()
      .then(() => serve({ endpoint, keys: keys.serverFile }))
      .catch((e: Error) => e);
    assert.instance(err, Error);
    assert.match((err as Error).message, /server\.json: holds a secret key but is readable by others \(mode 644\); chmod 600 it/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

testWithData(test, "a non-finite loss stops the stage with a clear error and keeps the last good checkpoint", async (dataDir) => {
  const dir = tempFolder("bridge-nan-");
  try {
    let err: Error | null = null;
    // an absurd learning rate blows the siamese stage up within a few steps
    await train({
      config: tiny,
      set: [
        "stages.lm.steps=5",
        "stages.siamese.lr.max=1e12",
        "stages.siamese.lr.schedule=constant",
        "stages.siamese.gradualUnfreeze=false",
        "stages.siamese.checkpointEvery=1",
        "model.head_p=0",
      ],
      run: "nan",
      quiet: true,
      dataDir,
      runsDir: dir,
    }).catch((e: Error) => (err = e));
    assert.ok(err, "training should have stopped");
    const msg = (err as unknown as Error).message;
    assert.match(msg, /stage 2\/2 \(siamese\)/);
    assert.match(msg, /not finite/);
    assert.match(msg, /last good checkpoint is .*1-siamese-step\d+\.pt/);
    const ck = /last good checkpoint is (\S+\.pt)/.exec(msg)![1];
    assert.ok(existsSync(ck), ck);
    assert.ok(readManifest(runPaths("nan", dir)).stages[0].completed);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a served backend that goes away fails the call in flight at once, and every later call", async () => {
  const dir = tempFolder("bridge-serve-gone-");
  const keys = generateKeys(join(dir, "keys"));
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const server = spawn(backendPython(), ["-m", "bridge_backend", "--endpoint", endpoint, "--curve-keys", keys.serverFile, "--watch-stdin"], {
    env: { ...process.env, PYTHONPATH: pythonSourceDir, OMP_NUM_THREADS: "1" },
    stdio: ["pipe", "ignore", "ignore"],
  });
  const client = await BackendClient.connect(endpoint, { curve: loadClientKeys(keys.clientFile) });
  try {
    const inFlight = client.call("sleep", { seconds: 30 }).then(
      () => null,
      (e: Error) => e,
    );
    await new Promise((r) => setTimeout(r, 500)); // the backend is inside the sleep
    const killedAt = Date.now();
    server.kill("SIGKILL");
    const timeout = new Promise<string>((r) => setTimeout(() => r("still pending"), 15_000).unref());
    const err = await Promise.race([inFlight, timeout]);
    assert.instance(err, BackendDiedError, "the call in flight must fail, not wait for a reply that cannot come");
    assert.match((err as Error).message, `the backend at ${endpoint} went away`);
    assert.ok(Date.now() - killedAt < 12_000, `failed after ${Date.now() - killedAt} ms`);
    const later = await client.call("describe").catch((e: Error) => e);
    assert.instance(later, BackendDiedError);
  } finally {
    await client.close();
    server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
