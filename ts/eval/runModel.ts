/**
 * A trained run, opened for inference: its manifest, vocabulary and tokenizer on this side, its
 * checkpoint loaded into a backend on the other. Eval, embed and the embed benchmark all go
 * through it, so they tokenise, batch and encode the same way.
 *
 * Encoding batches rows longest first (little padding) with a few batches in flight (the backend
 * never waits for the next one), then puts the vectors back in input order; the backend pools
 * over real tokens only, so a vector does not depend on its batch-mates.
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { type BackendClient, startBackend } from "../backend/client.js";
import { type LoadResult, type OpArgs, type OpCaller, type OpName, type OpReply, packStepTensors } from "../backend/ops.js";
import { withPipeline } from "../core/pipeline.js";
import { type Tensors, tensor } from "../core/tensor.js";
import { collateSentences, evalBatchPlan, lengthsOf, restoreOrder, restoreRows } from "../data/batches.js";
import { numericaliseTexts, type Ragged } from "../data/numericalised.js";
import { detokenize, Tokenizer, type TokenizerSettings } from "../data/tokenize.js";
import { assertVocabMatches, Vocab } from "../data/vocab.js";
import { type RunManifest, type RunPaths, readManifest, runPaths } from "../run/manifest.js";

export interface OpenRunOptions {
  run: string;
  /** Runs folder (default: BRIDGE_RUNS_DIR, else ./runs). */
  runsDir?: string;
  /** Checkpoint to load instead of the run's final one (absolute, or relative to the run folder). */
  checkpoint?: string;
  /** How errors name the way to choose a checkpoint (default: the command line's "--checkpoint"). */
  checkpointLabel?: string;
  /** torch device (default: cuda when available, else cpu). */
  device?: string;
  /** Tokenizer overrides (embed's --max-len). */
  tokenizer?: Partial<TokenizerSettings>;
  /** An already started backend to use (not closed by close()). */
  client?: BackendClient;
}

/** Batches an encode request carries when the caller does not say. */
export const BATCHES_PER_REQUEST = 8;

/** Encode jobs' ids: unique in this process, so that calls sharing a backend connection never share a job. */
let nextEncodeJob = 1;

export interface EncodeOptions {
  /** Rows per batch (default 128). */
  batchSize?: number;
  /** Batches per encode request (default BATCHES_PER_REQUEST; vectors do not depend on it). */
  batchesPerRequest?: number;
  /** Encode requests in flight at once (default 2). */
  inFlight?: number;
  /** Called after each request with the rows done so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface Encoded {
  /** [n, dim] row-major, in input order. */
  vectors: Float32Array;
  dim: number;
}

export interface NliPredictions {
  /** [n, 3] row-major. */
  probs: Float32Array;
  pred: Int32Array;
}

/**
 * finalCheckpoint follows each completed stage, so a run still training (or stopped) has one from an earlier stage:
 * said, not loaded silently as if it were the run's result.
 */
function unfinishedNote(run: string, manifest: RunManifest, checkpoint: string): string | null {
  const open = manifest.stages.find((s) => !s.completed);
  if (open === undefined) return null;
  return (
    `run ${run} has not finished training (stage ${open.index + 1}/${manifest.stages.length}, ${open.name}, not completed): ` +
    `using ${checkpoint}, the last completed stage's checkpoint`
  );
}

/**
 * A checkpoint the caller named: relative to the run folder (as run.json names them: checkpoints/1-siamese.pt), else
 * to the working folder (a path typed in a shell); one that is neither is named here, before a backend starts.
 */
function givenCheckpoint(file: string, paths: RunPaths, option: string): string {
  const found = [isAbsolute(file) ? file : join(paths.dir, file), resolve(file)].find((p) => existsSync(p));
  if (found === undefined)
    throw new Error(
      isAbsolute(file)
        ? `${option} ${file}: no such file`
        : `${option} ${file}: no such file, in the run folder (${join(paths.dir, file)}) or here (${resolve(file)})`,
    );
  // one of the run's own is named as run.json names it, so that eval knows it for the stage it ends (not an earlier one)
  const inRun = relative(paths.dir, found);
  return inRun !== "" && !inRun.startsWith("..") && !isAbsolute(inRun) ? inRun : found;
}

export class RunModel implements OpCaller {
  private constructor(
    readonly paths: RunPaths,
    readonly manifest: RunManifest,
    readonly vocab: Vocab,
    readonly tokenizer: Tokenizer,
    readonly client: BackendClient,
    private readonly ownsClient: boolean,
    public checkpoint: string,
    /** Set when the run has a stage still to complete and no checkpoint was asked for: what the default loaded, and why. */
    readonly unfinished: string | null,
  ) {}

  static async open(opts: OpenRunOptions): Promise<RunModel> {
    const paths = runPaths(opts.run, opts.runsDir);
    const manifest = readManifest(paths);
    const vocab = await Vocab.load(paths.vocab);
    assertVocabMatches(vocab, manifest.vocab.fingerprint, manifest.vocab.size);
    const option = opts.checkpointLabel ?? "--checkpoint";
    const checkpoint = opts.checkpoint === undefined ? manifest.finalCheckpoint : givenCheckpoint(opts.checkpoint, paths, option);
    if (checkpoint === null) throw new Error(`run ${opts.run}: no finished checkpoint yet (run.json has no finalCheckpoint); choose one with ${option}`);
    const tokenizer = new Tokenizer({ ...manifest.tokenizer, ...opts.tokenizer });
    const client = opts.client ?? (await startBackend({ device: opts.device }));
    const model = new RunModel(
      paths,
      manifest,
      vocab,
      tokenizer,
      client,
      opts.client === undefined,
      "",
      opts.checkpoint ? null : unfinishedNote(opts.run, manifest, checkpoint),
    );
    try {
      await model.load(checkpoint);
    } catch (e) {
      await model.close();
      throw e;
    }
    return model;
  }

  /** The run folder's path of a checkpoint named relative to it. */
  resolveCheckpoint(file: string): string {
    return isAbsolute(file) ? file : join(this.paths.dir, file);
  }

  /**
   * Loads a checkpoint's weights into a model rebuilt from that checkpoint's own config: an earlier stage's
   * head (pool, pool_layers, features) or optimizer may differ from the final one's, and inference needs
   * neither optimizer state nor the training RNG.
   */
  async load(file: string): Promise<LoadResult> {
    const { result } = await this.client.call("load", {
      path: this.resolveCheckpoint(file),
      parts: "weights",
      rebuild: true,
      vocab_fingerprint: this.vocab.fingerprint, // another run's checkpoint would read these ids as other words
    });
    this.checkpoint = file;
    return result;
  }

  /** Token ids of texts with the run's tokenizer and vocabulary. */
  numericalise(texts: Iterable<string>): Ragged {
    return numericaliseTexts(texts, this.vocab, this.tokenizer).ragged;
  }

  /**
   * Sentence vectors of numericalised rows, in input order. The batches go longest first as one encode job: the
   * backend puts each batch's vectors in place and sends the whole [n, dim] array once at the end, which this
   * returns as it arrives (no per-row scatter here; docs/design.md, "Encoding is a job the backend assembles").
   */
  async encode(rows: Ragged, opts: EncodeOptions = {}): Promise<Encoded> {
    const total = rows.offsets.length - 1;
    if (total === 0) return { vectors: new Float32Array(0), dim: 0 };
    const plan = evalBatchPlan([lengthsOf(rows)], { batchSize: opts.batchSize ?? 128 });
    const job = nextEncodeJob++;
    let done = 0;
    // several batches a message: each message wakes both processes, which costs the model time when they share cores
    const perRequest = opts.batchesPerRequest ?? BATCHES_PER_REQUEST;
    try {
      await inParallel(Math.ceil(plan.length / perRequest), opts.inFlight ?? 2, async (q) => {
        const part = plan.slice(q * perRequest, (q + 1) * perRequest);
        const batches = part.map((rowsOf) => {
          const { ids, lengths } = collateSentences(rows, rowsOf, this.vocab.padId);
          return { x: ids, lengths, rows: tensor("int32", [rowsOf.length], rowsOf) };
        });
        await this.client.call("encode", { batches: batches.length, job, total }, packStepTensors(batches));
        done += part.reduce((sum, b) => sum + b.length, 0);
        opts.onProgress?.(done, total);
      });
    } catch (e) {
      await this.client.call("encode_result", { job, discard: true }).catch(() => undefined); // the backend may be gone
      throw e;
    }
    const { tensors } = await this.client.call("encode_result", { job });
    const vectors = tensors.vectors;
    if (vectors?.dtype !== "float32" || vectors.shape.length !== 2 || vectors.shape[0] !== total)
      throw new Error(`bridge: encode_result: expected float32 vectors [${total}, d], got ${vectors ? `${vectors.dtype} [${vectors.shape}]` : "none"}`);
    const data = vectors.data as Float32Array;
    // a raw frame (>= 1 MiB) is exactly the vectors; a small Arrow frame holds more bytes around them: copied, so that
    // the caller's array owns its whole buffer either way
    const own = data.byteOffset === 0 && data.buffer.byteLength === data.byteLength;
    return { vectors: own ? data : data.slice(), dim: vectors.shape[1] };
  }

  /** The siamese head's NLI predictions for (premise, hypothesis) rows, in input order. */
  async predict(s1: Ragged, s2: Ragged, opts: EncodeOptions = {}): Promise<NliPredictions> {
    const n = s1.offsets.length - 1;
    const plan = evalBatchPlan([lengthsOf(s1), lengthsOf(s2)], { batchSize: opts.batchSize ?? 128 });
    const probs = new Array<Float32Array>(plan.length);
    const preds = new Array<number[]>(plan.length);
    await inParallel(plan.length, opts.inFlight ?? 2, async (b) => {
      const rows = plan[b];
      const p = collateSentences(s1, rows, this.vocab.padId);
      const h = collateSentences(s2, rows, this.vocab.padId);
      const t: Tensors = { premise: p.ids, premise_lengths: p.lengths, hypothesis: h.ids, hypothesis_lengths: h.lengths };
      const { tensors } = await this.client.call("predict", {}, t);
      probs[b] = tensors.probs.data as Float32Array;
      preds[b] = Array.from(tensors.pred.data as BigInt64Array, Number);
    });
    if (n === 0) return { probs: new Float32Array(0), pred: new Int32Array(0) };
    return { probs: restoreRows(plan, probs, 3), pred: Int32Array.from(restoreOrder(plan, preds)) };
  }

  /** Calls the backend directly (ops this wrapper does not cover: eval_step, generate, probes). */
  call<K extends OpName>(op: K, args?: OpArgs<K>, tensors?: Tensors): Promise<OpReply<K>> {
    return this.client.call(op, args, tensors);
  }

  /** Texts of generated token rows (detokenize: case markers applied, other special tokens dropped). */
  detokenize(tokens: BigInt64Array | Int32Array, rowLen: number, lengths: ArrayLike<number>): string[] {
    const out: string[] = [];
    for (let r = 0; r < lengths.length; r++) {
      const words = Array.from({ length: lengths[r] }, (_, j) => this.vocab.itos[Number(tokens[r * rowLen + j])]);
      out.push(detokenize(words));
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }
}

/**
 * Runs task(0..n-1), started in order, at most `limit` at once (a Pipeline). A failure is thrown when the queue
 * reaches it: no task starts after that, and the ones already started settle first.
 */
export async function inParallel(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  await withPipeline(Math.max(1, limit), async (pipeline) => {
    for (let i = 0; i < n; i++) {
      pipeline.add(task(i));
      await pipeline.waitForRoom();
    }
  });
}
