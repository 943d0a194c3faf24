/** `bridge ablate <grid>`. */
import { defineCommand } from "./command.js";
import { dataDirOption } from "./options.js";

export const ablateCommand = defineCommand({
  command: "ablate <grid>",
  describe: "train and evaluate every variant x seed of an ablation grid (YAML), one run at a time (--jobs N: N), into a results table (docs/results.md)",
  builder: (y) =>
    y.positional("grid", { type: "string", demandOption: true, describe: "the grid file, e.g. configs/ablations/quality.yaml" }).options({
      ...dataDirOption,
      only: { type: "string", array: true, describe: "train only this variant this time (repeatable); the table shows every variant" },
      seeds: { type: "string", describe: "these seeds instead of the grid's: --seeds 1,2" },
      jobs: { type: "number", default: 1, describe: "runs at a time (2 on 2 cores with threads: 1 configs; minutes per run then include the sharing)" },
      "dry-run": { type: "boolean", default: false, describe: "print the runs, done and pending; train nothing" },
      "table-only": { type: "boolean", default: false, describe: "rewrite the results table from the finished runs; train nothing" },
      "skip-recorded": {
        type: "boolean",
        default: false,
        describe:
          "runs the ledger beside the table (docs/results.runs.json) records as done are not trained again: continue a grid whose runs/ is on another machine",
      },
    }),
  handler: async (a) => {
    const { ablate } = await import("../commands/ablate.js");
    return ablate({
      grid: a.grid,
      dataDir: a.dataDir,
      only: a.only,
      seeds: a.seeds,
      jobs: a.jobs,
      dryRun: a.dryRun,
      tableOnly: a.tableOnly,
      skipRecorded: a.skipRecorded,
    });
  },
});
