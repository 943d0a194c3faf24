/**
 * The seeded holdouts that split a dataset into rows that train and rows that validate. Training (ts/train/data.ts)
 * makes them; evaluation recomputes them to know which rows a run never saw (ts/eval/trainedPairs.ts).
 */
import { mixSeed, mulberry32, shuffleInPlace } from "./random.js";

/** Fixed, so that the held-out rows do not move when the training seed changes. */
export const HOLDOUT_SEED = 20180118;

/** A seeded permutation of 0..n-1 (the same for the same seed). */
export function permutation(n: number, seed: number): Int32Array {
  return shuffleInPlace(
    Int32Array.from({ length: n }, (_, i) => i),
    mulberry32(mixSeed(seed, n)),
  );
}

/**
 * The holdout of a split trained on and validated on: whole premise groups (rows with the same s1),
 * in a seeded order, until about `fraction` of the rows are held out (at least one group). Both row
 * lists come back sorted.
 */
export function premiseHoldout(premises: readonly string[], fraction: number, seed: number): { validRows: Int32Array; trainRows: Int32Array } {
  const groups = new Map<string, number[]>();
  premises.forEach((p, i) => {
    const g = groups.get(p);
    if (g) g.push(i);
    else groups.set(p, [i]);
  });
  const list = [...groups.values()]; // in order of first appearance
  const target = Math.max(1, Math.round(fraction * premises.length));
  const held = new Uint8Array(premises.length);
  let nValid = 0;
  for (const g of permutation(list.length, seed)) {
    if (nValid >= target) break;
    for (const r of list[g]) held[r] = 1;
    nValid += list[g].length;
  }
  const validRows = new Int32Array(nValid);
  const trainRows = new Int32Array(premises.length - nValid);
  for (let i = 0, v = 0, t = 0; i < premises.length; i++) (held[i] ? validRows : trainRows)[held[i] ? v++ : t++] = i;
  return { validRows, trainRows };
}
