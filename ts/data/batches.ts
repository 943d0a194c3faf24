/**
 * Batches for training and evaluation. A plan is a list of row-index arrays; collate turns one
 * into tensors (right padding with xxpad, lengths beside the ids) for the backend's codec.
 *
 * Training: rows shuffled from (seed, epoch), cut into pools, each pool sorted by length and cut
 * into batches, then the batches shuffled: similar lengths share a batch (little padding), yet
 * every epoch's order differs. Evaluation: one fixed order (longest first), original order
 * restorable from the indices each batch carries.
 */
import { type Tensor, tensor } from "../core/tensor.js";
import type { NumericalisedPairs, Ragged } from "./numericalised.js";
import { rowLength } from "./numericalised.js";
import { epochRng, shuffleInPlace } from "./random.js";

export type IdDType = "int32" | "int64";

export interface BatchSizing {
  /** Rows per batch. */
  batchSize?: number;
  /** Or: most padded tokens per batch (rows x longest, summed over fields). */
  maxTokens?: number;
}

export interface TrainPlanOptions extends BatchSizing {
  seed: number;
  epoch: number;
  /** Rows sorted together; bigger pools pad less but shuffle less. Default 50 batches' worth. */
  poolSize?: number;
}

/** Length of each row in each padded field (one array for sentences, two for pairs). */
export type FieldLengths = readonly ArrayLike<number>[];

export function pairLengths(data: NumericalisedPairs): FieldLengths {
  return [lengthsOf(data.s1), lengthsOf(data.s2)];
}

export function lengthsOf(r: Ragged): Int32Array {
  const n = r.offsets.length - 1;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = rowLength(r, i);
  return out;
}

/** The training batches of one epoch: a pure function of (lengths, sizing, seed, epoch). */
export function trainBatchPlan(lengths: FieldLengths, opts: TrainPlanOptions): Int32Array[] {
  const n = rowCount(lengths);
  checkSizing(opts);
  const rng = epochRng(opts.seed, opts.epoch, 1);
  const perm = shuffleInPlace(
    Int32Array.from({ length: n }, (_, i) => i),
    rng,
  );
  const pool = opts.poolSize ?? Math.max(1, 50 * (opts.batchSize ?? Math.ceil(opts.maxTokens! / 32)));
  const key = sortKey(lengths);
  const batches: Int32Array[] = [];
  for (let start = 0; start < n; start += pool) {
    const rows = Array.from(perm.subarray(start, Math.min(n, start + pool)));
    rows.sort((a, b) => key[b] - key[a]); // stable: ties keep their shuffled order
    batches.push(...cut(rows, lengths, opts));
  }
  return shuffleInPlace(batches, rng);
}

/** Evaluation batches: longest first, fixed; each batch's indices restore the input order. */
export function evalBatchPlan(lengths: FieldLengths, sizing: BatchSizing): Int32Array[] {
  checkSizing(sizing);
  const key = sortKey(lengths);
  const rows = Array.from({ length: rowCount(lengths) }, (_, i) => i);
  rows.sort((a, b) => key[b] - key[a] || a - b);
  return cut(rows, lengths, sizing);
}

/** Puts per-batch results (one entry per row, in batch order) back in input order. */
export function restoreOrder<T>(plan: readonly Int32Array[], results: readonly (readonly T[])[]): T[] {
  const total = plan.reduce((s, b) => s + b.length, 0);
  const out = new Array<T>(total);
  plan.forEach((batch, b) => {
    if (results[b].length !== batch.length) throw new RangeError(`restoreOrder: batch ${b} has ${batch.length} rows but ${results[b].length} results`);
    batch.forEach((row, k) => (out[row] = results[b][k]));
  });
  return out;
}

/** Same for dense per-batch outputs [rows, dim] (e.g. sentence vectors): one [total, dim] array in input order. */
export function restoreRows(plan: readonly Int32Array[], results: readonly Float32Array[], dim: number): Float32Array {
  const total = plan.reduce((s, b) => s + b.length, 0);
  const out = new Float32Array(total * dim);
  plan.forEach((batch, b) => {
    if (results[b].length !== batch.length * dim) throw new RangeError(`restoreRows: batch ${b} needs ${batch.length * dim} values, got ${results[b].length}`);
    batch.forEach((row, k) => out.set(results[b].subarray(k * dim, (k + 1) * dim), row * dim));
  });
  return out;
}

function rowCount(lengths: FieldLengths): number {
  if (lengths.length === 0) throw new RangeError("batch plan: no fields");
  const n = lengths[0].length;
  for (const l of lengths) if (l.length !== n) throw new RangeError("batch plan: fields have different row counts");
  return n;
}

function checkSizing(s: BatchSizing): void {
  const { batchSize, maxTokens } = s;
  if ((batchSize === undefined) === (maxTokens === undefined)) throw new RangeError("batch plan: give exactly one of batchSize and maxTokens");
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1))
    throw new RangeError(`batch plan: batchSize must be a positive integer, got ${batchSize}`);
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 1))
    throw new RangeError(`batch plan: maxTokens must be a positive integer, got ${maxTokens}`);
}

function sortKey(lengths: FieldLengths): Float64Array {
  const key = new Float64Array(lengths[0].length);
  for (const l of lengths) for (let i = 0; i < key.length; i++) key[i] += l[i];
  return key;
}

/** Cuts sorted rows into batches; the last, partial batch is kept. A row alone over maxTokens gets its own batch. */
function cut(rows: readonly number[], lengths: FieldLengths, s: BatchSizing): Int32Array[] {
  const out: Int32Array[] = [];
  if (s.batchSize !== undefined) {
    for (let i = 0; i < rows.length; i += s.batchSize) out.push(Int32Array.from(rows.slice(i, i + s.batchSize)));
    return out;
  }
  const maxTokens = s.maxTokens!;
  const longest = new Array<number>(lengths.length).fill(0);
  let current: number[] = [];
  for (const r of rows) {
    const next = lengths.map((l, f) => Math.max(longest[f], l[r]));
    const cost = (current.length + 1) * next.reduce((a, b) => a + b, 0);
    if (current.length > 0 && cost > maxTokens) {
      out.push(Int32Array.from(current));
      current = [];
      longest.fill(0);
      lengths.forEach((l, f) => (longest[f] = l[r]));
    } else next.forEach((v, f) => (longest[f] = v));
    current.push(r);
  }
  if (current.length > 0) out.push(Int32Array.from(current));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Collation

export interface SentenceBatch {
  /** [rows, longest] token ids, right-padded with xxpad. */
  ids: Tensor<IdDType>;
  /** [rows] int32: real tokens per row. */
  lengths: Tensor<"int32">;
}

export interface PairBatch {
  s1: SentenceBatch;
  s2: SentenceBatch;
  /** [rows] int64 label index (torch's loss wants long targets); -1 where none. */
  labels: Tensor<"int64">;
  /** [rows] float32; NaN where none. */
  scores: Tensor<"float32">;
  /** [rows] int32: each row's index in the dataset, to restore the order. */
  index: Tensor<"int32">;
}

export function collateSentences(r: Ragged, rows: Int32Array, padId: number, dtype: IdDType = "int32"): SentenceBatch {
  const n = rows.length;
  const lengths = new Int32Array(n);
  let longest = 0;
  for (let k = 0; k < n; k++) {
    lengths[k] = rowLength(r, rows[k]);
    if (lengths[k] > longest) longest = lengths[k];
  }
  if (dtype === "int64") {
    const ids = new BigInt64Array(n * longest).fill(BigInt(padId));
    for (let k = 0; k < n; k++) {
      const base = r.offsets[rows[k]];
      for (let j = 0; j < lengths[k]; j++) ids[k * longest + j] = BigInt(r.ids[base + j]);
    }
    return { ids: tensor("int64", [n, longest], ids), lengths: tensor("int32", [n], lengths) };
  }
  const ids = new Int32Array(n * longest).fill(padId);
  for (let k = 0; k < n; k++) ids.set(r.ids.subarray(r.offsets[rows[k]], r.offsets[rows[k] + 1]), k * longest);
  return { ids: tensor("int32", [n, longest], ids), lengths: tensor("int32", [n], lengths) };
}

export function collatePairs(data: NumericalisedPairs, rows: Int32Array, padId: number, dtype: IdDType = "int32"): PairBatch {
  const n = rows.length;
  const labels = new BigInt64Array(n);
  const scores = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    labels[k] = BigInt(data.labels[rows[k]]);
    scores[k] = data.scores[rows[k]];
  }
  return {
    s1: collateSentences(data.s1, rows, padId, dtype),
    s2: collateSentences(data.s2, rows, padId, dtype),
    labels: tensor("int64", [n], labels),
    scores: tensor("float32", [n], scores),
    index: tensor("int32", [n], Int32Array.from(rows)),
  };
}
