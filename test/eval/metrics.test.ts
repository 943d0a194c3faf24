/** The metric functions against hand-computed values and brute force. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { correlations } from "../../ts/core/stats.js";
import { classification, histogramOverlap, histograms, rocAuc, rocCurve, rowCosines } from "../../ts/eval/metrics.js";
import { tfidfCosines } from "../../ts/eval/tfidf.js";

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test("spearman uses midranks for ties", () => {
  // midranks [1, 2.5, 2.5, 4, 5] and [2, 1, 3.5, 3.5, 5]: Pearson of the ranks = 29 / 38
  close(correlations([1, 2, 2, 3, 4], [2, 1, 3, 3, 5]).spearman, 29 / 38, 1e-12);
  // order of the pairs does not matter
  close(correlations([4, 2, 3, 1, 2], [5, 3, 3, 2, 1]).spearman, 29 / 38, 1e-12);
  close(correlations([1, 2, 3], [2, 4, 6]).pearson, 1);
});

test("ROC AUC is exact Mann-Whitney: ties count one half (brute force)", () => {
  const pos = [0.9, 0.8, 0.5, 0.5, 0.3, 0.7];
  const neg = [0.5, 0.2, 0.6, 0.1, 0.5];
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  close(rocAuc(pos, neg), wins / (pos.length * neg.length));
  close(rocAuc([1, 2], [3, 4]), 0);
  close(rocAuc([3, 4], [1, 2]), 1);
  // the curve's trapezoid area equals the AUC
  const curve = rocCurve(pos, neg);
  let area = 0;
  for (let i = 1; i < curve.length; i++) area += ((curve[i].fpr - curve[i - 1].fpr) * (curve[i].tpr + curve[i - 1].tpr)) / 2;
  close(area, rocAuc(pos, neg));
  assert.equal(curve[curve.length - 1], { fpr: 1, tpr: 1, threshold: 0.1 });
});

test("histogram overlap: 1 for identical, 0 for separated", () => {
  const same = histograms({ a: [0.1, 0.5, 0.9], b: [0.9, 0.5, 0.1] }, 10);
  close(histogramOverlap(same.fractions.a, same.fractions.b), 1);
  const apart = histograms({ a: [0, 0.1, 0.2], b: [0.8, 0.9, 1] }, 10);
  close(histogramOverlap(apart.fractions.a, apart.fractions.b), 0);
  assert.is(apart.edges.length, 11);
  close(
    apart.fractions.a.reduce((s, x) => s + x, 0),
    1,
  );
});

test("histograms of 300k values: no spread of the values into Math.min / Math.max (RangeError)", () => {
  const a = Array.from({ length: 300_000 }, (_, i) => i / 1000); // 0 .. 299.999
  const h = histograms({ a, b: [-1, 400] }, 4);
  assert.is(h.edges[0], -1);
  assert.is(h.edges[4], 400);
  assert.is(h.counts.a, 300_000);
  close(
    h.fractions.a.reduce((s, x) => s + x, 0),
    1,
  );
  assert.throws(() => histograms({ a: [], b: [] }), /no values/);
});

test("classification: confusion, per-class precision / recall / F1", () => {
  const c = classification([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], ["e", "n", "c"]);
  assert.equal(c.confusion, [
    [1, 1, 0],
    [0, 2, 0],
    [1, 0, 1],
  ]);
  close(c.accuracy, 4 / 6);
  close(c.perClass.n.precision, 2 / 3);
  close(c.perClass.n.recall, 1);
  close(c.perClass.n.f1, 0.8);
  close(c.perClass.e.f1, 0.5);
  close(c.macroF1, (0.5 + 0.8 + 2 / 3) / 3);
});

test("row cosines and the TF-IDF baseline", () => {
  const cos = rowCosines(Float32Array.from([1, 0, 1, 1]), Float32Array.from([2, 0, -1, -1]), 2);
  close(cos[0], 1, 1e-7);
  close(cos[1], -1, 1e-7);
  const t = tfidfCosines(["a dog runs", "a cat sleeps"], ["A dog runs!", "the sun shines"]);
  close(t[0], 1, 1e-12);
  close(t[1], 0);
});

test.run();
