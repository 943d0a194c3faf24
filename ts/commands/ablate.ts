/**
 * `npx bridge ablate GRID.yaml`: train and evaluate every variant of an ablation grid for every
 * seed (one run at a time, finished runs skipped), and write the results table (docs/results.md by
 * default). The grid: ts/ablate/grid.ts; the runs and their state: ts/ablate/plan.ts; running them:
 * ts/ablate/runner.ts; the table: ts/ablate/table.ts.
 */
import { resolve } from "node:path";
import { GridError, loadGrid, parseSeeds } from "../ablate/grid.js";
import { describeStale, ledgerPath, readLedger, staleEntries } from "../ablate/ledger.js";
import { markRecorded, type PlannedRun, planRuns } from "../ablate/plan.js";
import { assertOutputIsTable, displayPath, machineDescription, writeResults } from "../ablate/table.js";
import { runsRoot } from "../run/manifest.js";
import { formatTable } from "../ui/table.js";

export interface AblateOptions {
  /** The grid file (YAML). */
  grid: string;
  dataDir?: string;
  /** Train only these variants this time (repeatable); the table shows every variant. */
  only?: string[];
  /** "1,2": these seeds instead of the grid's. */
  seeds?: string;
  /** Runs at a time (default 1). */
  jobs?: number;
  /** Print the plan (runs done and pending) and do nothing. */
  dryRun?: boolean;
  /** Rewrite the results file from the finished runs; train nothing. */
  tableOnly?: boolean;
  /** Runs the ledger (docs/results.runs.json) records count as done: train only what no machine has finished. */
  skipRecorded?: boolean;
  /** Where runs/ is (default: BRIDGE_RUNS_DIR or ./runs). */
  runsDir?: string;
  log?: (line: string) => void;
}

const STATUS_TEXT = {
  done: "done",
  eval: "to evaluate",
  restart: "unfinished: train again",
  recorded: "in the ledger: train again (skipped with --skip-recorded)",
  pending: "to train",
} as const;

/** The command that reproduces the table: the grid and what changes its runs (--only only orders the work). */
export function reproduceCommand(opts: AblateOptions): string {
  const parts = ["npx bridge ablate", displayPath(resolve(opts.grid))];
  if (opts.dataDir !== undefined) parts.push("--data-dir", displayPath(resolve(opts.dataDir), { besideProject: true }));
  if (opts.seeds !== undefined) parts.push("--seeds", parseSeeds(opts.seeds).join(","));
  return parts.join(" ");
}

export async function ablate(opts: AblateOptions): Promise<number> {
  const log = opts.log ?? ((l: string) => console.log(l));
  if (opts.dryRun && opts.tableOnly) throw new GridError("--dry-run prints the plan and --table-only writes the table: pick one");
  if (opts.tableOnly && opts.only?.length) throw new GridError("--only picks what to train; --table-only trains nothing (the table shows every variant)");
  if (opts.jobs !== undefined && (!Number.isInteger(opts.jobs) || opts.jobs < 1))
    throw new GridError(`--jobs ${opts.jobs}: a whole number of runs at a time, 1 or more`);
  const grid = loadGrid(opts.grid);
  const trainedNames = grid.variants.filter((v) => v.kind === "trained").map((v) => v.name);
  for (const o of opts.only ?? []) {
    if (!grid.variants.some((v) => v.name === o))
      throw new GridError(`--only ${o}: no such variant in ${opts.grid}; variants: ${grid.variants.map((v) => v.name).join(", ")}`);
    if (!trainedNames.includes(o)) throw new GridError(`--only ${o}: a baseline row, nothing to train; trained variants: ${trainedNames.join(", ")}`);
  }
  const runsDir = opts.runsDir ?? runsRoot();
  // every config is loaded (and every run folder checked) here, before anything trains
  const runs = planRuns(grid, { seeds: opts.seeds === undefined ? undefined : parseSeeds(opts.seeds), runsDir });
  // after the configs: a bad variant is named first; then whether the output's ledger is this grid's
  const ledger = readLedger(grid);
  assertOutputIsTable(grid);
  markRecorded(runs, ledger);
  const stale = describeStale(staleEntries(ledger, grid, runs), displayPath(ledgerPath(grid)));
  if (stale !== null) log(stale);
  const context = { command: reproduceCommand(opts), machine: machineDescription() };

  if (opts.dryRun) {
    const chosen = (v: string) => opts.only === undefined || opts.only.length === 0 || opts.only.includes(v);
    const statusText = (p: PlannedRun) => (p.status === "recorded" && opts.skipRecorded ? "in the ledger: skipped" : STATUS_TEXT[p.status]);
    log(
      formatTable(
        ["run", "variant", "seed", "status"],
        runs.map((p) => [p.run, p.variant.name, p.seed, chosen(p.variant.name) || p.status === "done" ? statusText(p) : `${statusText(p)} (not with --only)`]),
      ),
    );
    const done = runs.filter((p) => p.status === "done").length;
    const recorded = runs.filter((p) => p.status === "recorded").length;
    log(
      `\n${runs.length} runs: ${done} done, ${recorded > 0 ? `${recorded} in the ledger ${displayPath(ledgerPath(grid))}, ` : ""}${runs.length - done - recorded} pending; results go to ${displayPath(grid.output)}`,
    );
    return 0;
  }
  if (opts.tableOnly) {
    const recorded = runs.filter((p) => p.status === "recorded").length;
    log(
      `wrote ${await writeResults(grid, runs, ledger, { ...context, date: new Date() })} (${runs.filter((p) => p.status === "done").length} of ${runs.length} runs done${recorded > 0 ? `, ${recorded} more from the ledger` : ""})`,
    );
    return 0;
  }
  const { runGrid } = await import("../ablate/runner.js");
  const r = await runGrid(grid, runs, {
    runsDir,
    dataDir: opts.dataDir,
    jobs: opts.jobs,
    only: opts.only?.length ? opts.only : undefined,
    skipRecorded: opts.skipRecorded,
    ledger,
    log,
    context,
  });
  const runsN = (n: number) => `${n} run${n === 1 ? "" : "s"}`;
  log(`wrote ${r.output}: ${runsN(r.ran.length)} finished now, ${r.skipped.length} done before, ${r.failed.length} failed`);
  if (r.failed.length > 0) {
    throw new Error(
      `${r.failed.length} run${r.failed.length > 1 ? "s" : ""} failed: ${r.failed.map((f) => `${f.run} (${f.error})`).join("; ")}; each one's output is in runs/RUN/ablate.log; run the same command again to retry them`,
    );
  }
  return 0;
}
