/**
 * The training loop: stages in order, each built fresh on the backend and started from the previous
 * stage's encoder; per step the schedule's learning rate / momentum and the batch go out, `stepsPerRequest`
 * steps to a request (stepRequests.ts), and up to `pipelineDepth` requests are in flight so the backend never
 * waits for this side (batches are collated while the backend computes). Evaluation (validation.ts), early stopping (earlyStopping.ts) and
 * checkpoints (stageCheckpoints.ts) wait for the steps in flight, so they see exactly the model after
 * step N, as an unpipelined loop would.
 *
 * Determinism for --resume: data order is a function of (seed, stage, epoch, batch), the schedule
 * a function of the step, dropout RNG and optimizer state are in the checkpoint, and the LM's hidden
 * state starts fresh after each checkpoint (it is not saved), in an uninterrupted run too.
 */
import { join } from "node:path";
import { BackendDiedError, BackendError } from "../backend/client.js";
import type { BuildArgs, SetHparamsArgs, StepArgs } from "../backend/ops.js";
import type { JsonObject } from "../backend/protocol.js";
import { type Config, type StageConfig, stageName, stageObjectives, stageSpec, taskName } from "../config/schema.js";
import { type Pipeline, withPipeline } from "../core/pipeline.js";
import { collateSentences } from "../data/batches.js";
import { BOS, EOS } from "../data/tokenize.js";
import type { Vocab } from "../data/vocab.js";
import { statePath, writeState } from "./checkpoints.js";
import type { LoopContext, StageRef } from "./context.js";
import { trainingSentences } from "./data.js";
import { recordEvaluation, restoreBestWeights } from "./earlyStopping.js";
import { formatDuration } from "./progress.js";
import { type StepHparams, scheduleAt, unfrozenGroups } from "./schedules.js";
import { completeStage, enterStage, loadStageStart, saveCheckpoint } from "./stageCheckpoints.js";
import { type EpochBatches, type StageData, stageData } from "./stages.js";
import { StepRequests } from "./stepRequests.js";
import { NonFiniteLossError, StepResults } from "./stepResults.js";
import { formatMetrics, validate } from "./validation.js";

/** A failure inside a stage, with where it happened and how to go on. */
export class StageError extends Error {
  override name = "StageError";
}

/** The backend's `build` arguments for a stage: the config's model, the stage's head and optimizer settings. */
export function buildArgs(cfg: Config, s: StageConfig, stageIndex: number, vocab: Vocab, idf: Float32Array | null = null): BuildArgs & JsonObject {
  const model: JsonObject = {};
  for (const [k, v] of Object.entries(cfg.model)) if (v !== undefined) model[k] = v;
  const args = {
    ...model,
    ...(s.pool !== undefined ? { pool: s.pool } : {}),
    ...(s.poolLayers !== undefined ? { pool_layers: s.poolLayers } : {}),
    ...(s.features !== undefined ? { features: s.features } : {}),
    // idf-weighted mean pooling: the weights, computed by this run from its training sentences (the checkpoints keep them)
    ...(idf ? { token_weights: Array.from(idf, (w) => Math.round(w * 1e6) / 1e6) } : {}),
    vocab_sz: vocab.size,
    vocab_fingerprint: vocab.fingerprint,
    pad_id: vocab.padId,
    unk_id: vocab.unkId,
    bos_id: vocab.id(BOS),
    eos_id: vocab.id(EOS),
    ...(vocab.oovBuckets > 0 ? { oov_buckets: vocab.oovBuckets } : {}),
    seed: cfg.seed + stageIndex,
    opt: s.opt,
    lr: s.lr.max,
    wd: s.wd,
    clip: s.clip,
    accum_steps: s.accumSteps,
    drop_mult: s.dropMult,
  };
  return args;
}

export interface StageSummary {
  index: number;
  name: string;
  objective: string;
  steps: number;
  seconds: number;
  trainLoss: number | null;
  metrics: Record<string, number>;
  stoppedEarly: boolean;
}

/** Runs the stages from ctx.state onwards; returns a summary per stage run now. */
export async function runStages(ctx: LoopContext): Promise<StageSummary[]> {
  const out: StageSummary[] = [];
  for (let i = ctx.state.stage; i < ctx.cfg.stages.length; i++) {
    const s = ctx.cfg.stages[i];
    try {
      out.push(await runStage(ctx, i));
    } catch (err) {
      const step = ctx.state.stage === i ? ctx.state.position.step : 0;
      const where = `stage ${i + 1}/${ctx.cfg.stages.length} (${stageName(s)}) at step ${step}`;
      const kept = ctx.state.checkpoint ? `the last good checkpoint is ${join(ctx.paths.dir, ctx.state.checkpoint)}` : "no checkpoint of this stage yet";
      if (err instanceof BackendDiedError)
        throw new StageError(`the backend died during ${where}; ${kept}.\nResume with: ${ctx.resumeCommand}\n${err.message}`);
      if (err instanceof NonFiniteLossError) throw new StageError(`${where}: ${err.message}; ${kept}.`);
      if (err instanceof BackendError && err.code === "no_space") {
        throw new StageError(`${where}: ${err.detail}; ${kept}.\nFree some space, then resume with: ${ctx.resumeCommand}`);
      }
      throw err;
    }
  }
  ctx.state.done = true;
  await writeState(ctx.paths, ctx.state);
  return out;
}

/**
 * SIF (model.sif): the sentence vectors' first principal component, fitted on the training sentences with the
 * stage's final weights and stored with them (the end checkpoint carries it; eval and embed remove it).
 */
async function fitSif(ctx: LoopContext, stage: StageRef): Promise<void> {
  const sentences = trainingSentences(ctx.data);
  const n = sentences.offsets.length - 1;
  const c = collateSentences(
    sentences,
    Int32Array.from({ length: n }, (_, i) => i),
    ctx.data.vocab.padId,
  );
  const r = (await ctx.backend.call("fit_pc", {}, { x: c.ids, lengths: c.lengths })).result;
  ctx.log.write({ type: "sif", stage: stage.name, stage_index: stage.index, sentences: r.count, dim: r.dim, explained: r.explained });
  ctx.progress.note(
    `  sif: removed the first principal component of ${r.count} training sentences' vectors (${(100 * r.explained).toFixed(1)}% of their squared norm)`,
  );
}

/** "siamese", or for a multi-task stage its tasks with their shares: "snli-contrastive 1 + stsb-cosent 0.5". */
function stageDescription(s: StageConfig): string {
  return s.tasks ? `multi-task ${s.tasks.map((t) => `${taskName(t)} ${t.weight}`).join(" + ")}` : stageObjectives(s).join(" + ");
}

/** How a stage's steps are laid out: its length and the steps at which it evaluates, checkpoints and unfreezes. */
interface StagePlan {
  total: number;
  perEpoch: number;
  /** Epoch 0's batches (computed once for its count; the loop trains on these). */
  firstEpoch: EpochBatches;
  evalEvery: number;
  checkpointEvery: number;
  unfreezeEvery: number;
  /** Parameter groups of the built model (unfreezing goes through them). */
  groups: number;
}

async function runStage(ctx: LoopContext, i: number): Promise<StageSummary> {
  const { backend, cfg, data, log, progress } = ctx;
  const s = cfg.stages[i];
  const stage: StageRef = { index: i, name: stageName(s) };
  const sd = stageData(s, i, data, cfg.seed);
  const built = (await backend.call("build", buildArgs(cfg, s, i, data.vocab, data.idf))).result;
  // false too when the stage's own checkpoint could not be read: it then starts again from its start
  const resuming = await loadStageStart(ctx, stage, enterStage(ctx, i));
  const pos = ctx.state.position;
  const plan = planStage(ctx, stage, sd, Object.keys(built.groups).length, resuming);
  if (!resuming) {
    const lrDiv = s.lr.lrDiv > 1 ? s.lr.lrDiv : undefined;
    progress.note(
      `stage ${i + 1}/${cfg.stages.length} ${stage.name}: ${stageDescription(s)}, ${plan.total} steps (${plan.perEpoch} per epoch, batch ${s.batchSize}), ` +
        `lr ${s.lr.max} ${s.lr.schedule}${lrDiv ? ` /${lrDiv} per group` : ""}${s.gradualUnfreeze ? `, unfreezing a group every ${plan.unfreezeEvery} steps` : ""}`,
    );
    log.write({
      type: "stage_start",
      stage: stage.name,
      stage_index: i,
      objective: s.objective ?? "multitask",
      ...(s.tasks ? { tasks: s.tasks } : {}),
      total_steps: plan.total,
      steps_per_epoch: plan.perEpoch,
      build: built,
    });
  }

  const started = Date.now();
  const results = new StepResults(ctx, stage, s, plan.total, sd.unit, started);
  let stoppedEarly: boolean;
  try {
    stoppedEarly = await withPipeline(cfg.pipelineDepth, (pipeline) =>
      trainStage(ctx, stage, sd, plan, results, pipeline, new StepRequests(backend, pipeline, stepsPerRequest(cfg))),
    );
  } finally {
    progress.clear();
  }

  let metrics = pos.metrics;
  if (s.earlyStopping && pos.best !== null) metrics = await restoreBestWeights(ctx, stage, metrics);
  if (cfg.model.sif && s.objective !== "lm") await fitSif(ctx, stage);
  const end = await saveCheckpoint(ctx, stage, "end");
  const seconds = (Date.now() - started) / 1000;
  await completeStage(ctx, stage, end, metrics);
  const trainLoss = pos.trainLossN ? pos.trainLossSum / pos.trainLossN : null;
  log.write({
    type: "stage_end",
    stage: stage.name,
    stage_index: i,
    step: pos.step,
    seconds,
    train_loss: trainLoss,
    non_finite_skipped: pos.nonFiniteSkipped,
    ...metrics,
  });
  progress.note(`stage ${stage.name} done in ${formatDuration(seconds)}: ${formatMetrics(metrics)}`);
  return { index: i, name: stage.name, objective: s.objective ?? "multitask", steps: pos.step, seconds, trainLoss, metrics, stoppedEarly };
}

function planStage(ctx: LoopContext, stage: StageRef, sd: StageData, groups: number, resuming: boolean): StagePlan {
  const s = ctx.cfg.stages[stage.index];
  const firstEpoch = sd.epoch(0);
  const perEpoch = firstEpoch.count;
  const total = s.steps ?? Math.max(1, Math.round(s.epochs * perEpoch));
  // With gradient accumulation the backend holds partial gradients between optimizer steps; they are not in a
  // checkpoint and set_trainable clears them, so checkpoints, evaluations and unfreezing fall on step boundaries.
  const aligned = (what: string, configured: number | null) => {
    const n = configured ?? perEpoch;
    const a = alignToAccum(n, s.accumSteps);
    if (a !== n && !resuming) {
      ctx.progress.note(
        `stage ${stage.index + 1} (${stage.name}): ${what} ${n}${configured === null ? " (one epoch)" : ""} is not a multiple of accumSteps ${s.accumSteps}; using ${a} steps`,
      );
    }
    return a;
  };
  const evalEvery = aligned("evalEvery", s.evalEvery);
  const checkpointEvery = aligned("checkpointEvery", s.checkpointEvery);
  const unfreezeEvery = s.gradualUnfreeze ? aligned("unfreezeEvery", s.unfreezeEvery) : (s.unfreezeEvery ?? perEpoch);
  return { total, perEpoch, firstEpoch, evalEvery, checkpointEvery, unfreezeEvery, groups };
}

/** Steps per train_steps request when the config does not say (config field stepsPerRequest). */
export const DEFAULT_STEPS_PER_REQUEST = 4;

export function stepsPerRequest(cfg: Config): number {
  return cfg.stepsPerRequest ?? DEFAULT_STEPS_PER_REQUEST;
}

/**
 * Trains the stage from its position to its last step, `pipeline.depth` requests of up to `requests.size`
 * steps in flight; evaluates and checkpoints on the way. Returns whether early stopping ended it.
 * Every other call waits for `requests.send()`, so the backend sees steps and other calls in the loop's order.
 */
async function trainStage(
  ctx: LoopContext,
  stage: StageRef,
  sd: StageData,
  plan: StagePlan,
  results: StepResults,
  pipeline: Pipeline,
  requests: StepRequests,
): Promise<boolean> {
  const { backend, log, progress } = ctx;
  const s = ctx.cfg.stages[stage.index];
  const spec = stageSpec(s);
  const pos = ctx.state.position;
  const accum = s.accumSteps;
  let frozenLevel = -1;
  let lastHparams = ""; // a step carries hparams only when its values differ from the last sent
  let resetNext = true; // fresh LM state at the start (and after every checkpoint)
  for (let epoch = pos.epoch; pos.step < plan.total; epoch++) {
    const batches = epoch === 0 ? plan.firstEpoch : sd.epoch(epoch);
    // only a resumed position can be past its epoch (an edited state.json): the loop's own rolls over
    if (pos.batch > 0 && pos.batch >= batches.count)
      throw new Error(`${statePath(ctx.paths)}: position.batch ${pos.batch} is past epoch ${pos.epoch}'s ${batches.count} batches`);
    // pos names the next batch: (epoch, batch); it rolls over to the next epoch after the last batch
    while (pos.epoch === epoch && pos.step < plan.total) {
      // Where any objective uses no head parameters (triplet, contrastive, cosent; a task of a multi-task stage), unfreezing
      // starts from the top encoder layer: with the head alone trainable such a step would train nothing.
      const headless = spec.headOnly ? 0 : 1;
      const level = headless + unfrozenGroups(pos.step, plan.unfreezeEvery, plan.groups - headless, s.gradualUnfreeze);
      if (level !== frozenLevel) {
        requests.send();
        if (frozenLevel !== -1 && accum > 1) pipeline.add(flushPending(ctx, stage, `unfreezing at step ${pos.step}`));
        frozenLevel = level;
        pipeline.add(backend.call("set_trainable", level >= plan.groups ? { unfreeze: true } : { freeze_to: -level }));
      }
      const hp = scheduleAt(s.lr, pos.step, plan.total);
      const batch = batches.batch(pos.batch);
      const stepArgs: StepArgs = { objective: batch.objective, ...batch.options };
      if (batch.objective === "lm") stepArgs.reset = resetNext || (batch.reset ?? false);
      resetNext = false;
      const sent = { step: pos.step + 1, epoch, batch, hparams: hp };
      const hpArgs = hparamsArgs(s, hp);
      const hpKey = JSON.stringify(hpArgs);
      if (hpKey !== lastHparams) stepArgs.hparams = hpArgs; // set first, in the same request
      lastHparams = hpKey;
      await requests.add(stepArgs, batch.tensors, (r) => results.record(r, sent));
      pos.step++;
      if (++pos.batch >= batches.count) {
        pos.epoch = epoch + 1;
        pos.batch = 0;
      }

      const last = pos.step >= plan.total;
      const evaluating = pos.step % plan.evalEvery === 0 || last;
      const checkpointing = !last && pos.step % plan.checkpointEvery === 0;
      if (last || evaluating || checkpointing) requests.send();
      if (last) {
        // The stage's last micro-batches (total not a multiple of accumSteps) are applied as one optimizer step
        // with the mean of their gradients rather than dropped.
        await pipeline.drain();
        await flushPending(ctx, stage, "stage end");
      }
      if (evaluating) {
        const m = await validate(backend, s, sd, pipeline);
        pos.metrics = m;
        log.write({ type: "eval", stage: stage.name, stage_index: stage.index, epoch, step: pos.step, ...m });
        progress.note(`  eval ${stage.name} step ${pos.step}: ${formatMetrics(m)}`);
        if (s.earlyStopping && (await recordEvaluation(ctx, stage, s.earlyStopping, m))) return true;
      }
      if (checkpointing) {
        await pipeline.drain();
        await flushPending(ctx, stage, `checkpoint at step ${pos.step}`);
        await saveCheckpoint(ctx, stage, pos.step);
        resetNext = true;
      }
    }
  }
  return false;
}

/**
 * Applies a pending partial accumulation now (the backend's `flush`; a no-op, and no call, without accumulation).
 * Checkpoints, unfreezing and the stage's end fall on multiples of accumSteps, where nothing is pending, unless
 * the backend's micro-batch count drifted from the step count (a skipped non-finite step restarts it; a triplet /
 * contrastive batch with nothing to train does not count): then this keeps a checkpoint free of partial gradients
 * (they are not saved) and set_trainable from dropping them. Both runs, resumed or not, flush at the same steps.
 */
async function flushPending(ctx: LoopContext, stage: StageRef, reason: string): Promise<void> {
  const accum = ctx.cfg.stages[stage.index].accumSteps;
  if (accum <= 1) return;
  const f = (await ctx.backend.call("flush")).result;
  if (f.flushed > 0) {
    ctx.log.write({
      type: "flush",
      stage: stage.name,
      stage_index: stage.index,
      step: ctx.state.position.step,
      reason,
      micro_batches: f.flushed,
      stepped: f.stepped,
      grad_norm: f.grad_norm ?? null,
    });
    ctx.progress.note(`  ${reason}: applied ${f.flushed} of ${accum} accumulated micro-batches as one optimizer step`);
  }
}

/** `n` rounded up to a multiple of `accum` (steps at which no partial gradient accumulation is pending). */
export function alignToAccum(n: number, accum: number): number {
  return accum > 1 ? Math.ceil(n / accum) * accum : n;
}

/** The `set_hparams` arguments of a step: its learning rate (discriminative with lrDiv) and momentum. */
export function hparamsArgs(s: StageConfig, hp: StepHparams): SetHparamsArgs & JsonObject {
  return { lr: hp.lr, ...(s.lr.lrDiv > 1 ? { lr_div: s.lr.lrDiv } : {}), ...(hp.mom !== undefined ? { mom: hp.mom } : {}) };
}
