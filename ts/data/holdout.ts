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

/** How a pair dataset's validation share is held out: by premise, or by family (pairs sharing any sentence). */
export type HoldoutBy = "premise" | "family";

/**
 * The holdout of a pair split: by premise (premiseHoldout), or by family: pairs that share a sentence, directly or
 * through others, are held out together (counterfactual datasets: a pair and its minimal edits keep one side each,
 * so holding out by premise alone would train on near-copies of the held-out rows).
 */
export function pairHoldout(
  pairs: readonly { s1: string; s2: string }[],
  by: HoldoutBy,
  fraction: number,
  seed: number,
): { validRows: Int32Array; trainRows: Int32Array } {
  if (by === "premise")
    return premiseHoldout(
      pairs.map((p) => p.s1),
      fraction,
      seed,
    );
  const parent = new Map<string, string>();
  const root = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    for (let y = x; y !== r; ) {
      const next = parent.get(y)!;
      parent.set(y, r); // path compression
      y = next;
    }
    return r;
  };
  const add = (x: string) => {
    if (!parent.has(x)) parent.set(x, x);
  };
  for (const { s1, s2 } of pairs) {
    add(s1);
    add(s2);
    const [a, b] = [root(s1), root(s2)];
    if (a !== b) parent.set(a, b);
  }
  return premiseHoldout(
    pairs.map((p) => root(p.s1)),
    fraction,
    seed,
  );
}
