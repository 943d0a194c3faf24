/**
 * Groups of sentences that mean the same thing (an image's captions), numericalised, and their batches: whole groups
 * for the multi-positive objective (supcon, a fixed number a batch), or one pair of each group per epoch for the in-batch contrastive
 * objective. A group is never split across a batch's positive / negative line: its sentences are all in the batch
 * together (supcon) or only one pair of it is (contrastive), so no sentence is ever a negative of its own group.
 * Every batch is a pure function of (seed, epoch, batch index), so a resumed stage replays them exactly.
 */
import { type Tensors, tensor } from "../core/tensor.js";
import { collateSentences } from "./batches.js";
import { type Ragged, rowLength } from "./numericalised.js";
import { epochRng, shuffleInPlace } from "./random.js";

export interface NumericalisedGroups {
  kind: "groups";
  /** Groups. */
  size: number;
  /** Every sentence, one row each, group by group. */
  sentences: Ragged;
  /** Group g's sentences are rows groupOffsets[g] .. groupOffsets[g + 1] - 1 of `sentences` [size + 1]. */
  groupOffsets: Int32Array;
}

/** Sentences of group g. */
export function groupSize(g: NumericalisedGroups, group: number): number {
  return g.groupOffsets[group + 1] - g.groupOffsets[group];
}

/** The groups `rows` of g (in that order), each sentence cut to maxLen tokens. */
export function selectGroups(g: NumericalisedGroups, rows: ArrayLike<number>, maxLen: number | null = null): NumericalisedGroups {
  const groupOffsets = new Int32Array(rows.length + 1);
  const picked: number[] = [];
  for (let k = 0; k < rows.length; k++) {
    for (let r = g.groupOffsets[rows[k]]; r < g.groupOffsets[rows[k] + 1]; r++) picked.push(r);
    groupOffsets[k + 1] = picked.length;
  }
  const offsets = new Int32Array(picked.length + 1);
  picked.forEach((r, k) => {
    offsets[k + 1] = offsets[k] + Math.min(rowLength(g.sentences, r), maxLen ?? Infinity);
  });
  const ids = new Int32Array(offsets[picked.length]);
  picked.forEach((r, k) => {
    const from = g.sentences.offsets[r];
    ids.set(g.sentences.ids.subarray(from, from + offsets[k + 1] - offsets[k]), offsets[k]);
  });
  return { kind: "groups", size: rows.length, sentences: { offsets, ids }, groupOffsets };
}

/** Sentences in the largest group (at least 1). */
export function largestGroup(g: NumericalisedGroups): number {
  let largest = 1;
  for (let k = 0; k < g.size; k++) largest = Math.max(largest, groupSize(g, k));
  return largest;
}

/** The most groups a batch of `batchSize` sentences holds whatever the draw: batchSize over the largest group's size. */
export function groupsPerBatch(g: NumericalisedGroups, batchSize: number): number {
  return Math.floor(batchSize / largestGroup(g));
}

/**
 * Groups in batches of `perBatch` whole groups (the last may hold fewer): the same number of batches every epoch, so
 * a multi-task schedule addresses the same batches whatever the shuffle. `order` null keeps the groups' order
 * (validation), else a seeded shuffle of the epoch.
 */
export function groupBatchPlan(g: NumericalisedGroups, perBatch: number, order: { seed: number; epoch: number } | null): Int32Array[] {
  if (!Number.isInteger(perBatch) || perBatch < 1) throw new RangeError(`groupBatchPlan: perBatch must be a whole number >= 1, got ${perBatch}`);
  const groups = Int32Array.from({ length: g.size }, (_, i) => i);
  if (order) shuffleInPlace(groups, epochRng(order.seed, order.epoch, 2));
  return Array.from({ length: Math.ceil(g.size / perBatch) }, (_, b) => groups.slice(b * perBatch, (b + 1) * perBatch));
}

/** supcon's tensors for groups `rows`: x, lengths [n] of their sentences and group [n], each row's group in the batch. */
export function groupTensors(g: NumericalisedGroups, rows: Int32Array, padId: number): Tensors {
  const sentenceRows: number[] = [];
  const group: number[] = [];
  rows.forEach((r, k) => {
    for (let s = g.groupOffsets[r]; s < g.groupOffsets[r + 1]; s++) {
      sentenceRows.push(s);
      group.push(k);
    }
  });
  const c = collateSentences(g.sentences, Int32Array.from(sentenceRows), padId);
  return { x: c.ids, lengths: c.lengths, group: tensor("int32", [group.length], Int32Array.from(group)) };
}

/**
 * Groups as pairs: for each group, two different sentences of it, drawn afresh each epoch (seeded per group), as
 * anchor and positive. [anchorRow, positiveRow] per group, rows of `sentences`.
 */
export function groupPairs(g: NumericalisedGroups, seed: number, epoch: number): { anchor: Int32Array; positive: Int32Array } {
  const anchor = new Int32Array(g.size);
  const positive = new Int32Array(g.size);
  const rng = epochRng(seed, epoch, 3);
  for (let k = 0; k < g.size; k++) {
    const n = groupSize(g, k);
    const a = Math.floor(rng() * n);
    const b = (a + 1 + Math.floor(rng() * (n - 1))) % n; // any other sentence of the group
    anchor[k] = g.groupOffsets[k] + a;
    positive[k] = g.groupOffsets[k] + b;
  }
  return { anchor, positive };
}

/** The contrastive objective's anchor / positive tensors for groups `rows` of one epoch's pairs. */
export function groupPairTensors(g: NumericalisedGroups, pairs: { anchor: Int32Array; positive: Int32Array }, rows: Int32Array, padId: number): Tensors {
  const a = collateSentences(
    g.sentences,
    Int32Array.from(rows, (r) => pairs.anchor[r]),
    padId,
  );
  const p = collateSentences(
    g.sentences,
    Int32Array.from(rows, (r) => pairs.positive[r]),
    padId,
  );
  return { anchor: a.ids, anchor_lengths: a.lengths, positive: p.ids, positive_lengths: p.lengths };
}
