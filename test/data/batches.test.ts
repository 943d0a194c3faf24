import { test } from "uvu";
import * as assert from "uvu/assert";
import { collatePairs, evalBatchPlan, restoreOrder, restoreRows, trainBatchPlan } from "../../ts/data/batches.js";
import { LmStream, lmCorpus, lmWindows } from "../../ts/data/lmStream.js";
import type { NumericalisedPairs, Ragged } from "../../ts/data/numericalised.js";
import { mulberry32 } from "../../ts/data/random.js";

const rng = mulberry32(7);
const N = 1003;
const lenA = Int32Array.from({ length: N }, () => 2 + Math.floor(rng() * 40));
const lenB = Int32Array.from({ length: N }, () => 2 + Math.floor(rng() * 20));
const flat = (plan: Int32Array[]) => plan.flatMap((b) => [...b]);

test("bucketed shuffle: every row exactly once, last partial batch kept", () => {
  const plan = trainBatchPlan([lenA, lenB], { batchSize: 32, seed: 1, epoch: 0 });
  const rows = flat(plan);
  assert.is(rows.length, N);
  assert.is(new Set(rows).size, N);
  assert.is(plan.filter((b) => b.length < 32).length, 1); // 1003 = 31 * 32 + 11
  assert.ok(plan.some((b) => b.length === 11));
});

test("bucketed shuffle: same (seed, epoch) gives the same order; other epochs and seeds differ", () => {
  const a = flat(trainBatchPlan([lenA, lenB], { batchSize: 32, seed: 1, epoch: 3 }));
  assert.equal(flat(trainBatchPlan([lenA, lenB], { batchSize: 32, seed: 1, epoch: 3 })), a);
  assert.not.equal(flat(trainBatchPlan([lenA, lenB], { batchSize: 32, seed: 1, epoch: 4 })), a);
  assert.not.equal(flat(trainBatchPlan([lenA, lenB], { batchSize: 32, seed: 2, epoch: 3 })), a);
});

test("bucketed shuffle: batches hold similar lengths, but the order is not short-to-long", () => {
  const plan = trainBatchPlan([lenA, lenB], { batchSize: 32, seed: 5, epoch: 0, poolSize: 320 });
  const key = (i: number) => lenA[i] + lenB[i];
  const spread = plan.map((b) => Math.max(...[...b].map(key)) - Math.min(...[...b].map(key)));
  const meanSpread = spread.reduce((x, y) => x + y, 0) / spread.length;
  assert.ok(meanSpread < 12, `mean spread ${meanSpread}`); // random batches would spread ~45
  const firsts = plan.map((b) => key(b[0]));
  const sorted = [...firsts].sort((x, y) => x - y);
  assert.not.equal(firsts, sorted);
  assert.not.equal(firsts, [...sorted].reverse());
});

test("batch by tokens: padded size stays under the budget; a lone long row gets its own batch", () => {
  const plan = trainBatchPlan([lenA, lenB], { maxTokens: 600, seed: 1, epoch: 0 });
  assert.is(new Set(flat(plan)).size, N);
  for (const b of plan) {
    const cost = b.length * (Math.max(...[...b].map((i) => lenA[i])) + Math.max(...[...b].map((i) => lenB[i])));
    assert.ok(cost <= 600 || b.length === 1, `batch of ${b.length} costs ${cost}`);
  }
  const lone = trainBatchPlan([Int32Array.of(1000, 2, 3)], { maxTokens: 10, seed: 0, epoch: 0 });
  assert.ok(lone.some((b) => b.length === 1 && b[0] === 0));
  assert.throws(() => trainBatchPlan([lenA], { seed: 0, epoch: 0 }), /exactly one of batchSize and maxTokens/);
});

test("eval batches: fixed order, longest first, and results restored to input order", () => {
  const plan = evalBatchPlan([lenA], { batchSize: 50 });
  assert.equal(evalBatchPlan([lenA], { batchSize: 50 }), plan);
  assert.ok(lenA[plan[0][0]] >= lenA[plan[plan.length - 1][0]]);
  const results = plan.map((b) => [...b].map((i) => `row${i}`));
  assert.equal(
    restoreOrder(plan, results),
    Array.from({ length: N }, (_, i) => `row${i}`),
  );
  const dense = plan.map((b) => Float32Array.from([...b].flatMap((i) => [i, -i])));
  const back = restoreRows(plan, dense, 2);
  assert.equal([back[0], back[1], back[2 * 500], back[2 * 500 + 1]], [0, -0, 500, -500]);
});

test("collatePairs: right padding with xxpad, lengths, labels as int64, row index kept", () => {
  const s1: Ragged = { offsets: Int32Array.of(0, 3, 4), ids: Int32Array.of(2, 10, 11, 2) };
  const s2: Ragged = { offsets: Int32Array.of(0, 2, 5), ids: Int32Array.of(2, 12, 2, 13, 14) };
  const data: NumericalisedPairs = { kind: "pairs", size: 2, s1, s2, labels: Int8Array.of(0, 2), scores: Float32Array.of(Number.NaN, 3.5) };
  const b = collatePairs(data, Int32Array.of(1, 0), 1);
  assert.equal(b.s1.ids.shape, [2, 3]);
  assert.equal([...b.s1.ids.data], [2, 1, 1, 2, 10, 11]);
  assert.equal([...b.s1.lengths.data], [1, 3]);
  assert.equal([...b.s2.ids.data], [2, 13, 14, 2, 12, 1]);
  assert.equal([...b.labels.data], [2n, 0n]);
  assert.equal([...b.index.data], [1, 0]);
  const wide = collatePairs(data, Int32Array.of(0), 1, "int64");
  assert.is(wide.s1.ids.dtype, "int64");
  assert.equal([...wide.s1.ids.data], [2n, 10n, 11n]);
});

test("LM stream: contiguous rows, targets shifted by one, windows cover each row once", () => {
  const texts: Ragged = { offsets: Int32Array.of(0, 4, 7, 10, 16), ids: Int32Array.from({ length: 16 }, (_, i) => 100 + i) };
  const s = new LmStream(texts, { bs: 2, bptt: 3, seed: 0, epoch: 0, train: false });
  assert.is(s.rowLen, 8);
  const b0 = s.batch(0);
  assert.equal(b0.x.shape, [2, 3]);
  assert.equal([...b0.x.data], [100, 101, 102, 108, 109, 110]);
  assert.equal([...b0.y.data], [101, 102, 103, 109, 110, 111]);
  assert.equal(
    s.windows.map((w) => w.len),
    [3, 3, 1],
  );
  const train = new LmStream(texts, { bs: 2, bptt: 3, seed: 4, epoch: 1, train: true });
  assert.equal([...train.rows].sort(), [...s.rows].sort()); // same tokens, texts reordered
});

test("LM windows: variable bptt, reproducible from (seed, epoch), cover the row", () => {
  const w = lmWindows(100_000, 70, { seed: 3, epoch: 2, train: true });
  assert.equal(lmWindows(100_000, 70, { seed: 3, epoch: 2, train: true }), w);
  assert.not.equal(lmWindows(100_000, 70, { seed: 3, epoch: 3, train: true }), w);
  assert.is(
    w.reduce((a, x) => a + x.len, 0),
    100_000 - 1,
  );
  w.forEach((x, i) => i > 0 && assert.is(x.start, w[i - 1].start + w[i - 1].len));
  const lens = w.slice(0, -1).map((x) => x.len);
  assert.ok(new Set(lens).size > 10 && Math.min(...lens) >= 5);
  assert.ok(
    lens.some((l) => l < 50),
    "some halved windows",
  );
});

test("LM corpus: premises de-duplicated, no sentence on both sides", () => {
  const premises = ["A dog runs .", "A dog runs .", "A dog runs .", "Two men talk .", "Two men talk ."];
  const c = lmCorpus([...premises, "Hyp one .", "Hyp two ."], { valid: ["Two men talk .", "New one .", "New one ."], seed: 0 });
  assert.equal(c.train, ["A dog runs .", "Two men talk .", "Hyp one .", "Hyp two ."]);
  assert.equal(c.valid, ["New one ."]);
  assert.is(c.overlap, 1);
  assert.is(c.duplicates, 4);
  const many = Array.from({ length: 2000 }, (_, i) => `sentence ${i % 700} .`);
  const h = lmCorpus(many, { validFraction: 0.1, seed: 1 });
  assert.is(h.train.length + h.valid.length, 700);
  assert.ok(h.valid.length > 40 && h.valid.length < 110);
  const tr = new Set(h.train);
  assert.ok(h.valid.every((s) => !tr.has(s)));
  assert.equal(lmCorpus(many, { validFraction: 0.1, seed: 1 }).valid, h.valid);
});

test.run();
