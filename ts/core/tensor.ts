/**
 * Tensors as the TypeScript side holds them: a dtype, a shape and a flat typed array in C
 * order. The typed array may be a view over a received ZeroMQ frame (no copy): treat tensors
 * that came from the backend as read-only unless you copied them.
 */

export const DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool"] as const;
export type DType = (typeof DTYPES)[number];

/** The typed array that holds each dtype (float16 and bfloat16 as their raw 16-bit patterns). */
export interface TypedArrayFor {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

export type TensorData = TypedArrayFor[DType];

export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: TypedArrayFor[D];
}

type TypedArrayConstructor = {
  new (length: number): TensorData;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TensorData;
  readonly BYTES_PER_ELEMENT: number;
};

export const ARRAY_TYPE: Record<DType, TypedArrayConstructor> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function isDType(value: unknown): value is DType {
  return typeof value === "string" && (DTYPES as readonly string[]).includes(value);
}

export function itemSize(dtype: DType): number {
  return ARRAY_TYPE[dtype].BYTES_PER_ELEMENT;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks that data's length matches the shape and its array type the dtype. */
export function tensor<D extends DType>(dtype: D, shape: readonly number[], data: TypedArrayFor[D]): Tensor<D> {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`tensor: bad dimension ${d} in shape [${shape.join(", ")}]`);
  }
  if (!(data instanceof ARRAY_TYPE[dtype])) {
    throw new TypeError(`tensor: ${dtype} needs a ${ARRAY_TYPE[dtype].name}, got ${data.constructor.name}`);
  }
  const n = numel(shape);
  if (data.length !== n) throw new RangeError(`tensor: shape [${shape.join(", ")}] holds ${n} values, data has ${data.length}`);
  return { dtype, shape: [...shape], data };
}

/** The bytes of a tensor's data, as a view (no copy). */
export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Named tensors, as a request or a reply carries them beside its JSON. */
export type Tensors = Record<string, Tensor>;
