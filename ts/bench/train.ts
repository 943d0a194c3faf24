/**
 * `npx bridge bench train [--config FILE]`: the same model on the same batches, twice in one run:
 * driven through the bridge exactly as `bridge train` drives it (batches collated here, `stepsPerRequest` steps
 * a train_steps request with their hparams inside, `pipelineDepth` requests in flight), and by a plain loop in one Python process
 * over the same batches already in memory (py/bridge_backend/bench_train.py, the physical limit of
 * the design). Both build the model from the same seed, so their per-step losses must agree: the
 * result says by how much (max_loss_difference; null, with the steps listed, when a loss is
 * missing or not finite on either side). The passes alternate (bridge, native, bridge, native, ...); `ratio` is the
 * median over rounds of each round's bridge/native rate, so that the machine's speed drifting between rounds (it
 * does here, by a third) cancels within a round; `best_ratio` compares each side's fastest pass.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startBackend } from "../backend/client.js";
import type { BuildArgs, SetHparamsArgs, StepArgs } from "../backend/ops.js";
import type { JsonObject, JsonValue } from "../backend/protocol.js";
import { loadConfig } from "../config/load.js";
import { stageName } from "../config/schema.js";
import { withPipeline } from "../core/pipeline.js";
import { tensorBytes } from "../core/tensor.js";
import { projectRoot } from "../paths.js";
import { loadTrainingData } from "../train/data.js";
import { buildArgs, hparamsArgs, stepsPerRequest } from "../train/loop.js";
import { scheduleAt } from "../train/schedules.js";
import { type Batch, type EpochBatches, stageData } from "../train/stages.js";
import { StepRequests } from "../train/stepRequests.js";
import { CostTally, costSince, ownCost, type ProcessCost, pidCost } from "./processCost.js";
import { runPythonJson } from "./python.js";

export interface TrainBenchOptions {
  /** Config file; default configs/tiny.yaml. */
  config?: string;
  set?: string[];
  /** Stage to time (name or index); default the last one. */
  stage?: string;
  /** Timed steps per pass (after `warmup`); default 200. */
  steps?: number;
  warmup?: number;
  /** Passes of each (alternating); default 2. */
  rounds?: number;
  dataDir?: string;
  /** cProfile stats of the bridge side's backend (the serving loop: decode, ops, replies), written here by the
   * last bridge pass (`python -m pstats FILE`); the profiler slows that side, so the ratio is not a measurement then. */
  profile?: string;
}

export interface TrainBenchResult {
  bridge_pairs_per_s: number;
  native_pairs_per_s: number;
  ratio: number;
  [key: string]: JsonValue;
  /** Where --profile wrote the bridge side's stats (then that side ran under cProfile: the ratio is no measurement); null: not profiled. */
  profile: string | null;
}

interface Step {
  batch: Batch;
  /** set_hparams and train_step arguments; JSON as well, for the native loop's batch file. */
  hparams: SetHparamsArgs & JsonObject;
  opts: StepArgs & JsonObject;
}

export async function benchTrain(opts: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const configFile = opts.config ?? join(projectRoot, "configs", "tiny.yaml");
  const cfg = loadConfig({ file: configFile, set: opts.set });
  const idx =
    opts.stage === undefined ? cfg.stages.length - 1 : /^\d+$/.test(opts.stage) ? Number(opts.stage) : cfg.stages.findIndex((s) => stageName(s) === opts.stage);
  const s = cfg.stages[idx];
  if (s === undefined) throw new Error(`bench train: no stage ${opts.stage} in ${configFile}`);
  const data = await loadTrainingData(cfg, { dataDir: opts.dataDir });
  const sd = stageData(s, idx, data, cfg.seed);
  const warmup = opts.warmup ?? 5;
  const n = warmup + (opts.steps ?? 200);
  // (epoch, batch) of each step: epochs follow one another as in training
  const order: [number, number][] = [];
  for (let e = 0; order.length < n; e++) for (let k = 0, c = sd.epoch(e).count; k < c && order.length < n; k++) order.push([e, k]);
  // one plan per epoch, as the training loop makes it (an epoch's plan is a shuffle and a sort of all its rows)
  const epochs = new Map<number, EpochBatches>();
  const batchAt = (b: number) => {
    const [e, k] = order[b];
    if (!epochs.has(e)) epochs.set(e, sd.epoch(e));
    return epochs.get(e)!.batch(k);
  };
  // Batches collated up front for the native loop; the bridge pass collates its own as it goes.
  const steps: Step[] = Array.from({ length: n }, (_, b) => {
    const batch = batchAt(b);
    // a multi-task stage's steps each train their task's objective, as in training
    const opts = { objective: batch.objective, ...batch.options, ...(batch.objective === "lm" ? { reset: b === 0 } : {}) };
    return { batch, hparams: hparamsArgs(s, scheduleAt(s.lr, b, n)), opts };
  });
  const items = steps.slice(warmup).reduce((a, st) => a + st.batch.items, 0);
  const build = buildArgs(cfg, s, idx, data.vocab, data.idf);

  const dir = mkdtempSync(join(tmpdir(), "bridge-bench-train-"));
  const file = join(dir, "batches.bin");
  writeBatches(file, build, steps);
  const env: NodeJS.ProcessEnv = cfg.threads ? { OMP_NUM_THREADS: String(cfg.threads) } : {};
  const bridgeRates: number[] = [];
  const nativeRates: number[] = [];
  let bridgeLosses: (number | null)[] = [];
  let nativeLosses: (number | null)[] = [];
  let device = "";
  const cost = { client: new CostTally(), backend: new CostTally(), native: new CostTally() }; // over the timed steps
  try {
    for (let round = 0; round < (opts.rounds ?? 2); round++) {
      if (opts.profile) rmSync(resolve(opts.profile), { force: true }); // the last pass's, never an older run's
      const bridgeEnv = opts.profile ? { ...env, BRIDGE_PROFILE: resolve(opts.profile) } : env;
      const b = await bridgePass(build, steps, warmup, { depth: cfg.pipelineDepth, perRequest: stepsPerRequest(cfg) }, cfg.device, bridgeEnv, batchAt);
      bridgeRates.push(items / b.seconds);
      bridgeLosses = b.losses;
      cost.client.add(b.client);
      cost.backend.add(b.backend);
      const nat = await nativePass(file, warmup, cfg.device, env);
      cost.native.add({ cpuMs: nat.cpu_seconds * 1000, minorFaults: 0 });
      nativeRates.push(items / nat.seconds);
      nativeLosses = nat.losses;
      device = nat.device;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const timedSteps = bridgeRates.length * (n - warmup); // of every bridge pass
  const cpuPerStep = (t: CostTally) => {
    const each = t.per(timedSteps);
    return each && round3(each.cpuMs);
  };
  const bridge = Math.max(...bridgeRates);
  const native = Math.max(...nativeRates);
  const agreement = compareLosses(bridgeLosses, nativeLosses);
  return {
    bridge_pairs_per_s: round1(bridge),
    native_pairs_per_s: round1(native),
    ratio: round3(median(bridgeRates.map((b, i) => b / nativeRates[i]))),
    best_ratio: round3(bridge / native),
    unit: sd.unit,
    config: configFile,
    stage: stageName(s),
    objective: s.objective ?? `multitask (${[...new Set(steps.map((st) => st.opts.objective))].sort().join(", ")})`,
    timed_steps: n - warmup,
    batch_size: s.batchSize,
    pipeline_depth: cfg.pipelineDepth,
    steps_per_request: stepsPerRequest(cfg),
    threads: cfg.threads,
    device,
    max_loss_difference: agreement.maxDifference,
    unmatched_loss_steps: agreement.unmatchedSteps,
    bridge_runs: bridgeRates.map(round1),
    native_runs: nativeRates.map(round1),
    profile: opts.profile ? resolve(opts.profile) : null,
    // CPU ms a timed step cost each process, mean over the passes: where a step's overhead is spent (null off Linux)
    cpu_ms_per_step: {
      bridge_client: cpuPerStep(cost.client),
      bridge_backend: cpuPerStep(cost.backend),
      native: cpuPerStep(cost.native),
    },
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface LossAgreement {
  /** The largest |bridge - native| over the steps; null when any step could not be compared. */
  maxDifference: number | null;
  /** Steps whose loss is null or non-finite on either side, or missing from one side. */
  unmatchedSteps: number[];
}

/**
 * Step-by-step comparison of the two loops' losses. A null or NaN loss is a mismatch, whatever
 * the other side holds: a check that a diverged (or unreported) loss could pass is no check.
 */
export function compareLosses(bridge: readonly (number | null)[], native: readonly (number | null)[]): LossAgreement {
  const unmatchedSteps: number[] = [];
  let max = 0;
  for (let i = 0; i < Math.max(bridge.length, native.length); i++) {
    const a = bridge[i];
    const b = native[i];
    if (typeof a !== "number" || typeof b !== "number" || !Number.isFinite(a) || !Number.isFinite(b)) unmatchedSteps.push(i);
    else max = Math.max(max, Math.abs(a - b));
  }
  return { maxDifference: unmatchedSteps.length > 0 ? null : max, unmatchedSteps };
}

async function bridgePass(
  build: BuildArgs & JsonObject,
  steps: Step[],
  warmup: number,
  transport: { depth: number; perRequest: number },
  device: string | null,
  env: NodeJS.ProcessEnv,
  collate: (b: number) => Batch,
): Promise<{ seconds: number; losses: (number | null)[]; client: ProcessCost; backend: ProcessCost | null }> {
  const client = await startBackend({ ...(device ? { device } : {}), env });
  const pid = client.process?.pid;
  let start: [ProcessCost, ProcessCost | null] = [ownCost(), null];
  try {
    await client.call("build", build);
    const losses: (number | null)[] = new Array(steps.length).fill(null);
    let t0 = 0;
    await withPipeline(transport.depth, async (pipeline) => {
      const requests = new StepRequests(client, pipeline, transport.perRequest);
      for (let b = 0; b < steps.length; b++) {
        if (b === warmup) {
          requests.send();
          await pipeline.drain();
          t0 = performance.now();
          start = [ownCost(), pidCost(pid)];
        }
        const tensors = collate(b).tensors; // collated now, as the training loop does
        // as the training loop: the step carries hparams only when its values differ from the last ones sent
        const changed = b === 0 || JSON.stringify(steps[b].hparams) !== JSON.stringify(steps[b - 1].hparams);
        await requests.add(changed ? { ...steps[b].opts, hparams: steps[b].hparams } : steps[b].opts, tensors, (r) => {
          losses[b] = r.loss;
        });
      }
      requests.send();
    });
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, losses, client: costSince(start[0], ownCost())!, backend: costSince(start[1], pidCost(pid)) };
  } finally {
    await client.close();
  }
}

function writeBatches(file: string, build: JsonObject, steps: Step[]): void {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const header = {
    build,
    steps: steps.map((st) => {
      const tensors: Record<string, [string, number[], number, number]> = {};
      for (const [name, t] of Object.entries(st.batch.tensors)) {
        const bytes = tensorBytes(t);
        tensors[name] = [t.dtype, [...t.shape], offset, bytes.byteLength];
        chunks.push(bytes);
        offset += bytes.byteLength;
      }
      const { objective, ...opts } = st.opts;
      return { objective, hparams: st.hparams, opts, tensors };
    }),
  };
  const head = Buffer.from(JSON.stringify(header), "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32LE(head.byteLength);
  writeFileSync(file, Buffer.concat([len, head, ...chunks]));
}

function nativePass(
  file: string,
  warmup: number,
  device: string | null,
  env: NodeJS.ProcessEnv,
): Promise<{ seconds: number; cpu_seconds: number; losses: (number | null)[]; device: string }> {
  const args = ["-m", "bridge_backend.bench_train", file, "--warmup", String(warmup), ...(device ? ["--device", device] : [])];
  return runPythonJson("bench train: the native loop", args, env);
}
