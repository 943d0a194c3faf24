/**
 * The metrics of `bridge eval`, as pure functions of predictions and gold values (correlations: ts/core/stats.ts).
 * Rank sums come from simple-statistics (ROC AUC from the Wilcoxon rank sum, i.e. exact Mann-Whitney U with ties
 * counted half).
 */
import { wilcoxonRankSum } from "simple-statistics";

/** ROC AUC of scores, positives vs negatives: P(score_pos > score_neg) + P(tie) / 2, exactly. */
export function rocAuc(positives: readonly number[], negatives: readonly number[]): number {
  const n1 = positives.length;
  const n2 = negatives.length;
  if (n1 === 0 || n2 === 0) throw new RangeError("rocAuc: need at least one positive and one negative");
  const rankSum = wilcoxonRankSum(positives as number[], negatives as number[]);
  return (rankSum - (n1 * (n1 + 1)) / 2) / (n1 * n2);
}

export interface RocPoint {
  fpr: number;
  tpr: number;
  threshold: number;
}

/** The ROC curve: one point per distinct threshold (tied scores move both rates at once), from (0,0) to (1,1). */
export function rocCurve(positives: readonly number[], negatives: readonly number[]): RocPoint[] {
  const items = [...positives.map((s) => [s, 1] as const), ...negatives.map((s) => [s, 0] as const)].sort((a, b) => b[0] - a[0]);
  const out: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: Number.POSITIVE_INFINITY }];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < items.length; i++) {
    if (items[i][1] === 1) tp++;
    else fp++;
    if (i + 1 === items.length || items[i + 1][0] !== items[i][0]) {
      out.push({ fpr: fp / negatives.length, tpr: tp / positives.length, threshold: items[i][0] });
    }
  }
  return out;
}

export interface Histogram {
  /** Bin edges: bins + 1 numbers. */
  edges: number[];
  /** Per group: the fraction of its items in each bin (sums to 1). */
  fractions: Record<string, number[]>;
  counts: Record<string, number>;
}

/** Normalised histograms of several groups over shared, equal-width bins spanning all values. */
export function histograms(groups: Record<string, readonly number[]>, bins = 40): Histogram {
  // a loop, not Math.min(...values): spreading ~1e5+ arguments overflows the stack (RangeError)
  let n = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const values of Object.values(groups)) {
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    n += values.length;
  }
  if (n === 0) throw new RangeError("histograms: no values");
  if (hi === lo) {
    lo -= 0.5;
    hi += 0.5;
  }
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + i * width);
  const fractions: Record<string, number[]> = {};
  const counts: Record<string, number> = {};
  for (const [name, values] of Object.entries(groups)) {
    const f = new Array<number>(bins).fill(0);
    for (const v of values) f[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
    fractions[name] = f.map((c) => (values.length === 0 ? 0 : c / values.length));
    counts[name] = values.length;
  }
  return { edges, fractions, counts };
}

/** Overlap of two normalised histograms: sum of the bin-wise minimum (0 = separated, 1 = identical). */
export function histogramOverlap(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError("histogramOverlap: different numbers of bins");
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.min(a[i], b[i]);
  return Math.min(1, s);
}

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Classification {
  accuracy: number;
  /** confusion[gold][pred], in `labels` order. */
  confusion: number[][];
  labels: string[];
  perClass: Record<string, ClassScores>;
  macroF1: number;
}

/** Accuracy, confusion matrix and per-class precision / recall / F1 (0 where undefined) from class indices. */
export function classification(gold: ArrayLike<number>, pred: ArrayLike<number>, labels: readonly string[]): Classification {
  if (gold.length !== pred.length) throw new RangeError(`classification: ${gold.length} gold labels for ${pred.length} predictions`);
  const k = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < gold.length; i++) {
    if (gold[i] < 0 || gold[i] >= k || pred[i] < 0 || pred[i] >= k) throw new RangeError(`classification: label index out of 0..${k - 1} at item ${i}`);
    confusion[gold[i]][pred[i]]++;
    if (gold[i] === pred[i]) correct++;
  }
  const perClass: Record<string, ClassScores> = {};
  labels.forEach((name, c) => {
    const tp = confusion[c][c];
    const predicted = confusion.reduce((s, row) => s + row[c], 0);
    const support = confusion[c].reduce((s, v) => s + v, 0);
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    perClass[name] = { precision, recall, f1, support };
  });
  const macroF1 = labels.reduce((s, name) => s + perClass[name].f1, 0) / k;
  return { accuracy: gold.length === 0 ? Number.NaN : correct / gold.length, confusion, labels: [...labels], perClass, macroF1 };
}

/** Cosine similarity of row i of a and row i of b, both [n, dim] row-major. */
export function rowCosines(a: Float32Array, b: Float32Array, dim: number): Float64Array {
  if (a.length !== b.length || a.length % dim !== 0) throw new RangeError("rowCosines: shapes differ");
  const n = a.length / dim;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = i * dim; j < (i + 1) * dim; j++) {
      dot += a[j] * b[j];
      na += a[j] * a[j];
      nb += b[j] * b[j];
    }
    out[i] = na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
  }
  return out;
}
