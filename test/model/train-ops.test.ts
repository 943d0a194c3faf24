/**
 * The model ops through the real bridge: a backend process, ZeroMQ, Arrow tensors. Builds a tiny
 * AWD-LSTM and trains a few steps of every objective from TypeScript; the loss must fall.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type BackendClient, BackendError, startBackend } from "../../ts/backend/client.js";
import type { Tensors } from "../../ts/core/tensor.js";
import { type Tensor, tensor } from "../../ts/core/tensor.js";
import { tempFolder } from "../helpers.js";

const V = 40;
const PAD = 1;
const BOS = 2;
let client: BackendClient;
let dir: string;

/** A deterministic pseudo-random id generator (ids 4..V-1: no special tokens). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return 4 + (s % (V - 4));
  };
}

/** Right-padded int64 ids [bs, sl] and int32 lengths [bs]. */
function sentences(lengths: number[], seed: number): [Tensor, Tensor] {
  const next = rng(seed);
  const sl = Math.max(...lengths);
  const data = new BigInt64Array(lengths.length * sl).fill(BigInt(PAD));
  lengths.forEach((n, i) => {
    for (let t = 0; t < n; t++) data[i * sl + t] = BigInt(next());
  });
  return [tensor("int64", [lengths.length, sl], data), tensor("int32", [lengths.length], Int32Array.from(lengths))];
}

/** 8 NLI pairs over 4 premises: each premise with an entailment and a contradiction (the last: neutral). */
function pairs(): Tensors {
  const [p, pl] = sentences([5, 7, 4, 6], 1);
  const [h, hl] = sentences([3, 4, 5, 2, 6, 3, 4, 5], 2);
  const idx = [0, 0, 1, 1, 2, 2, 3, 3];
  const sl = p.shape[1];
  const prem = new BigInt64Array(8 * sl);
  idx.forEach((j, i) => prem.set((p.data as BigInt64Array).subarray(j * sl, (j + 1) * sl), i * sl));
  return {
    premise: tensor("int64", [8, sl], prem),
    premise_lengths: tensor("int32", [8], Int32Array.from(idx.map((j) => (pl.data as Int32Array)[j]))),
    hypothesis: h,
    hypothesis_lengths: hl,
    labels: tensor("int64", [8], BigInt64Array.from([0n, 2n, 0n, 2n, 0n, 2n, 0n, 1n])),
  };
}

/** A contiguous stream cut into x, y [4, 13] (int32 ids are accepted too). */
function lmBatch(): Tensors {
  const next = rng(3);
  const stream = Array.from({ length: 4 * 13 + 1 }, next);
  return {
    x: tensor("int32", [4, 13], Int32Array.from(stream.slice(0, -1))),
    y: tensor("int32", [4, 13], Int32Array.from(stream.slice(1))),
  };
}

async function losses(objective: string, batch: Tensors, steps: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    // reset is an lm step option: the backend refuses step options an objective does not declare
    const { result } = await client.call("train_step", objective === "lm" ? { objective, reset: true } : { objective }, batch);
    assert.is(result.finite, true);
    if (result.loss === null) throw new Error(`${objective}: step ${i + 1}: null loss`);
    out.push(result.loss);
  }
  return out;
}

test.before(async () => {
  dir = tempFolder("bridge-model-");
  client = await startBackend({ device: "cpu" });
  const { result } = await client.call("build", {
    preset: "tiny",
    vocab_sz: V,
    seed: 0,
    drop_mult: 0,
    lr: 0.01,
    wd: 0,
    head_hidden: 32,
    vocab_fingerprint: "test-vocab",
  });
  assert.equal(result.groups && Object.keys(result.groups), ["emb", "rnn0", "rnn1", "head"]);
});

test.after(async () => {
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const [objective, make] of [
  ["lm", lmBatch],
  ["siamese", pairs],
  ["triplet", pairs],
  ["contrastive", pairs],
] as const) {
  test(`${objective}: a few train_steps from TypeScript lower the loss`, async () => {
    const ls = await losses(objective, make(), 25);
    assert.ok(ls.every(Number.isFinite), `${objective}: non-finite loss ${ls}`);
    assert.ok(ls[ls.length - 1] < 0.9 * ls[0], `${objective}: ${ls[0]} -> ${ls[ls.length - 1]}`);
  });
}

test("simcse (raw sentences only) trains with dropout on", async () => {
  await client.call("set_hparams", { drop_mult: 1 });
  const [x, lengths] = sentences([4, 6, 3, 5, 7, 2], 5);
  const ls = await losses("simcse", { x, lengths }, 25);
  assert.ok(ls[ls.length - 1] < ls[0], `simcse: ${ls[0]} -> ${ls[ls.length - 1]}`);
  await client.call("set_hparams", { drop_mult: 0 });
});

test("eval_step, encode, predict, generate reply with tensors", async () => {
  const ev = await client.call("eval_step", { objective: "siamese" }, pairs());
  assert.equal(ev.tensors.logits.shape, [8, 3]);
  assert.is(ev.result.count, 8);
  const [x, lengths] = sentences([3, 6, 2], 9);
  const enc = await client.call("encode", {}, { x, lengths });
  assert.equal(enc.tensors.vectors.shape, [3, enc.result.dim]);
  assert.is(enc.tensors.vectors.dtype, "float32");
  const { premise, premise_lengths, hypothesis, hypothesis_lengths } = pairs();
  const pred = await client.call("predict", {}, { premise, premise_lengths, hypothesis, hypothesis_lengths });
  assert.equal(pred.tensors.probs.shape, [8, 3]);
  const gen = await client.call("generate", { n: 2, max_len: 6, top_k: 5, seed: 1 });
  assert.is(gen.tensors.tokens.shape[0], 2);
  assert.is((gen.tensors.tokens.data as BigInt64Array)[0], BigInt(BOS));
});

test("freezing, learning rates per group, save and load", async () => {
  const fr = await client.call("set_trainable", { freeze_to: -1 });
  assert.equal(fr.result.trainable_groups, ["head"]);
  const hp = await client.call("set_hparams", { lr: 0.01, lr_div: 2.6, mom: 0.8 });
  assert.ok(Math.abs(hp.result.lrs.rnn1 - 0.01 / 2.6) < 1e-12);
  await client.call("set_trainable", { unfreeze: true });
  const path = join(dir, "ckpt.pt");
  const saved = await client.call("save", { path, meta: { stage: "test" } });
  assert.ok(saved.result.bytes > 0);
  const [x, lengths] = sentences([3, 6, 2], 9);
  const before = (await client.call("encode", {}, { x, lengths })).tensors.vectors.data as Float32Array;
  await client.call("train_step", { objective: "siamese" }, pairs());
  const loaded = await client.call("load", { path });
  assert.is(loaded.result.step, saved.result.step);
  const after = (await client.call("encode", {}, { x, lengths })).tensors.vectors.data as Float32Array;
  assert.equal(Array.from(after), Array.from(before));
});

test("bad requests come back as bad_args / checkpoint_mismatch errors and the backend keeps serving", async () => {
  try {
    await client.call("train_step", { objective: "siamese" }, { premise: pairs().premise });
    assert.unreachable("should have failed");
  } catch (err) {
    assert.instance(err, BackendError);
    assert.is((err as BackendError).code, "bad_args");
    assert.match((err as BackendError).message, "premise_lengths");
  }
  const path = join(dir, "ckpt.pt");
  await client.call("build", { preset: "tiny", vocab_sz: V + 1, seed: 0 });
  try {
    await client.call("load", { path });
    assert.unreachable("should have failed");
  } catch (err) {
    assert.is((err as BackendError).code, "checkpoint_mismatch");
    assert.match((err as BackendError).message, "vocabulary size differs");
  }
  const info = await client.call("model_info");
  assert.is(info.result.config.model.vocab_sz, V + 1);
});

test.run();
