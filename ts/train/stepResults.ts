/**
 * What each training step's reply adds up to: a `train` log line, the running means on the progress
 * line, the stage summary's sums (in the stage position, so they are saved with each checkpoint) and
 * the non-finite policy (stop with an error, or skip the step and count it).
 */
import type { TrainStepResult } from "../backend/ops.js";
import type { StageConfig } from "../config/schema.js";
import type { StagePosition } from "./checkpoints.js";
import type { LoopContext, StageRef } from "./context.js";
import type { StepHparams } from "./schedules.js";
import type { Batch } from "./stages.js";

export class NonFiniteLossError extends Error {
  override name = "NonFiniteLossError";
}

/** The step being answered: its number (1-based), epoch, batch and the learning rate / momentum it ran with. */
export interface SentStep {
  step: number;
  epoch: number;
  batch: Batch;
  hparams: StepHparams;
}

export class StepResults {
  private readonly pos: StagePosition;
  private readonly startStep: number;
  private items = 0;
  private lossEma: number | null = null;
  private accEma: number | null = null;

  constructor(
    private readonly ctx: LoopContext,
    private readonly stage: StageRef,
    private readonly s: StageConfig,
    /** The stage's step count and its items' unit, for the progress line. */
    private readonly total: number,
    private readonly unit: string,
    /** Date.now() when this run of the stage began (the rate and ETA count from there). */
    private readonly started: number,
  ) {
    this.pos = ctx.state.position;
    this.startStep = this.pos.step;
  }

  /** Records a train_step reply; throws NonFiniteLossError when its loss is not finite and the stage's policy is `stop`. */
  record(r: TrainStepResult, sent: SentStep): void {
    const { step, epoch, batch, hparams: hp } = sent;
    const { index, name } = this.stage;
    const finite = r.finite !== false;
    const loss = typeof r.loss === "number" ? r.loss : null;
    const count = Number(r.count ?? 0);
    const acc = count > 0 && typeof r.correct === "number" ? r.correct / count : null;
    this.ctx.log.write({
      type: "train",
      stage: name,
      stage_index: index,
      epoch,
      step,
      ...(batch.task !== undefined ? { task: batch.task } : {}),
      loss,
      accuracy: acc,
      lr: hp.lr,
      mom: hp.mom ?? null,
      grad_norm: r.grad_norm ?? null,
      finite,
      items: batch.items,
    });
    if (!finite) {
      if (this.s.nonFinite === "stop") {
        throw new NonFiniteLossError(
          `the loss of step ${step} is not finite (lr ${hp.lr.toExponential(2)}); stopped. Lower stages.${index}.lr.max, set a clip, or --set stages.${index}.nonFinite=skip`,
        );
      }
      this.pos.nonFiniteSkipped++;
      return;
    }
    this.items += batch.items;
    if (loss !== null) {
      this.lossEma = this.lossEma === null ? loss : 0.95 * this.lossEma + 0.05 * loss;
      this.pos.trainLossSum += loss;
      this.pos.trainLossN++;
    }
    if (acc !== null) this.accEma = this.accEma === null ? acc : 0.95 * this.accEma + 0.05 * acc;
    const elapsed = (Date.now() - this.started) / 1000;
    const done = step - this.startStep;
    this.ctx.progress.update({
      stage: name,
      stageIndex: index,
      stages: this.ctx.cfg.stages.length,
      epoch,
      step,
      total: this.total,
      loss: this.lossEma,
      accuracy: this.accEma,
      rate: this.items / Math.max(elapsed, 1e-3),
      unit: this.unit,
      etaSec: done > 0 ? ((this.total - step) * elapsed) / done : null,
    });
  }
}
