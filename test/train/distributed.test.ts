/**
 * --nproc: shards of each global batch go to the ranks, whose averaged gradients make the same step as
 * one rank on the whole batch. Integration: 2 CPU ranks (gloo) against 1 rank, same seed and global
 * batch, dropout off (each rank draws its own masks), same metrics within a small tolerance.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type TrainOptions, train } from "../../ts/commands/train.js";
import { tensor } from "../../ts/core/tensor.js";
import { projectRoot } from "../../ts/paths.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { DistributedBackend, mergeStepResults, rankPlacement, shardRows } from "../../ts/train/distributed.js";
import { tempFolder, testWithData } from "../helpers.js";

test("shardRows cuts every tensor by rows into near-equal contiguous shards (views)", () => {
  const x = tensor("int64", [5, 2], BigInt64Array.from([0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n]));
  const l = tensor("int32", [5], Int32Array.from([1, 2, 3, 4, 5]));
  const [a, b] = shardRows({ x, l }, 2);
  assert.equal(a.x.shape, [2, 2]);
  assert.equal(Array.from(a.x.data as BigInt64Array), [0n, 1n, 2n, 3n]);
  assert.equal(b.x.shape, [3, 2]);
  assert.equal(Array.from(b.l.data as Int32Array), [3, 4, 5]);
  assert.is(b.x.data.buffer, x.data.buffer);
  assert.throws(() => shardRows({ x }, 6), /at least 6/);
});

test("rankPlacement: cuda spreads ranks over GPUs, cuda:K pins them to one GPU with gloo, cpu stays", () => {
  assert.equal(rankPlacement(2, "cuda"), { devices: ["cuda:0", "cuda:1"] });
  assert.equal(rankPlacement(2, "cuda:0"), { devices: ["cuda:0", "cuda:0"], backend: "gloo" });
  assert.equal(rankPlacement(1, "cuda:3"), { devices: ["cuda:3"] });
  assert.equal(rankPlacement(2, "cpu"), { devices: ["cpu", "cpu"] });
  assert.equal(rankPlacement(2, undefined), { devices: [undefined, undefined] });
});

test("mergeStepResults: loss weighted by count, counts and correct summed, finite only if all are", () => {
  const m = mergeStepResults([
    { loss: 1, count: 1, correct: 1, finite: true, stepped: true, step: 3 },
    { loss: 4, count: 3, correct: 2, finite: false, stepped: false, step: 3 },
  ]);
  assert.is(m.loss, 3.25);
  assert.is(m.count, 4);
  assert.is(m.correct, 3);
  assert.is(m.finite, false);
  assert.is(m.step, 3);
});

test("mergeStepResults: a null loss (non-finite) on any rank makes the merged loss null, not a smaller number", () => {
  const m = mergeStepResults([
    { loss: 2, count: 2, correct: 1, reg: 0.5, finite: true, stepped: false, step: 1 },
    { loss: null, count: 2, correct: 0, reg: 0.25, finite: false, stepped: false, step: 1 },
  ]);
  assert.is(m.loss, null);
  assert.is(m.reg, 0.375);
  assert.is(m.finite, false);
});

test("ops the backend's describe marks every_rank reach every rank: init_from loads the pretrained encoder on rank 1 too", async () => {
  const dir = tempFolder("bridge-ddp-init-");
  const group = await DistributedBackend.start(2, "cpu");
  try {
    assert.ok(group.everyRank.has("init_from") && group.everyRank.has("build") && !group.everyRank.has("save"), [...group.everyRank].join(", "));
    const build = { preset: "tiny", vocab_sz: 20, drop_mult: 0 };
    const pretrained = join(dir, "pretrained.pt");
    await group.call("build", { ...build, seed: 1 });
    await group.call("save", { path: pretrained }); // rank 0 writes it
    await group.call("build", { ...build, seed: 2 }); // every rank: the same fresh weights, unlike the checkpoint's
    const x = tensor("int32", [2, 4], Int32Array.from([4, 5, 6, 7, 8, 9, 10, 11]));
    const lengths = tensor("int32", [2], Int32Array.from([4, 3]));
    const vectors = async (r: number) => Array.from((await group.ranks[r].call("encode", {}, { x, lengths })).tensors.vectors.data as Float32Array);
    const fresh = await vectors(1);
    await group.call("init_from", { path: pretrained });
    const [rank0, rank1] = [await vectors(0), await vectors(1)];
    assert.not.equal(rank0, fresh, "init_from changed nothing on rank 0");
    assert.equal(rank1, rank0, "rank 1 kept its own weights: init_from reached rank 0 alone");
  } finally {
    await group.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

testWithData(test, "2 CPU ranks with gloo match 1 rank with the same global batch", async (dataDir) => {
  const runsDir = tempFolder("bridge-ddp-");
  try {
    const base: TrainOptions = {
      config: join(projectRoot, "configs", "tiny.yaml"),
      set: ["model.head_p=0", "stages.lm.dropMult=0", "stages.siamese.dropMult=0", "stages.lm.steps=20", "stages.siamese.steps=20"],
      quiet: true,
      dataDir,
      runsDir,
    };
    await train({ ...base, run: "one" });
    await train({ ...base, run: "two", nproc: 2 });
    const metrics = (run: string) => readManifest(runPaths(run, runsDir)).stages.map((s) => s.metrics);
    const [one, two] = [metrics("one"), metrics("two")];
    one.forEach((m, i) => {
      for (const [k, v] of Object.entries(m)) assert.ok(Math.abs(v - two[i][k]) <= 1e-5 * Math.max(1, Math.abs(v)), `stage ${i} ${k}: ${v} vs ${two[i][k]}`);
    });
    const losses = (run: string) =>
      readFileSync(runPaths(run, runsDir).log, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; loss: number })
        .filter((e) => e.type === "train")
        .map((e) => e.loss);
    const [l1, l2] = [losses("one"), losses("two")];
    assert.is(l1.length, l2.length);
    l1.forEach((v, i) => assert.ok(Math.abs(v - l2[i]) <= 1e-4, `step ${i + 1}: loss ${v} vs ${l2[i]}`));
  } finally {
    rmSync(runsDir, { recursive: true, force: true });
  }
});

test.run();
