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
}

export function emptyReadStats(): ReadStats {
  return { records: 0, badRows: 0, badExamples: [], dropped: {} };
}

const MAX_BAD_EXAMPLES = 5;

/** Applies the policy to a bad row: throws, or counts it in stats. */
export function badRow(policy: BadRowPolicy, stats: ReadStats, file: string, line: number, reason: string): void {
  if (policy === "error") throw new BadRowError(file, line, reason);
  stats.badRows++;
  if (stats.badExamples.length < MAX_BAD_EXAMPLES) stats.badExamples.push({ line, reason });
}

export function countDropped(stats: ReadStats, reason: string): void {
  stats.dropped[reason] = (stats.dropped[reason] ?? 0) + 1;
}
