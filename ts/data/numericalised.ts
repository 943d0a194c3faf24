/**
 * Numericalised datasets as Arrow IPC files. A split becomes token ids in ragged columns (Arrow
 * List<Int32>: offsets + one flat id buffer), written in record batches as it streams by, to a
 * temp file renamed into place. Reading takes the file as one buffer and views the Arrow buffers
 * in place: nothing is parsed or tokenised again.
 *
 * Columns: pairs -> s1, s2 (List<Int32>), label (Int8, -1 none, else index in NLI_LABELS),
 * score (Float32, NaN none); text -> ids (List<Int32>). Schema metadata: bridge.* keys below.
 */
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import {
  type Data,
  Field,
  Float32,
  Int8,
  Int32,
  List,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  tableFromIPC,
  type Vector,
} from "apache-arrow";
import { tempPathFor } from "../core/atomic.js";
import { DataError } from "./errors.js";
import { NLI_LABELS, type PairRecord } from "./records.js";
import type { Tokenizer } from "./tokenize.js";
import { BOS, EOS } from "./tokenize.js";
import type { Vocab } from "./vocab.js";

/** Row i holds ids[offsets[i] .. offsets[i+1]). */
export interface Ragged {
  offsets: Int32Array;
  ids: Int32Array;
}

export interface NumericalisedPairs {
  kind: "pairs";
  size: number;
  s1: Ragged;
  s2: Ragged;
  /** -1: no label; else an index into NLI_LABELS. */
  labels: Int8Array;
  /** NaN: no score. */
  scores: Float32Array;
}

export interface NumericalisedText {
  kind: "text";
  size: number;
  lines: Ragged;
}

export type Numericalised = NumericalisedPairs | NumericalisedText;

export function rowLength(r: Ragged, i: number): number {
  return r.offsets[i + 1] - r.offsets[i];
}

export function row(r: Ragged, i: number): Int32Array {
  return r.ids.subarray(r.offsets[i], r.offsets[i + 1]);
}

/** Token counts from numericalising, for reports (OOV rate excludes xxbos/xxeos markers). */
export interface NumericaliseCounts {
  rows: number;
  tokens: number;
  /** Tokens not in the vocabulary (mapped to xxunk or to an out-of-vocabulary bucket), not counting literal xxunk in the text. */
  unknown: number;
  truncated: number;
  truncatedTokens: number;
}

const ITEM = () => new Field("item", new Int32(), false);
const LIST = () => new List(ITEM());
const BATCH_ROWS = 1 << 16;

export const META_KIND = "bridge.kind";
export const META_KEY = "bridge.cache_key";
export const META_VOCAB = "bridge.vocab_fingerprint";

/** A growable Int32 buffer, reused across record batches. */
export class IntBuffer {
  data = new Int32Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  /** A copy of the content (the buffer is reused for the next batch). */
  take(): Int32Array {
    const out = this.data.slice(0, this.length);
    this.length = 0;
    return out;
  }
}

class RaggedBuilder {
  readonly offsets = new IntBuffer();
  readonly ids = new IntBuffer();
  constructor() {
    this.offsets.push(0);
  }
  addTokens(tokens: readonly string[], vocab: Vocab, counts: NumericaliseCounts): void {
    for (const t of tokens) {
      const id = vocab.id(t);
      if (!vocab.has(t)) counts.unknown++;
      if (t !== BOS && t !== EOS) counts.tokens++;
      this.ids.push(id);
    }
    this.offsets.push(this.ids.length);
  }
  /** The rows added so far as a Ragged (copies). */
  toRagged(): Ragged {
    return { offsets: this.offsets.data.slice(0, this.offsets.length), ids: this.ids.data.slice(0, this.ids.length) };
  }
  /** Arrow List<Int32> data for the rows added since the last call. */
  flush(): Data<List<Int32>> {
    const ids = this.ids.take();
    const offsets = this.offsets.take();
    this.offsets.push(0);
    const n = offsets.length - 1;
    const child = makeData({ type: new Int32(), length: ids.length, data: ids, nullCount: 0 });
    return makeData({ type: LIST(), length: n, valueOffsets: offsets, child, nullCount: 0 });
  }
}

/** Streams rows into an Arrow file at `path` (atomically); call add*() per row then close(). */
export class NumericalisedWriter {
  readonly counts: NumericaliseCounts = { rows: 0, tokens: 0, unknown: 0, truncated: 0, truncatedTokens: 0 };
  private readonly schema: Schema;
  private readonly writer = new RecordBatchFileWriter();
  private readonly tmp: string;
  private readonly done: Promise<void>;
  private readonly out: import("node:fs").WriteStream;
  private readonly a = new RaggedBuilder();
  private readonly b = new RaggedBuilder();
  private labels = new Int8Array(BATCH_ROWS);
  private scores = new Float32Array(BATCH_ROWS);
  private pending = 0;
  private readonly startTruncated: number;
  private readonly startTruncatedTokens: number;

  private constructor(
    readonly path: string,
    readonly kind: "pairs" | "text",
    private readonly vocab: Vocab,
    private readonly tokenizer: Tokenizer,
    metadata: Record<string, string> = {},
  ) {
    const fields =
      kind === "pairs"
        ? [new Field("s1", LIST(), false), new Field("s2", LIST(), false), new Field("label", new Int8(), false), new Field("score", new Float32(), false)]
        : [new Field("ids", LIST(), false)];
    const meta = new Map([[META_KIND, kind], [META_VOCAB, vocab.fingerprint], ...Object.entries(metadata)]);
    this.schema = new Schema(fields, meta);
    this.tmp = tempPathFor(path);
    this.startTruncated = tokenizer.stats.truncated;
    this.startTruncatedTokens = tokenizer.stats.truncatedTokens;
    const out = createWriteStream(this.tmp);
    this.out = out;
    this.done = new Promise((res, rej) => {
      out.on("finish", () => res());
      out.on("error", rej);
    });
    this.writer.toNodeStream().pipe(out);
    this.writer.reset(undefined, this.schema);
  }

  /** Opens the writer (creating the directory). */
  static async open(
    path: string,
    kind: "pairs" | "text",
    vocab: Vocab,
    tokenizer: Tokenizer,
    metadata: Record<string, string> = {},
  ): Promise<NumericalisedWriter> {
    await mkdir(dirname(path), { recursive: true });
    return new NumericalisedWriter(path, kind, vocab, tokenizer, metadata);
  }

  addPair(r: PairRecord): void {
    if (this.kind !== "pairs") throw new Error("NumericalisedWriter: addPair on a text file");
    this.a.addTokens(this.tokenizer.tokenize(r.s1), this.vocab, this.counts);
    this.b.addTokens(this.tokenizer.tokenize(r.s2), this.vocab, this.counts);
    this.labels[this.pending] = r.label === undefined ? -1 : NLI_LABELS.indexOf(r.label);
    this.scores[this.pending] = r.score ?? Number.NaN;
    this.endRow();
  }

  addText(text: string): void {
    if (this.kind !== "text") throw new Error("NumericalisedWriter: addText on a pairs file");
    this.a.addTokens(this.tokenizer.tokenize(text), this.vocab, this.counts);
    this.endRow();
  }

  private endRow(): void {
    this.counts.rows++;
    if (++this.pending === BATCH_ROWS) this.flush();
  }

  private flush(): void {
    const n = this.pending;
    const children: Data[] = [this.a.flush()];
    if (this.kind === "pairs") {
      children.push(this.b.flush());
      children.push(makeData({ type: new Int8(), length: n, data: this.labels.slice(0, n), nullCount: 0 }));
      children.push(makeData({ type: new Float32(), length: n, data: this.scores.slice(0, n), nullCount: 0 }));
    }
    const data = makeData({ type: new Struct(this.schema.fields), length: n, children, nullCount: 0 });
    this.writer.write(new RecordBatch(this.schema, data));
    this.pending = 0;
  }

  /** Finishes the file and renames it into place. */
  async close(): Promise<NumericaliseCounts> {
    try {
      if (this.pending > 0 || this.counts.rows === 0) this.flush();
      this.writer.finish();
      await this.done;
      await rename(this.tmp, this.path);
    } catch (e) {
      await rm(this.tmp, { force: true });
      throw e;
    }
    this.counts.truncated = this.tokenizer.stats.truncated - this.startTruncated;
    this.counts.truncatedTokens = this.tokenizer.stats.truncatedTokens - this.startTruncatedTokens;
    return { ...this.counts };
  }

  /** Gives up: the temp file goes, nothing is left at `path`. */
  async abort(): Promise<void> {
    // Destroy the file stream rather than abort the Arrow writer (whose abort leaves a stray rejection).
    this.out.destroy(new Error("numericalising aborted"));
    await this.done.catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}

/** Numericalises texts in memory (derived corpora such as lmCorpus output); files go through NumericalisedWriter. */
export function numericaliseTexts(texts: Iterable<string>, vocab: Vocab, tokenizer: Tokenizer): { ragged: Ragged; counts: NumericaliseCounts } {
  const counts: NumericaliseCounts = { rows: 0, tokens: 0, unknown: 0, truncated: 0, truncatedTokens: 0 };
  const t0 = tokenizer.stats.truncated;
  const tt0 = tokenizer.stats.truncatedTokens;
  const b = new RaggedBuilder();
  for (const t of texts) {
    b.addTokens(tokenizer.tokenize(t), vocab, counts);
    counts.rows++;
  }
  counts.truncated = tokenizer.stats.truncated - t0;
  counts.truncatedTokens = tokenizer.stats.truncatedTokens - tt0;
  return { ragged: b.toRagged(), counts };
}

export interface LoadedNumericalised {
  data: Numericalised;
  metadata: Map<string, string>;
}

/** Reads a numericalised file: one read, Arrow buffers viewed in place (a copy only to join record batches). */
export async function loadNumericalised(path: string): Promise<LoadedNumericalised> {
  const buf = await readFile(path);
  let table: ReturnType<typeof tableFromIPC>;
  try {
    table = tableFromIPC(buf);
  } catch (e) {
    throw new DataError(`${path}: not a readable Arrow IPC file (${(e as Error).message})`);
  }
  const metadata = table.schema.metadata;
  const kind = metadata.get(META_KIND);
  const ragged = (name: string): Ragged => {
    const v = table.getChild(name);
    if (v === null) throw new DataError(`${path}: no column ${name}`);
    return joinRagged(v as Vector<List<Int32>>);
  };
  if (kind === "pairs") {
    const labels = joinFlat(table.getChild("label") as Vector<Int8> | null, Int8Array, path);
    const scores = joinFlat(table.getChild("score") as Vector<Float32> | null, Float32Array, path);
    return { data: { kind, size: table.numRows, s1: ragged("s1"), s2: ragged("s2"), labels, scores }, metadata };
  }
  if (kind === "text") return { data: { kind, size: table.numRows, lines: ragged("ids") }, metadata };
  throw new DataError(`${path}: metadata ${META_KIND} is ${JSON.stringify(kind)}, expected "pairs" or "text"`);
}

function joinRagged(v: Vector<List<Int32>>): Ragged {
  const chunks = v.data;
  if (chunks.length === 1) {
    const d = chunks[0];
    const ids = d.children[0].values as Int32Array;
    const offsets = d.valueOffsets as Int32Array;
    const base = offsets[0];
    if (base === 0 && d.offset === 0) return { offsets: offsets.subarray(0, d.length + 1), ids: ids.subarray(0, offsets[d.length]) };
  }
  let rows = 0;
  let total = 0;
  for (const d of chunks) {
    rows += d.length;
    const o = d.valueOffsets as Int32Array;
    total += o[d.length] - o[0];
  }
  const offsets = new Int32Array(rows + 1);
  const ids = new Int32Array(total);
  let r = 0;
  let at = 0;
  for (const d of chunks) {
    const o = d.valueOffsets as Int32Array;
    const vals = d.children[0].values as Int32Array;
    ids.set(vals.subarray(o[0], o[d.length]), at);
    for (let i = 0; i < d.length; i++) offsets[++r] = at + (o[i + 1] - o[0]);
    at += o[d.length] - o[0];
  }
  return { offsets, ids };
}

function joinFlat<T extends Int8Array | Float32Array>(v: Vector | null, Ctor: { new (n: number): T }, path: string): T {
  if (v === null) throw new DataError(`${path}: a pairs file needs label and score columns`);
  // Arrow pads buffers to 8 bytes: view exactly the rows.
  if (v.data.length === 1) return (v.data[0].values as T).subarray(v.data[0].offset, v.data[0].offset + v.data[0].length) as T;
  const out = new Ctor(v.length);
  let at = 0;
  for (const d of v.data) {
    out.set((d.values as T).subarray(d.offset, d.offset + d.length) as T & ArrayLike<number>, at);
    at += d.length;
  }
  return out;
}
