/** `bench train` (not timed here): the bridge and the native loop train the same model on the same batches; the benches' process costs. */

import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { costSince, ownCost, pidCost } from "../../ts/bench/processCost.js";
import { benchTrain, compareLosses } from "../../ts/bench/train.js";
import { benchTransport } from "../../ts/bench/transport.js";
import { bench } from "../../ts/commands/bench.js";
import { backendPython, projectRoot } from "../../ts/paths.js";
import { DEFAULT_STEPS_PER_REQUEST } from "../../ts/train/loop.js";
import { tempFolder, testWithData } from "../helpers.js";

test("compareLosses: a null or NaN loss on either side is a mismatch, never a difference of 0", () => {
  assert.equal(compareLosses([1.5, 2.25], [1.5, 2]), { maxDifference: 0.25, unmatchedSteps: [] });
  assert.equal(compareLosses([1, null, 3], [1, 2, 3]), { maxDifference: null, unmatchedSteps: [1] });
  assert.equal(compareLosses([1, 2, NaN], [1, 2, 3]), { maxDifference: null, unmatchedSteps: [2] });
  assert.equal(compareLosses([null, NaN], [null, NaN]), { maxDifference: null, unmatchedSteps: [0, 1] });
  assert.equal(compareLosses([1, 2], [1, Infinity]), { maxDifference: null, unmatchedSteps: [1] });
  assert.equal(compareLosses([1, 2, 3], [1, 2]), { maxDifference: null, unmatchedSteps: [2] }, "a step missing on one side");
});

testWithData(test, "bridge and native loops give identical per-step losses on the tiny preset", async (dataDir) => {
  const r = await benchTrain({ dataDir, steps: 5, warmup: 2, rounds: 1 });
  assert.is(r.max_loss_difference, 0);
  assert.equal(r.unmatched_loss_steps, []);
  assert.is(r.timed_steps, 5);
  for (const k of ["bridge_pairs_per_s", "native_pairs_per_s", "ratio"] as const) assert.ok(r[k] > 0, k);
});

testWithData(test, "a multi-task stage (the default config's): each step its task's objective, identical losses on both sides", async (dataDir) => {
  const config = join(projectRoot, "configs", "default.yaml");
  // 26 steps hold every task's objective (the seeded schedule's first supcon step is its 16th)
  const r = await benchTrain({ dataDir, config, set: ["model.preset=tiny", "model.head_hidden=16"], steps: 24, warmup: 2, rounds: 1 });
  assert.is(r.max_loss_difference, 0);
  assert.is(r.objective, "multitask (contrastive, cosent, siamese, supcon)");
  assert.is(r.steps_per_request, DEFAULT_STEPS_PER_REQUEST);
});

testWithData(test, "--profile writes the bridge side's cProfile stats, with train_steps among the ops it timed", async (dataDir) => {
  const file = join(tempFolder("bridge-profile-"), "bridge.prof");
  const r = await benchTrain({ dataDir, steps: 5, warmup: 2, rounds: 1, profile: file });
  assert.is(r.profile, file);
  assert.is(r.max_loss_difference, 0, "profiling changes the timing, not the losses");
  const { stdout } = await promisify(execFile)(backendPython(), [
    "-c",
    `import pstats; pstats.Stats(${JSON.stringify(file)}).print_stats("ops/model.py.*train_steps")`,
  ]);
  assert.match(stdout, /ops\/model\.py:\d+\(train_steps\)/);
});

test("bench flags that cannot give a measurement are refused before anything runs", async () => {
  for (const [opts, message] of [
    [{ what: "train", steps: 0 }, "--steps 0: a whole number, 1 or more"],
    [{ what: "train", rounds: -1 }, "--rounds -1: a whole number, 1 or more"],
    [{ what: "train", profile: "/nonexistent/folder/p.out" }, "--profile /nonexistent/folder/p.out: no folder /nonexistent/folder"],
    [{ what: "embed", steps: 5 }, "bench embed: --steps is for bench train"],
  ] as const) {
    const e = await bench(opts).catch((err: Error) => err);
    assert.instance(e, Error);
    assert.match((e as Error).message, message);
  }
});

test("processCost: CPU time and minor page faults of this process and of another one, by pid", async () => {
  const before = ownCost();
  const touched = new Float64Array(5_000_000).fill(1); // 40 MB of fresh pages
  const after = ownCost();
  assert.ok(after.minorFaults - before.minorFaults > 4000, `${after.minorFaults - before.minorFaults} faults for 40 MB`);
  assert.ok(after.cpuMs >= before.cpuMs && touched[4_999_999] === 1);
  // a child that touches 80 MB, then waits on its stdin so that its /proc entry stays readable
  const child = spawn(process.execPath, ["-e", "new Float64Array(10_000_000).fill(2); process.stdout.write('ready'); process.stdin.resume()"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  try {
    await new Promise((resolve) => child.stdout.once("data", resolve));
    const cost = pidCost(child.pid);
    if (process.platform === "linux") {
      assert.ok(cost && cost.minorFaults > 15000 && cost.cpuMs > 0, JSON.stringify(cost));
      assert.equal(costSince(cost, cost), { cpuMs: 0, minorFaults: 0 });
    } else assert.is(cost, null);
  } finally {
    child.kill();
  }
  assert.is(pidCost(null), null);
  assert.is(costSince(null, before), null);
});

test("bench transport: every side timed and profiled, the echo's bytes intact", async () => {
  const r = await benchTransport({ smallIterations: 40, largeIterations: 1, largeBytes: 1 << 20, rounds: 1 });
  assert.is(r.small.bytes, 64 * 2 * 32 * 4);
  for (const x of [r.small.p50_ms, r.small.raw_zmq_p50_ms, r.small.profile.raw_zmq_protocol_frames_p50_ms, r.small.ratio, r.large.ratio]) {
    assert.ok(Number.isFinite(x) && x > 0, String(x));
  }
  assert.is(r.small.round_ratios.length, 1);
  assert.is(r.small.paired_ratio, r.small.round_ratios[0]);
  assert.ok(r.small.profile.client_us > 0 && r.small.profile.raw_client_us > 0);
  if (process.platform === "linux") assert.ok(r.small.profile.peer_us! > 0 && r.small.profile.raw_peer_us! > 0);
});

test.run();
