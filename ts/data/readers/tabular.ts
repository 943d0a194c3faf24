/**
 * Any JSONL / CSV / TSV file with a column mapping from the config, e.g.
 * `{format: "csv", columns: {s1: "question1", s2: "question2", label: "is_duplicate"}, labels: {"1": "entailment", "0": "neutral"}}`.
 * CSV follows RFC 4180 (quoted fields, doubled quotes, newlines inside quotes); TSV splits on tabs only.
 */
import { badRow, DataError, emptyReadStats, type ReadStats } from "../errors.js";
import { readLines } from "../lines.js";
import { emptySentence, type NliLabel, type PairRecord, parseNliLabel, type ReadOptions, type TextRecord } from "../records.js";

export type TabularFormat = "jsonl" | "csv" | "tsv";
/** A header name / JSON key, or a 0-based column index (files without a header). */
export type ColumnRef = string | number;

export interface TabularMapping {
  format: TabularFormat;
  /** CSV/TSV: whether the first line names the columns. Default true. */
  header?: boolean;
  columns: { s1?: ColumnRef; s2?: ColumnRef; label?: ColumnRef; score?: ColumnRef; id?: ColumnRef; text?: ColumnRef };
  /** Raw label -> NLI label; without it, the usual spellings (entailment, 0, ...) are accepted. */
  labels?: Record<string, NliLabel>;
}

interface Row {
  get(col: ColumnRef): string | undefined;
  /** Why get(col) gave no text, for the bad-row message: the column is absent, or (JSONL) holds a list, an object or null. */
  absent(col: ColumnRef): string;
  no: number;
}

const missingColumn = (col: ColumnRef) => `missing column ${JSON.stringify(col)}`;

export async function* readTabularPairs(path: string, mapping: TabularMapping, opts: ReadOptions = {}): AsyncGenerator<PairRecord> {
  const { s1, s2, label, score, id } = mapping.columns;
  if (s1 === undefined || s2 === undefined) throw new DataError(`${path}: a pair mapping needs columns.s1 and columns.s2`);
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  for await (const row of tabularRows(path, mapping, opts, stats)) {
    const a = row.get(s1);
    const b = row.get(s2);
    if (a === undefined || b === undefined) {
      badRow(policy, stats, path, row.no, row.absent(a === undefined ? s1 : s2));
      continue;
    }
    const empty = emptySentence(a, b, [`column ${JSON.stringify(s1)}`, `column ${JSON.stringify(s2)}`]);
    if (empty !== undefined) {
      badRow(policy, stats, path, row.no, empty);
      continue;
    }
    const rec: PairRecord = { id: (id === undefined ? undefined : row.get(id)) ?? String(row.no), s1: a, s2: b, line: row.no };
    const missing = [label, score].find((c) => c !== undefined && row.get(c) === undefined);
    if (missing !== undefined) {
      badRow(policy, stats, path, row.no, row.absent(missing));
      continue;
    }
    if (label !== undefined) {
      const raw = row.get(label) ?? "";
      const l = mapping.labels ? (Object.hasOwn(mapping.labels, raw) ? mapping.labels[raw] : undefined) : parseNliLabel(raw);
      if (l === undefined) {
        badRow(policy, stats, path, row.no, `unknown label ${JSON.stringify(raw)}`);
        continue;
      }
      rec.label = l;
    }
    if (score !== undefined) {
      const raw = row.get(score) ?? "";
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v)) {
        badRow(policy, stats, path, row.no, `score ${JSON.stringify(raw)} is not a number`);
        continue;
      }
      rec.score = v;
    }
    stats.records++;
    yield rec;
  }
}

export async function* readTabularText(path: string, mapping: TabularMapping, opts: ReadOptions = {}): AsyncGenerator<TextRecord> {
  const col = mapping.columns.text;
  if (col === undefined) throw new DataError(`${path}: a text mapping needs columns.text`);
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  for await (const row of tabularRows(path, mapping, opts, stats)) {
    const text = row.get(col);
    if (text === undefined) {
      badRow(policy, stats, path, row.no, row.absent(col));
      continue;
    }
    if (text.trim() === "") {
      badRow(policy, stats, path, row.no, `empty column ${JSON.stringify(col)}`);
      continue;
    }
    stats.records++;
    yield { text, line: row.no };
  }
}

async function* tabularRows(path: string, mapping: TabularMapping, opts: ReadOptions, stats: ReadStats): AsyncGenerator<Row> {
  const policy = opts.onBadRow ?? "error";
  if (mapping.format === "jsonl") {
    for await (const { text, no } of readLines(path, { onBadRow: policy, stats })) {
      if (text.trim() === "") continue;
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        badRow(policy, stats, path, no, `not valid JSON (${(e as Error).message})`);
        continue;
      }
      if (typeof obj !== "object" || obj === null) {
        badRow(policy, stats, path, no, "expected a JSON object or array");
        continue;
      }
      const o = obj as Record<string, unknown>;
      const value = (c: ColumnRef) => (Array.isArray(o) ? o[Number(c)] : o[String(c)]);
      yield { no, get: (c) => jsonField(value(c)), absent: (c) => jsonAbsent(c, value(c)) };
    }
    return;
  }
  const split = mapping.format === "csv" ? csvRecords(path, { onBadRow: policy, stats }) : tsvRecords(path, { onBadRow: policy, stats });
  let names: Map<string, number> | undefined;
  let headerWidth = 0; // its fields, repeated names included (names keeps one of each)
  const hasHeader = mapping.header ?? true;
  for await (const rec of split) {
    if (rec.error !== undefined) {
      badRow(policy, stats, path, rec.no, rec.error);
      continue;
    }
    if (hasHeader && names === undefined) {
      names = new Map(rec.fields.map((n, i) => [n.trim(), i]));
      headerWidth = rec.fields.length;
      for (const c of Object.values(mapping.columns)) {
        if (typeof c === "string" && !names.has(c)) throw new DataError(`${path}:${rec.no}: header lacks column ${JSON.stringify(c)}`);
      }
      continue;
    }
    if (rec.fields.length === 1 && rec.fields[0].trim() === "") continue;
    // as the built-in readers do: a short row is named by its width, not by the first column it lacks
    const width = names ? headerWidth : 1 + Math.max(-1, ...Object.values(mapping.columns).filter((c): c is number => typeof c === "number"));
    if (rec.fields.length < width) {
      badRow(policy, stats, path, rec.no, `expected ${names ? width : `at least ${width}`} columns, found ${rec.fields.length}`);
      continue;
    }
    // wider than its header: a separator inside a field (a tab in a TSV sentence), which would cut that field short;
    // empty fields past the header's are a trailing separator (spreadsheet exports write one), not text
    if (names !== undefined && rec.fields.slice(width).some((f) => f.trim() !== "")) {
      const separator = mapping.format === "csv" ? "an unquoted comma" : "a tab";
      badRow(policy, stats, path, rec.no, `expected ${width} columns as the header names, found ${rec.fields.length} (${separator} inside a field?)`);
      continue;
    }
    const f = rec.fields;
    const idx = names;
    yield { no: rec.no, get: (c) => f[typeof c === "number" ? c : (idx?.get(c) ?? -1)], absent: missingColumn };
  }
}

function jsonField(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

function jsonAbsent(col: ColumnRef, v: unknown): string {
  if (v === undefined) return missingColumn(col);
  const kind = v === null ? "null" : Array.isArray(v) ? "a list" : "an object";
  return `column ${JSON.stringify(col)} holds ${kind}, not text`;
}

interface SplitRecord {
  fields: string[];
  /** Line the record starts on. */
  no: number;
  error?: string;
}

async function* tsvRecords(path: string, opts: ReadOptions): AsyncGenerator<SplitRecord> {
  for await (const { text, no } of readLines(path, opts)) yield { fields: text.split("\t"), no };
}

/** RFC 4180 records; a quoted field may span lines. */
export async function* csvRecords(path: string, opts: ReadOptions = {}): AsyncGenerator<SplitRecord> {
  let fields: string[] = [];
  let field = "";
  let inQuotes = false;
  let startNo = 0;
  for await (const { text, no } of readLines(path, opts)) {
    if (!inQuotes) {
      startNo = no;
      fields = [];
      field = "";
    } else {
      field += "\n";
    }
    let bad: string | undefined;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (inQuotes) {
        if (ch === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i++;
          } else {
            inQuotes = false;
            const next = text[i + 1];
            if (next !== undefined && next !== ",") {
              bad = `unexpected ${JSON.stringify(next)} after a closing quote (column ${i + 2})`;
              break;
            }
          }
        } else field += ch;
      } else if (ch === ",") {
        fields.push(field);
        field = "";
      } else if (ch === '"' && field === "") {
        inQuotes = true;
      } else field += ch;
    }
    if (bad !== undefined) {
      inQuotes = false;
      yield { fields: [], no: startNo, error: bad };
      continue;
    }
    if (!inQuotes) {
      fields.push(field);
      yield { fields, no: startNo };
    }
  }
  if (inQuotes) yield { fields: [], no: startNo, error: "quoted field not closed before the end of the file" };
}
