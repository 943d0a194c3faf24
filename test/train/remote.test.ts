/**
 * `--backend tcp://` with CURVE keys: a backend started as `bridge serve` does (python -m
 * bridge_backend with --curve-keys) trains a tiny run; a non-finite loss stops a stage with a clear
 * error and keeps the last good checkpoint.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generateKeys } from "../../ts/backend/keys.js";
import { train } from "../../ts/commands/train.js";
import { backendPython, projectRoot, pythonSourceDir } from "../../ts/paths.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { testWithData } from "../helpers.js";

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
  const dir = mkdtempSync(join(tmpdir(), "bridge-remote-"));
  const keys = generateKeys(join(dir, "keys"));
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const server = spawn(backendPython(), ["-m", "bridge_backend", "--endpoint", endpoint, "--curve-keys", keys.serverFile, "--watch-stdin"], {
    env: { ...process.env, PYTHONPATH: pythonSourceDir, OMP_NUM_THREADS: "1" }, // as tiny.yaml's threads: 1
    stdio: ["pipe", "ignore", "ignore"],
  });
  try {
    const r = await train({ config: tiny, set: ["stages.lm.steps=5", "stages.siamese.steps=5"], run: "remote", quiet: true, dataDir, runsDir: dir, backend: endpoint, keys: keys.clientFile });
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

testWithData(test, "a non-finite loss stops the stage with a clear error and keeps the last good checkpoint", async (dataDir) => {
  const dir = mkdtempSync(join(tmpdir(), "bridge-nan-"));
  try {
    let err: Error | null = null;
    // an absurd learning rate blows the siamese stage up within a few steps
    await train({
      config: tiny,
      set: ["stages.lm.steps=5", "stages.siamese.lr.max=1e12", "stages.siamese.lr.schedule=constant", "stages.siamese.gradualUnfreeze=false", "stages.siamese.checkpointEvery=1", "model.head_p=0"],
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

test.run();
