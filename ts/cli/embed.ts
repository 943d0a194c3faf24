/** `bridge embed`. */
import { defineCommand } from "./command.js";
import { deviceOption, remoteBackendOptions, runOption } from "./options.js";

export const embedCommand = defineCommand({
  command: "embed",
  describe: "one sentence vector per input line, in input order, into an Arrow IPC file",
  builder: (y) =>
    y.options({
      ...runOption("the run whose encoder embeds: a name, a run folder, or latest (the default, runs/latest)"),
      input: { type: "string", demandOption: true, describe: "text file, one sentence a line (or JSONL with --field)" },
      output: { type: "string", demandOption: true, describe: "FILE.arrow: line, text, vector (FixedSizeList<float32>)" },
      field: { type: "string", describe: "JSONL input: the field holding the text" },
      "batch-size": { type: "number", default: 128, describe: "sentences per encode call (vectors do not depend on it)" },
      "max-len": { type: "number", describe: "tokens kept per sentence, xxbos included (longer ones are cut and counted)" },
      checkpoint: {
        type: "string",
        describe: "checkpoint instead of the run's final one (relative to the run folder, as run.json names them, else to this folder)",
      },
      ...deviceOption,
      ...remoteBackendOptions,
      force: {
        type: "boolean",
        default: false,
        describe: "write --output even inside a run folder, or over a file that is not Arrow (never over --input or a device)",
      },
    }),
  handler: async (a) => {
    const { embedCommand } = await import("../commands/embed.js");
    return embedCommand({
      run: a.run,
      input: a.input,
      output: a.output,
      field: a.field,
      batchSize: a.batchSize,
      maxLen: a.maxLen,
      checkpoint: a.checkpoint,
      device: a.device,
      force: a.force,
      backend: a.backend,
      keys: a.keys,
    });
  },
});
