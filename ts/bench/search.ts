/**
 * `npx bridge bench search`: exact cosine top-k over a corpus of synthetic random vectors (100k of the
 * default recipe's 1112 floats: speed does not depend on the values), one query at a time, as a user's
 * search box asks. Reported: the index build (normalise and copy, once per corpus), the per-query
 * latency (median and 95th percentile), and queries/s for a batch. Target: median < 50 ms.
 *
 * Encoding the corpus is a separate cost, stated apart: the API's embed rate (sentences/s) over real
 * sentences with a fresh model of `preset` (or --run's), and what that makes for the corpus size.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEncoder } from "../api/encoder.js";
import type { Matrix } from "../api/matrix.js";
import { CorpusIndex } from "../api/search.js";
import { benchSentences, freshRun } from "./embed.js";

export interface SearchBenchOptions {
  corpus?: number;
  dim?: number;
  queries?: number;
  topK?: number;
  /** Sentences embedded to time the corpus encoding (0: skip it). */
  encodeSentences?: number;
  run?: string;
  preset?: string;
  dataDir?: string;
}

export interface SearchBenchResult {
  corpus_vectors: number;
  dim: number;
  top_k: number;
  queries: number;
  index_build_ms: number;
  query_ms_median: number;
  query_ms_p95: number;
  batch_queries_per_s: number;
  /** The API's embed rate on real sentences, and the corpus encoding time it implies (null: skipped). */
  encode_sentences_per_s: number | null;
  corpus_encode_s_estimated: number | null;
  encode_model: string | null;
}

function randomMatrix(rows: number, dim: number, seed: number): Matrix {
  let s = seed >>> 0;
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return { data, rows, dim };
}

export async function benchSearch(opts: SearchBenchOptions = {}): Promise<SearchBenchResult> {
  const n = opts.corpus ?? 100_000;
  const dim = opts.dim ?? 1112;
  const nq = opts.queries ?? 50;
  const topK = opts.topK ?? 10;
  const corpus = randomMatrix(n, dim, 1);
  const queries = randomMatrix(nq, dim, 2);
  const t0 = performance.now();
  const index = CorpusIndex.of(corpus);
  const buildMs = performance.now() - t0;
  index.search({ data: queries.data.subarray(0, dim), rows: 1, dim }, { topK }); // warm-up (compiles the kernel's tier-up)
  const times: number[] = [];
  for (let q = 0; q < nq; q++) {
    const t = performance.now();
    index.search({ data: queries.data.subarray(q * dim, (q + 1) * dim), rows: 1, dim }, { topK });
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const tb = performance.now();
  index.search(queries, { topK });
  const batchS = (performance.now() - tb) / 1000;
  let rate: number | null = null;
  let model: string | null = null;
  if ((opts.encodeSentences ?? 2000) > 0) {
    const { sentences } = await benchSentences(opts.dataDir, opts.encodeSentences ?? 2000);
    const tmp = mkdtempSync(join(tmpdir(), "bridge-bench-search-"));
    try {
      const preset = opts.preset ?? "cpu_small";
      if (opts.run === undefined) await freshRun(tmp, sentences, preset);
      model = opts.run ?? `fresh ${preset}`;
      await using enc = await openEncoder(opts.run ?? join(tmp, "bench"));
      await enc.embed(sentences.slice(0, 100)); // warm-up
      const t = performance.now();
      await enc.embed(sentences);
      rate = sentences.length / ((performance.now() - t) / 1000);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return {
    corpus_vectors: n,
    dim,
    top_k: topK,
    queries: nq,
    index_build_ms: buildMs,
    query_ms_median: times[Math.floor(nq / 2)],
    query_ms_p95: times[Math.min(nq - 1, Math.floor(nq * 0.95))],
    batch_queries_per_s: nq / batchS,
    encode_sentences_per_s: rate,
    corpus_encode_s_estimated: rate === null ? null : n / rate,
    encode_model: model,
  };
}
