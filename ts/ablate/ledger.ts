/**
 * The grid's ledger (docs/results.runs.json beside docs/results.md): each finished run's table values,
 * rewritten with the table and committed with it. runs/ stays on the machine that trained, so without
 * the ledger a grid continued on another machine, or after runs/ was cleared, would show only the runs
 * it can still see. The table reads a run from runs/ when it is there and from the ledger otherwise;
 * a ledger entry counts only while its config hash matches the config the grid now gives that run.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../core/atomic.js";
import { metricRows } from "../eval/summary.js";
import { describeTrainedOn } from "../eval/trainedOn.js";
import type { Metrics } from "../eval/types.js";
import { type Grid, GridError } from "./grid.js";

export const LEDGER_VERSION = 1;

/** What the table shows of one metric of one run. */
export interface TableValue {
  split: string;
  value: number | null;
  /** The TF-IDF baseline on the same items, where there is one. */
  baseline: number | null;
  supervised: boolean;
}

export interface LedgerEntry {
  run: string;
  variant: string;
  seed: number;
  /** The resolved config's hash when the run trained (plan.ts configHash). */
  configHash: string;
  /** Train + eval wall minutes. */
  minutes: number;
  /** When its eval finished (ISO), where known. */
  finished: string | null;
  /** describeTrainedOn() of its metrics. */
  trainedOn: string;
  /** Table values by metric key (the table's columns, and the STS12-16 years behind their mean). */
  values: Record<string, TableValue>;
  /** Where the entry came from when not from a run folder of this bridge (e.g. an older results table). */
  source?: string;
}

export interface Ledger {
  version: number;
  grid: string;
  runs: LedgerEntry[];
}

/** docs/results.md -> docs/results.runs.json. */
export function ledgerPath(grid: Grid): string {
  return `${grid.output.replace(/\.md$/i, "")}.runs.json`;
}

/** The grid's ledger; an empty one when the file is absent. */
export function readLedger(grid: Grid): Ledger {
  const file = ledgerPath(grid);
  if (!existsSync(file)) return { version: LEDGER_VERSION, grid: grid.name, runs: [] };
  let l: Ledger;
  try {
    l = JSON.parse(readFileSync(file, "utf8")) as Ledger;
  } catch (err) {
    throw new GridError(`${file}: not valid JSON (${(err as Error).message}); restore it from git or delete it (the table then shows only the runs in runs/)`);
  }
  if (l.version !== LEDGER_VERSION) throw new GridError(`${file}: ledger version ${l.version}, this bridge reads ${LEDGER_VERSION}`);
  if (l.grid !== grid.name) throw new GridError(`${file}: the ledger of grid ${l.grid}, not of ${grid.name} (${grid.file}); give the grid its own output`);
  if (!Array.isArray(l.runs)) throw new GridError(`${file}: "runs" must be a list`);
  l.runs.forEach((e, i) => {
    const ok =
      typeof e?.run === "string" &&
      typeof e.variant === "string" &&
      Number.isInteger(e.seed) &&
      typeof e.configHash === "string" &&
      typeof e.minutes === "number" &&
      e.values !== null &&
      typeof e.values === "object";
    if (!ok) throw new GridError(`${file}: runs.${i} lacks run, variant, seed, configHash, minutes or values`);
  });
  return l;
}

/** The ledger's entry for a planned run, when it holds one made with the config the grid now gives it. */
export function recordedEntry(ledger: Ledger, run: { run: string; configHash: string }): LedgerEntry | null {
  return ledger.runs.find((e) => e.run === run.run && e.configHash === run.configHash) ?? null;
}

/** One run a line, so a commit's diff shows which runs it adds or changes. */
export async function writeLedger(grid: Grid, ledger: Ledger): Promise<void> {
  const runs = ledger.runs.map((e) => `  ${JSON.stringify(e)}`).join(",\n");
  const text = `{\n "version": ${JSON.stringify(ledger.version)},\n "grid": ${JSON.stringify(ledger.grid)},\n "runs": [${runs ? `\n${runs}\n ` : ""}]\n}\n`;
  await writeFileAtomic(ledgerPath(grid), text);
}

/** The metric keys the table needs of a run: its columns', and each STS12-16 year's behind sts12_16.mean. */
export function tableValues(metrics: Metrics, keys: readonly string[]): Record<string, TableValue> {
  const years = new Set((metrics.sts12_16?.years ?? []).map((y) => `${y}.spearman`));
  const out: Record<string, TableValue> = {};
  for (const r of metricRows(metrics)) {
    if (keys.includes(r.key) || years.has(r.key)) out[r.key] = { split: r.split, value: r.value, baseline: r.baseline, supervised: r.supervised };
  }
  return out;
}

export function entryOf(
  run: { run: string; variant: string; seed: number; configHash: string },
  metrics: Metrics,
  minutes: number,
  finished: string | null,
  keys: readonly string[],
): LedgerEntry {
  return {
    run: run.run,
    variant: run.variant,
    seed: run.seed,
    configHash: run.configHash,
    minutes,
    finished,
    trainedOn: describeTrainedOn(metrics.trained_on ?? []),
    values: tableValues(metrics, keys),
  };
}
