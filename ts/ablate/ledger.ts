/**
 * The grid's ledger (docs/results.runs.json beside docs/results.md): each finished run's table values,
 * rewritten with the table and committed with it. runs/ stays on the machine that trained, so without
 * the ledger a grid continued on another machine, or after runs/ was cleared, would show only the runs
 * it can still see. The table reads a run from runs/ when it is there and from the ledger otherwise;
 * a ledger entry counts only while its config hash matches the config the grid now gives that run (the others stay
 * in the ledger, out of the table).
 */
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "../core/atomic.js";
import { checkShape } from "../core/jsonShape.js";
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

// passthrough: a field this bridge does not know survives the ledger's rewrite
const TableValueShape = z.object({ split: z.string(), value: z.number().nullable(), baseline: z.number().nullable(), supervised: z.boolean() }).passthrough();
const EntryShape = z
  .object({
    run: z.string(),
    variant: z.string(),
    seed: z.number().int(),
    configHash: z.string(),
    minutes: z.number(),
    finished: z.string().nullable(),
    trainedOn: z.string(),
    values: z.record(TableValueShape),
    source: z.string().optional(),
  })
  .passthrough();

/** The grid's ledger; an empty one when the file is absent. */
export function readLedger(grid: Grid): Ledger {
  const file = ledgerPath(grid);
  if (!existsSync(file)) return { version: LEDGER_VERSION, grid: grid.name, runs: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new GridError(`${file}: not valid JSON (${(err as Error).message}); restore it from git or delete it (the table then shows only the runs in runs/)`);
  }
  const fail = (m: string) => new GridError(`${m}; restore it from git, or fix or delete it (the table then shows only the runs in runs/)`);
  const head = checkShape(z.object({ version: z.unknown(), grid: z.unknown(), runs: z.unknown() }), raw, file, fail);
  if (head.version !== LEDGER_VERSION)
    throw new GridError(`${file}: ledger version ${JSON.stringify(head.version) ?? "missing"}, this bridge reads ${LEDGER_VERSION}`);
  if (head.grid !== grid.name)
    throw new GridError(`${file}: the ledger of grid ${String(head.grid)}, not of ${grid.name} (${grid.file}); give the grid its own output`);
  if (!Array.isArray(head.runs)) throw new GridError(`${file}: "runs" must be a list`);
  const { runs } = checkShape(z.object({ runs: z.array(EntryShape) }), raw, file, fail);
  return { version: LEDGER_VERSION, grid: grid.name, runs };
}

/**
 * Entries the grid no longer gives a run to: their run's config changed (a stale hash) or their variant left the
 * grid. The table leaves them out; the ledger keeps them (a run trained again replaces its own), so an edit to a
 * config never deletes committed results unseen.
 */
export function staleEntries(
  ledger: Ledger,
  grid: Grid,
  runs: readonly { run: string; configHash: string }[],
): { changed: LedgerEntry[]; gone: LedgerEntry[] } {
  const hashes = new Map(runs.map((r) => [r.run, r.configHash]));
  const variants = new Set(grid.variants.map((v) => v.name));
  return {
    changed: ledger.runs.filter((e) => variants.has(e.variant) && hashes.has(e.run) && hashes.get(e.run) !== e.configHash),
    gone: ledger.runs.filter((e) => !variants.has(e.variant)),
  };
}

/** "3 ledger entries ...": what staleEntries found, for the command's log; null when nothing. */
export function describeStale(stale: { changed: LedgerEntry[]; gone: LedgerEntry[] }, file: string): string | null {
  const names = (es: LedgerEntry[]) => es.map((e) => e.run).join(", ");
  const parts = [
    stale.changed.length > 0 ? `${stale.changed.length} with another config than the grid now gives (${names(stale.changed)})` : "",
    stale.gone.length > 0 ? `${stale.gone.length} of variants no longer in the grid (${names(stale.gone)})` : "",
  ].filter((p) => p !== "");
  if (parts.length === 0) return null;
  return `${file}: ${parts.join("; ")}: kept in the ledger, left out of the table; a run trained again replaces its entry`;
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
