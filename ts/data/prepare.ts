/**
 * From a split to its numericalised Arrow file, cached: the file's name carries a hash of the
 * input bytes, the tokenizer settings and the vocabulary fingerprint, so a second run with the
 * same inputs reads the file instead of tokenising again. A sidecar JSON keeps the split's counts.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { projectRoot } from "../paths.js";
import { missingSplitMessage, type SplitRef, splitExists, splitTexts } from "./datasets.js";
import { type BadRowPolicy, DataError, emptyReadStats, overLongRow, type ReadStats } from "./errors.js";
import { loadNumericalised, META_KEY, type Numericalised, NumericalisedWriter } from "./numericalised.js";
import type { Tokenizer } from "./tokenize.js";
import { TokenCounter, Vocab, type VocabOptions } from "./vocab.js";

/** Bumped when the file layout or what the readers keep changes. 2: empty / invalid UTF-8 rows are bad rows. */
const FORMAT_VERSION = 2;

export interface SplitReport {
  split: string;
  records: number;
  badRows: number;
  badExamples: { line: number; reason: string }[];
  dropped: Record<string, number>;
  tokens: number;
  unknown: number;
  /** unknown / tokens (xxbos/xxeos not counted). */
  oovRate: number;
  truncated: number;
  truncatedTokens: number;
  /** The first few rows cut at maxLen (with `on_bad_row: "skip"`; "error" stops at the first). */
  truncatedExamples: { line: number; reason: string }[];
}

export interface PreparedSplit {
  data: Numericalised;
  report: SplitReport;
  path: string;
  /** True when the cached file was used. */
  cached: boolean;
}

export interface PrepareSplitOptions {
  ref: SplitRef;
  vocab: Vocab;
  tokenizer: Tokenizer;
  /** Default: BRIDGE_CACHE_DIR, else .cache/numericalised in the project (a run may pass its own). */
  cacheDir?: string;
  onBadRow?: BadRowPolicy;
}

export function resolveCacheDir(cacheDir?: string): string {
  return cacheDir ?? process.env.BRIDGE_CACHE_DIR ?? join(projectRoot, ".cache", "numericalised");
}

export async function prepareSplit(opts: PrepareSplitOptions): Promise<PreparedSplit> {
  const { ref, vocab } = opts;
  // LM text is a stream cut into bptt windows: its paragraphs are never cut at maxLen.
  const tokenizer = ref.dataset.kind === "text" ? opts.tokenizer.uncapped() : opts.tokenizer;
  if (!splitExists(ref)) throw new DataError(missingSplitMessage(ref));
  const onBadRow = opts.onBadRow ?? "error";
  const key = createHash("sha256")
    .update(
      JSON.stringify({
        format: FORMAT_VERSION,
        split: ref.id,
        input: await inputFingerprint(ref),
        tokenizer: tokenizer.fingerprintInput(),
        vocab: vocab.fingerprint,
        onBadRow,
      }),
    )
    .digest("hex");
  const path = join(resolveCacheDir(opts.cacheDir), `${ref.id.replace(/[^\w.-]+/g, "_")}-${key.slice(0, 20)}.arrow`);
  const sidecar = `${path}.json`;
  if (existsSync(path) && existsSync(sidecar)) {
    // A damaged cache entry is rebuilt, not an error.
    const hit = await Promise.all([
      readFile(sidecar, "utf8").then((t) => JSON.parse(t) as { key: string; report: SplitReport }),
      loadNumericalised(path),
    ]).catch(() => null);
    if (hit && hit[0].key === key && hit[1].metadata.get(META_KEY) === key) return { data: hit[1].data, report: hit[0].report, path, cached: true };
  }
  const stats = emptyReadStats();
  // a group's sentences are kept as texts, one a row (the training side regroups them from the reader)
  const writer = await NumericalisedWriter.open(path, ref.dataset.kind === "pairs" ? "pairs" : "text", vocab, tokenizer, { [META_KEY]: key });
  try {
    if (ref.dataset.kind === "pairs") {
      const guard = new LengthGuard(tokenizer, onBadRow, stats, ref.path!);
      for await (const r of ref.dataset.read(ref.path!, { onBadRow, stats })) {
        writer.addPair(r);
        guard.check(r.line);
      }
    } else if (ref.dataset.kind === "groups") {
      for await (const r of ref.dataset.read(ref.path!, { onBadRow, stats })) for (const t of r.sentences) writer.addText(t);
    } else {
      for await (const r of ref.dataset.read(ref.path, { onBadRow, stats })) writer.addText(r.text);
    }
  } catch (e) {
    await writer.abort();
    throw e;
  }
  const counts = await writer.close();
  const report = splitReport(ref.id, stats, counts);
  await writeFileAtomic(sidecar, `${JSON.stringify({ key, report })}\n`);
  const loaded = await loadNumericalised(path);
  return { data: loaded.data, report, path, cached: false };
}

export function splitReport(
  split: string,
  stats: ReadStats,
  counts: { tokens: number; unknown: number; truncated: number; truncatedTokens: number },
): SplitReport {
  return {
    split,
    records: stats.records,
    badRows: stats.badRows,
    badExamples: stats.badExamples,
    dropped: stats.dropped,
    tokens: counts.tokens,
    unknown: counts.unknown,
    oovRate: counts.tokens === 0 ? 0 : counts.unknown / counts.tokens,
    truncated: counts.truncated,
    truncatedTokens: counts.truncatedTokens,
    truncatedExamples: stats.truncatedExamples,
  };
}

/**
 * Applies the bad-row policy to pair rows with a sentence over the tokenizer's maxLen: call
 * check(line) after tokenising each row. "error" stops at the first such row (file:line, how
 * long); "skip" keeps it cut to maxLen and counts it with its line.
 */
export class LengthGuard {
  private truncated: number;
  private lost: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly policy: BadRowPolicy,
    private readonly stats: ReadStats,
    private readonly file: string,
  ) {
    this.truncated = tokenizer.stats.truncated;
    this.lost = tokenizer.stats.truncatedTokens;
  }

  check(line: number): void {
    const { truncated, truncatedTokens } = this.tokenizer.stats;
    if (truncated === this.truncated) return;
    const cut = truncated - this.truncated;
    const lost = truncatedTokens - this.lost;
    this.truncated = truncated;
    this.lost = truncatedTokens;
    const maxLen = this.tokenizer.settings.maxLen;
    const reason = cut === 1 ? `a sentence is ${maxLen! + lost} tokens long` : `both sentences are longer (${lost} tokens over)`;
    overLongRow(this.policy, this.stats, this.file, line, `${reason}, more than tokenizer.maxLen ${maxLen}`);
  }
}

/** What identifies a split's input: its bytes' sha256, or an npm corpus's name@version. */
export async function inputFingerprint(ref: SplitRef): Promise<string> {
  if (ref.path === null) {
    const pkg = ref.dataset.npmPackage!;
    const require = createRequire(import.meta.url);
    const { version } = JSON.parse(await readFile(require.resolve(`${pkg}/package.json`), "utf8")) as { version: string };
    return `npm:${pkg}@${version}`;
  }
  if ((await stat(ref.path)).isDirectory()) return `sha256-tree:${await sha256Tree(ref.path)}`;
  return `sha256:${await sha256File(ref.path)}`;
}

/** One digest of a folder tree (a WikiExtractor output): every file's relative path and bytes, in path order. */
export async function sha256Tree(dir: string): Promise<string> {
  const h = createHash("sha256");
  const walk = async (at: string): Promise<void> => {
    const entries = (await readdir(at, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = join(at, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.isFile()) h.update(`${relative(dir, path)}\0${await sha256File(path)}\0`);
    }
  };
  await walk(dir);
  return h.digest("hex");
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/**
 * Counts tokens over the given splits and builds the vocabulary. Pass training splits only: the
 * caller (the train command's config) decides which splits those are; nothing else may leak in.
 */
export async function buildVocab(
  refs: readonly SplitRef[],
  tokenizer: Tokenizer,
  vocabOptions: Partial<VocabOptions> = {},
  onBadRow: BadRowPolicy = "error",
  onProgress?: (texts: number) => void,
): Promise<Vocab> {
  const counter = new TokenCounter();
  let texts = 0;
  for (const ref of refs) {
    if (!splitExists(ref)) throw new DataError(missingSplitMessage(ref));
    for await (const text of splitTexts(ref, { onBadRow })) {
      counter.add(tokenizer.tokenize(text));
      onProgress?.(++texts);
    }
  }
  return Vocab.fromCounts(counter.counts, vocabOptions);
}
