/**
 * `bridge eval --compare RUN_A RUN_B ...`: every metric of several runs side by side (terminal
 * table and an HTML page), best value per row marked, so ablations read at a glance.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { resolveRunName, runPaths, runsRoot } from "../run/manifest.js";
import { type Cell, formatTable } from "../ui/table.js";
import { readMetricsFile } from "./evaluate.js";
import { escapeHtml, fmt, page } from "./report.js";
import { metricRows } from "./summary.js";
import type { MetricRow, Metrics } from "./types.js";

export interface Comparison {
  runs: string[];
  /** One row per metric key present in any run: its split and each run's value (null where absent). */
  rows: { key: string; split: string; higherIsBetter: boolean; values: (number | null)[]; best: number | null; supervised: boolean[] }[];
}

export function metricsPath(run: string, runsDir?: string): string {
  return join(runPaths(run, runsDir).eval, "metrics.json");
}

export function readMetrics(run: string, runsDir?: string): Metrics {
  const path = metricsPath(run, runsDir);
  resolveRunName(run, runsDir); // a name that is no run is named as such, with the runs there, not as "not evaluated"
  // --compare only reads: evaluating here would use whatever data dir is the default and hide that
  if (!existsSync(path))
    throw new Error(`run ${run} has not been evaluated: no ${path}; evaluate it first with \`npx bridge eval --run ${run} --data-dir DIR\``);
  return readMetricsFile(path);
}

export function compareMetrics(runs: readonly string[], metrics: readonly Metrics[]): Comparison {
  const byRun = metrics.map((m) => new Map(metricRows(m).map((r) => [r.key, r] as [string, MetricRow])));
  const keys: MetricRow[] = [];
  const seen = new Set<string>();
  for (const rows of byRun)
    for (const r of rows.values())
      if (!seen.has(r.key)) {
        seen.add(r.key);
        keys.push(r);
      }
  const rows = keys.map((k) => {
    const values = byRun.map((m) => m.get(k.key)?.value ?? null);
    const supervised = byRun.map((m) => m.get(k.key)?.supervised === true);
    const splits = new Set(byRun.map((m) => m.get(k.key)?.split).filter((s) => s !== undefined));
    let best: number | null = null;
    values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      if (best === null || (k.higherIsBetter ? v > values[best]! : v < values[best]!)) best = i;
    });
    return {
      key: k.key,
      split: [...splits].join(" / "),
      higherIsBetter: k.higherIsBetter,
      values,
      best: values.filter((v) => v !== null).length > 1 ? best : null,
      supervised,
    };
  });
  return { runs: [...runs], rows };
}

export function formatComparison(c: Comparison): string {
  const rows: Cell[][] = c.rows.map((r) => [
    r.key,
    r.split,
    ...r.values.map((v, i) => (v === null ? null : `${fmt(v)}${r.supervised[i] ? " (s)" : ""}${r.best === i ? " *" : ""}`)),
  ]);
  return `${formatTable(["metric", "split", ...c.runs], rows)}\n(* best of the runs on that row; (s) supervised: that run trained on the dataset)`;
}

/** Writes the comparison page; returns its path. */
export async function writeComparison(c: Comparison, path = join(runsRoot(), `compare-${c.runs.join("-")}.html`)): Promise<string> {
  const head = `<tr><th>metric</th><th>split</th>${c.runs.map((r) => `<th>${escapeHtml(r)}</th>`).join("")}</tr>`;
  const body = c.rows
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.key)}</td><td>${escapeHtml(r.split)}</td>${r.values.map((v, i) => `<td class="n${r.best === i ? " better" : ""}">${fmt(v)}${r.supervised[i] ? " (s)" : ""}</td>`).join("")}</tr>`,
    )
    .join("");
  const note = `<p class="meta">Green: the best run on each row (lower is better for perplexity and overlap); (s): supervised, that run trained on the dataset. Each run's own report: ${c.runs
    .map((r) => `<a href="${escapeHtml(r)}/eval/report.html">${escapeHtml(r)}</a>`)
    .join(", ")}.</p>`;
  await writeFileAtomic(
    path,
    page(`bridge eval --compare ${c.runs.join(" ")}`, `${note}<table class="metrics"><thead>${head}</thead><tbody>${body}</tbody></table>`),
  );
  return path;
}
