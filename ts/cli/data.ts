/** `bridge data inspect <name>` and `bridge data fetch <name>`. */
import type { DownloadSource } from "../data/datasets.js";
import { type BridgeCommand, defineCommand } from "./command.js";
import { dataDirOption, jsonOption, onBadRowOption } from "./options.js";

const inspectCommand = defineCommand({
  command: "inspect <name>",
  describe: "counts, labels, token lengths and OOV rate of one split",
  builder: (y) =>
    y.positional("name", { type: "string", demandOption: true, describe: "NAME:SPLIT, e.g. snli:dev, sick:train, wikitext-2:valid" }).options({
      ...dataDirOption,
      ...jsonOption,
      ...onBadRowOption,
      vocab: { type: "string", describe: "vocabulary file for the OOV rate (default: built from the training split)" },
      "min-freq": { type: "number", describe: "min_freq of that vocabulary (default 3)" },
      "max-len": { type: "number", describe: "tokens kept per sentence, xxbos included (default: tokenizer.maxLen's default, 512; text is not cut)" },
    }),
  handler: async (a) => {
    const { dataInspect } = await import("../commands/data.js");
    await dataInspect({ name: a.name, dataDir: a.dataDir, json: a.json, onBadRow: a.onBadRow, vocab: a.vocab, minFreq: a.minFreq, maxLen: a.maxLen });
  },
});

/** `data fetch --help`: which downloads are checked against a published checksum and which against their first download. */
function checksumEpilogue(sources: readonly [string, DownloadSource][]): string {
  const published: string[] = [];
  const firstUse: string[] = [];
  for (const [name, source] of sources) {
    const algos = [...new Set(source.archives.map((a) => a.checksum?.algorithm ?? null))];
    if (algos.every((a) => a !== null)) published.push(`${name} (${algos.join(", ")})`);
    else firstUse.push(name);
  }
  return (
    `Verified against a published checksum: ${published.join(", ")}.\n` +
    `No published checksum, so verified on first use (the first download's sha256 is recorded in ~/.cache/bridge/checksums.json and every later download must match): ${firstUse.join(", ")}.`
  );
}

const fetchCommand = defineCommand({
  command: "fetch <name>",
  describe: "download a dataset into the data dir (checksum, extraction, no half-written files)",
  // async: the dataset registry loads only when `data fetch` is the command
  builder: async (y) => {
    const { downloadSources, fetchableDatasets } = await import("../data/datasets.js");
    return y
      .positional("name", { type: "string", choices: fetchableDatasets(), demandOption: true })
      .options({
        ...dataDirOption,
        force: { type: "boolean", default: false, describe: "fetch again even if the files are there" },
      })
      .epilogue(checksumEpilogue(downloadSources()));
  },
  handler: async (a) => {
    const { dataFetch } = await import("../commands/data.js");
    await dataFetch({ name: a.name, dataDir: a.dataDir, force: a.force });
  },
});

const subcommands: readonly BridgeCommand[] = [inspectCommand, fetchCommand];

export const dataCommand = defineCommand({
  command: "data",
  describe: "inspect and fetch datasets",
  builder: (y) => y.demandCommand(1, `name a data command: ${subcommands.map((c) => c.command.split(" ")[0]).join(" or ")}`),
  subcommands,
});
