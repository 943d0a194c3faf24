import { RecordBatchReader, tableFromIPC } from "apache-arrow";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeTensor, encodeTensor, TensorDecodeError } from "../../ts/backend/codec.js";
import { ARRAY_TYPE, DTYPES, type DType, numel, type Tensor, tensor } from "../../ts/core/tensor.js";

function sample(dtype: DType, shape: number[]): Tensor {
  const n = numel(shape);
  const data = new ARRAY_TYPE[dtype](n);
  for (let i = 0; i < n; i++) {
    if (data instanceof BigInt64Array) data[i] = BigInt(i * 1_000_003 - 7) * 1_000_000_007n;
    else if (dtype === "bool") data[i] = i % 3 === 0 ? 1 : 0;
    else data[i] = (i * 37) % 120;
  }
  return tensor(dtype, shape, data as never);
}

const SHAPES = [[5], [2, 3], [0], [4, 0, 2], [64, 2, 32], []];

test("every dtype and shape survives an Arrow round trip, twice (template and cached layout)", () => {
  for (const dtype of DTYPES) {
    for (const shape of SHAPES) {
      const t = sample(dtype, shape);
      for (let round = 0; round < 2; round++) {
        const { meta, frame } = encodeTensor("x", t, "arrow");
        const back = decodeTensor(meta, frame);
        assert.is(back.dtype, dtype);
        assert.equal([...back.shape], shape);
        assert.equal(Array.from(back.data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), `${dtype} [${shape}]`);
      }
    }
  }
});

test("raw frames round trip and are views of the tensor's memory", () => {
  const t = sample("float32", [3, 4]);
  const { meta, frame } = encodeTensor("x", t, "raw");
  assert.is(meta.encoding, "raw");
  assert.is(frame.buffer, t.data.buffer);
  assert.equal(Array.from(decodeTensor(meta, frame).data as Float32Array), Array.from(t.data as Float32Array));
});

test("large tensors go raw, small ones as Arrow", () => {
  assert.is(encodeTensor("s", sample("int32", [64, 2, 32])).meta.encoding, "arrow");
  assert.is(encodeTensor("l", sample("float32", [1 << 19])).meta.encoding, "raw");
});

test("our Arrow frames are valid Arrow IPC streams of the declared type", () => {
  const t = sample("int64", [3, 2]);
  const { frame } = encodeTensor("x", t, "arrow");
  const table = tableFromIPC(frame);
  assert.is(table.numRows, 6);
  assert.is(String(table.schema.fields[0].type), "Int64");
  assert.equal(Array.from(table.getChildAt(0)!.toArray() as BigInt64Array), Array.from(t.data as BigInt64Array));
  const bf = encodeTensor("b", sample("bfloat16", [4]), "arrow").frame;
  assert.is(String([...RecordBatchReader.from(bf)][0].schema.fields[0].type), "Uint16");
});

test("decoding gives a view over the frame, not a copy", () => {
  const { meta, frame } = encodeTensor("x", sample("int32", [8]), "arrow");
  const back = decodeTensor(meta, frame);
  assert.is(back.data.buffer, frame.buffer);
});

test("a frame whose metadata differs from a cached layout is parsed, not misread", () => {
  const a = encodeTensor("x", sample("int32", [16]), "arrow");
  decodeTensor(a.meta, a.frame); // caches the layout of int32 x16
  // same size, but the frame claims float32: must be refused, not read through the cache
  const f = encodeTensor("x", sample("float32", [16]), "arrow");
  assert.throws(
    () => decodeTensor({ ...f.meta, dtype: "int32" }, f.frame),
    (e: Error) => e instanceof TensorDecodeError && /travels as Arrow/.test(e.message),
  );
});

test("bad frames are refused with errors that name the tensor", () => {
  const { meta, frame } = encodeTensor("tokens", sample("int32", [10]), "arrow");
  assert.throws(
    () => decodeTensor(meta, frame.subarray(0, frame.length - 20)),
    (e: Error) => e instanceof TensorDecodeError && e.message.includes("tokens"),
  );
  assert.throws(() => decodeTensor({ ...meta, shape: [11] }, frame), /needs 11 values/);
  assert.throws(() => decodeTensor({ ...meta, encoding: "raw", shape: [3] }, new Uint8Array(10)), /need 12 bytes/);
  assert.throws(
    () => decodeTensor(meta, new Uint8Array([1, 2, 3])),
    (e: Error) => e instanceof TensorDecodeError,
  );
});

test("tensor() checks its data against dtype and shape", () => {
  assert.throws(() => tensor("int32", [2, 2], new Int32Array(3)), /holds 4 values/);
  assert.throws(() => tensor("int64", [1], new Int32Array(1) as never), /BigInt64Array/);
  assert.throws(() => tensor("float32", [-1], new Float32Array(0)), /bad dimension/);
});

test.run();
