/**
 * sts: STS Benchmark (test when present, else dev): Spearman and Pearson of the cosine of the two
 * sentence vectors against the gold similarity, beside TF-IDF and each earlier stage's vectors.
 * `similarity()` is the scoring the other similarity tasks (sick, sts12-16) share.
 */

import { correlations } from "../../core/stats.js";
import { EVALUATION_SPLITS } from "../../data/evaluation.js";
import type { PairRecord } from "../../data/records.js";
import { tfidfCosines } from "../tfidf.js";
import type { Correlation, MetricRow, StsResult } from "../types.js";
import { type EvalTask, entryBase, firstPresent, lookForSplits, pairVectors, readPairs, rowAdder, type TaskContext, type TaskOutput } from "./common.js";

export interface SimilarityScores extends Correlation {
  cosines: Float64Array;
  gold: number[];
  baseline: Correlation;
}

/** Cosine of the pair's vectors against gold scores (no training on the task), and the TF-IDF cosine baseline. */
export async function similarity(ctx: TaskContext, records: readonly PairRecord[]): Promise<SimilarityScores> {
  const { cosines } = await pairVectors(ctx.model, records);
  const gold = records.map((r) => r.score!);
  const baseline = correlations(
    tfidfCosines(
      records.map((r) => r.s1),
      records.map((r) => r.s2),
    ),
    gold,
  );
  return { ...correlations(cosines, gold), cosines, gold, baseline };
}

/** The pairs of a split that carry a gold score, up to ctx.limit; null (recorded as skipped) when the split is missing. */
export async function scoredPairs(ctx: TaskContext, task: string, splitId: string): Promise<{ split: string; records: PairRecord[] } | null> {
  const data = await readPairs(ctx, task, splitId);
  if (!data) return null;
  return { split: data.ref.id, records: data.records.filter((r) => r.score !== undefined && Number.isFinite(r.score)).slice(0, ctx.limit) };
}

const STSB_SPLITS = EVALUATION_SPLITS.stsb;

export const stsTask: EvalTask = {
  name: "sts",
  describe: "STS Benchmark: Spearman of cosine vs gold similarity (nothing fitted at eval; supervised when the run trained on stsb:train)",
  splits: STSB_SPLITS,
  lookFor: (dataDir) => lookForSplits(STSB_SPLITS, dataDir),
  async run(ctx: TaskContext): Promise<TaskOutput> {
    const id = firstPresent(ctx, "sts", STSB_SPLITS);
    const data = id === null ? null : await scoredPairs(ctx, "sts", id);
    if (!data) return { entries: {} };
    const s = await similarity(ctx, data.records);
    ctx.log(`sts ${data.split}: spearman ${s.spearman.toFixed(4)} (tf-idf ${s.baseline.spearman.toFixed(4)}) on ${data.records.length} pairs`);
    const entry: StsResult = {
      ...entryBase(ctx, data.split, data.records.length),
      spearman: s.spearman,
      pearson: s.pearson,
      baseline: { tfidf: s.baseline },
      stages: [],
    };
    return {
      entries: { sts: entry },
      figures: { scatter: { split: data.split, cosine: Array.from(s.cosines), gold: s.gold } },
      atStage: async (stage) => {
        const { cosines } = await pairVectors(ctx.model, data.records);
        const spearman = correlations(cosines, s.gold).spearman;
        entry.stages.push({ stage: stage.name, checkpoint: stage.checkpoint, sts_spearman: spearman });
        return `sts spearman ${spearman.toFixed(4)}`;
      },
    };
  },
  rows(m) {
    const rows: MetricRow[] = [];
    const add = rowAdder(rows);
    if (!m.sts) return rows;
    add("sts.spearman", m.sts, m.sts.spearman, m.sts.baseline.tfidf.spearman);
    add("sts.pearson", m.sts, m.sts.pearson, m.sts.baseline.tfidf.pearson);
    for (const st of m.sts.stages) add(`sts.spearman@${st.stage}`, m.sts, st.sts_spearman);
    return rows;
  },
};
