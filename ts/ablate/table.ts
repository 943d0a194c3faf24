/**
 * The results file of a grid (docs/results.md by default): how to reproduce it, when and where it
 * ran, what the runs trained on, then one row per variant (mean +- sample standard deviation over
 * the finished seeds of each dev metric, minutes per run) and a per-run detail table. Metric values
 * come from each run's eval/metrics.json through metricRows() (ts/eval/summary.ts), the same view
 * as `bridge eval`'s summary and --compare.
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { isAbsolute, join, relative, sep } from "node:path";
import { mean, sampleStandardDeviation } from "simple-statistics";
import { writeFileAtomic } from "../core/atomic.js";
import { TASK_NAMES } from "../eval/tasks/index.js";
import { STS_YEARS } from "../eval/tasks/sts12_16.js";
import { projectRoot } from "../paths.js";
import { type Grid, GridError, type Variant } from "./grid.js";
import { entryOf, type Ledger, type LedgerEntry, ledgerPath, recordedEntry, type TableValue, writeLedger } from "./ledger.js";
import { LOG_FILE, type PlannedRun, readRunMetrics } from "./plan.js";

/** A table column: a metric key of metricRows() and the eval task that writes it. */
interface Column {
  key: string;
  task: string;
  label: string;
  /** Shown only when some finished run has it (datasets few people have). */
  wherePresent?: boolean;
  /** The best mean is the lowest (perplexity); every other column's is the highest. */
  lowerIsBetter?: boolean;
}

export const COLUMNS: readonly Column[] = [
  { key: "separation.roc_auc", task: "separation", label: "separation ROC AUC" },
  { key: "sts.spearman", task: "sts", label: "STS-B Spearman" },
  { key: "sick.spearman", task: "sick", label: "SICK relatedness Spearman" },
  { key: "snli.accuracy", task: "snli", label: "SNLI accuracy" },
  // the NLI classifier out of SNLI's domain (MultiNLI-style genres); where the run's data dir has XNLI
  { key: "xnli.accuracy", task: "snli", label: "XNLI accuracy", wherePresent: true },
  { key: "sts12_16.mean", task: "sts12-16", label: "STS12-16 mean Spearman", wherePresent: true },
  { key: "lm.perplexity", task: "lm", label: "perplexity", lowerIsBetter: true },
];

export const COLUMN_KEYS: readonly string[] = COLUMNS.map((c) => c.key);

/** One run of the grid as the table sees it. */
export interface RunResult {
  run: string;
  variant: string;
  seed: number;
  /** Table values by metric key (a view of entry.values); null until the run is done. */
  rows: Map<string, TableValue> | null;
  /** "done", "done (recorded ...)", "pending", "needs eval", or "failed: ..." (see runs/NAME/ablate.log). */
  status: string;
  /** Its values come from the ledger (the run folder is not in runs/). */
  recorded: boolean;
  /** Its ledger entry (fresh from runs/, or the ledger's own): values, minutes, trained-on; null until done. */
  entry: LedgerEntry | null;
}

export interface ResultsContext {
  /** The command that reproduces the file. */
  command: string;
  date: Date;
  /** Cores and CPU model (machineDescription()). */
  machine: string;
  /** The ledger's path, named when some runs come from it. */
  ledger?: string;
}

export function machineDescription(): string {
  const c = cpus();
  return `${c.length} cores, ${c[0]?.model.trim() || "unknown CPU model"}`;
}

/** A path as the docs show it: relative to the project when inside it. */
export function displayPath(p: string, opts: { besideProject?: boolean } = {}): string {
  const r = relative(projectRoot, p);
  // inside the project, or (besideProject: the data folder, the README's ../shared/data) a folder next to it
  const beside = opts.besideProject === true && r.startsWith(`..${sep}`) && !r.slice(3).startsWith("..");
  return r !== "" && (!r.startsWith("..") || beside) && !isAbsolute(r) ? r : p;
}

/** Each planned run as the table shows it: from its run folder when done there, else from the ledger, else pending. */
export function collectResults(runs: readonly PlannedRun[], ledger: Ledger | null = null): RunResult[] {
  return runs.map((p) => {
    const done = p.status === "done" && p.record !== null;
    const metrics = done ? readRunMetrics(p.paths) : null;
    const entry = done || ledger === null ? null : recordedEntry(ledger, p);
    const failed = p.record?.error !== undefined && !done;
    const status = done
      ? "done"
      : entry !== null
        ? `done (recorded${entry.finished ? ` ${entry.finished.slice(0, 10)}` : ""}; not in runs/)`
        : failed
          ? `failed: ${p.record!.error} (see ${displayPath(join(p.paths.dir, LOG_FILE))})`
          : p.status === "eval"
            ? "needs eval"
            : "pending";
    const fresh =
      metrics === null
        ? null
        : entryOf(
            { ...p, variant: p.variant.name },
            metrics,
            ((p.record!.trainSeconds ?? 0) + (p.record!.evalSeconds ?? 0)) / 60,
            p.record!.finished,
            COLUMN_KEYS,
          );
    const shown = fresh ?? entry;
    return {
      run: p.run,
      variant: p.variant.name,
      seed: p.seed,
      rows: shown === null ? null : new Map(Object.entries(shown.values)),
      status,
      recorded: entry !== null,
      entry: shown,
    };
  });
}

/** The TF-IDF value of a column in one run's metrics (none for a classifier's accuracy). */
function tfidfValue(col: Column, r: RunResult): number | null {
  if (col.key === "sts12_16.mean") {
    // the mean over the years present, as the sts12-16 task means its own Spearman
    const years = STS_YEARS.filter((y) => r.rows!.has(`${y}.spearman`));
    const vals = years.map((y) => r.rows!.get(`${y}.spearman`)?.baseline).filter((v): v is number => typeof v === "number");
    return vals.length > 0 && vals.length === years.length ? mean(vals) : null;
  }
  return r.rows!.get(col.key)?.baseline ?? null;
}

interface Cell {
  mean: number;
  sd: number | null;
  supervised: boolean;
}

/** Mean and sample standard deviation (null for one value); null for no values. */
function aggregate(values: readonly number[], supervised: boolean): Cell | null {
  if (values.length === 0) return null;
  return { mean: mean([...values]), sd: values.length > 1 ? sampleStandardDeviation([...values]) : null, supervised };
}

// three decimals for scores and correlations; perplexities (tens to hundreds) to one
const fmt = (x: number) => (Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(3));
const md = (s: string) => s.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");

function cellText(c: Cell | null | "pending", bold: boolean): string {
  if (c === "pending") return "pending";
  if (c === null) return "";
  const v = `${fmt(c.mean)}${c.sd === null ? "" : ` ± ${fmt(c.sd)}`}`;
  return `${bold ? `**${v}**` : v}${c.supervised ? " (s)" : ""}`;
}

/** One variant's cells: null where no finished run has the metric, "pending" before any run finished. */
function variantCells(v: Variant, cols: readonly Column[], results: readonly RunResult[]): (Cell | null | "pending")[] {
  if (v.kind === "baseline") {
    const done = results.filter((r) => r.rows !== null);
    if (done.length === 0) return cols.map(() => "pending");
    return cols.map((c) => {
      const vals = done.map((r) => tfidfValue(c, r)).filter((x): x is number => x !== null);
      // every run scores the same items on the same split: one value, not a spread of copies (ledger values are rounded
      // to the table's 3 decimals, so copies are compared as shown)
      const distinct = [...new Set(vals.map(fmt))].map(Number);
      return aggregate(distinct.length === 1 ? distinct : vals, false);
    });
  }
  const mine = results.filter((r) => r.variant === v.name && r.rows !== null);
  if (mine.length === 0) return cols.map(() => "pending");
  return cols.map((c) => {
    const rows = mine.map((r) => r.rows!.get(c.key)).filter((x): x is TableValue => x !== undefined && x.value !== null && Number.isFinite(x.value));
    return aggregate(
      rows.map((x) => x.value!),
      rows.some((x) => x.supervised),
    );
  });
}

/** The columns this grid shows: its eval tasks', less those only shown where present and present nowhere. */
function visibleColumns(grid: Grid, results: readonly RunResult[]): Column[] {
  const tasks = grid.tasks ?? TASK_NAMES;
  return COLUMNS.filter((c) => tasks.includes(c.task) && (!c.wherePresent || results.some((r) => r.rows?.has(c.key))));
}

function header(c: Column, results: readonly RunResult[]): string {
  const splits = [...new Set(results.map((r) => r.rows?.get(c.key)?.split).filter((s): s is string => s !== undefined))];
  return splits.length > 0 ? `${c.label} (${splits.join(", ")})` : c.label;
}

function tableLines(head: string[], rows: string[][]): string[] {
  return [`| ${head.map(md).join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(md).join(" | ")} |`)];
}

/** "Trained on": one line when every finished run trained on the same data, else one per variant. */
function trainedOnLines(results: readonly RunResult[]): string[] {
  const byVariant = new Map<string, Set<string>>();
  for (const r of results) {
    if (r.entry === null) continue;
    const set = byVariant.get(r.variant) ?? new Set<string>();
    set.add(r.entry.trainedOn);
    byVariant.set(r.variant, set);
  }
  const all = new Set([...byVariant.values()].flatMap((s) => [...s]));
  if (all.size === 0) return ["- Trained on: no run has finished yet"];
  if (all.size === 1) return [`- Trained on (every run): ${[...all][0]}`];
  return ["- Trained on:", ...[...byVariant].map(([v, s]) => `  - ${v}: ${[...s].join(" | ")}`)];
}

export function renderResults(grid: Grid, results: readonly RunResult[], ctx: ResultsContext): string {
  const cols = visibleColumns(grid, results);
  const done = results.filter((r) => r.rows !== null);
  const recorded = done.filter((r) => r.recorded).length;
  const cells = grid.variants.map((v) => variantCells(v, cols, results));
  // the best mean of each column in bold (ties: all of them)
  const best = cols.map((col, j) => {
    const means = cells
      .map((row) => row[j])
      .filter((c): c is Cell => c !== null && c !== "pending")
      .map((c) => c.mean);
    if (means.length < 2) return null;
    return col.lowerIsBetter ? Math.min(...means) : Math.max(...means);
  });
  const seedsOf = (v: Variant) =>
    v.kind === "baseline"
      ? "-"
      : `${results.filter((r) => r.variant === v.name && r.rows !== null).length}/${results.filter((r) => r.variant === v.name).length}`;
  const minutesOf = (v: Variant) => {
    if (v.kind === "baseline") return "-";
    const m = results.filter((r) => r.variant === v.name && r.entry !== null).map((r) => r.entry!.minutes);
    return m.length === 0 ? "pending" : mean(m).toFixed(1);
  };
  const mainRows = grid.variants.map((v, i) => [
    v.name,
    v.about,
    seedsOf(v),
    ...cells[i].map((c, j) => cellText(c, c !== null && c !== "pending" && best[j] !== null && c.mean === best[j])),
    minutesOf(v),
  ]);
  const detailRows = results.map((r) => [
    r.run,
    r.variant,
    String(r.seed),
    ...cols.map((c) => {
      const row = r.rows?.get(c.key);
      return row === undefined || row.value === null ? "" : `${fmt(row.value)}${row.supervised ? " (s)" : ""}`;
    }),
    r.entry === null ? "" : r.entry.minutes.toFixed(1),
    r.status,
  ]);
  const seeds = [...new Set(results.map((r) => r.seed))];
  const lines = [
    `# ${grid.title}`,
    "",
    `Reproduce: \`${ctx.command}\``,
    "",
    `- Date: ${ctx.date.toISOString().replace("T", " ").slice(0, 16)} UTC (rewritten after every finished run)`,
    `- Machine: ${ctx.machine}`,
    `- Grid: ${displayPath(grid.file)}; base config: ${displayPath(grid.base)}; seeds: ${seeds.join(", ")}; eval tasks: ${(grid.tasks ?? TASK_NAMES).join(", ")}`,
    ...trainedOnLines(results),
    `- Runs: ${done.length} of ${results.length} done${done.length < results.length ? `, ${results.length - done.length} not yet (see the per-run table)` : ""}` +
      (recorded > 0
        ? `; ${recorded} of the done ones are from the ledger ${displayPath(ctx.ledger ?? "")} (trained on an earlier machine or session; their folders are not in runs/)`
        : ""),
    "",
    ...tableLines(["variant", "about", "seeds", ...cols.map((c) => header(c, results)), "min/run"], mainRows),
    "",
    "Each cell: mean ± sample standard deviation over the seeds done (one seed: its value). **Bold**: the best mean of the column (the lowest for perplexity). " +
      "(s): supervised, the run trained on that dataset (SNLI figures are on rows held out of the split it trained on), not a transfer result. " +
      "pending: no run of the row has finished. Blank: the runs have no such metric (e.g. SNLI accuracy without a trained classifier). " +
      "Baseline rows train nothing: their numbers are the TF-IDF cosine baseline on the same items, from the runs' metrics.json. " +
      "min/run: wall minutes of train + eval, mean over the seeds done.",
    "",
    ...(grid.findings ? ["## What mattered", "", grid.findings.trim(), ""] : []),
    "## Per run",
    "",
    ...tableLines(["run", "variant", "seed", ...cols.map((c) => c.label), "min", "status"], detailRows),
    "",
  ];
  return lines.join("\n");
}

/**
 * The ledger after this rewrite: every run done in runs/ (fresh values), the entries still valid for planned runs
 * not in runs/, and every other entry as it was (other seeds; a config since changed; a variant since dropped:
 * staleEntries), unless a fresh entry of the same run replaces it.
 */
export function nextLedger(grid: Grid, results: readonly RunResult[], ledger: Ledger): Ledger {
  const fromPlan = results.map((r) => r.entry).filter((e): e is LedgerEntry => e !== null);
  const fresh = new Set(fromPlan.map((e) => e.run));
  const kept = ledger.runs.filter((e) => !fresh.has(e.run));
  const order = new Map(grid.variants.map((v, i) => [v.name, i]));
  const rank = (e: LedgerEntry) => order.get(e.variant) ?? grid.variants.length;
  const all = [...fromPlan, ...kept].sort((a, b) => rank(a) - rank(b) || a.variant.localeCompare(b.variant) || a.seed - b.seed);
  return { version: ledger.version, grid: grid.name, runs: all };
}

/**
 * Refuses an output that is neither absent nor a table this command wrote (its ledger beside it, or its Reproduce
 * line): the table is rewritten whole, and `output: ../../README.md` must not replace a README.
 */
export function assertOutputIsTable(grid: Grid): void {
  if (!existsSync(grid.output) || existsSync(ledgerPath(grid))) return;
  if (/^Reproduce: `npx bridge ablate /m.test(readFileSync(grid.output, "utf8"))) return;
  throw new GridError(
    `output: ${grid.output} exists and is not a results table of bridge ablate (no ledger ${ledgerPath(grid)} beside it, no Reproduce line); ` +
      "it would be overwritten: name another file in the grid's output, or move this one",
  );
}

/** Renders the results of the planned runs (and of the ledger's where runs/ lacks them) and writes them atomically to
 * the grid's output, and the ledger beside it; returns the output's path. */
export async function writeResults(grid: Grid, runs: readonly PlannedRun[], ledger: Ledger, ctx: ResultsContext): Promise<string> {
  const results = collectResults(runs, ledger);
  await writeLedger(grid, nextLedger(grid, results, ledger));
  await writeFileAtomic(grid.output, renderResults(grid, results, { ...ctx, ledger: ledgerPath(grid) }));
  return grid.output;
}
