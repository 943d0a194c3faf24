/**
 * The training loop: stages in order, each built fresh on the backend and started from the previous
 * stage's encoder; per step the schedule's learning rate / momentum and the batch go out, and up to
 * `pipelineDepth` steps are in flight so the backend never waits for this side (batches are collated
 * while the backend computes). Evaluation, early stopping and checkpoints wait for the steps in
 * flight, so they see exactly the model after step N, as an unpipelined loop would.
 *
 * Determinism for --resume: data order is a function of (seed, stage, epoch, batch), the schedule
 * a function of the step, dropout RNG and optimizer state are in the checkpoint, and the LM's hidden
 * state starts fresh after each checkpoint (it is not saved), in an uninterrupted run too.
 */
import { join } from "node:path";
import { BackendDiedError, type BackendClient, type Tensors } from "../backend/client.js";
import type { JsonObject, JsonValue } from "../backend/protocol.js";
import { BOS, EOS } from "../data/tokenize.js";
import type { Vocab } from "../data/vocab.js";
import { OBJECTIVE_SPECS, stageName, type Config, type ObjectiveSpec, type StageConfig } from "../config/schema.js";
import { writeManifest, type RunManifest, type RunPaths } from "../run/manifest.js";
import { checkpointName, freshPosition, removeCheckpoint, writeState, type RunState, type StagePosition } from "./checkpoints.js";
import type { TrainingData } from "./data.js";
import { formatDuration, type Progress, type RunLog } from "./progress.js";
import { scheduleAt, unfrozenGroups, type StepHparams } from "./schedules.js";
import { stageData, type Batch, type EpochBatches } from "./stages.js";

/** The backend calls the loop makes (one process, or every rank of a distributed run); BackendClient is one. */
export interface TrainBackend {
  call(op: string, args?: Record<string, JsonValue | undefined>, tensors?: Tensors): Promise<{ result: JsonObject; tensors: Tensors }>;
  close(): Promise<void>;
}

export class NonFiniteLossError extends Error {
  override name = "NonFiniteLossError";
}

/** A failure inside a stage, with where it happened and how to go on. */
export class StageError extends Error {
  override name = "StageError";
}

/** The backend's `build` arguments for a stage: the config's model, the stage's head and optimizer settings. */
export function buildArgs(cfg: Config, s: StageConfig, stageIndex: number, vocab: Vocab): JsonObject {
  const args: JsonObject = {};
  for (const [k, v] of Object.entries(cfg.model)) if (v !== undefined) args[k] = v;
  if (s.pool !== undefined) args.pool = s.pool;
  if (s.poolLayers !== undefined) args.pool_layers = s.poolLayers;
  if (s.features !== undefined) args.features = s.features;
  Object.assign(args, {
    vocab_sz: vocab.size,
    vocab_fingerprint: vocab.fingerprint,
    pad_id: vocab.padId,
    unk_id: vocab.unkId,
    bos_id: vocab.id(BOS),
    eos_id: vocab.id(EOS),
    seed: cfg.seed + stageIndex,
    opt: s.opt,
    lr: s.lr.max,
    wd: s.wd,
    clip: s.clip,
    accum_steps: s.accumSteps,
    drop_mult: s.dropMult,
  });
  for (const k of ["margin", "distance", "temperature", "alpha", "beta"] as const) if (s[k] !== undefined) args[k] = s[k];
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

export interface LoopContext {
  backend: TrainBackend;
  cfg: Config;
  data: TrainingData;
  paths: RunPaths;
  manifest: RunManifest;
  state: RunState;
  log: RunLog;
  progress: Progress;
  /** For messages: how to resume this run. */
  resumeCommand: string;
}

const lowerIsBetter = (metric: string) => metric !== "val_accuracy";

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
      if (err instanceof BackendDiedError) throw new StageError(`the backend died during ${where}; ${kept}.\nResume with: ${ctx.resumeCommand}\n${err.message}`);
      if (err instanceof NonFiniteLossError) throw new StageError(`${where}: ${err.message}; ${kept}.`);
      throw err;
    }
  }
  ctx.state.done = true;
  await writeState(ctx.paths, ctx.state);
  return out;
}

async function runStage(ctx: LoopContext, i: number): Promise<StageSummary> {
  const { backend, cfg, data, log, progress, paths } = ctx;
  const s = cfg.stages[i];
  const spec: ObjectiveSpec = OBJECTIVE_SPECS[s.objective];
  const name = stageName(s);
  const sd = stageData(s, i, data, cfg.seed);
  const resuming = ctx.state.stage === i && ctx.state.checkpoint !== null && ctx.state.position.step > 0;
  if (!resuming) ctx.state = { ...ctx.state, stage: i, position: freshPosition(), checkpoint: null };
  const pos: StagePosition = ctx.state.position;

  const built = (await backend.call("build", buildArgs(cfg, s, i, data.vocab))).result;
  const nGroups = Object.keys(built.groups as JsonObject).length;
  if (resuming) {
    await backend.call("load", { path: join(paths.dir, ctx.state.checkpoint!), parts: "all" });
    progress.note(`resuming stage ${i + 1} (${name}) at step ${pos.step} from ${ctx.state.checkpoint}`);
    log.write({ type: "resume", stage: name, stage_index: i, from_step: pos.step, checkpoint: ctx.state.checkpoint });
  } else if (i > 0) {
    const prev = ctx.manifest.stages[i - 1].checkpoint;
    if (prev === null) throw new Error(`stage ${i}: the previous stage has no end checkpoint`);
    await backend.call("load", { path: join(paths.dir, prev), parts: "encoder" });
  }

  const first = sd.epoch(0);
  const total = s.steps ?? Math.max(1, Math.round(s.epochs * first.count));
  const perEpoch = first.count;
  // With gradient accumulation the backend holds partial gradients between optimizer steps; they are not in a
  // checkpoint and set_trainable clears them, so checkpoints, evaluations and unfreezing fall on step boundaries.
  const accum = s.accumSteps;
  const aligned = (what: string, configured: number | null) => {
    const n = configured ?? perEpoch;
    const a = alignToAccum(n, accum);
    if (a !== n && !resuming) {
      progress.note(`stage ${i + 1} (${name}): ${what} ${n}${configured === null ? " (one epoch)" : ""} is not a multiple of accumSteps ${accum}; using ${a} steps`);
    }
    return a;
  };
  const evalEvery = aligned("evalEvery", s.evalEvery);
  const ckptEvery = aligned("checkpointEvery", s.checkpointEvery);
  const unfreezeEvery = s.gradualUnfreeze ? aligned("unfreezeEvery", s.unfreezeEvery) : (s.unfreezeEvery ?? perEpoch);
  const lrDiv = s.lr.lrDiv > 1 ? s.lr.lrDiv : undefined;
  if (!resuming) {
    progress.note(
      `stage ${i + 1}/${cfg.stages.length} ${name}: ${s.objective}, ${total} steps (${perEpoch} per epoch, batch ${s.batchSize}), ` +
        `lr ${s.lr.max} ${s.lr.schedule}${lrDiv ? ` /${lrDiv} per group` : ""}${s.gradualUnfreeze ? `, unfreezing a group every ${unfreezeEvery} steps` : ""}`,
    );
    log.write({ type: "stage_start", stage: name, stage_index: i, objective: s.objective, total_steps: total, steps_per_epoch: perEpoch, build: built });
  }

  const started = Date.now();
  const startStep = pos.step;
  let items = 0;
  let lossEma: number | null = null;
  let accEma: number | null = null;
  let frozenLevel = -1;
  let lastHparams = ""; // set_hparams goes out only when a step's values differ from the last sent
  let resetNext = true; // fresh LM state at the start (and after every checkpoint)
  let stoppedEarly = false;
  const inflight: Promise<void>[] = [];
  const drain = async () => {
    while (inflight.length) await inflight.shift();
  };

  /**
   * Applies a pending partial accumulation now (the backend's `flush`; a no-op, and no call, without accumulation).
   * Checkpoints, unfreezing and the stage's end fall on multiples of accumSteps, where nothing is pending, unless
   * the backend's micro-batch count drifted from the step count (a skipped non-finite step restarts it; a triplet /
   * contrastive batch with nothing to train does not count): then this keeps a checkpoint free of partial gradients
   * (they are not saved) and set_trainable from dropping them. Both runs, resumed or not, flush at the same steps.
   */
  const flushPending = async (reason: string) => {
    if (accum <= 1) return;
    const f = (await backend.call("flush")).result;
    if (Number(f.flushed ?? 0) > 0) {
      log.write({ type: "flush", stage: name, stage_index: i, step: pos.step, reason, micro_batches: f.flushed, stepped: f.stepped ?? false, grad_norm: f.grad_norm ?? null });
      progress.note(`  ${reason}: applied ${f.flushed} of ${accum} accumulated micro-batches as one optimizer step`);
    }
  };

  const checkpoint = async (kind: "end" | number) => {
    await drain();
    if (kind !== "end") await flushPending(`checkpoint at step ${pos.step}`);
    const rel = checkpointName(i, name, kind);
    await backend.call("save", { path: join(paths.dir, rel), meta: { stage: name, stage_index: i, step: pos.step, epoch: pos.epoch, batch: pos.batch } });
    const previous = ctx.state.checkpoint;
    ctx.state.checkpoint = rel;
    await writeState(paths, ctx.state);
    if (previous !== null && previous !== rel && previous.includes("-step")) removeCheckpoint(paths, previous);
    resetNext = true;
    log.write({ type: "checkpoint", stage: name, stage_index: i, step: pos.step, path: rel });
    return rel;
  };

  const evaluate = async (): Promise<Record<string, number>> => {
    await drain();
    const vb: EpochBatches = sd.valid();
    let loss = 0;
    let correct = 0;
    let count = 0;
    const pending: Promise<void>[] = [];
    for (let b = 0; b < vb.count; b++) {
      const batch: Batch = vb.batch(b);
      const args = { objective: s.objective, ...(s.objective === "lm" ? { stream: "eval", reset: batch.reset ?? false } : {}) };
      pending.push(
        backend.call("eval_step", args, batch.tensors).then(({ result: r }) => {
          const n = Number(r.count);
          loss += Number(r.loss ?? NaN) * n;
          correct += Number(r.correct ?? 0);
          count += n;
        }),
      );
      if (pending.length >= cfg.pipelineDepth) await pending.shift();
    }
    await Promise.all(pending);
    const m: Record<string, number> = { val_loss: loss / Math.max(1, count), val_accuracy: correct / Math.max(1, count) };
    if (spec.metrics.includes("val_perplexity")) m.val_perplexity = Math.exp(m.val_loss);
    return m;
  };

  const onStepResult = (r: JsonObject, batch: Batch, hp: { lr: number; mom?: number }, step: number, epoch: number) => {
    const finite = r.finite !== false;
    const loss = typeof r.loss === "number" ? r.loss : null;
    const count = Number(r.count ?? 0);
    const acc = count > 0 && typeof r.correct === "number" ? r.correct / count : null;
    log.write({
      type: "train",
      stage: name,
      stage_index: i,
      epoch,
      step,
      loss,
      accuracy: acc,
      lr: hp.lr,
      mom: hp.mom ?? null,
      grad_norm: r.grad_norm ?? null,
      finite,
      items: batch.items,
    });
    if (!finite) {
      if (s.nonFinite === "stop") {
        throw new NonFiniteLossError(
          `the loss of step ${step} is not finite (lr ${hp.lr.toExponential(2)}); stopped. Lower stages.${i}.lr.max, set a clip, or --set stages.${i}.nonFinite=skip`,
        );
      }
      pos.nonFiniteSkipped++;
      return;
    }
    items += batch.items;
    if (loss !== null) {
      lossEma = lossEma === null ? loss : 0.95 * lossEma + 0.05 * loss;
      // in pos, so that they are saved with each checkpoint and a resumed stage ends with the whole stage's mean
      pos.trainLossSum += loss;
      pos.trainLossN++;
    }
    if (acc !== null) accEma = accEma === null ? acc : 0.95 * accEma + 0.05 * acc;
    const elapsed = (Date.now() - started) / 1000;
    const done = step - startStep;
    progress.update({
      stage: name,
      stageIndex: i,
      stages: cfg.stages.length,
      epoch,
      step,
      total,
      loss: lossEma,
      accuracy: accEma,
      rate: items / Math.max(elapsed, 1e-3),
      unit: sd.unit,
      etaSec: done > 0 ? ((total - step) * elapsed) / done : null,
    });
  };

  try {
    for (let epoch = pos.epoch; pos.step < total && !stoppedEarly; epoch++) {
      const eb = epoch === 0 ? first : sd.epoch(epoch);
      // pos names the next batch: (epoch, batch); it rolls over to the next epoch after the last batch
      while (pos.epoch === epoch && pos.step < total) {
        // Objectives that use no head parameters (triplet, contrastive): unfreezing starts from the top encoder layer.
        const headless = spec.usesHead ? 0 : 1;
        const level = headless + unfrozenGroups(pos.step, unfreezeEvery, nGroups - headless, s.gradualUnfreeze);
        if (level !== frozenLevel) {
          if (frozenLevel !== -1 && accum > 1) inflight.push(quiet(flushPending(`unfreezing at step ${pos.step}`)));
          frozenLevel = level;
          inflight.push(quiet(backend.call("set_trainable", level >= nGroups ? { unfreeze: true } : { freeze_to: -level }).then(() => undefined)));
        }
        const hp = scheduleAt(s.lr, pos.step, total);
        const batch = eb.batch(pos.batch);
        const stepArgs: Record<string, JsonValue> = { objective: s.objective };
        if (s.objective === "lm") stepArgs.reset = resetNext || (batch.reset ?? false);
        resetNext = false;
        const stepNo = pos.step + 1;
        const hpArgs = hparamsArgs(s, hp);
        const hpKey = JSON.stringify(hpArgs);
        const hparams = hpKey === lastHparams ? Promise.resolve(null) : backend.call("set_hparams", hpArgs);
        lastHparams = hpKey;
        const trained = backend.call("train_step", stepArgs, batch.tensors);
        inflight.push(quiet(Promise.all([hparams, trained]).then(([, r]) => onStepResult(r.result, batch, hp, stepNo, epoch))));
        pos.step++;
        if (++pos.batch >= eb.count) {
          pos.epoch = epoch + 1;
          pos.batch = 0;
        }
        while (inflight.length >= cfg.pipelineDepth) await inflight.shift();

        const last = pos.step >= total;
        if (last) {
          // The stage's last micro-batches (total not a multiple of accumSteps) are applied as one optimizer step
          // with the mean of their gradients rather than dropped.
          await drain();
          await flushPending("stage end");
        }
        if (pos.step % evalEvery === 0 || last) {
          const m = await evaluate();
          pos.metrics = m;
          log.write({ type: "eval", stage: name, stage_index: i, epoch, step: pos.step, ...m });
          progress.note(`  eval ${name} step ${pos.step}: ${formatMetrics(m)}`);
          if (s.earlyStopping) {
            const v = m[s.earlyStopping.metric];
            const sign = lowerIsBetter(s.earlyStopping.metric) ? -1 : 1;
            if (pos.best === null || sign * (v - pos.best) > s.earlyStopping.minDelta) {
              pos.best = v;
              pos.badEvals = 0;
              await drain();
              await backend.call("save", { path: join(paths.dir, checkpointName(i, name, "best")), meta: { stage: name, step: pos.step, metrics: m } });
            } else if (++pos.badEvals >= s.earlyStopping.patience) {
              stoppedEarly = true;
              progress.note(`  early stop: ${s.earlyStopping.metric} has not improved for ${pos.badEvals} evaluations (best ${pos.best})`);
              log.write({ type: "early_stop", stage: name, stage_index: i, step: pos.step, best: pos.best });
            }
          }
        }
        if (stoppedEarly) break;
        if (!last && pos.step % ckptEvery === 0) await checkpoint(pos.step);
      }
    }
    await drain();
  } finally {
    // settle what is still in flight before the error propagates (their rejections are handled)
    await Promise.allSettled(inflight);
    progress.clear();
  }

  let metrics = pos.metrics;
  if (s.earlyStopping && pos.best !== null) {
    const best = checkpointName(i, name, "best");
    const r = (await backend.call("load", { path: join(paths.dir, best), parts: "weights" })).result;
    const meta = r.meta as { metrics?: Record<string, number>; step?: number } | undefined;
    if (meta?.metrics) metrics = meta.metrics;
    log.write({ type: "restore_best", stage: name, stage_index: i, step: pos.step, best_step: meta?.step ?? null, ...metrics });
    progress.note(`  kept the best weights (step ${meta?.step}): ${formatMetrics(metrics)}`);
  }
  const end = await checkpoint("end");
  const seconds = (Date.now() - started) / 1000;
  const rec = ctx.manifest.stages[i];
  Object.assign(rec, { checkpoint: end, completed: true, step: pos.step, metrics });
  ctx.manifest.finalCheckpoint = end;
  await writeManifest(paths, ctx.manifest);
  ctx.state = { ...ctx.state, stage: i + 1, position: freshPosition(), checkpoint: end };
  await writeState(paths, ctx.state);
  // Only now: until state.json has moved past this stage, a resume restores the best weights again.
  removeCheckpoint(paths, checkpointName(i, name, "best"));
  const trainLoss = pos.trainLossN ? pos.trainLossSum / pos.trainLossN : null;
  log.write({ type: "stage_end", stage: name, stage_index: i, step: pos.step, seconds, train_loss: trainLoss, non_finite_skipped: pos.nonFiniteSkipped, ...metrics });
  progress.note(`stage ${name} done in ${formatDuration(seconds)}: ${formatMetrics(metrics)}`);
  return { index: i, name, objective: s.objective, steps: pos.step, seconds, trainLoss, metrics, stoppedEarly };
}

/** `n` rounded up to a multiple of `accum` (steps at which no partial gradient accumulation is pending). */
export function alignToAccum(n: number, accum: number): number {
  return accum > 1 ? Math.ceil(n / accum) * accum : n;
}

/** The `set_hparams` arguments of a step: its learning rate (discriminative with lrDiv) and momentum. */
export function hparamsArgs(s: StageConfig, hp: StepHparams): JsonObject {
  return { lr: hp.lr, ...(s.lr.lrDiv > 1 ? { lr_div: s.lr.lrDiv } : {}), ...(hp.mom !== undefined ? { mom: hp.mom } : {}) };
}

/** Marks a promise's rejection as handled (it is still thrown where the promise is awaited). */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

export function formatMetrics(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(", ");
}
