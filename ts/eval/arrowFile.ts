/**
 * Arrow IPC files of sentence vectors and per-item results, for the notebooks (pyarrow) and for
 * `bridge embed`'s output. Columns are typed arrays or strings; vectors are FixedSizeList<Float32>
 * (one row per item, `dim` floats each). Written in record batches as they come, to a temp file
 * renamed into place on close, so a reader never sees half a file and inputs larger than memory
 * stream through.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import {
  type Data,
  type DataType,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import { tempPathFor } from "../core/atomic.js";

export type Column =
  | { type: "int32"; values: Int32Array }
  | { type: "float32"; values: Float32Array }
  | { type: "float64"; values: Float64Array }
  | { type: "utf8"; values: readonly string[] }
  /** [rows, dim] row-major. */
  | { type: "vector"; values: Float32Array; dim: number };

export type Columns = Record<string, Column>;

function arrowType(c: Column): DataType {
  switch (c.type) {
    case "int32":
      return new Int32();
    case "float32":
      return new Float32();
    case "float64":
      return new Float64();
    case "utf8":
      return new Utf8();
    case "vector":
      return new FixedSizeList(c.dim, new Field("item", new Float32(), false));
  }
}

function rowsOf(c: Column): number {
  return c.type === "vector" ? c.values.length / c.dim : c.values.length;
}

function columnData(c: Column): Data {
  const length = rowsOf(c);
  switch (c.type) {
    case "utf8":
      return vectorFromArray(c.values, new Utf8()).data[0];
    case "vector": {
      const child = makeData({ type: new Float32(), length: c.values.length, data: c.values, nullCount: 0 });
      return makeData({ type: arrowType(c) as FixedSizeList<Float32>, length, child, nullCount: 0 });
    }
    case "int32":
      return makeData({ type: new Int32(), length, data: c.values, nullCount: 0 });
    case "float32":
      return makeData({ type: new Float32(), length, data: c.values, nullCount: 0 });
    case "float64":
      return makeData({ type: new Float64(), length, data: c.values, nullCount: 0 });
  }
}

function schemaOf(columns: Columns, metadata: Record<string, string>): Schema {
  return new Schema(
    Object.keys(columns).map((name) => new Field(name, arrowType(columns[name]), false)),
    new Map(Object.entries(metadata)),
  );
}

/** One record batch of the columns (all of one length), under `schema` (default: the columns' own). */
export function recordBatch(columns: Columns, schema: Schema = schemaOf(columns, {})): RecordBatch {
  const names = Object.keys(columns);
  const n = rowsOf(columns[names[0]]);
  for (const name of names)
    if (rowsOf(columns[name]) !== n) throw new RangeError(`arrow columns: ${name} has ${rowsOf(columns[name])} rows, ${names[0]} has ${n}`);
  const data = makeData({ type: new Struct(schema.fields), length: n, children: names.map((k) => columnData(columns[k])), nullCount: 0 });
  return new RecordBatch(schema, data);
}

/** Streams record batches of the same columns into an Arrow IPC file at `path`. */
export class ArrowFileWriter {
  private writer: RecordBatchFileWriter | null = null;
  private schema: Schema | null = null;
  private out: WriteStream | null = null;
  private done: Promise<void> = Promise.resolve();
  private readonly tmp: string;
  rows = 0;

  constructor(
    readonly path: string,
    private readonly metadata: Record<string, string> = {},
  ) {
    this.tmp = tempPathFor(path);
  }

  async write(columns: Columns): Promise<void> {
    const n = rowsOf(columns[Object.keys(columns)[0]]);
    if (this.writer === null) {
      await mkdir(dirname(this.path), { recursive: true });
      this.schema = schemaOf(columns, this.metadata);
      const out = createWriteStream(this.tmp);
      this.out = out;
      this.done = new Promise((res, rej) => {
        out.on("finish", () => res());
        out.on("error", rej);
      });
      this.writer = new RecordBatchFileWriter();
      this.writer.toNodeStream().pipe(out);
      this.writer.reset(undefined, this.schema);
    }
    this.writer!.write(recordBatch(columns, this.schema!));
    this.rows += n;
    // Let the file stream drain so memory stays flat on large inputs.
    if (this.out!.writableNeedDrain) await new Promise<void>((r) => this.out!.once("drain", () => r()));
  }

  /** Finishes the file and renames it into place (a file with no rows needs one write first). */
  async close(): Promise<void> {
    if (this.writer === null) throw new Error(`arrow file ${this.path}: nothing written`);
    try {
      this.writer.finish();
      await this.done;
      await rename(this.tmp, this.path);
    } catch (e) {
      await rm(this.tmp, { force: true });
      throw e;
    }
  }

  async abort(): Promise<void> {
    this.out?.destroy(new Error("aborted"));
    await this.done.catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}

/** Writes one table in one go. */
export async function writeArrowFile(path: string, columns: Columns, metadata: Record<string, string> = {}): Promise<void> {
  const w = new ArrowFileWriter(path, metadata);
  await w.write(columns);
  await w.close();
}
