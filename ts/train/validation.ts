/**
 * A stage's validation metrics: every validation batch through the backend's `eval_step`, a few in
 * flight, summed into val_loss (mean per item), val_accuracy and, for the LM, val_perplexity.
 */
import type { StepArgs } from "../backend/ops.js";
import { OBJECTIVE_SPECS, type ObjectiveSpec, type StageConfig } from "../config/schema.js";
import type { Pipeline } from "../core/pipeline.js";
import type { TrainBackend } from "./loop.js";
import type { StageData } from "./stages.js";

/**
 * The metrics of the model as it is now. It first waits for the steps in the stage's pipeline, so it
 * judges exactly the model after the last step sent, and leaves nothing in flight when it returns.
 */
export async function validate(backend: TrainBackend, s: StageConfig, sd: StageData, pipeline: Pipeline): Promise<Record<string, number>> {
  await pipeline.drain();
  const batches = sd.valid();
  let loss = 0;
  let correct = 0;
  let count = 0;
  for (let b = 0; b < batches.count; b++) {
    const batch = batches.batch(b);
    const args: StepArgs = { objective: s.objective, ...(s.objective === "lm" ? { stream: "eval", reset: batch.reset ?? false } : {}) };
    pipeline.add(
      backend.call("eval_step", args, batch.tensors).then(({ result: r }) => {
        const n = Number(r.count);
        loss += Number(r.loss ?? NaN) * n;
        correct += Number(r.correct ?? 0);
        count += n;
      }),
    );
    await pipeline.waitForRoom();
  }
  await pipeline.drain();
  const metrics: Record<string, number> = { val_loss: loss / Math.max(1, count), val_accuracy: correct / Math.max(1, count) };
  const spec: ObjectiveSpec = OBJECTIVE_SPECS[s.objective];
  if (spec.metrics.includes("val_perplexity")) metrics.val_perplexity = Math.exp(metrics.val_loss);
  return metrics;
}

/** Metrics for a progress line: "val_loss 0.6931, val_accuracy 0.5000". */
export function formatMetrics(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(", ");
}
