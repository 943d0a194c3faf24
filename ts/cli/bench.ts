/** `bridge bench <what>`. */
import { defineCommand } from "./command.js";
import { dataDirOption, runOption } from "./options.js";

export const benchCommand = defineCommand({
  command: "bench <what>",
  describe: "run a benchmark and print one JSON object",
  // async: the benchmark list is commands/bench.ts's, which loads only when `bench` is the command
  builder: async (y) => {
    const { BENCHMARKS } = await import("../commands/bench.js");
    return y.positional("what", { choices: BENCHMARKS, demandOption: true }).options({
      quick: { type: "boolean", default: false, describe: "fewer iterations (a look, not a measurement)" },
      ...dataDirOption,
      config: { type: "string", describe: "`bench train`: the config to time (default: configs/tiny.yaml)" },
      set: { type: "string", array: true, default: [] as string[], describe: "`bench train`: override a config field: --set stepsPerRequest=1 (repeatable)" },
      steps: { type: "number", describe: "`bench train`: timed steps per pass (default 200; more for a fast model: each pass should last seconds)" },
      rounds: { type: "number", describe: "`bench train`: passes of each side, alternating; the best of each is kept (default 2)" },
      profile: { type: "string", describe: "`bench train`: write cProfile stats of the bridge side's backend to this file (python -m pstats FILE)" },
      ...runOption("`bench embed`, `bench search`: the run whose model is timed (default: a fresh cpu_small model)"),
    });
  },
  handler: async (a) => {
    const { bench } = await import("../commands/bench.js");
    console.log(
      JSON.stringify(
        await bench({
          what: a.what,
          quick: a.quick,
          dataDir: a.dataDir,
          config: a.config,
          set: a.set,
          steps: a.steps,
          rounds: a.rounds,
          run: a.run,
          profile: a.profile,
        }),
        null,
        2,
      ),
    );
  },
});
