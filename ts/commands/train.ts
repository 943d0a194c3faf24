/**
 * `npx bridge train [--config FILE] [--set k=v ...] [--run NAME] [--resume]`: staged training.
 *
 * A fresh run validates the config, prepares the data (vocabulary from training text only), writes
 * runs/NAME/{config.json, vocab.json, run.json}, then runs the stages (ts/train/loop.ts). --resume
 * reads the run's own config.json and state.json and goes on from its last checkpoint.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { BackendClient, startBackend } from "../backend/client.js";
import { loadClientKeys } from "../backend/keys.js";
import { ConfigError, DEFAULT_CONFIG, loadConfig, readStructuredFile, validateConfig } from "../config/load.js";
import { archOf, type Config, stageName, stageObjectives, stageSpec, taskName } from "../config/schema.js";
import { writeFileAtomic } from "../core/atomic.js";
import type { BadRowPolicy } from "../data/errors.js";
import { assertVocabMatches, Vocab } from "../data/vocab.js";
import { withRunLock } from "../run/lock.js";
import {
  LATEST_RUN,
  MANIFEST_VERSION,
  type RunManifest,
  type RunPaths,
  readManifest,
  resolveRunName,
  runPaths,
  runsRoot,
  writeManifest,
} from "../run/manifest.js";
import {
  type CacheEntryRecord,
  cacheKey,
  ENTRY_FILE,
  entryProblem,
  modelCacheDir,
  PRETRAINED,
  PRETRAINED_PREFIX,
  pretrainedConfig,
  pretrainedNameOf,
  setAside,
} from "../run/modelCache.js";
import { freshPosition, type RunState, readState, statePath, truncateLog, writeState } from "../train/checkpoints.js";
import type { TrainBackend } from "../train/context.js";
import { assertDataMatches, loadTrainingData, type TrainingData, tokenizerSettings } from "../train/data.js";
import { assertInitArch, locateInitSource, type SourceArch, sourceArch, withInit, wordVectorsPath } from "../train/init.js";
import { buildArgs, runStages, type StageSummary } from "../train/loop.js";
import { formatDuration, Progress, RunLog } from "../train/progress.js";
import { assertStagesFit } from "../train/stages.js";
import { formatTable } from "../ui/table.js";

export interface TrainOptions {
  /** Config file (YAML or JSON); default configs/default.yaml. */
  config?: string;
  /** `key=value` overrides. */
  set?: string[];
  /** Run name (folder under runs/); default: the config's name and the time. */
  run?: string;
  /** Continue the run from its last checkpoint. */
  resume?: boolean;
  quiet?: boolean;
  dataDir?: string;
  /** A running backend (`bridge serve`) instead of a local one: tcp://HOST:PORT with `keys` (client.json). */
  backend?: string;
  keys?: string;
  /** Data-parallel ranks (one backend process each, torch.distributed; gloo on CPU); refused for stages with in-batch negatives. */
  nproc?: number;
  /** Data-parallel ranks on other machines: `bridge serve` endpoints, one rank each, rank 0 first (with `keys`; see ts/train/distributed.ts). */
  hosts?: string[];
  /** --hosts: the rendezvous HOST:PORT on rank 0's machine, reachable by every host (default: the first endpoint's host, port 29500). */
  master?: string;
  /** A malformed dataset row: stop with an error naming it (default), or skip it and count it. */
  onBadRow?: BadRowPolicy;
  /** Missing datasets: true downloads them into the data dir in use, false never downloads; unset downloads only
   * into the default cache (~/.cache/bridge/data), never into a folder the user named. */
  download?: boolean;
  /** Start the first stage from pretrained weights (the config's `init.from`: RUN, FILE, DIR or fastai:wt103-fwd|bwd). */
  init?: string;
  /** Build the config into the pretrained-model cache (pretrained:PATH) rather than runs/; the project's pretraining
   * configs (PRETRAINED) go there unless a run name, overrides or an init are given. false: never. */
  cache?: boolean;
  /** Where runs/ is (default: BRIDGE_RUNS_DIR or ./runs). */
  runsDir?: string;
  /** Point runs/latest at this run (default true; builds into the model cache do not). */
  linkLatest?: boolean;
  /** Supplies the backend instead of starting one (tests wrap the real client with this). */
  connect?: (cfg: Config) => Promise<TrainBackend>;
}

export interface TrainResult {
  run: string;
  dir: string;
  stages: StageSummary[];
  seconds: number;
}

function defaultRunName(configFile: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${basename(configFile, extname(configFile))}-${stamp}`;
}

/** The backend flags together (and the key file readable), checked before any data is read. */
function checkBackendOptions(opts: TrainOptions): void {
  if (opts.nproc !== undefined && (!Number.isInteger(opts.nproc) || opts.nproc < 1))
    throw new ConfigError(`--nproc ${opts.nproc}: a whole number of data-parallel ranks, 1 or more`);
  if (opts.master !== undefined && opts.hosts === undefined) throw new ConfigError("--master goes with --hosts");
  if (opts.hosts !== undefined) {
    if (opts.backend) throw new ConfigError("--hosts lists every rank's backend; drop --backend");
    if ((opts.nproc ?? 1) > 1)
      throw new ConfigError("--hosts runs one rank per endpoint; for several ranks on a host, serve one endpoint per GPU and list each (drop --nproc)");
  }
  if (opts.backend && (opts.nproc ?? 1) > 1) throw new ConfigError("--nproc starts local ranks; it does not combine with --backend");
  if (opts.keys && !opts.backend && opts.hosts === undefined) throw new ConfigError("--keys goes with --backend tcp://HOST:PORT or --hosts");
  if (opts.keys) loadClientKeys(opts.keys, "--keys");
  // the scheme, before the data loads (minutes for a large corpus); whether it answers is found when it is dialled
  if (opts.backend && !/^(tcp|ipc):\/\/./.test(opts.backend))
    throw new ConfigError(`--backend ${opts.backend}: expected tcp://HOST:PORT (\`bridge serve\` on another machine) or ipc://PATH`);
}

/** A remote backend with --backend, ranks on other machines with --hosts, else one of our own (or --nproc of them). */
function connectDefault(opts: TrainOptions): (cfg: Config) => Promise<TrainBackend> {
  return async (cfg) => {
    // the flags were checked by train() before the data (checkBackendOptions)
    const curve = opts.keys ? { curve: loadClientKeys(opts.keys, "--keys") } : {};
    if (opts.hosts !== undefined) {
      const { DistributedBackend } = await import("../train/distributed.js");
      return DistributedBackend.connectHosts(opts.hosts, { ...curve, master: opts.master });
    }
    if (opts.backend) return BackendClient.connect(opts.backend, curve);
    if ((opts.nproc ?? 1) > 1) {
      const { DistributedBackend } = await import("../train/distributed.js");
      return DistributedBackend.start(opts.nproc!, cfg.device ?? undefined);
    }
    return startBackend({ ...(cfg.device ? { device: cfg.device } : {}), ...(cfg.threads ? { env: { OMP_NUM_THREADS: String(cfg.threads) } } : {}) });
  };
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const t0 = Date.now();
  const progress = new Progress(opts.quiet ?? false);
  const root = opts.runsDir ?? runsRoot();
  let cfg: Config | null = null;
  let name: string;
  if (opts.connect === undefined) checkBackendOptions(opts);
  if (opts.resume) {
    if (!opts.run) throw new ConfigError("--resume needs --run NAME (the run to continue)");
    if (opts.config || (opts.set?.length ?? 0) > 0 || opts.init)
      throw new ConfigError("--resume continues a run with its own config.json; drop --config / --set / --init");
    name = opts.run === LATEST_RUN ? resolveRunName(undefined, root) : opts.run;
  } else {
    if (opts.run === LATEST_RUN)
      throw new ConfigError(`--run ${LATEST_RUN}: reserved for the link to the run trained last (runs/${LATEST_RUN}); pick another name`);
    const cacheAs = cacheTarget(opts);
    if (cacheAs !== null) return buildIntoCache(cacheAs, opts, progress, t0);
    cfg = loadConfig({ file: opts.config, set: opts.set });
    if (opts.init) cfg = { ...cfg, init: { ...(cfg.init?.backward ? { backward: cfg.init.backward } : {}), from: opts.init } }; // keeps a config's init.backward
    assertShardable(cfg, 0, rankCount(opts));
    name = opts.run ?? defaultRunName(opts.config ?? DEFAULT_CONFIG);
    const buildConfig = cfg.init?.build !== undefined ? resolve(dirname(opts.config ?? DEFAULT_CONFIG), cfg.init.build) : undefined;
    assertInitArchs(cfg, buildConfig, root, opts); // before a pretrained LM or an init.build run is built for nothing
    if (buildConfig !== undefined && cfg.init?.from !== undefined) await buildInitRun(cfg.init.from, buildConfig, root, opts, progress);
    if (cfg.init?.from?.startsWith(PRETRAINED_PREFIX) || cfg.init?.backward?.startsWith(PRETRAINED_PREFIX)) {
      const cached = async (from: string | undefined) => (from?.startsWith(PRETRAINED_PREFIX) ? await ensurePretrained(from, opts, progress) : from);
      cfg = { ...cfg, init: { ...cfg.init, from: await cached(cfg.init.from), ...(cfg.init.backward ? { backward: await cached(cfg.init.backward) } : {}) } };
    }
    // a source that is not there fails now, before the run's folder exists
    for (const from of [cfg.init?.from, cfg.init?.backward]) if (from !== undefined) locateInitSource(from, { runsDir: root, dataDir: opts.dataDir });
    if (cfg.init?.wordVectors !== undefined) wordVectorsPath(cfg.init.wordVectors, opts.dataDir);
  }
  const paths = runPaths(name, root);
  // Before anything reads or writes the folder: two commands in one run would interleave its log and state.
  const command = `npx bridge train --run ${name}${opts.resume ? " --resume" : ""}`;
  return withRunLock(paths.dir, command, () => trainLocked(opts, name, paths, cfg, progress, t0));
}

/**
 * Where `train --config X` builds into the model cache: `pretrained:NAME` for a pretraining config of the project
 * (configs/pretrain.yaml is wiki-fwd's), `pretrained:X` with --cache; null to train into runs/ as any config. A run
 * name, overrides or an init make it another model than the cache's: with --cache they are refused, else runs/.
 */
function cacheTarget(opts: TrainOptions): string | null {
  if (opts.config === undefined || opts.cache === false) return null;
  const custom = opts.run !== undefined || (opts.set?.length ?? 0) > 0 || opts.init !== undefined;
  if (opts.cache === true) {
    if (custom) throw new ConfigError("--cache builds the config as it is into the model cache: drop --run / --set / --init (or --cache, to train into runs/)");
    return pretrainedNameOf(opts.config) ?? `${PRETRAINED_PREFIX}${resolve(opts.config)}`;
  }
  return custom ? null : pretrainedNameOf(opts.config);
}

/** The cache entry of a pretraining config, built (or found built) as a recipe's init.from would. */
async function buildIntoCache(from: string, opts: TrainOptions, progress: Progress, t0: number): Promise<TrainResult> {
  progress.note(
    `${opts.config}: the pretraining config of ${from}: its model goes into the pretrained-model cache, where recipes with init.from ${from} find it (--run NAME trains it into runs/ instead)`,
  );
  const { dir, result } = await buildPretrained(from, opts, progress);
  return result ?? { run: basename(dir), dir, stages: [], seconds: (Date.now() - t0) / 1000 };
}

/**
 * Refuses an init source of another model.arch than the run's, naming both, before anything is built: pretrained:NAME
 * by its pretraining config, the init.build run by its run.json or (not started yet) its build config, any other
 * source by its own files (ts/train/init.ts sourceArch).
 */
function assertInitArchs(cfg: Config, buildConfig: string | undefined, root: string, opts: TrainOptions): void {
  for (const from of [cfg.init?.from, cfg.init?.backward]) {
    if (from === undefined) continue;
    let source: SourceArch | null;
    if (from.startsWith(PRETRAINED_PREFIX)) {
      const { config } = pretrainedConfig(from);
      source = { arch: archOf(loadConfig({ file: config }).model), where: `its pretraining config ${config}` };
    } else if (buildConfig !== undefined && from === cfg.init?.from) {
      const paths = runPaths(from, root); // built, being built (finished first), or not yet
      source = existsSync(paths.manifest)
        ? { arch: archOf(readManifest(paths).model), where: paths.manifest }
        : { arch: archOf(loadConfig({ file: buildConfig }).model), where: `init.build's config ${buildConfig}` };
    } else {
      source = sourceArch(from, { runsDir: root, dataDir: opts.dataDir });
    }
    assertInitArch(cfg.model, from, source);
  }
}

/**
 * init.build: trains (or finishes, after an interruption) the run that init.from names with the given config, unless
 * it is complete already; every later run reuses it. Says so first: on a CPU this is the long part of a first run.
 */
async function buildInitRun(from: string, config: string, root: string, opts: TrainOptions, progress: Progress): Promise<void> {
  const paths = runPaths(from, root);
  const state = existsSync(paths.manifest) ? readState(paths) : null;
  if (state?.done) return;
  const resume = state !== null;
  progress.note(
    `init.from ${from}: ${resume ? "an unfinished run; finishing it" : "no such run yet; building it first"} with ${config} (init.build; once: later runs reuse it)`,
  );
  const base = { runsDir: root, dataDir: opts.dataDir, quiet: opts.quiet, onBadRow: opts.onBadRow, download: opts.download, connect: opts.connect };
  await train(resume ? { ...base, run: from, resume: true } : { ...base, config, run: from });
}

/**
 * `init.from: pretrained:NAME`: the cache entry of that pretraining config (ts/run/modelCache.ts), built now if it is
 * not there (after saying how long it takes), finished if a build was interrupted, rebuilt if it cannot be read.
 * Returns the entry's folder, a run that init.from then names.
 */
export async function ensurePretrained(from: string, opts: TrainOptions, progress: Progress): Promise<string> {
  return (await buildPretrained(from, opts, progress)).dir;
}

/** ensurePretrained's work: the entry's folder, and the training it took (null when it was built already). */
async function buildPretrained(from: string, opts: TrainOptions, progress: Progress): Promise<{ dir: string; result: TrainResult | null }> {
  const { name, config } = pretrainedConfig(from);
  const pretrainCfg = loadConfig({ file: config });
  const cacheDir = modelCacheDir();
  const entry = `${name}-${await cacheKey(pretrainCfg, opts.dataDir)}`;
  const dir = join(cacheDir, entry);
  const base = {
    runsDir: cacheDir,
    dataDir: opts.dataDir,
    quiet: opts.quiet,
    onBadRow: opts.onBadRow,
    download: opts.download,
    connect: opts.connect,
    linkLatest: false,
  };
  let result: TrainResult | null = null;
  const t0 = Date.now();
  if (existsSync(dir)) {
    const problem = entryProblem(dir);
    if (problem === null) {
      progress.note(`init.from ${from}: the cached model ${dir}`);
      return { dir, result: null };
    }
    const state = existsSync(join(dir, "run.json")) ? safely(() => readState(runPaths(entry, cacheDir))) : null;
    if (state !== null && !state.done) {
      progress.note(`init.from ${from}: finishing the interrupted build in ${dir} (${problem})`);
      result = await train({ ...base, run: entry, resume: true });
    } else if (state === null || problem !== `${join(dir, ENTRY_FILE)}: missing (the build did not finish)`) {
      const aside = setAside(dir);
      progress.note(`init.from ${from}: the cached model cannot be used (${problem}); moved it to ${aside} and building it again`);
    }
  }
  if (!existsSync(join(dir, "run.json"))) {
    const cost = Object.hasOwn(PRETRAINED, name) ? `; ${PRETRAINED[name].buildTime}` : "";
    progress.note(
      `init.from ${from}: not built yet; building it once into ${dir} from ${config}${cost}. Later runs reuse it (\`npx bridge models\` lists the cache)`,
    );
    result = await train({ ...base, config, run: entry });
  }
  const manifest = readManifest(runPaths(entry, cacheDir));
  const last = manifest.stages[manifest.stages.length - 1];
  const record: CacheEntryRecord = {
    format: "bridge-model-cache",
    version: 1,
    name,
    config,
    key: entry.slice(name.length + 1),
    built: new Date().toISOString(),
    seconds: result ? Math.round((Date.now() - t0) / 1000) : 0,
    vocab: manifest.vocab.size,
    perplexity: last?.metrics.val_perplexity ?? null,
  };
  await writeFileAtomic(join(dir, ENTRY_FILE), `${JSON.stringify(record, null, 2)}\n`);
  const problem = entryProblem(dir);
  if (problem !== null) throw new Error(`init.from ${from}: built ${dir}, but it cannot be used: ${problem}`);
  return { dir, result };
}

function safely<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch {
    return null;
  }
}

/** The command that continues this run: the same data dir and the same backends (--backend / --hosts, keys, master). */
export function resumeCommandOf(name: string, opts: TrainOptions): string {
  const flags: [string, string | undefined][] = [
    ["--data-dir", opts.dataDir],
    ["--backend", opts.backend],
    ["--hosts", opts.hosts?.join(",")],
    ["--master", opts.master],
    ["--keys", opts.keys],
    ["--nproc", (opts.nproc ?? 1) > 1 ? String(opts.nproc) : undefined],
  ];
  return [`npx bridge train --run ${name} --resume`, ...flags.filter(([, v]) => v !== undefined).map(([f, v]) => `${f} ${v}`)].join(" ");
}

/** Data-parallel ranks: one per --hosts endpoint, else --nproc. */
function rankCount(opts: TrainOptions): number {
  return opts.hosts?.length ?? opts.nproc ?? 1;
}

/** Several ranks split every batch: refused for a stage still to run whose loss is not per-row. */
function assertShardable(cfg: Config, fromStage: number, ranks: number): void {
  if (ranks <= 1) return;
  cfg.stages.forEach((s, i) => {
    if (i < fromStage || stageSpec(s).shardable) return;
    throw new ConfigError(
      `${ranks} data-parallel ranks: stage ${i + 1}/${cfg.stages.length} (${stageName(s)}) trains ${stageObjectives(s).join(" + ")}, whose in-batch negatives would differ ` +
        `across ranks (each rank sees only its share of the batch); train it on one rank (--nproc 1, no --hosts)`,
    );
  });
}

/** The files and folders a run writes in its folder. */
function runFiles(paths: RunPaths): string[] {
  return [paths.config, paths.vocab, paths.manifest, paths.log, paths.checkpoints, paths.eval, statePath(paths)];
}

/** A run's own files (the folder itself goes with the run lock's release, once empty). */
function removeRunFiles(paths: RunPaths): void {
  for (const p of runFiles(paths)) rmSync(p, { recursive: true, force: true });
}

/**
 * The run to train: a resumed one's own config, state and manifest (its log cut back to the last checkpoint), or a
 * fresh one's config and start state (manifest null: written once the data has loaded). "complete": nothing to do.
 */
function openRun(opts: TrainOptions, paths: RunPaths, loaded: Config | null): { cfg: Config; state: RunState; manifest: RunManifest | null } | "complete" {
  if (!opts.resume) {
    if (existsSync(paths.manifest)) {
      const state = safely(() => readState(paths));
      // a run that failed before its first checkpoint (a bad init, say) is retried by --resume with its own config
      const unstarted = state !== null && state.stage === 0 && state.checkpoint === null;
      throw new Error(
        `${paths.dir} already holds a run; ` +
          (unstarted
            ? "it stopped before its first checkpoint, so deleting the folder loses no training: delete it to start again with a changed config, or retry it as it was with --resume"
            : "continue it with --resume, or pick another --run NAME"),
      );
    }
    // files a run writes, found in a folder without run.json, are someone else's (other files are left alone: ablate's record)
    const written = new Set(runFiles(paths).map((p) => basename(p)));
    const clash = readdirSync(paths.dir).filter((f) => written.has(f));
    if (clash.length > 0)
      throw new Error(`${paths.dir} holds ${clash.join(", ")} but no run (no run.json); a run would overwrite them: pick another --run NAME`);
    return { cfg: loaded!, state: { version: 1, stage: 0, position: freshPosition(), checkpoint: null, done: false }, manifest: null };
  }
  const manifest = readManifest(paths);
  // the run's own copy of its config: written by bridge, so a missing or torn one is an outside edit
  const restore = (m: string) => new Error(`${m}; it is the run's copy of its config, written by bridge train: restore it from a copy, or train the run again`);
  const cfg = validateConfig(readStructuredFile(paths.config, "run's config", restore), paths.config);
  const state = readState(paths);
  if (state === null)
    throw new Error(
      `${paths.dir}: no state.json, so no position to resume from; restore it from a copy, or delete the folder (${paths.dir}) and train the run again`,
    );
  // the stages before the one in progress must have completed: an edited stage would skip training, or mark it done
  const stateFile = statePath(paths);
  if (state.stage > cfg.stages.length) throw new Error(`${stateFile}: stage ${state.stage}, but the run has ${cfg.stages.length} stages`);
  const skipped = manifest.stages.slice(0, state.stage).find((s) => !s.completed);
  if (skipped !== undefined)
    throw new Error(
      `${stateFile}: stage ${state.stage} is in progress, but stage ${skipped.index} (${skipped.name}) before it never completed (${paths.manifest}); restore state.json from a copy`,
    );
  const steps = cfg.stages[state.stage]?.steps;
  if (steps !== undefined && steps !== null && state.position.step > steps)
    throw new Error(
      `${stateFile}: position.step ${state.position.step} is past stage ${state.stage + 1}'s ${steps} steps (${paths.config}); ` +
        "the run's config.json was edited after it trained that far: restore it from a copy",
    );
  if (state.done) return "complete";
  assertShardable(cfg, state.stage, rankCount(opts));
  truncateLog(paths.log, state.stage, state.checkpoint && state.position.step > 0 ? state.position.step : 0);
  return { cfg, state, manifest };
}

async function trainLocked(opts: TrainOptions, name: string, paths: RunPaths, loaded: Config | null, progress: Progress, t0: number): Promise<TrainResult> {
  const opened = openRun(opts, paths, loaded);
  if (opened === "complete") {
    progress.note(
      `run ${name} is already complete (${readManifest(paths).finalCheckpoint ?? `state.json says so, but ${paths.manifest} names no final checkpoint`})`,
    );
    return { run: name, dir: paths.dir, stages: [], seconds: 0 };
  }
  const { cfg, state } = opened;
  let manifest = opened.manifest;
  const log = new RunLog(paths.log);

  // A fresh run writes nothing before its data loaded: if loading fails, the lock's release removes the empty folder.
  const data = await loadTrainingData(cfg, { dataDir: opts.dataDir, onBadRow: opts.onBadRow, download: opts.download, log: (l) => progress.note(l) });
  for (const n of data.plan.notes) progress.note(`note: ${n}`);
  progress.note(
    `data: ${data.plan.train.rows} training pairs (${data.plan.train.split}), ${data.plan.valid.rows} validation pairs ` +
      `(${data.plan.holdout ? `held out of ${data.plan.holdout.split}` : data.plan.valid.split}); vocabulary ${data.vocab.size} tokens; ` +
      `LM text ${data.lm.train.offsets.length - 1} texts / ${data.lm.train.ids.length} tokens`,
  );

  if (manifest !== null) {
    // the rows first: other data is the likelier cause of a changed vocabulary, and the one the user can act on
    assertDataMatches(manifest.data, data.plan, paths.manifest);
    assertVocabMatches(data.vocab, manifest.vocab.fingerprint, manifest.vocab.size);
    // eval, embed and search read vocab.json: one lost or damaged is written again from the vocabulary just rebuilt,
    // which is the run's own (its fingerprint is the one run.json records)
    const damaged = await Vocab.load(paths.vocab).then(
      (v) => (v.fingerprint === manifest?.vocab.fingerprint ? null : `records vocabulary ${v.fingerprint}, not the run's`),
      (e: Error) => e.message.replace(`${paths.vocab}: `, ""),
    );
    if (damaged !== null) {
      await data.vocab.save(paths.vocab);
      progress.note(`note: ${paths.vocab} ${damaged}: wrote it again from the data (vocabulary ${data.vocab.fingerprint}, as run.json records)`);
    }
  }
  assertStagesFit(cfg.stages, data);
  // The backend before the run's files: a backend that cannot be reached (no keys, wrong address) leaves no run behind.
  const client = await (opts.connect ?? connectDefault(opts))(cfg);
  if (!opts.resume) {
    manifest = await writeRunFiles(name, paths, cfg, data, state, log).catch(async (e: unknown) => {
      await client.close();
      throw e;
    });
  }
  const resumeCommand = resumeCommandOf(name, opts);
  // Ctrl-C: the CLI's handler kills the backend and exits; say first how to go on (state.json names the last checkpoint).
  const onInterrupt = () => process.stderr.write(`\nbridge train: interrupted; resume with: ${resumeCommand}\n`);
  process.prependListener("SIGINT", onInterrupt);
  process.prependListener("SIGTERM", onInterrupt);
  let stages: StageSummary[];
  // whether a training step was ever sent: a fresh run that failed before one holds nothing worth keeping
  let stepped = false;
  const watched: TrainBackend = {
    close: () => client.close(),
    call: (op, args, tensors) => {
      if (op === "train_step" || op === "train_steps") stepped = true;
      return client.call(op, args, tensors);
    },
  };
  try {
    stages = await runStages({
      backend: withInit(watched, {
        init: cfg.init,
        seed: cfg.seed,
        firstStageFresh: state.stage === 0 && state.checkpoint === null,
        vocab: data.vocab,
        runsDir: opts.runsDir ?? runsRoot(),
        dataDir: opts.dataDir,
        note: (l) => progress.note(l),
        record: (e) => log.write(e),
      }),
      cfg,
      data,
      paths,
      manifest: manifest!,
      state,
      log,
      progress,
      resumeCommand,
      linkLatest: opts.linkLatest,
    });
  } catch (e) {
    // a fresh run that failed before its first step (a bad init, a model the backend refused) holds nothing worth
    // keeping: its files go, so that the same command runs again once the config is fixed (the error says why)
    if (!opts.resume && !stepped) removeRunFiles(paths);
    throw e;
  } finally {
    process.removeListener("SIGINT", onInterrupt);
    process.removeListener("SIGTERM", onInterrupt);
    await client.close();
  }
  const seconds = (Date.now() - t0) / 1000;
  log.write({ type: "run_end", seconds });
  if (!opts.quiet) {
    const metric = (m: Record<string, number>, k: string) => m[k] ?? null;
    console.log(
      formatTable(
        ["stage", "objective", "steps", "time", "train loss", "val loss", "val acc", "val ppl"],
        stages.map((s) => [
          s.name,
          s.objective,
          s.steps,
          formatDuration(s.seconds),
          s.trainLoss,
          metric(s.metrics, "val_loss"),
          metric(s.metrics, "val_accuracy"),
          metric(s.metrics, "val_perplexity"),
        ]),
      ),
    );
    console.log(`run ${name}: ${paths.dir} (${formatDuration(seconds)})`);
  }
  return { run: name, dir: paths.dir, stages, seconds };
}

/** A fresh run's files: config.json, vocab.json, run.json (the manifest), state.json and the log's first line. */
async function writeRunFiles(name: string, paths: RunPaths, cfg: Config, data: TrainingData, state: RunState, log: RunLog): Promise<RunManifest> {
  mkdirSync(paths.checkpoints, { recursive: true });
  await writeFileAtomic(paths.config, `${JSON.stringify(cfg, null, 2)}\n`);
  await data.vocab.save(paths.vocab);
  const last = cfg.stages.length - 1;
  const manifest: RunManifest = {
    version: MANIFEST_VERSION,
    name,
    created: new Date().toISOString(),
    seed: cfg.seed,
    model: buildArgs(cfg, cfg.stages[last], last, data.vocab),
    tokenizer: tokenizerSettings(cfg),
    vocab: { size: data.vocab.size, fingerprint: data.vocab.fingerprint },
    stages: cfg.stages.map((s, index) => ({
      index,
      name: stageName(s),
      objective: s.objective ?? "multitask",
      ...(s.tasks ? { tasks: s.tasks.map((t) => ({ name: taskName(t), dataset: t.dataset, objective: t.objective, weight: t.weight })) } : {}),
      checkpoint: null,
      completed: false,
      step: 0,
      metrics: {},
    })),
    finalCheckpoint: null,
    data: {
      train: data.plan.train,
      valid: data.plan.valid,
      holdout: data.plan.holdout,
      ...(data.plan.tasks.length ? { tasks: data.plan.tasks } : {}),
      ...(data.plan.evaluationSplits ? { evaluationSplits: data.plan.evaluationSplits } : {}),
    },
  };
  await writeManifest(paths, manifest);
  await writeState(paths, state);
  log.write({
    type: "run_start",
    run: name,
    seed: cfg.seed,
    data: { ...data.plan, holdout: data.plan.holdout && { ...data.plan.holdout, validRows: data.plan.holdout.validRows.length } },
    vocab_size: data.vocab.size,
  });
  return manifest;
}
