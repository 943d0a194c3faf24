/** Statistics shared by training's validation and evaluation: correlations from simple-statistics (Spearman on midranks, so ties share their average rank). */
import { sampleCorrelation, sampleRankCorrelation } from "simple-statistics";

export interface Correlations {
  spearman: number;
  pearson: number;
}

/** Spearman (ties: midranks) and Pearson correlation of predicted vs gold scores. */
export function correlations(pred: ArrayLike<number>, gold: ArrayLike<number>): Correlations {
  if (pred.length !== gold.length) throw new RangeError(`correlations: ${pred.length} predictions for ${gold.length} gold scores`);
  if (pred.length < 2) throw new RangeError("correlations: need at least 2 items");
  const p = Array.from(pred);
  const g = Array.from(gold);
  return { spearman: sampleRankCorrelation(p, g), pearson: sampleCorrelation(p, g) };
}
