/** SNLI 1.0 and MultiNLI (.jsonl), XNLI English and counterfactually-augmented SNLI (.tsv) readers. */
import { badRow, countDropped, DataError, emptyReadStats } from "../errors.js";
import { readLines } from "../lines.js";
import { emptySentence, type PairRecord, parseNliLabel, type ReadOptions } from "../records.js";
import { headerIndex, requireColumns, unquoteField } from "./tsv.js";

/** Pairs whose annotators did not agree carry gold label "-": dropped and counted. */
const NO_GOLD = "-";
export const DROPPED_NO_GOLD = "gold_label -";

/** SNLI / MultiNLI JSON lines: gold_label, sentence1, sentence2 (pairID, genre when present). */
export async function* readNliJsonl(path: string, opts: ReadOptions = {}): AsyncGenerator<PairRecord> {
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  for await (const { text, no } of readLines(path, { onBadRow: policy, stats })) {
    if (text.trim() === "") continue;
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch (e) {
      badRow(policy, stats, path, no, `not valid JSON (${(e as Error).message})`);
      continue;
    }
    if (typeof row !== "object" || row === null || Array.isArray(row)) {
      badRow(policy, stats, path, no, "expected a JSON object");
      continue;
    }
    const r = row as Record<string, unknown>;
    const { gold_label: gold, sentence1: s1, sentence2: s2 } = r;
    if (typeof s1 !== "string" || typeof s2 !== "string") {
      badRow(policy, stats, path, no, "sentence1 and sentence2 must be strings");
      continue;
    }
    if (gold === NO_GOLD) {
      countDropped(stats, DROPPED_NO_GOLD);
      continue;
    }
    const label = typeof gold === "string" ? parseNliLabel(gold) : undefined;
    if (label === undefined) {
      badRow(policy, stats, path, no, `unknown gold_label ${JSON.stringify(gold)}`);
      continue;
    }
    const empty = emptySentence(s1, s2, ["sentence1", "sentence2"]);
    if (empty !== undefined) {
      badRow(policy, stats, path, no, empty);
      continue;
    }
    const id = typeof r.pairID === "string" ? r.pairID : String(no);
    const genre = typeof r.genre === "string" ? r.genre : undefined;
    stats.records++;
    yield { id, s1, s2, label, line: no, ...(genre === undefined ? {} : { genre }) };
  }
}

/** XNLI English TSV from the Hugging Face export: id, premise, hypothesis, label (0/1/2). */
export async function* readXnliTsv(path: string, opts: ReadOptions = {}): AsyncGenerator<PairRecord> {
  yield* readHeaderedTsv(path, opts, { columns: ["label", "premise", "hypothesis"], idCol: "id" });
}

/**
 * Counterfactually-augmented SNLI (Kaushik et al. 2020), NLI/{all_combined,original}/train.tsv:
 * sentence1, sentence2, gold_label; no id column (a pair is named by its line). Split on tabs, but a
 * sentence holding `"` was written quoted, CSV-style, and is unquoted.
 */
export async function* readCadTsv(path: string, opts: ReadOptions = {}): AsyncGenerator<PairRecord> {
  yield* readHeaderedTsv(path, opts, { columns: ["gold_label", "sentence1", "sentence2"], unquote: true });
}

interface TsvLayout {
  /** Label, first sentence, second sentence, as the header names them. */
  columns: readonly [string, string, string];
  /** Column of the pair's id; without one (or when the file lacks it) a pair's id is its line number. */
  idCol?: string;
  /** Unquote sentences written quoted (unquoteField). */
  unquote?: boolean;
}

async function* readHeaderedTsv(path: string, opts: ReadOptions, layout: TsvLayout): AsyncGenerator<PairRecord> {
  const [labelCol, s1Col, s2Col] = layout.columns;
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  let cols: number[] | undefined;
  let idAt: number | undefined;
  let width = 0;
  for await (const { text, no } of readLines(path, { onBadRow: policy, stats })) {
    if (cols === undefined) {
      const index = headerIndex(text);
      cols = requireColumns(path, index, [labelCol, s1Col, s2Col]);
      idAt = layout.idCol === undefined ? undefined : index.get(layout.idCol);
      width = Math.max(...cols, idAt ?? 0) + 1;
      continue;
    }
    if (text.trim() === "") continue;
    const fields = text.split("\t");
    if (fields.length < width) {
      badRow(policy, stats, path, no, `expected at least ${width} tab-separated columns, found ${fields.length}`);
      continue;
    }
    const picked = cols.map((c) => (layout.unquote ? unquoteField(fields[c]) : fields[c]));
    const rawLabel = picked[0];
    if (rawLabel === NO_GOLD) {
      countDropped(stats, DROPPED_NO_GOLD);
      continue;
    }
    const label = parseNliLabel(rawLabel);
    if (label === undefined) {
      badRow(policy, stats, path, no, `unknown label ${JSON.stringify(rawLabel)}`);
      continue;
    }
    const empty = emptySentence(picked[1], picked[2], [s1Col, s2Col]);
    if (empty !== undefined) {
      badRow(policy, stats, path, no, empty);
      continue;
    }
    stats.records++;
    yield { id: idAt === undefined ? String(no) : fields[idAt], s1: picked[1], s2: picked[2], label, line: no };
  }
  if (cols === undefined) throw new DataError(`${path}: empty file (no header line)`);
}
