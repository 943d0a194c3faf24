/** Errors the data layer raises for bad input: they name the file, the line and what is wrong. */

export class DataError extends Error {
  override readonly name = "DataError";
}

/** A row that cannot be read; `line` is 1-based. */
export class BadRowError extends DataError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

/** What a reader does with a row it cannot read: stop with a BadRowError, or skip and count it. */
export type BadRowPolicy = "error" | "skip";

/** Counts a reader keeps while it reads. */
export interface ReadStats {
  /** Records yielded. */
  records: number;
  /** Rows skipped as malformed (only with `on_bad_row: "skip"`). */
  badRows: number;
  /** The first few skipped rows, for the report. */
  badExamples: { line: number; reason: string }[];
  /** Rows dropped on purpose, by reason (e.g. SNLI gold label "-"). */
  dropped: Record<string, number>;
  /** Rows kept but cut at the tokenizer's maxLen (only with `on_bad_row: "skip"`), and the first few of them. */
  truncatedRows: number;
  truncatedExamples: { line: number; reason: string }[];
}

export function emptyReadStats(): ReadStats {
  return { records: 0, badRows: 0, badExamples: [], dropped: {}, truncatedRows: 0, truncatedExamples: [] };
}

const MAX_BAD_EXAMPLES = 5;

/** Applies the policy to a bad row: throws, or counts it in stats. */
export function badRow(policy: BadRowPolicy, stats: ReadStats, file: string, line: number, reason: string): void {
  if (policy === "error") throw new BadRowError(file, line, reason);
  stats.badRows++;
  if (stats.badExamples.length < MAX_BAD_EXAMPLES) stats.badExamples.push({ line, reason });
}

/**
 * Applies the policy to a row with a sentence longer than the tokenizer's maxLen: throws, or keeps
 * it cut to maxLen (the tokenizer already cut it) and counts it in stats.
 */
export function overLongRow(policy: BadRowPolicy, stats: ReadStats, file: string, line: number, reason: string): void {
  if (policy === "error") throw new BadRowError(file, line, `${reason} (raise tokenizer.maxLen, or --on-bad-row skip to cut such sentences)`);
  stats.truncatedRows++;
  if (stats.truncatedExamples.length < MAX_BAD_EXAMPLES) stats.truncatedExamples.push({ line, reason });
}

/** A split that yielded no usable row: a DataError naming the file and why (empty, or every row bad / dropped). */
export function noUsableRows(file: string, stats: ReadStats, what = "rows"): DataError {
  const dropped = Object.entries(stats.dropped).map(([reason, n]) => `${n} dropped (${reason})`);
  const bad =
    stats.badRows > 0
      ? [`${stats.badRows} bad row(s) skipped${stats.badExamples.length > 0 ? `, e.g. line ${stats.badExamples[0].line}: ${stats.badExamples[0].reason}` : ""}`]
      : [];
  const why = [...bad, ...dropped];
  return new DataError(`${file}: no usable ${what} (${why.length > 0 ? why.join("; ") : "the file has no data rows"})`);
}

export function countDropped(stats: ReadStats, reason: string): void {
  stats.dropped[reason] = (stats.dropped[reason] ?? 0) + 1;
}
