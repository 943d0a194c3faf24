/**
 * `bridge eval` end to end: open the run, run the asked tasks of the registry (tasks/index.ts) on
 * the splits present, compare with the baselines (TF-IDF cosine; the vectors at the end of each
 * earlier stage), and write runs/NAME/eval/{metrics.json, report.html, *.png, snli*.arrow}.
 * Evaluating nothing is an error, and a metrics.json with results the new one lacks is kept as
 * metrics.prev.json rather than silently replaced.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { z } from "zod";
import { DataSchema } from "../config/schema.js";
import { writeFileAtomic } from "../core/atomic.js";
import { checkShape } from "../core/jsonShape.js";
import { resolveDataDir } from "../data/datasets.js";
import { withRunLock } from "../run/lock.js";
import { type RunPaths, runPaths } from "../run/manifest.js";
import { writeReport } from "./report.js";
import { RunModel } from "./runModel.js";
import { metricRows } from "./summary.js";
import { stageLabel } from "./tasks/common.js";
import { type EvalTask, selectTasks, type TaskContext, type TaskOutput } from "./tasks/index.js";
import { describeTrainedOn, readTrainedOn } from "./trainedOn.js";
import { trainedPairs } from "./trainedPairs.js";
import type { CurvePoint, Metrics, ReportData, Skipped, TrainedSplit } from "./types.js";

export interface EvalOptions {
  run: string;
  /** Task names of the registry (default: all). */
  tasks?: readonly string[];
  dataDir?: string;
  checkpoint?: string;
  runsDir?: string;
  device?: string;
  /** Most items per split (tests). */
  limit?: number;
  /** Most LM tokens scored (tests). */
  lmMaxTokens?: number;
  log?: (line: string) => void;
}

export interface EvalResult {
  metrics: Metrics;
  dir: string;
  files: string[];
  /** Where the previous metrics.json was kept (it had results this evaluation lacks), or null. */
  previous: string | null;
}

export const METRICS_FILE = "metrics.json";

/** The fields readers of metrics.json rely on; the metric entries are read by metricRows (summary.ts). */
const MetricsShape = z.object({ run: z.string(), tasks: z.array(z.string()), trained_on: z.array(z.unknown()).optional() }).passthrough();

/** A metrics.json as `bridge eval` wrote it; else an error naming the file and what is wrong in it. */
export function readMetricsFile(path: string): Metrics {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message}); evaluate the run again to rewrite it`);
  }
  checkShape(MetricsShape, raw, path, (m) => new Error(`${m}; evaluate the run again to rewrite it`));
  return raw as Metrics;
}
export const PREVIOUS_METRICS_FILE = "metrics.prev.json";

/** Refuses, before any model is loaded, an evaluation whose tasks find none of their data. */
function assertSomethingToEvaluate(tasks: readonly EvalTask[], dataDir: string | undefined): void {
  const looked = tasks.flatMap((t) => t.lookFor(dataDir));
  if (looked.some((l) => l.present)) return;
  throw new Error(
    `nothing to evaluate: data dir ${resolveDataDir(dataDir)} holds none of the data of the tasks ${tasks.map((t) => t.name).join(", ")}; ` +
      `looked for ${looked.map((l) => l.what).join(", ")}. Point --data-dir (or BRIDGE_DATA_DIR) at a folder in the official layouts, ` +
      "or get a dataset with `npx bridge data fetch NAME --data-dir DIR`",
  );
}

/** config.json's data.holdout (the share each task split held out to validate); the schema's default if absent. */
function configHoldout(path: string): number {
  try {
    const h = (JSON.parse(readFileSync(path, "utf8")) as { data?: { holdout?: unknown } }).data?.holdout;
    return typeof h === "number" ? h : DataSchema.parse({}).holdout;
  } catch {
    return DataSchema.parse({}).holdout;
  }
}

/** fn's promise, made on the first call and shared by every later one. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

export async function evaluateRun(opts: EvalOptions): Promise<EvalResult> {
  const tasks = selectTasks(opts.tasks);
  assertSomethingToEvaluate(tasks, opts.dataDir);
  return withRunLock(runPaths(opts.run, opts.runsDir).dir, "eval", () => evaluateLocked(opts, tasks));
}

async function evaluateLocked(opts: EvalOptions, tasks: readonly EvalTask[]): Promise<EvalResult> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const model = await RunModel.open({ run: opts.run, runsDir: opts.runsDir, checkpoint: opts.checkpoint, device: opts.device });
  const finalCheckpoint = model.checkpoint;
  let trainedOn: TrainedSplit[];
  try {
    trainedOn = readTrainedOn(model.paths, model.manifest);
  } catch (e) {
    await model.close();
    throw e;
  }
  log(`run ${opts.run} trained on ${describeTrainedOn(trainedOn)}`);
  if (model.unfinished !== null) log(`note: ${model.unfinished}`);
  const ctx: TaskContext = {
    model,
    run: opts.run,
    dataDir: opts.dataDir,
    limit: opts.limit,
    lmMaxTokens: opts.lmMaxTokens,
    skipped: [],
    log,
    trainedOn,
    outDir: stagingDir(model.paths),
    checkpoint: finalCheckpoint,
    predictions: new Map(),
    trainedPairs: once(() => trainedPairs(model.manifest, configHoldout(model.paths.config), opts.dataDir)),
  };
  const metrics: Metrics = {
    run: opts.run,
    checkpoint: finalCheckpoint,
    created: new Date().toISOString(),
    data_dir: resolveDataDir(opts.dataDir),
    tasks: tasks.map((t) => t.name),
    trained_on: trainedOn,
    skipped: ctx.skipped,
  };
  let outputs: TaskOutput[];
  const evalDirWas = existsSync(model.paths.eval);
  try {
    try {
      // a staging folder left by an eval that was killed holds nothing metrics.json describes
      rmSync(ctx.outDir, { recursive: true, force: true });
      mkdirSync(ctx.outDir, { recursive: true });
      outputs = await runTasks(ctx, tasks, metrics, finalCheckpoint);
    } finally {
      await model.close();
    }
    return await writeResults(opts, model.paths, metrics, outputs, ctx.skipped, log);
  } finally {
    rmSync(ctx.outDir, { recursive: true, force: true });
    // an eval that wrote nothing leaves no eval/ folder where there was none
    if (!evalDirWas && existsSync(model.paths.eval) && readdirSync(model.paths.eval).length === 0) rmSync(model.paths.eval, { recursive: true });
  }
}

/** Where the tasks write their files until every task has finished (TaskContext.outDir); the run lock keeps it one eval's. */
function stagingDir(paths: RunPaths): string {
  return join(paths.eval, ".pending");
}

/** Every task on the final checkpoint, then the tasks that compare stages on each earlier stage's checkpoint. */
async function runTasks(ctx: TaskContext, tasks: readonly EvalTask[], metrics: Metrics, finalCheckpoint: string): Promise<TaskOutput[]> {
  const { model, log } = ctx;
  const outputs: TaskOutput[] = [];
  for (const task of tasks) {
    if (model.checkpoint !== finalCheckpoint) await model.load(finalCheckpoint);
    const out = await task.run(ctx);
    outputs.push(out);
    Object.assign(metrics, out.entries);
  }
  // The vectors at the end of each earlier stage, on the same items (the before / after of fine-tuning).
  const restaged = outputs.filter((o) => o.atStage !== undefined);
  const earlier = model.manifest.stages.filter((s) => s.completed && s.checkpoint !== null && s.checkpoint !== finalCheckpoint);
  for (const stage of restaged.length > 0 ? earlier : []) {
    await model.load(stage.checkpoint!);
    const ref = { name: `${stage.index}-${stage.name}`, label: stageLabel(stage, model.manifest.stages.length), checkpoint: stage.checkpoint! };
    const parts: string[] = [];
    for (const o of restaged) parts.push(await o.atStage!(ref));
    log(`stage ${ref.name}: ${parts.join(", ")}`);
  }
  return outputs;
}

/** metrics.json (the previous one kept when it held more), the task's files and the report; refused when nothing was evaluated. */
async function writeResults(
  opts: EvalOptions,
  paths: RunPaths,
  metrics: Metrics,
  outputs: readonly TaskOutput[],
  skipped: readonly Skipped[],
  log: (l: string) => void,
): Promise<EvalResult> {
  const staged = outputs.flatMap((o) => o.files ?? []);
  if (metricRows(metrics).length === 0) {
    throw new Error(
      `nothing evaluated for run ${opts.run} with data dir ${metrics.data_dir}; every task was skipped: ` +
        skipped.map((s) => `${s.task} ${s.split}: ${s.reason}`).join("; ") +
        (existsSync(join(paths.eval, METRICS_FILE)) ? ` (${join(paths.eval, METRICS_FILE)} left as it was)` : ""),
    );
  }
  // the tasks' files join eval/ just before the metrics.json that describes them (renames: no copy, none half-written)
  const files = staged.map((f) => {
    const to = join(paths.eval, basename(f));
    renameSync(f, to);
    return to;
  });
  const previous = keepPreviousMetrics(paths.eval, metrics, log);
  const metricsPath = join(paths.eval, METRICS_FILE);
  await writeFileAtomic(metricsPath, `${JSON.stringify(metrics, jsonNumbers, 2)}\n`);
  const report: ReportData = { metrics, histograms: [], roc: [], scatter: null, curves: readLog(paths.log) };
  for (const o of outputs) {
    report.histograms.push(...(o.figures?.histograms ?? []));
    report.roc.push(...(o.figures?.roc ?? []));
    report.scatter = o.figures?.scatter ?? report.scatter;
  }
  return { metrics, dir: paths.eval, files: [metricsPath, ...files, ...(await writeReport(paths.eval, report))], previous };
}

/**
 * A new metrics.json never silently replaces one with more results: when the old file holds a
 * metric the new one lacks (fewer tasks asked, a data dir with fewer datasets), it is renamed to
 * metrics.prev.json (an earlier one there with results of its own going to metrics.prev.N.json),
 * and the log says so. Not merged: metrics.json states one checkpoint, one data dir and one time,
 * which merged entries from two evaluations would contradict.
 */
export function keepPreviousMetrics(evalDir: string, next: Metrics, log: (line: string) => void): string | null {
  const path = join(evalDir, METRICS_FILE);
  if (!existsSync(path)) return null;
  const nextKeys = new Set(metricRows(next).map((r) => r.key));
  let oldKeys: Set<string> | null = null; // null: unreadable
  let lost: string[];
  try {
    oldKeys = new Set(metricRows(readMetricsFile(path)).map((r) => r.key));
    lost = [...oldKeys].filter((k) => !nextKeys.has(k));
  } catch (e) {
    lost = [`(unreadable: ${(e as Error).message})`];
  }
  if (lost.length === 0) return null;
  const prev = join(evalDir, PREVIOUS_METRICS_FILE);
  keepAside(prev, oldKeys, log);
  renameSync(path, prev);
  log(`kept the previous ${path} as ${prev}: it has results this evaluation does not (${lost.join(", ")})`);
  return prev;
}

/** An earlier metrics.prev.json with results the file about to replace it lacks (`nextKeys`; null: that file is
 * unreadable) goes to a name of its own. */
function keepAside(prev: string, nextKeys: ReadonlySet<string> | null, log: (line: string) => void): void {
  if (!existsSync(prev)) return;
  let lost: boolean;
  try {
    lost = nextKeys === null || metricRows(readMetricsFile(prev)).some((r) => !nextKeys.has(r.key));
  } catch {
    lost = true; // unreadable: kept, not judged
  }
  if (!lost) return;
  let n = 1;
  while (existsSync(prev.replace(/\.json$/, `.${n}.json`))) n++;
  const aside = prev.replace(/\.json$/, `.${n}.json`);
  renameSync(prev, aside);
  log(`kept the earlier ${prev} as ${aside}: it has results the file now kept there does not`);
}

/** NaN / Infinity are not JSON: they become null. */
function jsonNumbers(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? null : value;
}

/**
 * Training curves from log.jsonl: every record with a numeric step and loss / accuracy / perplexity
 * values, one series per stage and quantity. Where a stage counts its steps from 0 again, it is
 * shifted past the stages before it, so stages follow each other on one axis.
 */
export function readLog(path: string): CurvePoint[] {
  if (!existsSync(path)) return [];
  const out: CurvePoint[] = [];
  const offsets = new Map<string, number>();
  let lastStep = 0;
  let lastStage: string | null = null;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // a line cut by a crash: skip it
    }
    const raw = rec.step ?? rec.global_step;
    if (typeof raw !== "number") continue;
    const stage = typeof rec.stage === "string" ? rec.stage : "";
    if (!offsets.has(stage)) offsets.set(stage, lastStage !== null && raw + 0 < lastStep ? lastStep : 0);
    const step = raw + offsets.get(stage)!;
    lastStep = Math.max(lastStep, step);
    lastStage = stage;
    for (const [k, v] of Object.entries(rec)) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      if (!/loss|accuracy|perplexity|ppl/i.test(k)) continue;
      out.push({ step, value: v, series: stage ? `${stage} ${k}` : k });
    }
  }
  return out;
}
