/**
 * A run's folder, the contract between `bridge train` (which writes it) and `bridge eval` /
 * `bridge embed` / the notebooks (which read it):
 *
 *   runs/NAME/
 *     config.json        the resolved config (defaults filled in, --set applied, seed recorded)
 *     run.json           this manifest: model build args, tokenizer, vocab fingerprint, stages
 *     vocab.json         the vocabulary (ts/data/vocab.ts)
 *     log.jsonl          one JSON object a line: every train step and every evaluation
 *     checkpoints/       <stage index>-<stage name>.pt at each stage's end (+ -stepN.pt, the latest
 *                        periodic checkpoint, and -best.pt under early stopping, while the stage runs)
 *     eval/              metrics.json, report.html, vectors as Arrow files
 *     .lock              while a command works in the folder (ts/run/lock.ts)
 *   runs/latest          a relative symlink to the run `bridge train` started last (resolveRunName)
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve, sep } from "node:path";
import { z } from "zod";
import type { JsonObject } from "../backend/protocol.js";
import type { Objective } from "../config/objectives.js";
import { tempPathFor, writeFileAtomic } from "../core/atomic.js";
import { checkShape } from "../core/jsonShape.js";
import type { TokenizerSettings } from "../data/tokenize.js";

export const MANIFEST_VERSION = 1;

/** runs/latest: the run `bridge train` started last. Not a run name of its own. */
export const LATEST_RUN = "latest";

export interface StageRecord {
  index: number;
  /** The stage's name in the config (e.g. "lm", "siamese"). */
  name: string;
  /** The stage's objective; "multitask" for a stage with tasks (each task's objective is in `tasks`). */
  objective: Objective | "multitask";
  tasks?: { name: string; dataset: string; objective: Objective; weight: number }[];
  /** Checkpoint at the stage's end, relative to the run folder; null until it ends. */
  checkpoint: string | null;
  completed: boolean;
  step: number;
  /** The stage's last validation metrics (e.g. {"val_accuracy": 0.61}). */
  metrics: Record<string, number>;
}

/** Whether a stage record trains `objective`, as its one objective or as one of its tasks'. */
export function stageTrains(stage: Pick<StageRecord, "objective" | "tasks">, objective: Objective): boolean {
  return stage.objective === objective || (stage.tasks ?? []).some((t) => t.objective === objective);
}

export interface RunManifest {
  version: number;
  name: string;
  created: string;
  seed: number;
  /** The args the backend's `build` op got (preset, vocab_sz, vocab_fingerprint, sizes, pooling...). */
  model: JsonObject;
  tokenizer: TokenizerSettings;
  vocab: { size: number; fingerprint: string };
  stages: StageRecord[];
  /** The checkpoint that eval and embed use by default, relative to the run folder. */
  finalCheckpoint: string | null;
  /** Which pairs trained and which validated (added by issue 5; absent in older runs). With a holdout,
   * `validRows` are the row indices of `holdout.split` kept out of training: everything else of that split trained. */
  data?: {
    train: { split: string; rows: number };
    valid: { split: string; rows: number };
    holdout: { split: string; fraction: number; seed: number; validRows: number[] } | null;
    /** Multi-task stages' other pair datasets: training rows and rows held out of their training split. */
    /** evalOverlap: rows (groups) left out for holding an evaluation sentence (datasets evaluation does not read). */
    tasks?: { split: string; rows: number; heldOut: number; unit?: "groups"; evalOverlap?: number }[];
    /** The evaluation splits whose sentences were kept out of training (absent: none was read, or an older run). */
    evaluationSplits?: string[];
  };
}

export interface RunPaths {
  dir: string;
  config: string;
  manifest: string;
  vocab: string;
  log: string;
  checkpoints: string;
  eval: string;
}

/** Where runs live: BRIDGE_RUNS_DIR, else ./runs. */
export function runsRoot(): string {
  return resolve(process.env.BRIDGE_RUNS_DIR ?? "runs");
}

export function runPaths(name: string, root: string = runsRoot()): RunPaths {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name === "." || name === "..") {
    throw new Error(`run name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' only`);
  }
  const dir = join(root, name);
  return {
    dir,
    config: join(dir, "config.json"),
    manifest: join(dir, "run.json"),
    vocab: join(dir, "vocab.json"),
    log: join(dir, "log.jsonl"),
    checkpoints: join(dir, "checkpoints"),
    eval: join(dir, "eval"),
  };
}

export function readManifest(paths: RunPaths): RunManifest {
  if (!existsSync(paths.manifest)) {
    throw new Error(`${paths.dir}: no run here (missing run.json); train one with \`npx bridge train --run NAME\``);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(paths.manifest, "utf8"));
  } catch (err) {
    throw new Error(`${paths.manifest}: not valid JSON (${(err as Error).message})`);
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (version !== MANIFEST_VERSION)
    throw new Error(`${paths.manifest}: manifest version ${JSON.stringify(version) ?? "missing"}, this bridge reads ${MANIFEST_VERSION}`);
  checkShape(ManifestShape, raw, paths.manifest, (m) => new Error(`${m} (run.json is written by bridge train: restore it from a copy)`));
  return raw as RunManifest;
}

/** A checkpoint path as bridge writes it: relative to the run folder and inside it. */
export const insideRun = z.string().refine((p) => !isAbsolute(p) && !p.split(/[\\/]/).includes(".."), "a path inside the run folder (checkpoints/...)");

/** The fields readers of run.json rely on; others pass through (a newer bridge's additions). */
const ManifestShape = z
  .object({
    name: z.string(),
    seed: z.number(),
    model: z.record(z.unknown()),
    tokenizer: z.record(z.unknown()),
    vocab: z.object({ size: z.number(), fingerprint: z.string() }).passthrough(),
    stages: z.array(
      z
        .object({
          index: z.number(),
          name: z.string(),
          objective: z.string(),
          checkpoint: insideRun.nullable(),
          completed: z.boolean(),
          step: z.number(),
          metrics: z.record(z.number().nullable()),
        })
        .passthrough(),
    ),
    finalCheckpoint: insideRun.nullable(),
  })
  .passthrough();

export async function writeManifest(paths: RunPaths, m: RunManifest): Promise<void> {
  await writeFileAtomic(paths.manifest, `${JSON.stringify(m, null, 2)}\n`);
}

/**
 * Points runs/latest at the run `name` (a relative link, so a moved runs/ folder keeps it). Atomic: the
 * link is made under a temp name and renamed over the old one, so a reader never finds it missing.
 */
export function writeLatestLink(name: string, root: string = runsRoot()): void {
  const link = join(root, LATEST_RUN);
  const tmp = tempPathFor(link);
  symlinkSync(name, tmp);
  try {
    renameSync(tmp, link);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`${link}: cannot point it at ${name} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); is it a folder?`);
  }
}

/** The names of the runs under `root` (folders holding a run.json), sorted. */
function listRuns(root: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  return entries.filter((e) => e !== LATEST_RUN && !e.startsWith(".") && existsSync(join(root, e, "run.json"))).sort();
}

/**
 * The run a command reads: `name` if runs/NAME holds a run; without a name (or "latest"), the run
 * runs/latest points to, else the one whose manifest was created last. An error when there is none,
 * or when `name` is not a run there (listing the runs that are).
 */
/**
 * The run a spec names: a folder (absolute, or holding a separator, or starting with "."; a link such as runs/latest
 * is followed) or a name in `runsDir` ("latest" or none: the latest run). How eval, embed, search and the API find it.
 */
export function locateRun(spec: string | undefined, runsDir?: string): { name: string; runsDir: string } {
  const looksLikePath = spec !== undefined && (isAbsolute(spec) || spec.includes(sep) || spec.includes("/") || spec.startsWith("."));
  if (looksLikePath) {
    const dir = resolve(spec);
    if (!existsSync(resolve(dir, "run.json"))) throw new Error(`no run in ${dir} (no run.json); give a run folder, a run name, or "latest"`);
    const real = realpathSync(dir); // runs/latest is a link: the run is the folder it points to
    return { name: basename(real), runsDir: dirname(real) };
  }
  const root = resolve(runsDir ?? runsRoot());
  return { name: resolveRunName(spec, root), runsDir: root };
}

export function resolveRunName(name: string | undefined, runsDir: string = runsRoot()): string {
  const runs = listRuns(runsDir);
  if (name !== undefined && name !== LATEST_RUN) {
    if (existsSync(runPaths(name, runsDir).manifest)) return name;
    const known = runs.length ? `runs there: ${runs.join(", ")}` : "there are no runs there yet; train one with `npx bridge train`";
    throw new Error(`no run named ${JSON.stringify(name)} in ${runsDir}; ${known}`);
  }
  let linked: string | null = null;
  try {
    linked = basename(readlinkSync(join(runsDir, LATEST_RUN)));
  } catch {
    // no link (runs from before it existed, or none at all)
  }
  if (linked !== null && runs.includes(linked)) return linked;
  if (runs.length === 0) throw new Error(`no runs in ${runsDir}; train one with \`npx bridge train\` (or name one with --run NAME)`);
  const created = (r: string): string => {
    try {
      return String((JSON.parse(readFileSync(join(runsDir, r, "run.json"), "utf8")) as { created?: unknown }).created ?? "");
    } catch {
      return "";
    }
  };
  // ISO times sort as strings; ties (and unreadable manifests) by name
  return runs.reduce((best, r) => (created(r) > created(best) ? r : best));
}
