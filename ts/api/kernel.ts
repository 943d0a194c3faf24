/**
 * The dot-product kernel of exact search: one WebAssembly function with 128-bit SIMD, about 4x a plain
 * JavaScript loop here (V8 does not vectorise typed-array loops), which is what keeps one query over 100k
 * corpus vectors under 50 ms (`bench search`). Hand-assembled (no assembler is a dependency); the text form:
 *
 *   (func (export "dots") (param $c i32) (param $n i32) (param $rowBytes i32) (param $q i32) (param $out i32)
 *     for each of $n rows at $c: out[r] = sum over j of c[r][j] * q[j], two f32x4 accumulators, 8 floats a step
 *
 * Rows are padded with zeros to a multiple of 8 floats (`paddedDim`), so the loop needs no tail.
 */

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

// locals: the 5 parameters, then j (i32) and two v128 accumulators
const [C, N, ROW_BYTES, Q, OUT, J, ACC0, ACC1] = [0, 1, 2, 3, 4, 5, 6, 7];
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const tee = (i: number) => [0x22, i];
const i32 = (v: number) => [0x41, ...sleb(v)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const [I32_ADD, I32_SUB, I32_EQZ, I32_LT_U, F32_ADD, F32_STORE] = [0x6a, 0x6b, 0x45, 0x49, 0x92, 0x38];
const [BLOCK, LOOP, END, BR_IF, EMPTY] = [0x02, 0x03, 0x0b, 0x0d, 0x40];
const [V128_LOAD, V128_CONST, F32X4_EXTRACT_LANE, F32X4_ADD, F32X4_MUL] = [0x00, 0x0c, 0x1f, 0xe4, 0xe6];
const load = (offset: number) => [...simd(V128_LOAD), 2, ...uleb(offset)]; // align hint 2^2: floats are 4-aligned
const zero = [...simd(V128_CONST), ...new Array<number>(16).fill(0)];
/** acc += c[r][j + offset/4 ..] * q[j + offset/4 ..] (4 lanes) */
const madd = (acc: number, offset: number) => [
  ...get(acc),
  ...[...get(C), ...get(J), I32_ADD, ...load(offset)],
  ...[...get(Q), ...get(J), I32_ADD, ...load(offset)],
  ...simd(F32X4_MUL),
  ...simd(F32X4_ADD),
  ...set(acc),
];
const lane = (k: number) => [...get(ACC0), ...simd(F32X4_EXTRACT_LANE), k];

const BODY = [
  ...[0x02, 0x01, 0x7f, 0x02, 0x7b], // locals: 1 x i32, 2 x v128
  ...[BLOCK, EMPTY, ...get(N), I32_EQZ, BR_IF, 0],
  ...[LOOP, EMPTY],
  ...[...zero, ...set(ACC0), ...zero, ...set(ACC1), ...i32(0), ...set(J)],
  ...[LOOP, EMPTY, ...madd(ACC0, 0), ...madd(ACC1, 16)],
  ...[...get(J), ...i32(32), I32_ADD, ...tee(J), ...get(ROW_BYTES), I32_LT_U, BR_IF, 0, END],
  ...[...get(OUT), ...get(ACC0), ...get(ACC1), ...simd(F32X4_ADD), ...set(ACC0)],
  ...[...lane(0), ...lane(1), F32_ADD, ...lane(2), F32_ADD, ...lane(3), F32_ADD, F32_STORE, 2, 0],
  ...[...get(OUT), ...i32(4), I32_ADD, ...set(OUT), ...get(C), ...get(ROW_BYTES), I32_ADD, ...set(C)],
  ...[...get(N), ...i32(1), I32_SUB, ...tee(N), BR_IF, 0, END],
  ...[END, END],
];

const MODULE = new Uint8Array([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  ...section(1, [1, 0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0]), // type: (i32 x 5) -> ()
  ...section(2, [1, ...name("env"), ...name("memory"), 0x02, 0x00, 0x01]), // import env.memory, at least 1 page
  ...section(3, [1, 0]),
  ...section(7, [1, ...name("dots"), 0x00, 0x00]),
  ...section(10, [1, ...uleb(BODY.length), ...BODY]),
]);

const compiled = new WebAssembly.Module(MODULE);

/** Floats per padded row: the kernel takes 8 at a time. */
export function paddedDim(dim: number): number {
  return Math.ceil(dim / 8) * 8;
}

const PAGE = 65536;

/**
 * A WebAssembly memory laid out as [corpus rows (padded) | one query (padded) | one score per row], sized once,
 * with the kernel bound to it.
 */
export class DotKernel {
  readonly memory: WebAssembly.Memory;
  private readonly dots: (c: number, n: number, rowBytes: number, q: number, out: number) => void;
  readonly stride: number;

  constructor(
    readonly rows: number,
    readonly dim: number,
  ) {
    this.stride = paddedDim(dim);
    const bytes = (rows * this.stride + this.stride + rows) * 4;
    if (bytes > 4 * 1024 ** 3 - PAGE) throw new RangeError(`search: ${rows} vectors of ${dim} floats need ${bytes} bytes; one index holds at most 4 GiB`);
    this.memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
    const instance = new WebAssembly.Instance(compiled, { env: { memory: this.memory } });
    this.dots = instance.exports.dots as DotKernel["dots"];
  }

  /** The corpus rows, [rows, stride] (pad floats zero). */
  get corpus(): Float32Array {
    return new Float32Array(this.memory.buffer, 0, this.rows * this.stride);
  }

  /** Scores of `query` (dim floats) against every corpus row; a view, valid until the next call. */
  scores(query: Float32Array): Float32Array {
    const q = this.rows * this.stride;
    const f32 = new Float32Array(this.memory.buffer);
    f32.set(query.subarray(0, this.dim), q);
    this.dots(0, this.rows, this.stride * 4, q * 4, (q + this.stride) * 4);
    return f32.subarray(q + this.stride, q + this.stride + this.rows);
  }
}
