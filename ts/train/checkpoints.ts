/**
 * Where a run stands, for --resume. The backend writes checkpoints (weights, optimizer, RNG, step)
 * atomically; after each one this side writes runs/NAME/state.json (atomically too) naming it and
 * the loop's position: stage, epoch, next batch, steps done, early-stopping record. A checkpoint is
 * only deleted once state.json names a newer one, so a kill at any moment leaves a consistent pair.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic, writeFileAtomicSync } from "../core/atomic.js";
import { checkShape } from "../core/jsonShape.js";
import { insideRun, type RunPaths } from "../run/manifest.js";

export const STATE_VERSION = 1;

export interface StagePosition {
  /** Epoch in progress (0-based) and the next batch of it. */
  epoch: number;
  batch: number;
  /** Batches trained in this stage so far. */
  step: number;
  /** Early stopping: best validation metric so far and evaluations since it improved. */
  best: number | null;
  badEvals: number;
  /** The stage's last validation metrics. */
  metrics: Record<string, number>;
  /** Running sums of the stage's summary (stage_end.train_loss = trainLossSum / trainLossN): kept here so that a
   * resumed stage reports the mean over all its steps, not only those after the resume. */
  trainLossSum: number;
  trainLossN: number;
  /** Steps skipped for a non-finite loss (nonFinite: skip). */
  nonFiniteSkipped: number;
}

export interface RunState {
  version: number;
  /** Stage in progress; equal to the number of stages when the run is done. */
  stage: number;
  position: StagePosition;
  /** Checkpoint to resume from, relative to the run folder (null before the first one). */
  checkpoint: string | null;
  done: boolean;
}

export const statePath = (paths: RunPaths) => join(paths.dir, "state.json");

export function freshPosition(): StagePosition {
  return { epoch: 0, batch: 0, step: 0, best: null, badEvals: 0, metrics: {}, trainLossSum: 0, trainLossN: 0, nonFiniteSkipped: 0 };
}

export function readState(paths: RunPaths): RunState | null {
  const p = statePath(paths);
  if (!existsSync(p)) return null;
  let s: RunState;
  try {
    s = JSON.parse(readFileSync(p, "utf8")) as RunState;
  } catch (err) {
    // written atomically by bridge, so a torn file means an outside copy or edit: say which file and what still holds
    throw new Error(
      `${p}: not valid JSON (${(err as Error).message}); the run's checkpoints are in ${join(paths.dir, "checkpoints")}: restore state.json from a copy, or train the run again`,
    );
  }
  if (s === null || typeof s !== "object") throw new Error(`${p}: not a run state (expected a JSON object)`);
  if (s.version !== STATE_VERSION) throw new Error(`${p}: state version ${JSON.stringify(s.version)}, this bridge reads ${STATE_VERSION}`);
  // an edited field would misplace the resume (a string epoch never equals a number: the loop would spin)
  checkShape(StateShape, s, p, (m) => new Error(`${m}; state.json is written by bridge train: restore it from a copy, or train the run again`));
  // state.json from before the running sums were saved: the stage's summary then covers only the steps from here
  return { ...s, position: { ...freshPosition(), ...s.position } };
}

const count = z.number().int().min(0);

/** state.json's fields; position's may be absent (files from before some of them), never of another type. */
const StateShape = z
  .object({
    stage: count,
    position: z
      .object({
        epoch: count,
        batch: count,
        step: count,
        best: z.number().nullable(),
        badEvals: count,
        metrics: z.record(z.number().nullable()),
        trainLossSum: z.number().nullable(),
        trainLossN: count,
        nonFiniteSkipped: count,
      })
      .partial()
      .passthrough(),
    checkpoint: insideRun.nullable(),
    done: z.boolean(),
  })
  .passthrough();

export async function writeState(paths: RunPaths, s: RunState): Promise<void> {
  await writeFileAtomic(statePath(paths), `${JSON.stringify(s, null, 2)}\n`);
}

export function checkpointName(stageIndex: number, stage: string, kind: "end" | "best" | number): string {
  const suffix = kind === "end" ? "" : kind === "best" ? "-best" : `-step${kind}`;
  return join("checkpoints", `${stageIndex}-${stage}${suffix}.pt`);
}

export function removeCheckpoint(paths: RunPaths, rel: string | null): void {
  if (rel !== null) rmSync(join(paths.dir, rel), { force: true });
}

/**
 * On resume: drops the log lines written after the checkpoint being resumed from (they will be
 * written again), so log.jsonl reads as one uninterrupted run. `step` 0 means the stage starts over
 * (no checkpoint of it yet): its step-less lines (stage_start) go too, as the loop writes them again.
 * The rewrite is atomic, so a kill during it leaves the old log whole.
 */
export function truncateLog(logPath: string, stage: number, step: number): void {
  if (!existsSync(logPath)) return;
  const kept = readFileSync(logPath, "utf8")
    .split("\n")
    .filter((line) => {
      if (line.trim() === "") return false;
      try {
        const e = JSON.parse(line) as { stage_index?: number; step?: number };
        if (e.stage_index === undefined || e.stage_index < stage) return true;
        if (e.stage_index > stage) return false;
        return e.step === undefined ? step > 0 : e.step <= step;
      } catch {
        return false; // a line cut by the kill
      }
    });
  writeFileAtomicSync(logPath, kept.map((l) => `${l}\n`).join(""));
}
