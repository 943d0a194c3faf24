/**
 * The evaluation tasks of `bridge eval`. The backend returns vectors, predictions and losses; every
 * number here is computed on this side (metrics.ts). Each task reads the splits present in the
 * data dir (missing ones are listed in `skipped`, never a crash) and returns its metrics.json entry,
 * naming its split and item count, plus what the report draws (cosines, ROC points, scatter).
 */
import { readFileSync, existsSync } from "node:fs";
import { tensor } from "../core/tensor.js";
import { missingSplitMessage, parseSplitRef, splitExists, splitTexts, type SplitRef } from "../data/datasets.js";
import { LmStream } from "../data/lmStream.js";
import { prepareSplit } from "../data/prepare.js";
import { NLI_LABELS, type PairRecord } from "../data/records.js";
import { numericaliseTexts, type NumericalisedText, type Ragged } from "../data/numericalised.js";
import { classification, correlations, histogramOverlap, histograms, rocAuc, rocCurve, rowCosines, type Classification, type Histogram, type RocPoint } from "./metrics.js";
import type { RunModel } from "./runModel.js";
import { tfidfCosines } from "./tfidf.js";

export const TASKS = ["snli", "separation", "sts", "sick", "lm"] as const;
export type TaskName = (typeof TASKS)[number];

export interface Skipped {
  task: string;
  split: string;
  reason: string;
}

export interface TaskContext {
  model: RunModel;
  dataDir?: string;
  /** Most items per split (tests; undefined = all). */
  limit?: number;
  /** Most tokens of LM text for perplexity (undefined = all). */
  lmMaxTokens?: number;
  skipped: Skipped[];
  log: (line: string) => void;
}

/** Reads a pair split, or records why it was skipped and returns null. */
export async function readPairs(ctx: TaskContext, task: string, id: string): Promise<{ ref: SplitRef; records: PairRecord[] } | null> {
  const ref = parseSplitRef(id, ctx.dataDir);
  if (!splitExists(ref)) {
    ctx.skipped.push({ task, split: ref.id, reason: missingSplitMessage(ref) });
    ctx.log(`skipped ${task} on ${ref.id}: ${missingSplitMessage(ref)}`);
    return null;
  }
  if (ref.dataset.kind !== "pairs") throw new Error(`${ref.id} is not a pair dataset`);
  const records: PairRecord[] = [];
  for await (const r of ref.dataset.read(ref.path!, {})) records.push(r);
  return { ref, records };
}

// ---------------------------------------------------------------------------------------------
// Pairs -> vectors

export interface PairVectors {
  /** [n, dim] premise / first-sentence vectors and hypothesis / second-sentence vectors. */
  u: Float32Array;
  v: Float32Array;
  dim: number;
  cosines: Float64Array;
}

/** Vectors of both sides of each pair; every distinct sentence is encoded once. */
export async function pairVectors(model: RunModel, records: readonly PairRecord[]): Promise<PairVectors> {
  const index = new Map<string, number>();
  const unique: string[] = [];
  const at = (s: string) => {
    let i = index.get(s);
    if (i === undefined) {
      i = unique.length;
      index.set(s, i);
      unique.push(s);
    }
    return i;
  };
  const a = records.map((r) => at(r.s1));
  const b = records.map((r) => at(r.s2));
  const { vectors, dim } = await model.encode(model.numericalise(unique));
  const gather = (ids: number[]) => {
    const out = new Float32Array(ids.length * dim);
    ids.forEach((id, k) => out.set(vectors.subarray(id * dim, (id + 1) * dim), k * dim));
    return out;
  };
  const u = gather(a);
  const v = gather(b);
  return { u, v, dim, cosines: rowCosines(u, v, dim) };
}

// ---------------------------------------------------------------------------------------------
// SNLI (and XNLI): the siamese head's classification

export interface NliResult {
  split: string;
  items: number;
  /** What part of the split, and why (held-out rows of a split the run trained on). */
  subset: string;
  accuracy: number;
  macro_f1: number;
  confusion: { labels: string[]; matrix: number[][] };
  per_class: Classification["perClass"];
}

export interface NliOutput {
  metrics: NliResult;
  records: PairRecord[];
  probs: Float32Array;
  pred: Int32Array;
}

/**
 * The rows of an NLI split that evaluation may use: when the run trained on part of this split
 * (no training split at hand), only the rows it held out; the run records them (train's DataPlan
 * `holdout`: {split, validRows}) in run.json or config.json.
 */
export function evalRows(model: RunModel, splitId: string, n: number): { rows: number[]; subset: string } {
  const holdout = findHoldout(model);
  if (holdout && holdout.split === splitId) {
    return { rows: holdout.validRows.filter((r) => r < n), subset: `the ${holdout.validRows.length} rows held out of ${splitId} by training (the rest trained the model)` };
  }
  const trainedOn = trainedSplits(model);
  const note = trainedOn.includes(splitId) ? ` (WARNING: the run trained on ${splitId} and records no held-out rows; these numbers are not held-out results)` : "";
  return { rows: Array.from({ length: n }, (_, i) => i), subset: `the whole split${note}` };
}

interface Holdout {
  split: string;
  validRows: number[];
}

function runJsonFiles(model: RunModel): unknown[] {
  return [model.paths.manifest, model.paths.config].filter(existsSync).map((p) => JSON.parse(readFileSync(p, "utf8")) as unknown);
}

/** The first object with {split: string, validRows: number[]} anywhere in run.json / config.json. */
function findHoldout(model: RunModel): Holdout | null {
  const visit = (x: unknown): Holdout | null => {
    if (x === null || typeof x !== "object") return null;
    const o = x as Record<string, unknown>;
    if (typeof o.split === "string" && Array.isArray(o.validRows)) return { split: o.split, validRows: o.validRows as number[] };
    for (const v of Object.values(o)) {
      const found = visit(v);
      if (found) return found;
    }
    return null;
  };
  for (const doc of runJsonFiles(model)) {
    const h = visit(doc);
    if (h) return h;
  }
  return null;
}

/** Split ids named as training data in config.json (data.train / data.pairs and the like). */
function trainedSplits(model: RunModel): string[] {
  const out: string[] = [];
  const visit = (x: unknown, key: string) => {
    if (typeof x === "string" && /train/i.test(key) && /^[\w.-]+:[\w.-]+$/.test(x)) out.push(parseSafe(x));
    else if (x !== null && typeof x === "object") for (const [k, v] of Object.entries(x)) visit(v, k);
  };
  for (const doc of runJsonFiles(model)) visit(doc, "");
  return out;
}

function parseSafe(id: string): string {
  try {
    return parseSplitRef(id).id;
  } catch {
    return id;
  }
}

export async function nliTask(ctx: TaskContext, task: string, splitId: string): Promise<NliOutput | null> {
  const data = await readPairs(ctx, task, splitId);
  if (!data) return null;
  const { rows, subset } = evalRows(ctx.model, data.ref.id, data.records.length);
  const records = rows
    .map((r) => data.records[r])
    .filter((r) => r.label !== undefined)
    .slice(0, ctx.limit);
  const s1 = ctx.model.numericalise(records.map((r) => r.s1));
  const s2 = ctx.model.numericalise(records.map((r) => r.s2));
  const { probs, pred } = await ctx.model.predict(s1, s2);
  const gold = records.map((r) => NLI_LABELS.indexOf(r.label!));
  const c = classification(gold, pred, NLI_LABELS);
  ctx.log(`${task} ${data.ref.id}: accuracy ${c.accuracy.toFixed(4)} on ${records.length} pairs`);
  return {
    metrics: {
      split: data.ref.id,
      items: records.length,
      subset: ctx.limit !== undefined && ctx.limit < rows.length ? `${subset}, first ${ctx.limit} rows` : subset,
      accuracy: c.accuracy,
      macro_f1: c.macroF1,
      confusion: { labels: c.labels, matrix: c.confusion },
      per_class: c.perClass,
    },
    records,
    probs,
    pred,
  };
}

// ---------------------------------------------------------------------------------------------
// Separation: are entailed pairs closer than contradictions?

export interface SeparationScores {
  roc_auc: number;
  overlap: number;
  mean_cosine: Record<string, number>;
}

export interface SeparationResult extends SeparationScores {
  split: string;
  items: number;
  subset: string;
  positive: "entailment";
  negative: "contradiction";
  bins: number;
}

export interface SeparationDetail {
  histogram: Histogram;
  roc: RocPoint[];
}

export const HISTOGRAM_BINS = 40;

/** ROC AUC of cosine for entailment (positive) vs contradiction, histogram overlap, mean cosine per label. */
export function separationScores(cosines: ArrayLike<number>, labels: readonly (string | undefined)[]): SeparationScores & SeparationDetail {
  const groups: Record<string, number[]> = {};
  for (const l of NLI_LABELS) groups[l] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] !== undefined) groups[labels[i]!].push(cosines[i]);
  const pos = groups.entailment;
  const neg = groups.contradiction;
  const histogram = histograms(groups, HISTOGRAM_BINS);
  const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    roc_auc: rocAuc(pos, neg),
    overlap: histogramOverlap(histogram.fractions.entailment, histogram.fractions.contradiction),
    mean_cosine: Object.fromEntries(NLI_LABELS.map((l) => [l, mean(groups[l])])),
    histogram,
    roc: rocCurve(pos, neg),
  };
}

// ---------------------------------------------------------------------------------------------
// STS-B and SICK-R: cosine against gold similarity, no training

export interface SimilarityResult {
  split: string;
  items: number;
  spearman: number;
  pearson: number;
}

export interface SimilarityOutput {
  metrics: SimilarityResult;
  records: PairRecord[];
  cosines: Float64Array;
  gold: number[];
  baseline: { spearman: number; pearson: number };
}

export async function similarityTask(ctx: TaskContext, task: string, splitId: string): Promise<SimilarityOutput | null> {
  const data = await readPairs(ctx, task, splitId);
  if (!data) return null;
  const records = data.records.filter((r) => r.score !== undefined && Number.isFinite(r.score)).slice(0, ctx.limit);
  const { cosines } = await pairVectors(ctx.model, records);
  const gold = records.map((r) => r.score!);
  const c = correlations(cosines, gold);
  const b = correlations(
    tfidfCosines(
      records.map((r) => r.s1),
      records.map((r) => r.s2),
    ),
    gold,
  );
  ctx.log(`${task} ${data.ref.id}: spearman ${c.spearman.toFixed(4)} (tf-idf ${b.spearman.toFixed(4)}) on ${records.length} pairs`);
  return { metrics: { split: data.ref.id, items: records.length, ...c }, records, cosines, gold, baseline: b };
}

// ---------------------------------------------------------------------------------------------
// SICK-E: a logistic-regression probe on frozen vectors (fitted by the backend on SICK train)

export interface ProbeResult {
  split: string;
  items: number;
  accuracy: number;
  probe: { train_split: string; train_items: number; features: string; l2: number; train_accuracy: number };
}

/** SentEval's pair features [u, v, |u - v|, u * v], [n, 4 dim]. */
export function pairFeatures(p: PairVectors): Float32Array {
  const { u, v, dim } = p;
  const n = u.length / dim;
  const out = new Float32Array(n * 4 * dim);
  for (let i = 0; i < n; i++) {
    const o = i * 4 * dim;
    for (let j = 0; j < dim; j++) {
      const a = u[i * dim + j];
      const b = v[i * dim + j];
      out[o + j] = a;
      out[o + dim + j] = b;
      out[o + 2 * dim + j] = Math.abs(a - b);
      out[o + 3 * dim + j] = a * b;
    }
  }
  return out;
}

export const PROBE_L2 = 1e-3;

export async function sickProbeTask(ctx: TaskContext, trainId: string, testId: string): Promise<ProbeResult | null> {
  const train = await readPairs(ctx, "sick", trainId);
  const test = await readPairs(ctx, "sick", testId);
  if (!train || !test) return null;
  const labelled = (rs: PairRecord[]) => rs.filter((r) => r.label !== undefined).slice(0, ctx.limit);
  const trainRecs = labelled(train.records);
  const testRecs = labelled(test.records);
  const features = async (rs: PairRecord[]) => {
    const p = await pairVectors(ctx.model, rs);
    return tensor("float32", [rs.length, 4 * p.dim], pairFeatures(p));
  };
  const y = tensor("int64", [trainRecs.length], BigInt64Array.from(trainRecs, (r) => BigInt(NLI_LABELS.indexOf(r.label!))));
  const fit = await ctx.model.call("fit_probe", { name: "sick-e", l2: PROBE_L2, seed: 0 }, { x: await features(trainRecs), y });
  const { tensors } = await ctx.model.call("probe_predict", { name: "sick-e" }, { x: await features(testRecs) });
  const pred = Array.from(tensors.pred.data as BigInt64Array, Number);
  const c = classification(
    testRecs.map((r) => NLI_LABELS.indexOf(r.label!)),
    pred,
    NLI_LABELS,
  );
  ctx.log(`sick-e ${test.ref.id}: accuracy ${c.accuracy.toFixed(4)} (probe fitted on ${trainRecs.length} ${train.ref.id} pairs)`);
  return {
    split: test.ref.id,
    items: testRecs.length,
    accuracy: c.accuracy,
    probe: {
      train_split: train.ref.id,
      train_items: trainRecs.length,
      features: "[u, v, |u-v|, u*v], standardised",
      l2: PROBE_L2,
      train_accuracy: fit.result.train_accuracy as number,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Language model: perplexity on held-out text, and samples

export interface LmResult {
  split: string;
  /** Tokens scored (targets). */
  items: number;
  perplexity: number;
  oov_rate: number;
  checkpoint: string;
  bptt: number;
  /** How to read the number (xxunk is scored as a word: a high OOV rate makes perplexity look better). */
  note: string;
}

export interface SamplingSettings {
  n: number;
  max_len: number;
  temperature: number;
  top_k: number;
  seed: number;
}

export const SAMPLING: SamplingSettings = { n: 5, max_len: 30, temperature: 0.8, top_k: 0, seed: 0 };

export async function perplexityTask(ctx: TaskContext, splitId: string): Promise<LmResult | null> {
  const ref = parseSplitRef(splitId, ctx.dataDir);
  if (!splitExists(ref)) {
    ctx.skipped.push({ task: "lm", split: ref.id, reason: missingSplitMessage(ref) });
    ctx.log(`skipped lm on ${ref.id}: ${missingSplitMessage(ref)}`);
    return null;
  }
  const { model } = ctx;
  const { lines, oovRate } = ctx.lmMaxTokens === undefined ? await wholeSplit(ctx, ref) : await splitPrefix(ctx, ref, ctx.lmMaxTokens);
  const bs = 16;
  const bptt = 70;
  const stream = new LmStream(lines, { bs, bptt, seed: 0, epoch: 0, train: false });
  let nll = 0;
  let count = 0;
  for (let k = 0; k < stream.steps; k++) {
    const { x, y } = stream.batch(k);
    const { result } = await model.call("eval_step", { objective: "lm", reset: k === 0, stream: "perplexity" }, { x, y });
    nll += (result.loss as number) * (result.count as number);
    count += result.count as number;
  }
  const perplexity = Math.exp(nll / count);
  ctx.log(`lm ${ref.id}: perplexity ${perplexity.toFixed(2)} over ${count} tokens (oov ${(oovRate * 100).toFixed(1)}%)`);
  const note =
    `xxunk counts as a word, so with ${(oovRate * 100).toFixed(1)}% of tokens out of the run's vocabulary this is not comparable to ` +
    "published WikiText-2 perplexities (full vocabulary, trained on WikiText-2 train)";
  return { split: ref.id, items: count, perplexity, oov_rate: oovRate, checkpoint: model.checkpoint, bptt, note };
}

/** The whole split, numericalised through the cache (a second eval reads it back). */
async function wholeSplit(ctx: TaskContext, ref: SplitRef): Promise<{ lines: Ragged; oovRate: number }> {
  const prepared = await prepareSplit({ ref, vocab: ctx.model.vocab, tokenizer: ctx.model.tokenizer });
  return { lines: (prepared.data as NumericalisedText).lines, oovRate: prepared.report.oovRate };
}

/** The split's first lines, up to about `maxTokens` tokens (a prefix: the stream needs contiguous text). */
async function splitPrefix(ctx: TaskContext, ref: SplitRef, maxTokens: number): Promise<{ lines: Ragged; oovRate: number }> {
  const texts: string[] = [];
  let tokens = 0;
  for await (const r of splitTexts(ref, {})) {
    texts.push(r);
    tokens += r.split(" ").length;
    if (tokens >= maxTokens) break;
  }
  const { ragged, counts } = numericaliseTexts(texts, ctx.model.vocab, ctx.model.tokenizer);
  return { lines: ragged, oovRate: counts.tokens === 0 ? 0 : counts.unknown / counts.tokens };
}

export async function sampleTexts(model: RunModel, s: SamplingSettings = SAMPLING): Promise<string[]> {
  const { tensors } = await model.call("generate", { ...s });
  const tokens = tensors.tokens;
  return model.detokenize(tokens.data as BigInt64Array, tokens.shape[1], Array.from(tensors.lengths.data as BigInt64Array | Int32Array, Number));
}
