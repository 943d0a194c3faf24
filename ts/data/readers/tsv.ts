/** Tab-separated helpers shared by the readers: no CSV quoting (the official files have bare quotes). */
import { DataError } from "../errors.js";

/** Column name -> index, from a header line. */
export function headerIndex(header: string): Map<string, number> {
  return new Map(header.split("\t").map((name, i) => [name.trim(), i]));
}

/** Indices of the named columns; a header that lacks one is a clear error. */
export function requireColumns(path: string, index: Map<string, number>, names: readonly string[]): number[] {
  const missing = names.filter((n) => !index.has(n));
  if (missing.length > 0) {
    throw new DataError(`${path}:1: header lacks column(s) ${missing.join(", ")} (found: ${[...index.keys()].join(", ")})`);
  }
  return names.map((n) => index.get(n)!);
}

/** A whole field in quotes with its inner quotes doubled: how pandas' to_csv (QUOTE_MINIMAL) writes a field holding `"`. */
const QUOTED_FIELD = /^"((?:[^"]|"")*)"$/;

/**
 * The text of a field that its writer quoted (CAD's TSVs quote sentences that hold `"` so); any
 * other field, bare quotes included, is returned as it stands.
 */
export function unquoteField(field: string): string {
  const m = QUOTED_FIELD.exec(field);
  return m === null ? field : m[1].replaceAll('""', '"');
}
