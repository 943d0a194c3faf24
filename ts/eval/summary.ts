/**
 * metrics.json flattened into rows (task, metric, split, items, value, baseline, supervised), the
 * one view behind the terminal summary, the report's table and `--compare`. Each task of the
 * registry flattens its own entries.
 */
import { formatTable } from "../ui/table.js";
import { EVAL_TASKS } from "./tasks/index.js";
import type { MetricRow, Metrics } from "./types.js";

export type { MetricRow } from "./types.js";

export function metricRows(m: Metrics): MetricRow[] {
  return EVAL_TASKS.flatMap((t) => t.rows(m));
}

/** The terminal summary of one run. */
export function formatSummary(m: Metrics): string {
  const rows = metricRows(m).map((r) => [r.key, r.split, r.items, r.value, r.baseline, supervisionLabel(r)]);
  return formatTable(["metric", "split", "items", "value", "tf-idf", "supervised"], rows);
}

/** A row's supervision in words: "yes", "no", or "partly (32% of the items)". */
export function supervisionLabel(r: Pick<MetricRow, "supervised" | "supervisedShare">): string {
  if (!r.supervised) return "no";
  return r.supervisedShare !== undefined && r.supervisedShare < 1 ? `partly (${Math.round(r.supervisedShare * 100)}% of the items)` : "yes";
}
