/**
 * Exact cosine search: every query is scored against every corpus vector (no approximation), and the
 * top k come back best first, ties by the lower corpus id. A CorpusIndex holds the corpus normalised
 * once, so repeated searches over one corpus pay only for the scoring (WebAssembly SIMD, kernel.ts).
 */
import { DotKernel } from "./kernel.js";
import { checkMatrix, type Matrix, normalizeRows, unitRowsInPlace } from "./matrix.js";

/** One result: the corpus row and its cosine similarity to the query. */
export interface SearchHit {
  corpusId: number;
  score: number;
}

export interface TopKOptions {
  /** Hits per query (default 10; at most the corpus size). */
  topK?: number;
}

/** A corpus of vectors ready for search: normalised once, reused by every search over it. */
export class CorpusIndex {
  private readonly kernel: DotKernel;

  private constructor(
    readonly rows: number,
    readonly dim: number,
    kernel: DotKernel,
  ) {
    this.kernel = kernel;
  }

  /** Indexes the rows of `corpus` (its vectors are copied, normalised; the matrix is not kept); `what` names it in errors. */
  static of(corpus: Matrix, what = "search: corpus"): CorpusIndex {
    checkMatrix(corpus, what);
    const { rows, dim } = corpus;
    const kernel = new DotKernel(rows, dim);
    const dest = kernel.corpus;
    for (let r = 0; r < rows; r++) dest.set(corpus.data.subarray(r * dim, (r + 1) * dim), r * kernel.stride);
    unitRowsInPlace(dest, kernel.stride); // the pad floats are zero: the norms are the rows' own
    return new CorpusIndex(rows, dim, kernel);
  }

  /** The top `topK` corpus rows for each query row, best first. */
  search(queries: Matrix, opts: TopKOptions = {}): SearchHit[][] {
    const k = Math.min(checkTopK(opts?.topK ?? 10), this.rows);
    const out: SearchHit[][] = [];
    this.eachQuery(queries, "search: queries", (scores) => out.push(topK(scores, k)));
    return out;
  }

  /** The cosine of every query row with every corpus row: [queries.rows, rows]. */
  similarity(queries: Matrix): Matrix {
    const out = new Float32Array(queries.rows * this.rows);
    let q = 0;
    this.eachQuery(queries, "similarity: a", (scores) => out.set(scores, this.rows * q++));
    return { data: out, rows: queries.rows, dim: this.rows };
  }

  /** Scores each query row (normalised) against the corpus; `use` gets a view valid until the next query. */
  private eachQuery(queries: Matrix, what: string, use: (scores: Float32Array) => void): void {
    checkMatrix(queries, what);
    if (queries.dim !== this.dim && queries.rows > 0)
      throw new RangeError(`${what}: ${queries.dim}-d vectors, the corpus ${this.dim}-d (vectors of different runs?)`);
    const unit = normalizeRows(queries);
    for (let q = 0; q < unit.rows; q++) use(this.kernel.scores(unit.data.subarray(q * this.dim, (q + 1) * this.dim)));
  }
}

/** Cosine similarity of every row of a with every row of b: [a.rows, b.rows] (a zero vector's cosines are 0). */
export function cosineSimilarity(a: Matrix, b: Matrix): Matrix {
  checkMatrix(a, "similarity: a"); // before b's index is made
  return CorpusIndex.of(b, "similarity: b").similarity(a);
}

/** Exact cosine top-k of each query row over the corpus rows (a Matrix is indexed for this call only). */
export function semanticSearch(queries: Matrix, corpus: Matrix | CorpusIndex, opts: TopKOptions = {}): SearchHit[][] {
  return (corpus instanceof CorpusIndex ? corpus : CorpusIndex.of(corpus)).search(queries, opts);
}

export function checkTopK(k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`search: topK must be a whole number >= 1, got ${k}`);
  return k;
}

/** True when hit (s, i) ranks before (t, j): higher score, then lower id. */
const before = (s: number, i: number, t: number, j: number) => s > t || (s === t && i < j);

/**
 * The k best of `scores`, best first: a min-heap of the k best so far (its root the worst of them), so each
 * score costs one comparison unless it enters the heap. A NaN score (a NaN or infinite vector) ranks after every
 * number, as in the notebook's semantic_search, so it never pushes a real match out.
 */
export function topK(scores: Float32Array, k: number): SearchHit[] {
  const n = scores.length;
  k = Math.min(k, n);
  if (k === 0) return [];
  const ids = new Int32Array(k);
  const vals = new Float32Array(k);
  // the heap orders by "ranks worse": the root is the hit the next better one replaces
  const worse = (a: number, b: number) => before(vals[b], ids[b], vals[a], ids[a]);
  const swap = (a: number, b: number) => {
    const i = ids[a];
    ids[a] = ids[b];
    ids[b] = i;
    const v = vals[a];
    vals[a] = vals[b];
    vals[b] = v;
  };
  const down = (size: number, at: number) => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let w = at;
      if (l < size && worse(l, w)) w = l;
      if (r < size && worse(r, w)) w = r;
      if (w === at) return;
      swap(at, w);
      at = w;
    }
  };
  // the heap holds rank keys: NaN as -Infinity (no cosine is that low); `s > vals[0]` below lets no NaN in
  for (let i = 0; i < k; i++) {
    ids[i] = i;
    vals[i] = Number.isNaN(scores[i]) ? Number.NEGATIVE_INFINITY : scores[i];
  }
  for (let i = (k >> 1) - 1; i >= 0; i--) down(k, i);
  for (let i = k; i < n; i++) {
    const s = scores[i];
    if (s > vals[0]) {
      ids[0] = i;
      vals[0] = s;
      down(k, 0);
    }
  }
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => (before(vals[a], ids[a], vals[b], ids[b]) ? -1 : 1));
  return order.map((j) => ({ corpusId: ids[j], score: scores[ids[j]] }));
}
