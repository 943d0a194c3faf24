/**
 * `bridge embed`: one sentence vector per input item, in input order, into an Arrow IPC file with
 * columns line (1-based line in the input), text and vector (FixedSizeList<float32>). The input
 * streams through in chunks (read, embed through the API's Encoder, write a record batch), so files
 * larger than memory work; a vector depends only on its sentence (the backend masks padding), and
 * chunks of CHUNK_ROWS make it bit-equal to `Encoder.embed` of the same texts.
 */
import { accessSync, closeSync, constants, existsSync, openSync, readSync, realpathSync, type Stats, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { readLines } from "../data/lines.js";
import { ArrowFileWriter } from "../eval/arrowFile.js";
import { CHUNK_ROWS, type Encoder, openEncoder } from "./encoder.js";

export interface EmbedFileOptions {
  /** A run name, a run folder, or "latest" (openEncoder's run). */
  run: string;
  input: string;
  output: string;
  /** JSONL input: the field holding the text (without it, every line is a text, empty ones too). */
  field?: string;
  /** Rows per encode call (default 128). */
  batchSize?: number;
  /** Tokens kept per text, xxbos included; longer texts are cut and counted. */
  maxLen?: number;
  runsDir?: string;
  checkpoint?: string;
  device?: string;
  /** A running backend (`bridge serve`) and its client keys, as openEncoder takes them. */
  backend?: string;
  keys?: string;
  /** Items read before each encode + write (default CHUNK_ROWS). */
  chunkRows?: number;
  /** Progress on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** An already open encoder (benchmarks reuse one); not closed here, and run / maxLen / checkpoint / device are its own. */
  encoder?: Encoder;
  /** Write the output even inside a run folder (never over the input). */
  force?: boolean;
}

export interface EmbedResult {
  output: string;
  rows: number;
  dim: number;
  truncated: number;
  truncatedTokens: number;
  /** Texts empty or all white space: each still has its row (the empty sentence's vector), so rows match lines. */
  blank: number;
  /** The cut applied (tokens per text, xxbos included): --max-len, else the run's tokenizer's; null: none. */
  maxLen: number | null;
  seconds: number;
  /** The encoder's `unfinished`: the run had not finished training, so an earlier stage's checkpoint embedded. */
  unfinished: string | null;
}

interface Item {
  line: number;
  text: string;
}

/** The texts of the input, with their line numbers: plain lines, or a JSONL field. */
export async function* inputItems(path: string, field?: string): AsyncGenerator<Item> {
  for await (const { text, no } of readLines(path)) {
    if (field === undefined) {
      yield { line: no, text };
      continue;
    }
    if (text.trim() === "") continue;
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}:${no}: not JSON (${(e as Error).message}); for plain text lines leave out --field`);
    }
    const value = rec !== null && typeof rec === "object" ? (rec as Record<string, unknown>)[field] : undefined;
    if (typeof value !== "string")
      throw new Error(
        value === undefined
          ? `${path}:${no}: no field ${JSON.stringify(field)}`
          : `${path}:${no}: field ${JSON.stringify(field)} holds ${value === null ? "null" : Array.isArray(value) ? "a list" : `a ${typeof value}`}, not a text`,
      );
    yield { line: no, text: value };
  }
}

export async function embedFile(opts: EmbedFileOptions): Promise<EmbedResult> {
  const t0 = performance.now();
  // checked before a backend starts, and named: a bare ENOENT from deep in the reader says neither what nor which option
  if (!existsSync(opts.input)) throw new Error(`--input ${opts.input}: no such file (${resolve(opts.input)})`);
  const input = statSync(opts.input);
  if (input.isDirectory()) throw new Error(`--input ${opts.input}: is a folder; give a text or JSONL file`);
  // a pipe (/dev/stdin, <(zcat ...)) has no size; an empty one is named after reading, as any input without texts
  if (input.isFile() && input.size === 0) throw new Error(`--input ${opts.input}: no texts to embed (the file is empty)`);
  if (opts.batchSize !== undefined && (!Number.isInteger(opts.batchSize) || opts.batchSize < 1))
    throw new Error(`--batch-size ${opts.batchSize}: a whole number of texts a batch, 1 or more`);
  if (opts.maxLen !== undefined && (!Number.isInteger(opts.maxLen) || opts.maxLen < 2))
    throw new Error(`--max-len ${opts.maxLen}: a whole number of tokens a text, 2 or more (xxbos and one token)`);
  assertSafeOutput(opts.input, opts.output, opts.force ?? false);
  const encoder =
    opts.encoder ??
    (await openEncoder(opts.run, {
      runsDir: opts.runsDir,
      checkpoint: opts.checkpoint,
      device: opts.device,
      maxLen: opts.maxLen,
      backend: opts.backend,
      keys: opts.keys,
      label: `--run ${opts.run}`, // this function's errors speak in the command line's flags
      checkpointLabel: "--checkpoint",
    }));
  const showProgress = opts.progress ?? process.stderr.isTTY === true;
  // a link's target is written, not the link replaced by a file (assertSafeOutput checked the target)
  const writer = new ArrowFileWriter(realPath(opts.output), { "bridge.run": encoder.run, "bridge.checkpoint": encoder.checkpoint, "bridge.input": opts.input });
  let done = 0;
  let truncated = 0;
  let truncatedTokens = 0;
  let blank = 0;
  const progress = (n: number) => {
    if (!showProgress) return;
    const rate = n / Math.max(1e-3, (performance.now() - t0) / 1000);
    process.stderr.write(`\rembedded ${n.toLocaleString("en")} texts (${Math.round(rate).toLocaleString("en")}/s)`);
  };
  const flush = async (items: Item[]) => {
    const texts = items.map((it) => it.text);
    for (const t of texts) if (t.trim() === "") blank++;
    const v = await encoder.embed(texts, { batchSize: opts.batchSize, onProgress: (k) => progress(done + k) });
    truncated += v.truncated;
    truncatedTokens += v.truncatedTokens;
    await writer.write({
      line: { type: "int32", values: Int32Array.from(items, (it) => it.line) },
      text: { type: "utf8", values: texts },
      vector: { type: "vector", values: v.data, dim: v.dim },
    });
    done += items.length;
  };
  try {
    let chunk: Item[] = [];
    for await (const item of inputItems(opts.input, opts.field)) {
      chunk.push(item);
      if (chunk.length >= (opts.chunkRows ?? CHUNK_ROWS)) {
        await flush(chunk);
        chunk = [];
      }
    }
    if (chunk.length === 0 && done === 0) throw new Error(`${opts.input}: no texts to embed`);
    if (chunk.length > 0) await flush(chunk);
    await writer.close();
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    if (showProgress) process.stderr.write("\n");
    if (opts.encoder === undefined) await encoder.close();
  }
  return {
    output: opts.output,
    rows: done,
    dim: encoder.dim,
    truncated,
    truncatedTokens,
    blank,
    maxLen: encoder.maxLen,
    seconds: (performance.now() - t0) / 1000,
    unfinished: encoder.unfinished,
  };
}

/** The path with its folder's links resolved (the file itself may not exist yet). */
function realPath(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    let dir = dirname(abs);
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    return join(realpathSync(dir), abs.slice(dir.length));
  }
}

/**
 * Refuses an output that would destroy data or cannot be written, before any backend starts: the input itself (by
 * path, link or hard link); anything but a regular file (a device such as /dev/null, a pipe: the file is written
 * beside it and renamed into place, which would replace it); an existing file that is not an Arrow file (a re-run's
 * own output is), or a file inside a run folder (a folder holding run.json: its checkpoints, vocabulary and
 * records), unless `force`; a folder that cannot be written. A link is followed: its target is what is written.
 */
export function assertSafeOutput(input: string, output: string, force: boolean): void {
  const out = realPath(output);
  const existing = existsSync(out) ? statSync(out) : null;
  if (existing?.isDirectory()) throw new Error(`--output ${output}: is a folder; give a file path, e.g. ${join(output, "vectors.arrow")}`);
  if (existing && !existing.isFile())
    throw new Error(
      `--output ${output}: is not a regular file (${fileKind(existing)}); the vectors are written to a new file renamed into place, which would replace it: give a file path`,
    );
  for (let dir = dirname(out); dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`--output ${output}: ${dir} is a file, not a folder`);
  }
  const same = out === realPath(input) || (existing !== null && existing.ino === statSync(input).ino && existing.dev === statSync(input).dev);
  if (same) throw new Error(`--output ${output}: is the input file; the vectors would overwrite the sentences (give another path)`);
  let folder = dirname(out);
  while (!existsSync(folder)) folder = dirname(folder); // the writer makes the missing ones
  try {
    accessSync(folder, constants.W_OK);
  } catch {
    throw new Error(`--output ${output}: cannot write in ${folder} (permission denied); give a path in a folder you can write`);
  }
  if (force) return;
  for (let dir = dirname(out); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "run.json"))) {
      throw new Error(
        `--output ${output}: lies inside the run folder ${dir} (run ${basename(dir)}: its checkpoints and records); write elsewhere, or pass --force`,
      );
    }
    if (dirname(dir) === dir) break;
  }
  if (existing && existing.size > 0 && !startsWithArrowMagic(out))
    throw new Error(`--output ${output}: exists and is not an Arrow file; embedding would replace it: give another path, or pass --force`);
}

function fileKind(st: Stats): string {
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isFIFO()) return "a named pipe";
  if (st.isSocket()) return "a socket";
  return "not a file";
}

/** Whether the file starts as an Arrow IPC file does ("ARROW1"). */
function startsWithArrowMagic(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(6);
    return readSync(fd, head, 0, 6, 0) === 6 && head.toString("latin1") === "ARROW1";
  } finally {
    closeSync(fd);
  }
}
