/**
 * `train --hosts`: ranks on other machines, stood in for by two `bridge serve` backends on 127.0.0.1
 * (python -m bridge_backend with --curve-keys, as `bridge serve` starts it). Their losses equal those of
 * `--nproc 2` step for step (dropout on: each rank seeds as under --nproc); killing one host's backend fails
 * the run at once with a message naming that host, and the run resumes from its last checkpoint and completes
 * once the host serves again (rank 0's backend, still serving, leaves the broken group and joins the new one).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generateKeys, loadClientKeys } from "../../ts/backend/keys.js";
import { type TrainOptions, train } from "../../ts/commands/train.js";
import { backendPython, projectRoot, pythonSourceDir } from "../../ts/paths.js";
import { runPaths } from "../../ts/run/manifest.js";
import { readState } from "../../ts/train/checkpoints.js";
import type { TrainBackend } from "../../ts/train/context.js";
import { DistributedBackend, masterAddress } from "../../ts/train/distributed.js";
import { tempFolder, testWithData } from "../helpers.js";

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A served backend at `endpoint`, resolved once it listens (torch's import can take a while on a busy machine). */
async function serveHost(endpoint: string, serverKeys: string): Promise<ChildProcess> {
  const child = spawn(backendPython(), ["-m", "bridge_backend", "--endpoint", endpoint, "--curve-keys", serverKeys, "--watch-stdin"], {
    env: { ...process.env, PYTHONPATH: pythonSourceDir, OMP_NUM_THREADS: "1" }, // one thread a rank, as --nproc's ranks
    stdio: ["pipe", "ignore", "pipe"],
  });
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("serving on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the backend at ${endpoint} exited (${code}) before serving:\n${stderr}`)));
  });
  child.stderr!.resume();
  return child;
}

function stopHost(child: ChildProcess): void {
  child.stdin?.end();
  child.kill("SIGKILL");
}

/** The train losses of a run's log.jsonl, step by step. */
function trainLosses(run: string, runsDir: string): number[] {
  return readFileSync(runPaths(run, runsDir).log, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { type: string; loss: number })
    .filter((e) => e.type === "train")
    .map((e) => e.loss);
}

function assertSameLosses(expected: number[], got: number[], what: string): void {
  assert.is(got.length, expected.length, `${what}: ${got.length} train losses vs ${expected.length}`);
  expected.forEach((v, i) => assert.ok(Math.abs(v - got[i]) <= 1e-4, `${what}, step ${i + 1}: loss ${got[i]} vs ${v} with --nproc 2`));
}

test("masterAddress: --master HOST:PORT, else the first endpoint's host on port 29500", () => {
  assert.equal(masterAddress(undefined, "tcp://10.0.0.7:5555"), { host: "10.0.0.7", port: 29500 });
  assert.equal(masterAddress("h0.lan:29400", "tcp://10.0.0.7:5555"), { host: "h0.lan", port: 29400 });
  assert.equal(masterAddress("[fe80::1]:2", "tcp://[fe80::1]:5555"), { host: "fe80::1", port: 2 });
  assert.equal(masterAddress(undefined, "tcp://[fe80::1]:5555"), { host: "fe80::1", port: 29500 });
  assert.throws(() => masterAddress("h0.lan", "tcp://h0:1"), /--master must be HOST:PORT.*"h0.lan"/);
  assert.throws(() => masterAddress("h0:70000", "tcp://h0:1"), /port 1-65535/);
  assert.throws(() => masterAddress(undefined, "tcp://0.0.0.0:5555"), /tcp:\/\/0\.0\.0\.0:5555 names no host.*--master/);
});

test("connectHosts refuses a single endpoint and a repeated one", async () => {
  const message = (hosts: string[]) =>
    DistributedBackend.connectHosts(hosts).then(
      () => "",
      (e: Error) => e.message,
    );
  assert.match(await message(["tcp://127.0.0.1:1"]), /at least 2 endpoints.*--backend/);
  assert.match(await message(["tcp://127.0.0.1:1", "tcp://127.0.0.1:1"]), /lists tcp:\/\/127\.0\.0\.1:1 twice/);
});

testWithData(test, "train refuses --hosts with --nproc, and --master without --hosts, naming the flags", async (dataDir) => {
  const runsDir = tempFolder("bridge-hosts-args-");
  try {
    const opts: TrainOptions = { config: join(projectRoot, "configs", "tiny.yaml"), quiet: true, runsDir, dataDir };
    const message = (extra: Partial<TrainOptions>, run: string) =>
      train({ ...opts, ...extra, run }).then(
        () => "",
        (e: Error) => e.message,
      );
    assert.match(await message({ hosts: ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"], nproc: 2 }, "a"), /--hosts runs one rank per endpoint/);
    assert.match(await message({ master: "h:1" }, "b"), /--master goes with --hosts/);
  } finally {
    rmSync(runsDir, { recursive: true, force: true });
  }
});

testWithData(test, "two served hosts train like --nproc 2; a killed host fails the run at once, named, and it resumes", async (dataDir) => {
  const dir = tempFolder("bridge-hosts-");
  const keys = generateKeys(join(dir, "keys"));
  const hosts = [`tcp://127.0.0.1:${await freePort()}`, `tcp://127.0.0.1:${await freePort()}`];
  const served = await Promise.all(hosts.map((h) => serveHost(h, keys.serverFile)));
  try {
    const base: TrainOptions = {
      config: join(projectRoot, "configs", "tiny.yaml"),
      set: ["stages.lm.steps=6", "stages.siamese.steps=8", "stages.siamese.checkpointEvery=4"],
      quiet: true,
      dataDir,
      runsDir: dir,
    };
    await train({ ...base, run: "nproc2", nproc: 2 });
    const reference = trainLosses("nproc2", dir);
    await train({ ...base, run: "hosts", hosts, keys: keys.clientFile, master: `127.0.0.1:${await freePort()}` });
    assertSameLosses(reference, trainLosses("hosts", dir), "--hosts");

    // The same run again, host 1's backend killed right after the stage's first mid-stage checkpoint.
    let killedAt = 0;
    const connectKilling = async (): Promise<TrainBackend> => {
      const group = await DistributedBackend.connectHosts(hosts, { curve: loadClientKeys(keys.clientFile), master: `127.0.0.1:${await freePort()}` });
      return {
        call: async (op, args, tensors) => {
          const reply = await group.call(op, args, tensors);
          if (op === "save" && killedAt === 0 && args !== undefined && "path" in args && /siamese-step/.test(String(args.path))) {
            served[1].kill("SIGKILL");
            killedAt = Date.now();
          }
          return reply;
        },
        close: () => group.close(),
      };
    };
    const failure = await train({ ...base, run: "killed", connect: connectKilling }).then(
      () => null,
      (e: Error) => e.message,
    );
    assert.ok(killedAt > 0, "the run never reached a mid-stage checkpoint");
    assert.ok(failure !== null, "the run went on without host 1");
    const seconds = (Date.now() - killedAt) / 1000;
    assert.ok(seconds < 10, `the run took ${seconds.toFixed(1)} s to notice the lost host`);
    assert.match(failure, `host ${hosts[1]} (rank 1 of 2) went away`);
    assert.match(failure, /last good checkpoint is .*1-siamese-step4\.pt/);
    assert.match(failure, /Resume with: npx bridge train --run killed --resume/);

    served[1] = await serveHost(hosts[1], keys.serverFile);
    await train({
      ...base,
      config: undefined,
      set: undefined,
      run: "killed",
      resume: true,
      hosts,
      keys: keys.clientFile,
      master: `127.0.0.1:${await freePort()}`,
    });
    assert.ok(readState(runPaths("killed", dir))?.done, "the resumed run did not complete");
    // Up to the checkpoint the log is the killed run's; after it, rank 1 draws dropout masks from a generator
    // reseeded at the resumed step (bridge_backend.ops.model.reseed_rank), so only the count must match.
    const resumed = trainLosses("killed", dir);
    const atCheckpoint = 6 + 4; // lm steps + siamese steps to the first checkpoint
    assertSameLosses(reference.slice(0, atCheckpoint), resumed.slice(0, atCheckpoint), "--hosts, killed, before the kill");
    assert.is(resumed.length, reference.length);
    assert.ok(resumed.every(Number.isFinite), `non-finite losses after the resume: ${resumed}`);
  } finally {
    served.forEach(stopHost);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
