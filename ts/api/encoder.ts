/**
 * A trained run as a library object: `openEncoder(run)` loads the run's final checkpoint into one backend
 * (spawned here, or a `bridge serve` elsewhere) and keeps it for every later call, until `close()`.
 *
 *   await using enc = await openEncoder("latest");
 *   const v = await enc.embed(["A man plays a guitar.", "Someone is making music."]);   // v.rows x v.dim
 *   const hits = await enc.search(["music"], corpusSentences, { topK: 5 });            // [{ corpusId, score }]
 *
 * Vectors come from the run model's own encode path (eval/runModel.ts: tokenise, sort by length, batch, a
 * few calls in flight, input order restored) in chunks of CHUNK_ROWS texts, which is exactly how `bridge
 * embed` (embedFile.ts, on top of this) reads its input: same batches, so the same bits. Calls may overlap
 * (the backend serves them in turn; each call's rows come back in its own input order).
 */
import { BackendClient, BackendDiedError } from "../backend/client.js";
import { type CurveClientKeys, loadClientKeys } from "../backend/keys.js";
import { numericaliseTexts } from "../data/numericalised.js";
import { RunModel } from "../eval/runModel.js";
import { locateRun } from "../run/manifest.js";
import { Embeddings, type Matrix, unitRowsInPlace } from "./matrix.js";
import { CorpusIndex, checkTopK, cosineSimilarity, type SearchHit } from "./search.js";

/** Texts per encode pass: `bridge embed` reads its input in chunks of this many, and the API encodes alike. */
export const CHUNK_ROWS = 8192;

export interface OpenEncoderOptions {
  /** Where run names are looked up (default: $BRIDGE_RUNS_DIR, else ./runs). */
  runsDir?: string;
  /** A checkpoint instead of the run's final one (absolute; relative to the run folder, as run.json names them; else to
   * the working folder). One of the run's own is recorded as run.json names it. */
  checkpoint?: string;
  /** torch device of a backend started here (default: cuda when available, else cpu). */
  device?: string;
  /** Tokens kept per text, xxbos included (default: the run's tokenizer.maxLen); longer texts are cut and counted. */
  maxLen?: number;
  /** A running backend (`bridge serve`): tcp://HOST:PORT, with `keys`. It must see the run folder at the same path. */
  backend?: string;
  /** The client keys for `backend`: client.json's path (from `bridge keys`) or the keys themselves. */
  keys?: string | CurveClientKeys;
  /** How error messages name the run (default: openEncoder("RUN"); the command line: --run RUN). */
  label?: string;
  /** How error messages name the checkpoint option (default: openEncoder's checkpoint; the command line: --checkpoint). */
  checkpointLabel?: string;
}

export interface EmbedOptions {
  /** Sentences per encode call (default 128; vectors equal to float32 rounding whatever it is, bit-equal to `bridge embed` at the same value). */
  batchSize?: number;
  /** Scale every vector to unit length (default false: the vectors `bridge embed` writes). */
  normalize?: boolean;
  /** Called as chunks finish: texts done so far, and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface SearchOptions {
  /** Hits per query (default 10; at most the corpus size). */
  topK?: number;
  /** Sentences per encode call for the texts among the queries and corpus (default 128). */
  batchSize?: number;
}

/** Sentences to embed, one vector each. */
export type Texts = readonly string[];

/** The encoder was closed (or is closing) when a call came. */
export class EncoderClosedError extends Error {
  override name = "EncoderClosedError";
}

/** Opens a run for embedding and search: by name (in runsDir), by folder (a path), or "latest" (the default). */
export async function openEncoder(run = "latest", opts: OpenEncoderOptions = {}): Promise<Encoder> {
  return Encoder.open(run, options(opts, "openEncoder"));
}

export class Encoder implements AsyncDisposable {
  private readonly active = new Set<Promise<unknown>>();
  private closing: Promise<void> | null = null;
  private died: Error | null = null;

  private constructor(
    private readonly model: RunModel,
    /** The run's name (its folder's name). */
    readonly run: string,
    /** The run folder. */
    readonly dir: string,
    /** Floats per vector. */
    readonly dim: number,
    private readonly remote: BackendClient | null,
  ) {}

  static async open(run: string, opts: OpenEncoderOptions = {}): Promise<Encoder> {
    if (typeof run !== "string" || run === "") throw new TypeError(`openEncoder: run must be a run name, a run folder or "latest", got ${JSON.stringify(run)}`);
    const label = opts.label ?? `openEncoder(${JSON.stringify(run)})`;
    let located: { name: string; runsDir: string };
    try {
      located = locateRun(run, opts.runsDir);
    } catch (e) {
      throw new Error(`${label}: ${(e as Error).message}`, { cause: e });
    }
    const { name, runsDir } = located;
    if (opts.maxLen !== undefined && (!Number.isInteger(opts.maxLen) || opts.maxLen < 2))
      throw new RangeError(`openEncoder: maxLen must be a whole number >= 2 (xxbos and one token), got ${opts.maxLen}`);
    let remote: BackendClient | null = null;
    if (opts.backend !== undefined) {
      if (opts.device !== undefined)
        throw new Error("openEncoder: device picks the device of a backend started here; a served backend chose its own (drop device)");
      const curve = typeof opts.keys === "string" ? loadClientKeys(opts.keys) : opts.keys;
      remote = await BackendClient.connect(opts.backend, curve ? { curve } : {});
    } else if (opts.keys !== undefined) {
      throw new Error("openEncoder: keys go with backend: tcp://HOST:PORT");
    }
    let model: RunModel;
    try {
      model = await RunModel.open({
        run: name,
        runsDir,
        checkpoint: opts.checkpoint,
        checkpointLabel: opts.checkpointLabel ?? "openEncoder's checkpoint",
        device: opts.device,
        tokenizer: opts.maxLen !== undefined ? { maxLen: opts.maxLen } : {},
        ...(remote ? { client: remote } : {}),
      });
    } catch (e) {
      await remote?.close();
      throw new Error(`${label}: ${(e as Error).message.replace(/^bridge: /, "")}`, { cause: e });
    }
    try {
      // the vector size, known before the first real call: one empty sentence through the model
      const probe = await model.encode(numericaliseTexts([""], model.vocab, model.tokenizer).ragged);
      return new Encoder(model, name, model.paths.dir, probe.dim, remote);
    } catch (e) {
      await model.close();
      await remote?.close();
      throw e;
    }
  }

  /** The checkpoint loaded (relative to the run folder, as run.json names it, or as given). */
  get checkpoint(): string {
    return this.model.checkpoint;
  }

  /** Set when the run has not finished training and no checkpoint was asked for: which earlier stage's checkpoint
   * was loaded instead of the run's result. */
  get unfinished(): string | null {
    return this.model.unfinished;
  }

  /** The process id of a backend started here (null: a served backend). */
  get backendPid(): number | null {
    return this.model.client.process?.pid ?? null;
  }

  /** Tokens kept per text, xxbos included (null: no cut). */
  get maxLen(): number | null {
    return this.model.tokenizer.settings.maxLen;
  }

  /** One vector per sentence, in input order. */
  embed(sentences: Texts, opts: EmbedOptions = {}): Promise<Embeddings> {
    return this.track("embed", () => this.encodeTexts(checkTexts(sentences, "embed: sentences"), options(opts, "embed")));
  }

  /** Cosine similarity of every a with every b: [a.length, b.length]; sentences are embedded, vectors used as they are. */
  similarity(a: Texts | Matrix, b: Texts | Matrix, opts: Pick<EmbedOptions, "batchSize"> = {}): Promise<Matrix> {
    return this.track("similarity", async () => {
      const o = options(opts, "similarity");
      const [va, vb] = await Promise.all([this.vectors(a, "similarity: a", o), this.vectors(b, "similarity: b", o)]);
      return cosineSimilarity(va, vb);
    });
  }

  /** A corpus embedded and normalised once, for any number of searches. */
  index(corpus: Texts | Matrix, opts: Pick<EmbedOptions, "batchSize"> = {}): Promise<CorpusIndex> {
    return this.track("index", async () => CorpusIndex.of(await this.vectors(corpus, "index: corpus", options(opts, "index")), "index: corpus"));
  }

  /** The topK corpus entries nearest each query by cosine (exact), best first: `{ corpusId, score }` per hit. */
  search(queries: Texts | Matrix, corpus: Texts | Matrix | CorpusIndex, opts: SearchOptions = {}): Promise<SearchHit[][]> {
    return this.track("search", async () => {
      const o = options(opts, "search");
      if (o.topK !== undefined) checkTopK(o.topK); // before any embedding: a bad topK must not cost the corpus's encoding first
      const index = corpus instanceof CorpusIndex ? corpus : CorpusIndex.of(await this.vectors(corpus, "search: corpus", o));
      if (index.dim !== this.dim) throw new RangeError(`search: the corpus holds ${index.dim}-d vectors; run ${this.run} makes ${this.dim}-d ones`);
      return index.search(await this.vectors(queries, "search: queries", o), { topK: o.topK });
    });
  }

  /**
   * Waits for the calls in flight, then stops the backend (one started here; a served one is only disconnected).
   * Later calls fail with EncoderClosedError. Calling it again is harmless.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.active]);
      await this.model.close();
      await this.remote?.close();
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Runs one API call: refused once closing, counted as in flight until it settles (close waits for it). */
  private track<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.closing !== null)
      return Promise.reject(new EncoderClosedError(`bridge: ${what}: the encoder of run ${this.run} is closed; open it again with openEncoder()`));
    if (this.died !== null)
      return Promise.reject(
        new Error(`bridge: ${what}: the backend of run ${this.run}'s encoder died earlier (${firstLine(this.died)}); close it and open the run again`, {
          cause: this.died,
        }),
      );
    const p = (async () => work())().catch((e: unknown) => {
      if (e instanceof BackendDiedError) this.died = e;
      throw e;
    });
    this.active.add(p);
    const forget = () => this.active.delete(p);
    p.then(forget, forget);
    return p;
  }

  private vectors(x: Texts | Matrix, what: string, opts: Pick<EmbedOptions, "batchSize">): Promise<Matrix> {
    if (Array.isArray(x)) return this.encodeTexts(checkTexts(x, what), opts);
    if (!isMatrix(x)) return Promise.reject(new TypeError(`${what}: expected an array of strings or a Matrix, got ${describeValue(x)}`));
    const m = x;
    if (m.dim !== this.dim && m.rows > 0) return Promise.reject(new RangeError(`${what}: ${m.dim}-d vectors; run ${this.run} makes ${this.dim}-d ones`));
    return Promise.resolve(m);
  }

  private async encodeTexts(texts: Texts, opts: EmbedOptions): Promise<Embeddings> {
    const batchSize = opts.batchSize ?? 128;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`embed: batchSize must be a whole number >= 1, got ${batchSize}`);
    if (opts.normalize !== undefined && typeof opts.normalize !== "boolean")
      throw new TypeError(`embed: normalize must be true or false, got ${describeValue(opts.normalize)}`);
    texts = [...texts]; // the result names its texts: a copy, so that a caller changing the array later does not change them
    // one chunk: the encode's own array (already in input order, nobody else holds it); more: copied into one
    let out: Float32Array | null = texts.length > CHUNK_ROWS ? new Float32Array(texts.length * this.dim) : null;
    let truncated = 0;
    let truncatedTokens = 0;
    for (let start = 0; start < texts.length; start += CHUNK_ROWS) {
      const chunk = texts.slice(start, start + CHUNK_ROWS);
      const { ragged, counts } = numericaliseTexts(chunk, this.model.vocab, this.model.tokenizer);
      truncated += counts.truncated;
      truncatedTokens += counts.truncatedTokens;
      const enc = await this.model.encode(ragged, { batchSize, onProgress: opts.onProgress && ((k) => opts.onProgress!(start + k, texts.length)) });
      if (out === null) out = enc.vectors;
      else out.set(enc.vectors, start * this.dim);
    }
    out ??= new Float32Array(0); // no texts
    const m = opts.normalize ? unitRowsInPlace(out, this.dim) : out;
    return new Embeddings(m, texts.length, this.dim, texts, truncated, truncatedTokens);
  }
}

function checkTexts(texts: Texts, what: string): Texts {
  if (!Array.isArray(texts)) throw new TypeError(`${what}: expected an array of strings, got ${describeValue(texts)}`);
  const bad = texts.findIndex((t) => typeof t !== "string");
  if (bad >= 0) throw new TypeError(`${what}[${bad}]: ${describeValue(texts[bad])}, not a string`);
  return texts;
}

/** A call's options: omitted, null (from JavaScript) and {} alike mean the defaults; anything else but an object is refused. */
function options<T extends object>(opts: T | null | undefined, what: string): T {
  if (opts === undefined || opts === null) return {} as T;
  if (typeof opts !== "object" || Array.isArray(opts)) throw new TypeError(`${what}: options must be an object, got ${describeValue(opts)}`);
  return opts;
}

function isMatrix(x: unknown): x is Matrix {
  return typeof x === "object" && x !== null && (x as Matrix).data instanceof Float32Array;
}

/** What a wrong argument was, for an error message: "a string", "null", "an object", ... */
function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return "an array";
  const t = typeof v;
  return `${/^[aeiou]/.test(t) ? "an" : "a"} ${t}`;
}

function firstLine(e: Error): string {
  return e.message.split("\n")[0].replace(/^bridge: /, "");
}
