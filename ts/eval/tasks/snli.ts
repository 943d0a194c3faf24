/**
 * snli: the siamese head's NLI classification on SNLI (test when present: report test once, else
 * dev, only the rows training held out) and XNLI English: accuracy, macro F1, confusion matrix.
 * Leaves its predictions by row for the vectors file the separation task writes.
 */
import { EVALUATION_SPLITS } from "../../data/evaluation.js";
import { NLI_LABELS, type PairRecord } from "../../data/records.js";
import { stageTrains } from "../../run/manifest.js";
import { classification } from "../metrics.js";
import { evalRows } from "../trainedOn.js";
import type { MetricRow, NliResult } from "../types.js";
import { type EvalTask, entryBase, firstPresent, lookForSplits, readPairs, rowAdder, rowKey, skip, type TaskContext, type TaskOutput } from "./common.js";

/** Each NLI dataset's splits, most preferred first. */
export const NLI_SPLITS = { snli: EVALUATION_SPLITS.snli, xnli: EVALUATION_SPLITS.xnli } as const;

export interface NliOutput {
  metrics: NliResult;
  records: PairRecord[];
  probs: Float32Array;
  pred: Int32Array;
}

/** Classifies the split's evaluable rows (held-out ones where the run trained on the split). */
export async function nliTask(ctx: TaskContext, task: string, splitId: string): Promise<NliOutput | null> {
  const data = await readPairs(ctx, task, splitId);
  if (!data) return null;
  const { rows, subset } = evalRows(ctx.model.manifest, ctx.trainedOn, data.ref.id, data.records.length);
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
      ...entryBase(ctx, data.ref.id, records.length),
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

export const snliTask: EvalTask = {
  name: "snli",
  describe: "NLI accuracy of the siamese head on SNLI (and XNLI English)",
  splits: [...NLI_SPLITS.snli, ...NLI_SPLITS.xnli],
  lookFor: (dataDir) => lookForSplits(snliTask.splits, dataDir),
  async run(ctx: TaskContext): Promise<TaskOutput> {
    const out: TaskOutput = { entries: {} };
    if (!ctx.model.manifest.stages.some((s) => stageTrains(s, "siamese"))) {
      skip(ctx, "snli", "*", "the run has no siamese stage: its classifier head is untrained");
      return out;
    }
    for (const task of ["snli", "xnli"] as const) {
      const id = firstPresent(ctx, task, NLI_SPLITS[task]);
      const r = id === null ? null : await nliTask(ctx, task, id);
      if (!r) continue;
      out.entries[task] = r.metrics;
      if (task === "snli")
        r.records.forEach((rec, i) => ctx.predictions.set(rowKey(r.metrics.split, rec.line), { probs: r.probs.subarray(i * 3, i * 3 + 3), pred: r.pred[i] }));
    }
    return out;
  },
  rows(m) {
    const rows: MetricRow[] = [];
    const add = rowAdder(rows);
    if (m.snli) {
      add("snli.accuracy", m.snli, m.snli.accuracy);
      add("snli.macro_f1", m.snli, m.snli.macro_f1);
    }
    if (m.xnli) add("xnli.accuracy", m.xnli, m.xnli.accuracy);
    return rows;
  },
};
