/** SICK (SemEval-2014 task 1), STS Benchmark and STS12-16 (`STS.input.*` + `STS.gs.*`) readers. */
import { readFile } from "node:fs/promises";
import { badRow, countDropped, DataError, emptyReadStats } from "../errors.js";
import { readLines } from "../lines.js";
import { emptySentence, type PairRecord, parseNliLabel, type ReadOptions } from "../records.js";
import { headerIndex, requireColumns } from "./tsv.js";

/** SICK TSV with header: pair_ID, sentence_A, sentence_B, relatedness_score, entailment_judgment (CRLF tolerated). */
export async function* readSick(path: string, opts: ReadOptions = {}): AsyncGenerator<PairRecord> {
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  let cols: number[] | undefined;
  for await (const { text, no } of readLines(path, { onBadRow: policy, stats })) {
    if (cols === undefined) {
      cols = requireColumns(path, headerIndex(text), ["pair_ID", "sentence_A", "sentence_B", "relatedness_score", "entailment_judgment"]);
      continue;
    }
    if (text.trim() === "") continue;
    const fields = text.split("\t");
    const width = Math.max(...cols) + 1;
    if (fields.length < width) {
      badRow(policy, stats, path, no, `expected ${width} tab-separated columns, found ${fields.length}`);
      continue;
    }
    const [id, s1, s2, rawScore, rawLabel] = cols.map((c) => fields[c]);
    const score = parseScore(rawScore, 1, 5);
    if (score === undefined) {
      badRow(policy, stats, path, no, `relatedness_score ${JSON.stringify(rawScore)} is not a number in [1, 5]`);
      continue;
    }
    const label = parseNliLabel(rawLabel);
    if (label === undefined) {
      badRow(policy, stats, path, no, `unknown entailment_judgment ${JSON.stringify(rawLabel)}`);
      continue;
    }
    const empty = emptySentence(s1, s2, ["sentence_A", "sentence_B"]);
    if (empty !== undefined) {
      badRow(policy, stats, path, no, empty);
      continue;
    }
    stats.records++;
    yield { id, s1, s2, score, label, line: no };
  }
  if (cols === undefined) throw new DataError(`${path}: empty file (no header line)`);
}

/** STS Benchmark: genre, filename, year, id, score, sentence1, sentence2 [, 2 more]; split on tabs only. */
export async function* readStsBenchmark(path: string, opts: ReadOptions = {}): AsyncGenerator<PairRecord> {
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  for await (const { text, no } of readLines(path, { onBadRow: policy, stats })) {
    if (text.trim() === "") continue;
    const fields = text.split("\t");
    if (fields.length < 7) {
      badRow(policy, stats, path, no, `expected 7 tab-separated columns, found ${fields.length}`);
      continue;
    }
    const score = parseScore(fields[4], 0, 5);
    if (score === undefined) {
      badRow(policy, stats, path, no, `score ${JSON.stringify(fields[4])} is not a number in [0, 5]`);
      continue;
    }
    const empty = emptySentence(fields[5], fields[6], ["sentence1", "sentence2"]);
    if (empty !== undefined) {
      badRow(policy, stats, path, no, empty);
      continue;
    }
    stats.records++;
    yield { id: String(no), s1: fields[5], s2: fields[6], score, genre: fields[0], line: no };
  }
}

export const DROPPED_UNSCORED = "unscored";

/** STS12-16: `STS.input.X.txt` (s1 TAB s2 per line) with `STS.gs.X.txt` (a score per line; blank = unscored, skipped). */
export async function* readStsInputGs(inputPath: string, gsPath: string, opts: ReadOptions = {}): AsyncGenerator<PairRecord> {
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  const inputs = splitLines(await readFile(inputPath, "utf8"));
  const scores = splitLines(await readFile(gsPath, "utf8"));
  if (scores.length !== inputs.length) {
    throw new DataError(`${gsPath}: has ${scores.length} lines but ${inputPath} has ${inputs.length}; they must pair up line by line`);
  }
  for (let i = 0; i < inputs.length; i++) {
    const no = i + 1;
    if (scores[i].trim() === "") {
      countDropped(stats, DROPPED_UNSCORED);
      continue;
    }
    const fields = inputs[i].split("\t");
    if (fields.length < 2) {
      badRow(policy, stats, inputPath, no, `expected 2 tab-separated sentences, found ${fields.length} column(s)`);
      continue;
    }
    const score = parseScore(scores[i], 0, 5);
    if (score === undefined) {
      badRow(policy, stats, gsPath, no, `score ${JSON.stringify(scores[i])} is not a number in [0, 5]`);
      continue;
    }
    stats.records++;
    yield { id: String(no), s1: fields[0], s2: fields[1], score, line: no };
  }
}

function splitLines(text: string): string[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = body.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function parseScore(raw: string, min: number, max: number): number | undefined {
  const s = raw.trim();
  if (s === "") return undefined;
  const v = Number(s);
  return Number.isFinite(v) && v >= min && v <= max ? v : undefined;
}
