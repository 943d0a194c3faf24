/**
 * Early stopping: after each evaluation the watched metric is compared with the best so far; the
 * stage stops after `patience` evaluations without an improvement of more than `minDelta`. The
 * record (best value, evaluations since) lives in the stage position, so it survives --resume; the
 * best weights are saved beside the run and put back at the stage's end.
 */
import { join } from "node:path";
import type { StageConfig } from "../config/schema.js";
import { checkpointName } from "./checkpoints.js";
import type { LoopContext, StageRef } from "./context.js";
import { formatMetrics } from "./validation.js";

export type EarlyStoppingConfig = NonNullable<StageConfig["earlyStopping"]>;

const lowerIsBetter = (metric: string) => metric !== "val_accuracy";

/**
 * Records the evaluation of the model after step position.step; saves its weights when they are the best
 * so far. Returns whether the stage stops here. Nothing may be in flight (the weights saved are these).
 */
export async function recordEvaluation(ctx: LoopContext, stage: StageRef, es: EarlyStoppingConfig, metrics: Record<string, number>): Promise<boolean> {
  const pos = ctx.state.position;
  const value = metrics[es.metric];
  const sign = lowerIsBetter(es.metric) ? -1 : 1;
  if (pos.best === null || sign * (value - pos.best) > es.minDelta) {
    pos.best = value;
    pos.badEvals = 0;
    const path = join(ctx.paths.dir, checkpointName(stage.index, stage.name, "best"));
    await ctx.backend.call("save", { path, meta: { stage: stage.name, step: pos.step, metrics } });
    return false;
  }
  if (++pos.badEvals < es.patience) return false;
  ctx.progress.note(`  early stop: ${es.metric} has not improved for ${pos.badEvals} evaluations (best ${pos.best})`);
  ctx.log.write({ type: "early_stop", stage: stage.name, stage_index: stage.index, step: pos.step, best: pos.best });
  return true;
}

/** Puts the best weights of the stage back (at its end); returns their metrics (`latest` when the checkpoint has none). */
export async function restoreBestWeights(ctx: LoopContext, stage: StageRef, latest: Record<string, number>): Promise<Record<string, number>> {
  const best = checkpointName(stage.index, stage.name, "best");
  const r = (await ctx.backend.call("load", { path: join(ctx.paths.dir, best), parts: "weights" })).result;
  const meta = r.meta as { metrics?: Record<string, number>; step?: number } | undefined;
  const metrics = meta?.metrics ?? latest;
  ctx.log.write({
    type: "restore_best",
    stage: stage.name,
    stage_index: stage.index,
    step: ctx.state.position.step,
    best_step: meta?.step ?? null,
    ...metrics,
  });
  ctx.progress.note(`  kept the best weights (step ${meta?.step}): ${formatMetrics(metrics)}`);
  return metrics;
}
