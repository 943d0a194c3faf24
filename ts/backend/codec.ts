/**
 * Tensor <-> frame codec (the rules are in protocol.ts).
 *
 * Decoding returns typed-array views over the received frame whenever its alignment allows
 * (Arrow IPC aligns bodies to 8 bytes, so in practice always): no copy. Encoding a raw frame
 * hands the tensor's own bytes to ZeroMQ; an Arrow frame costs one copy, so tensors of at least
 * RAW_THRESHOLD_BYTES go raw.
 */
import {
  type DataType,
  Field,
  Float16,
  Float32,
  Float64,
  Int8,
  Int16,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Uint8,
  Uint16,
} from "apache-arrow";
import { ARRAY_TYPE, type DType, itemSize, numel, type Tensor, type TensorData, tensorBytes } from "../core/tensor.js";
import type { Encoding, TensorMeta } from "./protocol.js";
import { ProtocolError } from "./protocol.js";

export const RAW_THRESHOLD_BYTES = 1 << 20;

/** The Arrow type each dtype travels as (bool as uint8: Arrow's bool is bit-packed). */
const ARROW_TYPE: Record<DType, () => DataType> = {
  float32: () => new Float32(),
  float64: () => new Float64(),
  float16: () => new Float16(),
  bfloat16: () => new Uint16(),
  int8: () => new Int8(),
  int16: () => new Int16(),
  int32: () => new Int32(),
  int64: () => new Int64(),
  uint8: () => new Uint8(),
  bool: () => new Uint8(),
};

export class TensorDecodeError extends ProtocolError {
  override name = "TensorDecodeError";
}

/** A view of `bytes` as the dtype's typed array; copies only when the offset is misaligned. */
function typedView(dtype: DType, bytes: Uint8Array, n: number, name: string): TensorData {
  const size = itemSize(dtype);
  if (bytes.byteLength !== n * size) {
    throw new TensorDecodeError(`tensor ${name}: ${n} ${dtype} values need ${n * size} bytes, got ${bytes.byteLength}`);
  }
  const Ctor = ARRAY_TYPE[dtype];
  if (bytes.byteOffset % size === 0) return new Ctor(bytes.buffer, bytes.byteOffset, n);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Ctor(copy.buffer, 0, n);
}

/** The values' bytes inside an Arrow frame, fully checked by apache-arrow. */
function parseArrow(meta: TensorMeta, frame: Uint8Array): Uint8Array {
  const n = numel(meta.shape);
  let batch: RecordBatch | null;
  try {
    batch = RecordBatchReader.from(frame).next().value ?? null;
  } catch (err) {
    throw new TensorDecodeError(`tensor ${meta.name}: not an Arrow IPC stream (${(err as Error).message})`);
  }
  if (batch?.numCols !== 1) throw new TensorDecodeError(`tensor ${meta.name}: expected one record batch of one column`);
  const data = batch.getChildAt(0)!.data[0];
  const expected = ARROW_TYPE[meta.dtype]();
  if (String(data.type) !== String(expected)) {
    throw new TensorDecodeError(`tensor ${meta.name}: ${meta.dtype} travels as Arrow ${expected}, got ${data.type}`);
  }
  if (data.nullCount > 0) throw new TensorDecodeError(`tensor ${meta.name}: has nulls`);
  if (data.length !== n) throw new TensorDecodeError(`tensor ${meta.name}: shape [${meta.shape}] needs ${n} values, got ${data.length}`);
  const values = data.values as TensorData;
  return new Uint8Array(values.buffer, values.byteOffset, n * itemSize(meta.dtype));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

interface Layout {
  start: number;
  prefix: Uint8Array;
  suffix: Uint8Array;
}

/**
 * Where the values sit in Arrow frames already parsed, keyed by dtype, count and frame size.
 * Two frames whose bytes agree everywhere but in the values region carry the same metadata,
 * hence the same layout: such a frame is read without parsing it again. Writing works the same
 * way: the bytes apache-arrow wrote around one stream's values are those around any values of
 * that dtype and count. (Parsing and writing a 16 KiB batch cost ~30 µs each; this, ~1 µs.)
 */
const readLayouts = new Map<string, Layout>();
const writeTemplates = new Map<string, Layout>();
const MAX_LAYOUTS = 256;

function remember(cache: Map<string, Layout>, key: string, layout: Layout): void {
  if (cache.size >= MAX_LAYOUTS) cache.clear();
  cache.set(key, layout);
}

function arrowValues(meta: TensorMeta, frame: Uint8Array): Uint8Array {
  const n = numel(meta.shape);
  const key = `${meta.dtype}:${n}:${frame.byteLength}`;
  const hit = readLayouts.get(key);
  if (hit) {
    const end = frame.byteLength - hit.suffix.byteLength;
    if (sameBytes(frame.subarray(0, hit.start), hit.prefix) && sameBytes(frame.subarray(end), hit.suffix)) return frame.subarray(hit.start, end);
  }
  const values = parseArrow(meta, frame);
  if (n > 0 && values.buffer === frame.buffer) {
    const start = values.byteOffset - frame.byteOffset;
    remember(readLayouts, key, { start, prefix: frame.slice(0, start), suffix: frame.slice(start + values.byteLength) });
  }
  return values;
}

export function decodeTensor(meta: TensorMeta, frame: Uint8Array): Tensor {
  const n = numel(meta.shape);
  const bytes = meta.encoding === "raw" ? frame : arrowValues(meta, frame);
  return { dtype: meta.dtype, shape: meta.shape, data: typedView(meta.dtype, bytes, n, meta.name) };
}

export interface EncodedTensor {
  meta: TensorMeta;
  frame: Uint8Array;
}

/** One frame for `t`; the encoding defaults to raw for large tensors. */
export function encodeTensor(name: string, t: Tensor, encoding?: Encoding): EncodedTensor {
  const bytes = tensorBytes(t);
  const enc: Encoding = encoding ?? (bytes.byteLength >= RAW_THRESHOLD_BYTES ? "raw" : "arrow");
  const meta: TensorMeta = { name, dtype: t.dtype, shape: [...t.shape], encoding: enc };
  if (enc === "raw") return { meta, frame: bytes };
  const { prefix, suffix } = arrowTemplate(t.dtype, t.data.length);
  // every byte is written below, so the frame need not be zero-filled first
  const frame: Uint8Array = Buffer.allocUnsafeSlow(prefix.byteLength + bytes.byteLength + suffix.byteLength);
  frame.set(prefix, 0);
  frame.set(bytes, prefix.byteLength);
  frame.set(suffix, prefix.byteLength + bytes.byteLength);
  return { meta, frame };
}

/** The bytes apache-arrow writes before and after the values of an n-value stream of `dtype`. */
function arrowTemplate(dtype: DType, n: number): Layout {
  const key = `${dtype}:${n}`;
  const hit = writeTemplates.get(key);
  if (hit) return hit;
  const type = ARROW_TYPE[dtype]();
  // bool and bfloat16 travel as the integer type of their width
  const values = new ARRAY_TYPE[dtype === "bool" ? "uint8" : dtype](n);
  const column = makeData({ type, length: n, nullCount: 0, data: values } as Parameters<typeof makeData>[0]);
  const field = new Field("values", type, false);
  const struct = makeData({ type: new Struct([field]), length: n, nullCount: 0, children: [column] });
  const stream = RecordBatchStreamWriter.writeAll([new RecordBatch(new Schema([field]), struct)]).toUint8Array(true);
  const region = parseArrow({ name: "template", dtype, shape: [n], encoding: "arrow" }, stream);
  if (n > 0 && region.buffer !== stream.buffer) throw new Error(`codec: apache-arrow copied the values of a ${dtype} stream; cannot template it`);
  const start = n === 0 ? stream.byteLength : region.byteOffset - stream.byteOffset; // empty: any split point is right
  const layout = { start, prefix: stream.slice(0, start), suffix: stream.slice(start + region.byteLength) };
  remember(writeTemplates, key, layout);
  return layout;
}
