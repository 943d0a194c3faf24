/**
 * A stage's validation metrics: every validation batch through the backend's `eval_step`, a few in
 * flight, summed into val_loss (mean per item), val_accuracy, val_perplexity for the LM and, for the
 * similarity objectives, val_spearman (the pairs' cosines against their gold scores, over the whole set).
 * A multi-task stage validates each task on its own held-out pairs: `val_loss/TASK` etc. per task, and
 * the plain names are the tasks' weighted means (over the tasks that report each metric).
 */
import type { StepArgs } from "../backend/ops.js";
import { type StageConfig, stageSpec } from "../config/schema.js";
import type { Pipeline } from "../core/pipeline.js";
import { correlations } from "../core/stats.js";
import type { TrainBackend } from "./context.js";
import type { StageData, ValidationSet } from "./stages.js";

/**
 * The metrics of the model as it is now. It first waits for the steps in the stage's pipeline, so it
 * judges exactly the model after the last step sent, and leaves nothing in flight when it returns.
 */
export async function validate(backend: TrainBackend, s: StageConfig, sd: StageData, pipeline: Pipeline): Promise<Record<string, number>> {
  await pipeline.drain();
  const sets = sd.valid();
  const perSet: { set: ValidationSet; metrics: Record<string, number> }[] = [];
  for (const set of sets) perSet.push({ set, metrics: await validateSet(backend, set, pipeline) });
  if (perSet.length === 1) return perSet[0].metrics;
  // Weighted means of each metric over the tasks that report it, then every task's own.
  const out: Record<string, number> = {};
  for (const m of stageSpec(s).metrics) {
    let sum = 0;
    let weight = 0;
    for (const { set, metrics } of perSet) {
      if (metrics[m] === undefined || !Number.isFinite(metrics[m])) continue;
      sum += set.weight * metrics[m];
      weight += set.weight;
    }
    if (weight > 0) out[m] = sum / weight;
  }
  for (const { set, metrics } of perSet) for (const [k, v] of Object.entries(metrics)) out[`${k}/${set.name}`] = v;
  return out;
}

async function validateSet(backend: TrainBackend, set: ValidationSet, pipeline: Pipeline): Promise<Record<string, number>> {
  const { batches, objective, options } = set;
  let loss = 0;
  let correct = 0;
  let count = 0;
  const sims: Float32Array[] = new Array<Float32Array>(batches.count);
  for (let b = 0; b < batches.count; b++) {
    const batch = batches.batch(b);
    const args: StepArgs = {
      objective,
      ...options,
      ...(objective === "lm" ? { stream: "eval", reset: batch.reset ?? false } : {}),
      ...(set.gold ? { return_logits: true } : {}),
    };
    pipeline.add(
      backend.call("eval_step", args, batch.tensors).then(({ result: r, tensors }) => {
        const n = Number(r.count);
        loss += Number(r.loss ?? NaN) * n;
        correct += Number(r.correct ?? 0);
        count += n;
        if (set.gold) {
          const sim = tensors.sim;
          if (!sim) throw new Error(`eval_step (${objective}) returned no "sim" tensor with return_logits; val_spearman needs the pairs' cosines`);
          sims[b] = Float32Array.from(sim.data as Float32Array);
        }
      }),
    );
    await pipeline.waitForRoom();
  }
  await pipeline.drain();
  const metrics: Record<string, number> = { val_loss: loss / Math.max(1, count) };
  const spec = stageSpec({ objective });
  if (spec.metrics.includes("val_accuracy")) metrics.val_accuracy = correct / Math.max(1, count);
  if (spec.metrics.includes("val_perplexity")) metrics.val_perplexity = Math.exp(metrics.val_loss);
  if (set.gold) {
    const gold = concat(set.gold);
    const pred = concat(sims);
    metrics.val_spearman = gold.length >= 2 ? correlations(pred, gold).spearman : Number.NaN;
  }
  return metrics;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Metrics for a progress line: "val_loss 0.6931, val_accuracy 0.5000". */
export function formatMetrics(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(", ");
}
