/**
 * The runs of a grid and where each stands. Every trained variant's config is loaded for every
 * seed exactly as `bridge train` loads it (loadConfig: file, then --set overrides, then the schema),
 * so a bad override fails here, before any training starts.
 *
 * Each run folder made by `bridge ablate` holds ablate.json (AblateRecord): the grid entry it
 * belongs to, the hash of its resolved config, and its timings. A run is done when ablate.json
 * matches the grid entry (same config hash) and eval/metrics.json holds every task the grid asks.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { writeFileAtomic } from "../core/atomic.js";
import { checkShape } from "../core/jsonShape.js";
import { METRICS_FILE, readMetricsFile } from "../eval/evaluate.js";
import { TASK_NAMES } from "../eval/tasks/index.js";
import type { Metrics } from "../eval/types.js";
import { type RunPaths, readManifest, runPaths } from "../run/manifest.js";
import { type Grid, GridError, type TrainedVariant } from "./grid.js";
import { type Ledger, recordedEntry } from "./ledger.js";

export const RECORD_FILE = "ablate.json";
export const LOG_FILE = "ablate.log";
export const RECORD_VERSION = 1;

/** runs/NAME/ablate.json. */
export interface AblateRecord {
  version: number;
  /** The grid's name and file (absolute). */
  grid: string;
  gridFile: string;
  variant: string;
  seed: number;
  /** sha256 of the resolved config (canonical JSON: keys sorted). */
  configHash: string;
  /** Wall time of `bridge train` / `bridge eval`; null until each has finished. */
  trainSeconds: number | null;
  evalSeconds: number | null;
  started: string;
  finished: string | null;
  /** Why the last attempt failed (cleared by the next attempt). */
  error?: string;
}

/**
 * - done: trained and evaluated with every task of the grid;
 * - eval: trained, not (or not fully) evaluated: only `bridge eval` runs;
 * - restart: a folder this grid entry started whose training did not finish: removed and trained anew;
 * - recorded: no folder, but the grid's ledger records it done with this config (on another machine or before runs/
 *   was cleared): the table shows the recorded values; trained again unless the ablation skips recorded runs;
 * - pending: no folder yet.
 */
export type RunStatus = "done" | "eval" | "restart" | "recorded" | "pending";

export interface PlannedRun {
  /** runs/NAME. */
  run: string;
  variant: TrainedVariant;
  seed: number;
  /** `--set` overrides in the order train applies them: the seed, then the variant's. */
  set: string[];
  configHash: string;
  status: RunStatus;
  record: AblateRecord | null;
  paths: RunPaths;
}

export function runName(grid: Grid, variant: string, seed: number): string {
  return `ablate-${grid.name}-${variant}-s${seed}`;
}

/** JSON with object keys sorted, so equal configs hash alike whatever order their fields were written in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function configHash(cfg: Config): string {
  return createHash("sha256").update(canonicalJson(cfg)).digest("hex");
}

/** The fields where two resolved configs differ, "path: a -> b", at most `max` of them. */
export function configDiff(a: unknown, b: unknown, max = 5, path = ""): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, p: string): void => {
    if (out.length >= max) return;
    const isObj = (v: unknown) => v !== null && typeof v === "object";
    if (isObj(x) && isObj(y) && Array.isArray(x) === Array.isArray(y)) {
      const xo = x as Record<string, unknown>;
      const yo = y as Record<string, unknown>;
      for (const k of [...new Set([...Object.keys(xo), ...Object.keys(yo)])].sort()) walk(xo[k], yo[k], p ? `${p}.${k}` : k);
      return;
    }
    if (canonicalJson(x) !== canonicalJson(y)) out.push(`${p || "(top level)"}: ${JSON.stringify(x) ?? "missing"} -> ${JSON.stringify(y) ?? "missing"}`);
  };
  walk(a, b, path);
  return out;
}

const RecordShape = z.object({
  version: z.literal(RECORD_VERSION),
  grid: z.string(),
  gridFile: z.string(),
  variant: z.string(),
  seed: z.number().int(),
  configHash: z.string(),
  trainSeconds: z.number().nullable(),
  evalSeconds: z.number().nullable(),
  started: z.string(),
  finished: z.string().nullable(),
  error: z.string().optional(),
});

export function readRecord(paths: RunPaths): AblateRecord | null {
  const file = join(paths.dir, RECORD_FILE);
  if (!existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new GridError(`${file}: not valid JSON (${(err as Error).message}); remove the run folder ${paths.dir} to train it again`);
  }
  const fail = (m: string) => new GridError(`${m}; remove the run folder ${paths.dir} to train it again`);
  const { version } = checkShape(z.object({ version: z.unknown() }), raw, file, fail);
  if (version !== RECORD_VERSION)
    throw new GridError(`${file}: ablate record version ${JSON.stringify(version) ?? "missing"}, this bridge reads ${RECORD_VERSION}`);
  return checkShape(RecordShape, raw, file, fail);
}

export async function writeRecord(paths: RunPaths, r: AblateRecord): Promise<void> {
  await writeFileAtomic(join(paths.dir, RECORD_FILE), `${JSON.stringify(r, null, 2)}\n`);
}

/** The run's eval/metrics.json, or null when it has none. */
export function readRunMetrics(paths: RunPaths): Metrics | null {
  const file = join(paths.eval, METRICS_FILE);
  if (!existsSync(file)) return null;
  try {
    return readMetricsFile(file);
  } catch (err) {
    throw new GridError((err as Error).message);
  }
}

/** Whether `bridge train` finished the run (its manifest names a final checkpoint). */
function trainingFinished(paths: RunPaths): boolean {
  if (!existsSync(paths.manifest)) return false;
  return readManifest(paths).finalCheckpoint !== null;
}

export interface PlanOptions {
  /** Seeds instead of the grid's. */
  seeds?: number[];
  runsDir: string;
}

/**
 * Every (trained variant, seed) of the grid with its resolved config's hash and status. Throws,
 * before anything trains, for a config that does not load and for a run folder this grid entry
 * cannot take over (made by something else, or trained with another config).
 */
export function planRuns(grid: Grid, opts: PlanOptions): PlannedRun[] {
  const seeds = opts.seeds ?? grid.seeds;
  const out: PlannedRun[] = [];
  grid.variants.forEach((variant, i) => {
    if (variant.kind !== "trained") return;
    for (const seed of seeds) {
      const set = [`seed=${seed}`, ...variant.set];
      let cfg: Config;
      try {
        cfg = loadConfig({ file: variant.config, set, source: variant.config }); // the error below names the variant's set
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        // the config alone loads: the problem is the variant's set, so name it rather than the config file alone
        const setAtFault = variant.set.length > 0 && loadsAlone(variant.config, seed);
        const where = `variants.${i} (${variant.name})${setAtFault ? `.set [${variant.set.join(", ")}]` : ""}, seed ${seed}`;
        throw new GridError(`${grid.file}: ${where}: ${err.message}`);
      }
      const run = runName(grid, variant.name, seed);
      const paths = runPaths(run, opts.runsDir);
      const hash = configHash(cfg);
      const record = readRecord(paths);
      out.push({ run, variant, seed, set, configHash: hash, status: statusOf(grid, paths, record, hash, cfg, variant.name, seed), record, paths });
    }
  });
  return out;
}

function loadsAlone(config: string, seed: number): boolean {
  try {
    loadConfig({ file: config, set: [`seed=${seed}`] });
    return true;
  } catch {
    return false;
  }
}

/** A pending run (no folder) that the grid's ledger records with the same config hash becomes "recorded". */
export function markRecorded(runs: PlannedRun[], ledger: Ledger): void {
  for (const p of runs) if (p.status === "pending" && recordedEntry(ledger, p) !== null) p.status = "recorded";
}

function statusOf(grid: Grid, paths: RunPaths, record: AblateRecord | null, hash: string, cfg: Config, variant: string, seed: number): RunStatus {
  if (!existsSync(paths.dir)) return "pending";
  if (record === null) {
    throw new GridError(`${paths.dir} exists but was not made by \`bridge ablate\` (no ${RECORD_FILE}); move it away or rename the grid (name: ${grid.name})`);
  }
  if (record.grid !== grid.name || record.variant !== variant || record.seed !== seed) {
    throw new GridError(
      `${paths.dir} belongs to grid ${record.grid}, variant ${record.variant}, seed ${record.seed} (${record.gridFile}), not to this one; move it away`,
    );
  }
  const trained = record.trainSeconds !== null && trainingFinished(paths);
  if (!trained) return "restart"; // never finished training: nothing worth keeping
  if (record.configHash !== hash) {
    let diff: string[] = [];
    try {
      diff = configDiff(JSON.parse(readFileSync(paths.config, "utf8")), cfg);
    } catch {
      // no readable config.json: the hash says enough
    }
    throw new GridError(
      `${paths.dir} was trained by variant ${variant} seed ${seed} with another config than the grid now gives (${diff.length ? diff.join("; ") : `hash ${record.configHash.slice(0, 12)} vs ${hash.slice(0, 12)}`}); ` +
        `delete the folder to train it again, or give the changed variant a new name`,
    );
  }
  // a damaged metrics.json is evaluated again (eval keeps the old file aside), not a stop for the whole grid
  let metrics: Metrics | null;
  try {
    metrics = readRunMetrics(paths);
  } catch {
    return "eval";
  }
  const tasksDone = metrics !== null && record.evalSeconds !== null && (grid.tasks ?? TASK_NAMES).every((t) => metrics.tasks.includes(t));
  return tasksDone ? "done" : "eval";
}
