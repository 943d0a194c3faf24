/** `bridge search`. */
import { defineCommand } from "./command.js";
import { deviceOption, jsonOption, remoteBackendOptions, runOption } from "./options.js";

export const searchCommand = defineCommand({
  command: "search",
  describe: "the corpus lines nearest each query by cosine of the run's sentence vectors (exact), with their scores",
  builder: (y) =>
    y
      .options({
        ...runOption("the run whose encoder embeds: a name, a run folder, or latest (the default, runs/latest)"),
        corpus: { type: "string", demandOption: true, describe: "text file, one sentence a line (or JSONL with --field); empty lines are skipped" },
        query: { type: "string", array: true, describe: "a query sentence (repeat for several)" },
        queries: { type: "string", describe: "text file of queries, one a line" },
        field: { type: "string", describe: "JSONL corpus: the field holding the text" },
        "top-k": { type: "number", default: 5, describe: "hits per query" },
        "batch-size": { type: "number", default: 128, describe: "sentences per encode call" },
        ...deviceOption,
        ...remoteBackendOptions,
        ...jsonOption,
      })
      .conflicts("query", "queries")
      .check((a) => {
        if (a.query === undefined && a.queries === undefined) throw new Error("give --query TEXT (one or more) or --queries FILE");
        return true;
      }),
  handler: async (a) => {
    const { searchCommand } = await import("../commands/search.js");
    return searchCommand({
      run: a.run,
      corpus: a.corpus,
      query: a.query,
      queries: a.queries,
      field: a.field,
      topK: a.topK,
      batchSize: a.batchSize,
      device: a.device,
      backend: a.backend,
      keys: a.keys,
      json: a.json,
    });
  },
});
