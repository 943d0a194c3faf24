/**
 * A stage's checkpoints, from its start to its end: where it starts from (its own last checkpoint
 * on --resume, else the previous stage's encoder), the checkpoints within it and at its end, each
 * followed by state.json naming it (checkpoints.ts), and the manifest once the stage is complete.
 * Callers wait for the steps in flight first, so that a checkpoint holds exactly the model after
 * step N.
 */
import { basename, dirname, join } from "node:path";
import { BackendError } from "../backend/client.js";
import { writeLatestLink, writeManifest } from "../run/manifest.js";
import { checkpointName, freshPosition, removeCheckpoint, truncateLog, writeState } from "./checkpoints.js";
import type { LoopContext, StageRef } from "./context.js";

/**
 * Whether stage `index` resumes from a checkpoint of its own (the run stopped inside it); if not,
 * ctx.state is moved to the stage's start.
 */
export function enterStage(ctx: LoopContext, index: number): boolean {
  const resuming = ctx.state.stage === index && ctx.state.checkpoint !== null && ctx.state.position.step > 0;
  if (!resuming) ctx.state = { ...ctx.state, stage: index, position: freshPosition(), checkpoint: null };
  return resuming;
}

/**
 * Loads what the freshly built stage starts from: its own checkpoint when resuming, else the previous stage's encoder.
 * Returns whether it resumed. A step checkpoint that is missing or unreadable (a torn copy, a full disk) cannot be
 * resumed from, and no earlier one is kept: the stage then starts again from its start, which gives the weights an
 * uninterrupted run has (its data order, schedule and seeds are functions of the step), at the cost of its steps so far.
 */
export async function loadStageStart(ctx: LoopContext, stage: StageRef, resuming: boolean): Promise<boolean> {
  const { backend, paths, state } = ctx;
  if (resuming) {
    try {
      await backend.call("load", { path: join(paths.dir, state.checkpoint!), parts: "all" });
      ctx.progress.note(`resuming stage ${stage.index + 1} (${stage.name}) at step ${state.position.step} from ${state.checkpoint}`);
      ctx.log.write({ type: "resume", stage: stage.name, stage_index: stage.index, from_step: state.position.step, checkpoint: state.checkpoint });
      return true;
    } catch (err) {
      if (!(err instanceof BackendError && err.code === "bad_checkpoint") || !state.checkpoint!.includes("-step")) throw err;
      ctx.progress.note(
        `note: ${err.detail.replace(/; it cannot be used \(.*$/, "")}: stage ${stage.index + 1} (${stage.name}) starts again ` +
          `from its start (its ${state.position.step} steps so far are trained again)`,
      );
      removeCheckpoint(paths, state.checkpoint!);
      ctx.state = { ...state, position: freshPosition(), checkpoint: null };
      await writeState(paths, ctx.state);
      truncateLog(paths.log, stage.index, 0);
      ctx.log.write({ type: "restart_stage", stage: stage.name, stage_index: stage.index, reason: err.detail });
    }
  }
  if (stage.index > 0) {
    const previous = ctx.manifest.stages[stage.index - 1].checkpoint;
    if (previous === null) throw new Error(`stage ${stage.index}: the previous stage has no end checkpoint`);
    await backend.call("load", { path: join(paths.dir, previous), parts: "encoder" });
  }
  return false;
}

/**
 * Saves a checkpoint at the current position (within the stage, or its end), then state.json naming it, and
 * only then removes the previous step checkpoint. Returns its path relative to the run folder.
 */
export async function saveCheckpoint(ctx: LoopContext, stage: StageRef, kind: "end" | number): Promise<string> {
  const pos = ctx.state.position;
  const rel = checkpointName(stage.index, stage.name, kind);
  await ctx.backend.call("save", {
    path: join(ctx.paths.dir, rel),
    meta: { stage: stage.name, stage_index: stage.index, step: pos.step, epoch: pos.epoch, batch: pos.batch },
  });
  const previous = ctx.state.checkpoint;
  ctx.state.checkpoint = rel;
  await writeState(ctx.paths, ctx.state);
  // runs/latest moves to a run once it has weights to evaluate: one that fails in set-up leaves it where it was
  if (previous === null && ctx.linkLatest !== false) {
    try {
      writeLatestLink(basename(ctx.paths.dir), dirname(ctx.paths.dir));
    } catch (err) {
      ctx.progress.note(`note: ${(err as Error).message}`);
    }
  }
  if (previous !== null && previous !== rel && previous.includes("-step")) removeCheckpoint(ctx.paths, previous);
  ctx.log.write({ type: "checkpoint", stage: stage.name, stage_index: stage.index, step: pos.step, path: rel });
  return rel;
}

/** Records the stage as complete (manifest, then state.json at the next stage) with its end checkpoint and metrics. */
export async function completeStage(ctx: LoopContext, stage: StageRef, end: string, metrics: Record<string, number>): Promise<void> {
  const step = ctx.state.position.step;
  Object.assign(ctx.manifest.stages[stage.index], { checkpoint: end, completed: true, step, metrics });
  ctx.manifest.finalCheckpoint = end;
  await writeManifest(ctx.paths, ctx.manifest);
  ctx.state = { ...ctx.state, stage: stage.index + 1, position: freshPosition(), checkpoint: end };
  await writeState(ctx.paths, ctx.state);
  // Only now: until state.json has moved past this stage, a resume restores the best weights again.
  removeCheckpoint(ctx.paths, checkpointName(stage.index, stage.name, "best"));
}
