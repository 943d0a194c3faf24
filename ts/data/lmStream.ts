/**
 * Language-model batches, ULMFiT / AWD-LSTM style: the corpus's texts (each starting with xxbos)
 * are concatenated, in a fresh order each epoch, into one stream cut into `bs` contiguous rows;
 * step k reads a window of every row, of a length drawn around `bptt` (95%: bptt, else bptt/2;
 * then normal with sd 5, at least 5), so windows do not always start at the same offsets.
 * The epoch's texts order and window lengths are pure functions of (seed, epoch).
 */
import { createHash } from "node:crypto";
import { type Tensor, tensor } from "../core/tensor.js";
import type { IdDType } from "./batches.js";
import type { Ragged } from "./numericalised.js";
import { epochRng, mixSeed, normal, shuffleInPlace } from "./random.js";

export interface LmStreamOptions {
  bs: number;
  bptt: number;
  seed: number;
  epoch: number;
  /** Shuffle texts each epoch and vary window lengths (training); false: fixed order and bptt (evaluation). */
  train: boolean;
}

export interface LmWindow {
  /** Offset in each row. */
  start: number;
  len: number;
}

export interface LmBatch {
  /** [bs, len] inputs and [bs, len] targets (inputs shifted by one). */
  x: Tensor<IdDType>;
  y: Tensor<IdDType>;
}

export class LmStream {
  /** [bs, rowLen], row-major: row r is a contiguous stretch of the corpus. */
  readonly rows: Int32Array;
  readonly rowLen: number;
  readonly windows: readonly LmWindow[];

  constructor(
    texts: Ragged,
    readonly opts: LmStreamOptions,
  ) {
    const { bs, bptt } = opts;
    if (!Number.isInteger(bs) || bs < 1 || !Number.isInteger(bptt) || bptt < 1) throw new RangeError(`LmStream: bs and bptt must be positive integers`);
    const n = texts.offsets.length - 1;
    const order = Int32Array.from({ length: n }, (_, i) => i);
    if (opts.train) shuffleInPlace(order, epochRng(opts.seed, opts.epoch, 2));
    const total = texts.offsets[n] - texts.offsets[0];
    this.rowLen = Math.floor(total / bs);
    if (this.rowLen < 2) throw new RangeError(`LmStream: ${total} tokens cannot fill ${bs} rows of at least 2 tokens`);
    // Concatenate in epoch order, keeping the first bs * rowLen tokens (the tail is under one token per row).
    this.rows = new Int32Array(bs * this.rowLen);
    let at = 0;
    for (let k = 0; k < n && at < this.rows.length; k++) {
      const i = order[k];
      const piece = texts.ids.subarray(texts.offsets[i], Math.min(texts.offsets[i + 1], texts.offsets[i] + this.rows.length - at));
      this.rows.set(piece, at);
      at += piece.length;
    }
    this.windows = lmWindows(this.rowLen, bptt, opts);
  }

  get steps(): number {
    return this.windows.length;
  }

  /** Batch `step` (0-based): resuming mid-epoch is just starting from a later step. */
  batch(step: number, dtype: IdDType = "int32"): LmBatch {
    const w = this.windows[step];
    if (w === undefined) throw new RangeError(`LmStream: step ${step} out of range (0..${this.steps - 1})`);
    const { bs } = this.opts;
    const x = new Int32Array(bs * w.len);
    const y = new Int32Array(bs * w.len);
    for (let r = 0; r < bs; r++) {
      const base = r * this.rowLen + w.start;
      x.set(this.rows.subarray(base, base + w.len), r * w.len);
      y.set(this.rows.subarray(base + 1, base + 1 + w.len), r * w.len);
    }
    if (dtype === "int64") {
      return { x: tensor("int64", [bs, w.len], BigInt64Array.from(x, BigInt)), y: tensor("int64", [bs, w.len], BigInt64Array.from(y, BigInt)) };
    }
    return { x: tensor("int32", [bs, w.len], x), y: tensor("int32", [bs, w.len], y) };
  }
}

/** The epoch's windows over rows of rowLen tokens (targets need one token beyond each window). */
export function lmWindows(rowLen: number, bptt: number, opts: Pick<LmStreamOptions, "seed" | "epoch" | "train">): LmWindow[] {
  const rng = epochRng(opts.seed, opts.epoch, 3);
  const out: LmWindow[] = [];
  for (let start = 0; start < rowLen - 1; ) {
    let len = bptt;
    if (opts.train) {
      const mean = rng() < 0.95 ? bptt : bptt / 2;
      len = Math.max(5, Math.floor(normal(rng, mean, 5)));
    }
    len = Math.min(len, rowLen - 1 - start);
    out.push({ start, len });
    start += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Language-model text from sentence-pair data

export interface LmCorpus {
  train: string[];
  valid: string[];
  /** Repeats removed (SNLI repeats each premise about 3 times). */
  duplicates: number;
  /** Validation sentences also in training text, removed from validation. */
  overlap: number;
}

/**
 * Unique sentences for language modelling, with no sentence on both sides. With `valid` texts,
 * those also in train are dropped from valid; without, a `validFraction` of the unique sentences is
 * held out, chosen by a hash of (seed, sentence) so a sentence always lands on the same side.
 */
export function lmCorpus(train: Iterable<string>, opts: { valid?: Iterable<string>; validFraction?: number; seed: number }): LmCorpus {
  let duplicates = 0;
  const seen = new Set<string>();
  const trainOut: string[] = [];
  const validOut: string[] = [];
  const fraction = opts.valid === undefined ? (opts.validFraction ?? 0.1) : 0;
  const heldOut = lmHoldout(fraction, opts.seed);
  for (const s of train) {
    if (seen.has(s)) {
      duplicates++;
      continue;
    }
    seen.add(s);
    (heldOut(s) ? validOut : trainOut).push(s);
  }
  let overlap = 0;
  if (opts.valid !== undefined) {
    const seenValid = new Set<string>();
    for (const s of opts.valid) {
      if (seen.has(s)) {
        overlap++;
        continue;
      }
      if (seenValid.has(s)) {
        duplicates++;
        continue;
      }
      seenValid.add(s);
      validOut.push(s);
    }
  }
  return { train: trainOut, valid: validOut, duplicates, overlap };
}

/** Whether a text is held out for validation: a seeded hash of the whole text below `fraction`, so a text (an article) always lands on the same side. */
export function lmHoldout(fraction: number, seed: number): (text: string) => boolean {
  const seedWord = mixSeed(seed);
  return (text) => fraction > 0 && hashUnit(seedWord, text) < fraction;
}

function hashUnit(seedWord: number, s: string): number {
  const h = createHash("sha1").update(String(seedWord)).update("\0").update(s).digest();
  return h.readUInt32BE(0) / 4294967296;
}
