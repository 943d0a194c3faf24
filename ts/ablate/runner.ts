/**
 * Runs a grid's runs one at a time (or `jobs` at a time), each as `bridge train` then `bridge eval` child processes of
 * this CLI (the same dist/ts/cli.js entry bin/bridge.js runs), their output appended to
 * runs/NAME/ablate.log, one line per run printed here. The results file is rewritten after every
 * run that finishes (or fails), so a partial grid can be committed with its pending cells.
 *
 * A run whose training did not finish (interrupted, failed) is removed and trained anew rather than
 * resumed: its minutes must be one uninterrupted run's wall time, which a resumed run cannot
 * report, and at most one run's training is lost. A run trained but not evaluated is only evaluated.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { metricRows } from "../eval/summary.js";
import { acquireRunLock, withRunLock } from "../run/lock.js";
import type { Grid } from "./grid.js";
import type { Ledger } from "./ledger.js";
import { type AblateRecord, LOG_FILE, type PlannedRun, RECORD_VERSION, readRunMetrics, writeRecord } from "./plan.js";
import { COLUMNS, type ResultsContext, writeResults } from "./table.js";

/** The compiled CLI entry (dist/ts/cli.js): what bin/bridge.js imports. */
export const CLI_ENTRY = fileURLToPath(new URL("../cli.js", import.meta.url));

export interface RunnerOptions {
  runsDir: string;
  /** Runs at a time (default 1); each run's backend uses the config's threads, so 2 suits 2 cores at threads: 1. */
  jobs?: number;
  dataDir?: string;
  /** Variants to train this time (the table still shows every variant). */
  only?: readonly string[];
  /** Runs the ledger records as done are not trained again (they count as done). */
  skipRecorded?: boolean;
  /** The grid's ledger as planning read it. */
  ledger: Ledger;
  /** Where one line per run goes. */
  log: (line: string) => void;
  /** The results file's header (command, machine); its date is taken at each rewrite. */
  context: Omit<ResultsContext, "date">;
}

export interface RunnerResult {
  /** Runs trained and / or evaluated this time. */
  ran: string[];
  skipped: string[];
  failed: { run: string; error: string }[];
  output: string;
}

/** The children this process waits on: killed if we exit (Ctrl-C, SIGTERM) so no training outlives the ablation. */
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
});

/** Runs `bridge ARGS` with output appended to `logFile`; resolves with its exit status, wall seconds and, when it
 * failed, its error line (the CLI prints errors as "bridge: ..."). */
function bridge(args: string[], logFile: string, runsDir: string): Promise<{ code: number; seconds: number; error: string }> {
  const from = existsSync(logFile) ? statSync(logFile).size : 0;
  const fd = openSync(logFile, "a");
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
      env: { ...process.env, BRIDGE_RUNS_DIR: runsDir },
      stdio: ["ignore", fd, fd],
    });
    children.add(child);
    child.on("error", (err) => {
      children.delete(child);
      closeSync(fd);
      reject(new Error(`could not start \`bridge ${args[0]}\`: ${err.message}`));
    });
    child.on("exit", (code, signal) => {
      children.delete(child);
      closeSync(fd);
      const status = code ?? 128;
      const why = status === 0 ? "" : errorLine(logFile, from);
      resolve({
        code: status,
        seconds: (Date.now() - t0) / 1000,
        error: `bridge ${args[0]} ${signal ? `was killed by ${signal}` : `exited with ${status}`}${why ? `: ${why}` : ""}`,
      });
    });
  });
}

/** The last "bridge: ..." error line the child wrote to the log after byte `from` (cut to one short line). */
function errorLine(logFile: string, from: number): string {
  const text = readFileSync(logFile).subarray(from).toString("utf8");
  const line = text
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("bridge: "));
  if (line === undefined) return "";
  const msg = line.slice("bridge: ".length).trim();
  return msg.length > 300 ? `${msg.slice(0, 300)}...` : msg;
}

/** Removes a run folder whose training never finished; refused (naming the holder) while a command works in it. */
function removeUnfinished(p: PlannedRun): void {
  const lock = acquireRunLock(p.paths.dir, "bridge ablate (removing an unfinished run to train it again)");
  try {
    rmSync(p.paths.dir, { recursive: true, force: true });
  } finally {
    lock.release();
  }
}

/** "separation.roc_auc 0.812, sts.spearman 0.541": the run's table metrics, for its line. */
function summaryOf(p: PlannedRun): string {
  const m = readRunMetrics(p.paths);
  if (m === null) return "";
  const rows = new Map(metricRows(m).map((r) => [r.key, r.value]));
  return COLUMNS.filter((c) => typeof rows.get(c.key) === "number")
    .map((c) => `${c.key} ${rows.get(c.key)!.toFixed(3)}`)
    .join(", ");
}

/** Runs the grid's unfinished runs (those of opts.only's variants), holding the grid's lock: two ablations of one grid
 * at once would both start its pending runs. */
export async function runGrid(grid: Grid, runs: PlannedRun[], opts: RunnerOptions): Promise<RunnerResult> {
  return withRunLock(join(opts.runsDir, `.ablate-${grid.name}`), `bridge ablate ${grid.file}`, () => runLocked(grid, runs, opts));
}

/**
 * The run's record as it starts: a fresh one (its folder made, or remade after an unfinished attempt), or, for a
 * run trained but not evaluated, its record with the evaluation cleared. Written before training starts: the folder
 * is then known to be this grid entry's.
 */
async function startRecord(grid: Grid, p: PlannedRun): Promise<AblateRecord> {
  let record: AblateRecord;
  if (p.status === "eval") {
    record = { ...p.record!, evalSeconds: null, finished: null };
    delete record.error;
  } else {
    if (p.status === "restart") removeUnfinished(p);
    mkdirSync(p.paths.dir, { recursive: true });
    record = {
      version: RECORD_VERSION,
      grid: grid.name,
      gridFile: grid.file,
      variant: p.variant.name,
      seed: p.seed,
      configHash: p.configHash,
      trainSeconds: null,
      evalSeconds: null,
      started: new Date().toISOString(),
      finished: null,
    };
  }
  await writeRecord(p.paths, record);
  p.record = record;
  return record;
}

async function runLocked(grid: Grid, runs: PlannedRun[], opts: RunnerOptions): Promise<RunnerResult> {
  const counts = (p: PlannedRun) => p.status === "done" || (p.status === "recorded" && opts.skipRecorded === true);
  const selected = (p: PlannedRun) => opts.only === undefined || opts.only.includes(p.variant.name);
  const todo = runs.filter((p) => !counts(p) && selected(p));
  const result: RunnerResult = { ran: [], skipped: runs.filter(counts).map((p) => p.run), failed: [], output: grid.output };
  const dataDir = opts.dataDir === undefined ? [] : ["--data-dir", opts.dataDir];
  const write = () => writeResults(grid, runs, opts.ledger, { ...opts.context, date: new Date() });
  // a line per finished run of the variants asked for; the others (not in --only) only counted
  for (const p of runs.filter((r) => counts(r) && selected(r)))
    opts.log(`${p.run}: ${p.status === "done" ? "done already (same config)" : "recorded in the ledger (same config)"}, skipped`);
  const others = runs.filter((r) => counts(r) && !selected(r)).length;
  if (others > 0) opts.log(`${others} finished run${others === 1 ? "" : "s"} of other variants (not in --only): kept in the table`);

  // `jobs` workers take the next pending run in grid order; the results file is rewritten (atomically) as each ends
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < todo.length; k = next++) await runOne(k, todo[k]);
  };
  const runOne = async (k: number, p: PlannedRun): Promise<void> => {
    const tag = `[${k + 1}/${todo.length}] ${p.run}`;
    const logFile = join(p.paths.dir, LOG_FILE);
    const record = await startRecord(grid, p);

    const fail = async (error: string) => {
      record.error = error;
      await writeRecord(p.paths, record);
      result.failed.push({ run: p.run, error });
      opts.log(`${tag}: FAILED: ${error}; see ${logFile}`);
      await write();
    };

    if (record.trainSeconds === null) {
      opts.log(`${tag}: training (${p.variant.name}, seed ${p.seed}; output in ${logFile})`);
      const t = await bridge(["train", "--config", p.variant.config, ...p.set.flatMap((s) => ["--set", s]), "--run", p.run, ...dataDir], logFile, opts.runsDir);
      if (t.code !== 0) {
        await fail(t.error);
        return;
      }
      record.trainSeconds = t.seconds;
      await writeRecord(p.paths, record);
      p.status = "eval";
    }

    opts.log(`${tag}: evaluating`);
    const e = await bridge(["eval", "--run", p.run, ...(grid.tasks ? ["--tasks", grid.tasks.join(",")] : []), ...dataDir], logFile, opts.runsDir);
    if (e.code !== 0) {
      await fail(e.error);
      return;
    }
    record.evalSeconds = e.seconds;
    record.finished = new Date().toISOString();
    await writeRecord(p.paths, record);
    p.status = "done";
    result.ran.push(p.run);
    opts.log(`${tag}: done in ${((record.trainSeconds! + record.evalSeconds) / 60).toFixed(1)} min: ${summaryOf(p)}`);
    await write();
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs ?? 1, todo.length)) }, worker));
  await write();
  return result;
}
