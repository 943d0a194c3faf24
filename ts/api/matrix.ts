/**
 * Sentence vectors as the API hands them out: a row-major Float32Array with its shape, and the plain
 * vector arithmetic on it (L2 normalisation, cosine similarity) that needs no backend.
 */
import { Table } from "apache-arrow";
import { type Columns, recordBatch } from "../eval/arrowFile.js";

/** `rows` vectors of `dim` floats, row-major: row i is data[i * dim, (i + 1) * dim). */
export interface Matrix {
  readonly data: Float32Array;
  readonly rows: number;
  readonly dim: number;
}

/** Checks that `m` is a Matrix whose data holds exactly rows x dim floats; `what` names it in the error. */
export function checkMatrix(m: Matrix, what: string): void {
  if (!(m?.data instanceof Float32Array)) throw new TypeError(`${what}: not a Matrix (needs data: Float32Array, rows, dim)`);
  if (!Number.isInteger(m.rows) || m.rows < 0 || !Number.isInteger(m.dim) || m.dim < 0)
    throw new TypeError(`${what}: rows and dim must be whole numbers >= 0 (got ${m.rows} x ${m.dim})`);
  if (m.data.length !== m.rows * m.dim) throw new RangeError(`${what}: ${m.rows} x ${m.dim} needs ${m.rows * m.dim} floats, data holds ${m.data.length}`);
}

/** Row i of m: a view, not a copy. */
export function rowOf(m: Matrix, i: number): Float32Array {
  if (!Number.isInteger(i) || i < 0 || i >= m.rows) throw new RangeError(`row ${i}: the matrix has rows 0..${m.rows - 1}`);
  return m.data.subarray(i * m.dim, (i + 1) * m.dim);
}

/** Scales each row of `data` ([rows, dim]) to unit length in place (a zero row stays zero); norms summed in float64. */
export function unitRowsInPlace(data: Float32Array, dim: number): Float32Array {
  for (let o = 0; o < data.length; o += dim) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += data[o + j] * data[o + j];
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let j = 0; j < dim; j++) data[o + j] *= inv;
  }
  return data;
}

/** Rows scaled to unit length (a zero row stays zero), as a new matrix. */
export function normalizeRows(m: Matrix): Matrix {
  checkMatrix(m, "normalizeRows");
  return { data: unitRowsInPlace(Float32Array.from(m.data), m.dim), rows: m.rows, dim: m.dim };
}

/** The sentence vectors of one `embed` call, in input order, with the texts they came from. */
export class Embeddings implements Matrix {
  constructor(
    readonly data: Float32Array,
    readonly rows: number,
    readonly dim: number,
    readonly texts: readonly string[],
    /** Texts cut at the tokenizer's maxLen, and the tokens that dropped. */
    readonly truncated: number,
    readonly truncatedTokens: number,
  ) {}

  /** Vector i (a view). */
  row(i: number): Float32Array {
    return rowOf(this, i);
  }

  /** An Arrow table: text (utf8) and vector (FixedSizeList<float32>), as `bridge embed` writes them (without its line column). */
  toArrow(): Table {
    const columns: Columns = { text: { type: "utf8", values: this.texts }, vector: { type: "vector", values: this.data, dim: this.dim } };
    return new Table([recordBatch(columns)]);
  }
}
