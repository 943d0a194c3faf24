/** Plain-text tables for terminal summaries. */

export type Cell = string | number | boolean | null | undefined;

function show(c: Cell): string {
  if (c === null || c === undefined) return "-";
  if (typeof c === "number") return Number.isInteger(c) ? String(c) : c.toPrecision(4);
  return String(c);
}

/** Columns padded to their widest cell, a rule under the header. */
export function formatTable(header: string[], rows: Cell[][]): string {
  const cells = [header, ...rows.map((r) => r.map(show))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (c ?? "").padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}
