/** `npx bridge bench WHAT`: one benchmark, one JSON object on stdout. */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";

export const BENCHMARKS = ["transport", "model", "prepare", "train", "embed", "search"] as const;
export type BenchName = (typeof BENCHMARKS)[number];

export interface BenchOptions {
  what: BenchName;
  /** Fewer iterations: a quick look rather than a measurement. */
  quick?: boolean;
  /** Datasets folder (`bench prepare` times SNLI dev from it; without it, the Brown corpus). */
  dataDir?: string;
  /** `bench train`: the config whose model and batches are timed (default configs/tiny.yaml). */
  config?: string;
  /** `bench train`: config overrides (--set path=value). */
  set?: string[];
  /** `bench train`: timed steps per pass, and passes of each side. */
  steps?: number;
  rounds?: number;
  /** `bench embed` / `bench search`: the run whose model is timed (default: a fresh cpu_small model). */
  run?: string;
  /** `bench train`: cProfile stats of the bridge side's backend (its serving loop) written to this file. */
  profile?: string;
}

/** The options that only `bench train` reads: named when given to another benchmark, and checked before it runs. */
const TRAIN_ONLY = ["config", "set", "steps", "rounds", "profile"] as const;

function checkOptions(opts: BenchOptions): void {
  const given = TRAIN_ONLY.filter((k) => opts[k] !== undefined && !(k === "set" && (opts.set?.length ?? 0) === 0));
  if (opts.what !== "train" && given.length > 0)
    throw new Error(`bench ${opts.what}: --${given.join(", --")} ${given.length > 1 ? "are" : "is"} for bench train`);
  for (const [flag, value] of [
    ["--steps", opts.steps],
    ["--rounds", opts.rounds],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new Error(`${flag} ${value}: a whole number, 1 or more`);
  }
  if (opts.profile !== undefined && !existsSync(dirname(resolve(opts.profile))))
    throw new Error(`--profile ${opts.profile}: no folder ${dirname(resolve(opts.profile))} to write it in`);
}

export async function bench(opts: BenchOptions): Promise<Record<string, unknown>> {
  checkOptions(opts);
  switch (opts.what) {
    case "transport": {
      const { benchTransport } = await import("../bench/transport.js");
      return { ...(await benchTransport(opts.quick ? { smallIterations: 300, largeIterations: 3 } : {})) };
    }
    case "prepare": {
      const { benchPrepare } = await import("../bench/prepare.js");
      return { ...(await benchPrepare({ dataDir: opts.dataDir, ...(opts.quick ? { syntheticSentences: 100_000, repeats: 1 } : {}) })) };
    }
    case "train": {
      const { benchTrain } = await import("../bench/train.js");
      return {
        ...(await benchTrain({
          config: opts.config,
          set: opts.set,
          dataDir: opts.dataDir,
          profile: opts.profile,
          ...(opts.quick ? { steps: 30, rounds: 1 } : {}),
          ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
          ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}),
        })),
      };
    }
    case "embed": {
      const { benchEmbed } = await import("../bench/embed.js");
      return { ...(await benchEmbed({ run: opts.run, dataDir: opts.dataDir, ...(opts.quick ? { sentences: 1000, repeats: 1 } : {}) })) };
    }
    case "search": {
      const { benchSearch } = await import("../bench/search.js");
      return { ...(await benchSearch({ run: opts.run, dataDir: opts.dataDir, ...(opts.quick ? { corpus: 20_000, queries: 10, encodeSentences: 300 } : {}) })) };
    }
    case "model": {
      const { benchModel } = await import("../bench/model.js");
      return { ...(await benchModel(opts.quick ? { steps: 3 } : {})) };
    }
  }
}
