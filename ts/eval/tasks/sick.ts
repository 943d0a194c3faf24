/**
 * sick: SICK relatedness (cosine vs gold, no training) and entailment (SentEval's logistic probe
 * on frozen vectors, fitted by the backend on sick:train) on SICK test when present, else trial.
 */

import { tensor } from "../../core/tensor.js";
import { EVALUATION_SPLITS } from "../../data/evaluation.js";
import { NLI_LABELS, type PairRecord } from "../../data/records.js";
import { classification } from "../metrics.js";
import type { MetricRow, ProbeResult, SickResult } from "../types.js";
import {
  type EvalTask,
  entryBase,
  firstPresent,
  lookForSplits,
  type PairVectors,
  pairVectors,
  readPairs,
  rowAdder,
  type TaskContext,
  type TaskOutput,
} from "./common.js";
import { scoredPairs, similarity } from "./sts.js";

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
const PROBE_TRAIN = "sick:train";
const SICK_SPLITS = EVALUATION_SPLITS.sick;

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
  const y = tensor(
    "int64",
    [trainRecs.length],
    BigInt64Array.from(trainRecs, (r) => BigInt(NLI_LABELS.indexOf(r.label!))),
  );
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
    ...entryBase(ctx, test.ref.id, testRecs.length),
    accuracy: c.accuracy,
    probe: {
      train_split: train.ref.id,
      train_items: trainRecs.length,
      features: "[u, v, |u-v|, u*v], standardised",
      l2: PROBE_L2,
      train_accuracy: fit.result.train_accuracy,
    },
  };
}

export const sickTask: EvalTask = {
  name: "sick",
  describe: "SICK: relatedness Spearman (cosine) and entailment accuracy (logistic probe fitted on sick:train)",
  splits: [...SICK_SPLITS, PROBE_TRAIN],
  lookFor: (dataDir) => lookForSplits(SICK_SPLITS, dataDir),
  async run(ctx: TaskContext): Promise<TaskOutput> {
    const id = firstPresent(ctx, "sick", SICK_SPLITS);
    if (id === null) return { entries: {} };
    const data = await scoredPairs(ctx, "sick", id);
    const rel = data === null ? null : { records: data.records, scores: await similarity(ctx, data.records) };
    if (rel)
      ctx.log(`sick ${id}: spearman ${rel.scores.spearman.toFixed(4)} (tf-idf ${rel.scores.baseline.spearman.toFixed(4)}) on ${rel.records.length} pairs`);
    const ent = await sickProbeTask(ctx, PROBE_TRAIN, id);
    if (!rel && !ent) return { entries: {} };
    const base = entryBase(ctx, id, rel?.records.length ?? ent!.items);
    const entry: SickResult = {
      ...base,
      spearman: rel?.scores.spearman,
      pearson: rel?.scores.pearson,
      accuracy: ent?.accuracy,
      ...(rel ? { relatedness: { ...base, spearman: rel.scores.spearman, pearson: rel.scores.pearson, baseline: { tfidf: rel.scores.baseline } } } : {}),
      ...(ent ? { entailment: ent } : {}),
    };
    return { entries: { sick: entry } };
  },
  rows(m) {
    const rows: MetricRow[] = [];
    const add = rowAdder(rows);
    if (!m.sick) return rows;
    const r = m.sick.relatedness;
    if (r) add("sick.spearman", r, r.spearman, r.baseline.tfidf.spearman);
    if (m.sick.entailment) add("sick.accuracy", m.sick.entailment, m.sick.entailment.accuracy);
    return rows;
  },
};
