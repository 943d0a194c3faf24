/**
 * A multi-task stage's step order: which task each step of an epoch draws a batch from, and which of
 * that task's batches. A pure function of (seed, epoch), so a resumed stage replays it exactly.
 *
 * An epoch is as many steps as all tasks' batches together (each task's own epoch: its rows in
 * batches). Task t gets a share weight_t / sum(weights) of those steps (largest remainders, every task
 * at least one step), its batches taken in order from its own stream of epochs (each shuffled with its
 * own seed), so a task with a high weight cycles through its data faster than one with a low weight.
 * Which task each step of the epoch draws from is shuffled, so tasks interleave.
 */
import { mixSeed, mulberry32, shuffleInPlace } from "../data/random.js";

export interface TaskDraw {
  /** Index of the task in the stage's tasks. */
  task: number;
  /** The task's own epoch and batch index in it. */
  taskEpoch: number;
  batch: number;
}

/** Steps per epoch given to each task: shares of `total` proportional to the weights (largest remainders), each >= 1. */
export function apportion(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, w) => a + w, 0);
  const n = Math.max(total, weights.length);
  const exact = weights.map((w) => (n * w) / sum);
  const out = exact.map((x) => Math.max(1, Math.floor(x)));
  let left = n - out.reduce((a, k) => a + k, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let j = 0; left > 0; j = (j + 1) % order.length, left--) out[order[j][1]]++;
  // the minimum of one step each overshot: take the excess from the largest shares
  for (; left < 0; left++) out[out.indexOf(Math.max(...out))]--;
  return out;
}

/**
 * The epoch's steps in order: for each, the task and its (task epoch, batch). `batchesPerEpoch[t]` is task t's
 * batch count in one of its own epochs.
 */
export function taskSchedule(batchesPerEpoch: readonly number[], weights: readonly number[], seed: number, epoch: number): TaskDraw[] {
  if (batchesPerEpoch.length !== weights.length || weights.length === 0) throw new Error("taskSchedule: one weight per task, at least one task");
  const total = batchesPerEpoch.reduce((a, c) => a + c, 0);
  const shares = apportion(total, weights);
  // which task each step draws from, shuffled; then each task's draws take its next batches in order
  const tasks = Int32Array.from(shares.flatMap((share, t) => Array<number>(share).fill(t)));
  shuffleInPlace(tasks, mulberry32(mixSeed(seed, epoch, 0x7a5c)));
  const next = shares.map((share) => epoch * share); // position in each task's endless stream of batches
  return Array.from(tasks, (t) => {
    const per = Math.max(1, batchesPerEpoch[t]);
    const k = next[t]++;
    return { task: t, taskEpoch: Math.floor(k / per), batch: k % per };
  });
}
