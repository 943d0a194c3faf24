/**
 * The command line: maps arguments to each command's options and lazily imports the command
 * (so `bridge doctor` does not load the training code). Commands live in commands/.
 */
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { installSignalHandlers } from "./backend/process.js";
import type { JsonObject } from "./backend/protocol.js";
import { downloadSources, fetchableDatasets } from "./data/datasets.js";

/** Runs a command's function; its number is the exit status; errors print without a stack. */
async function run(fn: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await fn()) ?? 0;
  } catch (err) {
    const e = err as Error;
    console.error(process.env.BRIDGE_DEBUG ? e.stack : errorLine(e));
    process.exitCode = 1;
  }
}

/** What the CLI prints for a failed command: one "bridge: " prefix, whether or not the message already has one. */
export function errorLine(e: Error): string {
  return `bridge: ${e.message.replace(/^(bridge: )+/, "")}`;
}

/** `data fetch --help`: which downloads are checked against a published checksum and which against their first download. */
function checksumEpilogue(): string {
  const published: string[] = [];
  const firstUse: string[] = [];
  for (const [name, source] of downloadSources()) {
    const algos = [...new Set(source.archives.map((a) => a.checksum?.algorithm ?? null))];
    if (algos.every((a) => a !== null)) published.push(`${name} (${algos.join(", ")})`);
    else firstUse.push(name);
  }
  return (
    `Verified against a published checksum: ${published.join(", ")}.\n` +
    `No published checksum, so verified on first use (the first download's sha256 is recorded in ~/.cache/bridge/checksums.json and every later download must match): ${firstUse.join(", ")}.`
  );
}

export function buildCli(argv: string[]): Argv {
  return yargs(argv)
    .scriptName("bridge")
    .usage("$0 <command> [options]")
    .command(
      "doctor",
      "check the Python environment and do a round trip with the backend",
      (y) => y.option("skip-pythonia", { type: "boolean", default: false, describe: "skip the pythonia inspection" }),
      (a) =>
        run(async () => {
          const { doctor } = await import("./commands/doctor.js");
          return doctor({ skipPythonia: a.skipPythonia });
        }),
    )
    .command(
      "train",
      "train a model in stages (lm, siamese, triplet, contrastive) into runs/NAME",
      (y) =>
        y
          .option("config", { type: "string", describe: "config file, YAML or JSON (default: configs/default.yaml)" })
          .option("set", { type: "string", array: true, default: [] as string[], describe: "override a config field: --set stages.0.epochs=2 (repeatable)" })
          .option("run", { type: "string", describe: "run name: the folder runs/NAME (default: config name and time)" })
          .option("resume", { type: "boolean", default: false, describe: "continue the run from its last checkpoint" })
          .option("quiet", { type: "boolean", default: false, describe: "no progress output" })
          .option("data-dir", { type: "string", describe: "folder in the official layouts (default: $BRIDGE_DATA_DIR, else ~/.cache/bridge/data)" })
          .option("backend", { type: "string", describe: "use a running backend (`bridge serve`): tcp://HOST:PORT (needs --keys)" })
          .option("keys", { type: "string", describe: "client.json from `bridge keys`, for --backend tcp://" })
          .option("nproc", { type: "number", default: 1, describe: "data-parallel ranks: N backend processes with torch.distributed (gloo on CPU)" })
          .option("hosts", { type: "string", describe: "data-parallel ranks on other machines: `bridge serve` endpoints, comma-separated, rank 0 first (tcp://h1:5555,tcp://h2:5555; needs --keys)" })
          .option("master", { type: "string", describe: "--hosts: rendezvous HOST:PORT on rank 0's machine, reachable by every host (default: the first endpoint's host, port 29500)" })
          .option("on-bad-row", { choices: ["error", "skip"] as const, default: "error" as const, describe: "a malformed dataset row: stop with an error naming it, or skip and count it" })
          .option("download", { type: "boolean", describe: "download missing datasets (default: only into the default cache, ~/.cache/bridge/data; --no-download: never)" })
          .option("init", { type: "string", describe: "start from pretrained weights: a run, a checkpoint, an import folder, or fastai:wt103-fwd|fastai:wt103-bwd (the config's init.from)" }),
      (a) =>
        run(async () => {
          const { train } = await import("./commands/train.js");
          await train({ config: a.config, set: a.set, run: a.run, resume: a.resume, quiet: a.quiet, dataDir: a.dataDir, backend: a.backend, keys: a.keys, nproc: a.nproc, hosts: a.hosts?.split(",").map((h) => h.trim()).filter((h) => h !== ""), master: a.master, onBadRow: a.onBadRow, download: a.download, init: a.init });
        }),
    )
    .command(
      "eval",
      "evaluate a run: metrics.json, report.html with plots, sentence vectors as Arrow",
      // async: the task registry (and what it imports) loads only when `eval` is the command
      async (y) => {
        const { tasksHelp } = await import("./eval/tasks/index.js");
        return y
          .option("run", { type: "string", describe: "the run to evaluate (runs/NAME; default: the latest, runs/latest)" })
          .option("tasks", { type: "string", describe: tasksHelp() })
          .option("data-dir", { type: "string", describe: "folder in the official layouts (default: $BRIDGE_DATA_DIR)" })
          .option("checkpoint", { type: "string", describe: "checkpoint to evaluate instead of the run's final one" })
          .option("compare", { type: "string", array: true, describe: "compare the metrics.json of these already evaluated runs side by side (evaluates nothing)" })
          .option("device", { type: "string", describe: "torch device (default: cuda if available, else cpu)" });
      },
      (a) =>
        run(async () => {
          const { evalCommand } = await import("./commands/eval.js");
          return evalCommand({ run: a.run, tasks: a.tasks, dataDir: a.dataDir, checkpoint: a.checkpoint, compare: a.compare, device: a.device });
        }),
    )
    .command(
      "ablate <grid>",
      "train and evaluate every variant x seed of an ablation grid (YAML), one run at a time (--jobs N: N), into a results table (docs/results.md)",
      (y) =>
        y
          .positional("grid", { type: "string", demandOption: true, describe: "the grid file, e.g. configs/ablations/quality.yaml" })
          .option("data-dir", { type: "string", describe: "folder in the official layouts, for train and eval (default: $BRIDGE_DATA_DIR)" })
          .option("only", { type: "string", array: true, describe: "train only this variant this time (repeatable); the table shows every variant" })
          .option("seeds", { type: "string", describe: "these seeds instead of the grid's: --seeds 1,2" })
          .option("jobs", { type: "number", default: 1, describe: "runs at a time (2 on 2 cores with threads: 1 configs; minutes per run then include the sharing)" })
          .option("dry-run", { type: "boolean", default: false, describe: "print the runs, done and pending; train nothing" })
          .option("table-only", { type: "boolean", default: false, describe: "rewrite the results table from the finished runs; train nothing" })
          .option("skip-recorded", {
            type: "boolean",
            default: false,
            describe: "runs the ledger beside the table (docs/results.runs.json) records as done are not trained again: continue a grid whose runs/ is on another machine",
          }),
      (a) =>
        run(async () => {
          const { ablate } = await import("./commands/ablate.js");
          return ablate({ grid: a.grid, dataDir: a.dataDir, only: a.only, seeds: a.seeds, jobs: a.jobs, dryRun: a.dryRun, tableOnly: a.tableOnly, skipRecorded: a.skipRecorded });
        }),
    )
    .command(
      "embed",
      "one sentence vector per input line, in input order, into an Arrow IPC file",
      (y) =>
        y
          .option("run", { type: "string", describe: "the run whose encoder embeds (default: the latest, runs/latest)" })
          .option("input", { type: "string", demandOption: true, describe: "text file, one sentence a line (or JSONL with --field)" })
          .option("output", { type: "string", demandOption: true, describe: "FILE.arrow: line, text, vector (FixedSizeList<float32>)" })
          .option("field", { type: "string", describe: "JSONL input: the field holding the text" })
          .option("batch-size", { type: "number", default: 128, describe: "sentences per encode call (vectors do not depend on it)" })
          .option("max-len", { type: "number", describe: "tokens kept per sentence, xxbos included (longer ones are cut and counted)" })
          .option("checkpoint", { type: "string", describe: "checkpoint instead of the run's final one" })
          .option("device", { type: "string", describe: "torch device (default: cuda if available, else cpu)" })
          .option("force", { type: "boolean", default: false, describe: "write --output even inside a run folder (never over --input)" }),
      (a) =>
        run(async () => {
          const { embedCommand } = await import("./commands/embed.js");
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
          });
        }),
    )
    .command(
      "bench <what>",
      "run a benchmark and print one JSON object",
      (y) =>
        y
          .positional("what", { choices: ["transport", "model", "prepare", "train", "embed"] as const, demandOption: true })
          .option("quick", { type: "boolean", default: false, describe: "fewer iterations (a look, not a measurement)" })
          .option("data-dir", { type: "string", describe: "datasets for `bench prepare` / `bench train` (default: $BRIDGE_DATA_DIR)" })
          .option("config", { type: "string", describe: "`bench train`: the config to time (default: configs/tiny.yaml)" })
          .option("run", { type: "string", describe: "`bench embed`: the run whose model is timed (default: a fresh cpu_small model)" }),
      (a) =>
        run(async () => {
          const { bench } = await import("./commands/bench.js");
          console.log(JSON.stringify(await bench({ what: a.what, quick: a.quick, dataDir: a.dataDir, config: a.config, run: a.run }), null, 2));
        }),
    )
    .command("data", "inspect and fetch datasets", (y) =>
      y
        .command(
          "inspect <name>",
          "counts, labels, token lengths and OOV rate of one split",
          (y) =>
            y
              .positional("name", { type: "string", demandOption: true, describe: "NAME:SPLIT, e.g. snli:dev, sick:train, wikitext-2:valid" })
              .option("data-dir", { type: "string", describe: "folder in the official layouts (default: $BRIDGE_DATA_DIR, else ~/.cache/bridge/data)" })
              .option("json", { type: "boolean", default: false, describe: "print one JSON object" })
              .option("on-bad-row", { choices: ["error", "skip"] as const, default: "error" as const, describe: "stop at a malformed row, or skip and count it" })
              .option("vocab", { type: "string", describe: "vocabulary file for the OOV rate (default: built from the training split)" })
              .option("min-freq", { type: "number", describe: "min_freq of that vocabulary (default 3)" })
              .option("max-len", { type: "number", describe: "tokens kept per sentence, xxbos included (default: tokenizer.maxLen's default, 512; text is not cut)" }),
          (a) =>
            run(async () => {
              const { dataInspect } = await import("./commands/data.js");
              await dataInspect({ name: a.name, dataDir: a.dataDir, json: a.json, onBadRow: a.onBadRow, vocab: a.vocab, minFreq: a.minFreq, maxLen: a.maxLen });
            }),
        )
        .command(
          "fetch <name>",
          "download a dataset into the data dir (checksum, extraction, no half-written files)",
          (y) =>
            y
              .positional("name", { type: "string", choices: fetchableDatasets(), demandOption: true })
              .option("data-dir", { type: "string", describe: "where to put it (default: $BRIDGE_DATA_DIR, else ~/.cache/bridge/data)" })
              .option("force", { type: "boolean", default: false, describe: "fetch again even if the files are there" })
              .epilogue(checksumEpilogue()),
          (a) =>
            run(async () => {
              const { dataFetch } = await import("./commands/data.js");
              await dataFetch({ name: a.name, dataDir: a.dataDir, force: a.force });
            }),
        )
        .demandCommand(1, "name a data command: inspect or fetch"),
    )
    .command(
      "import <format>",
      "convert a pretrained language model into a bridge checkpoint folder (for init: { from: DIR })",
      (y) =>
        y
          .positional("format", { choices: ["fastai"] as const, demandOption: true })
          .option("weights", { type: "string", demandOption: true, describe: "fastai AWD-LSTM weights, e.g. wt103-fwd/lstm_fwd.pth" })
          .option("vocab", { type: "string", demandOption: true, describe: "its vocabulary, a pickled list of strings (itos_wt103.pkl)" })
          .option("out", { type: "string", demandOption: true, describe: "folder for model.pt and import.json" })
          .option("backwards", { type: "boolean", default: false, describe: "a backward LM (fastai's wt103-bwd)" }),
      (a) =>
        run(async () => {
          const { importCommand } = await import("./commands/import.js");
          await importCommand({ format: a.format, weights: a.weights, vocab: a.vocab, out: a.out, backwards: a.backwards });
        }),
    )
    .command(
      "keys",
      "generate CURVE keys for a tcp:// backend (mode 0600)",
      (y) =>
        y
          .option("dir", { type: "string", default: "keys", describe: "folder for server.json and client.json" })
          .option("force", { type: "boolean", default: false, describe: "replace existing keys (hosts holding the old ones are locked out)" }),
      (a) =>
        run(async () => {
          const { keys } = await import("./commands/keys.js");
          return keys({ dir: a.dir, force: a.force });
        }),
    )
    .command(
      "models",
      "list the pretrained-model cache (init: { from: pretrained:NAME } builds an entry on first use)",
      (y) => y.option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
      (a) =>
        run(async () => {
          const { modelsCommand } = await import("./commands/models.js");
          return modelsCommand({ json: a.json });
        }),
    )
    .command(
      "serve",
      "run a backend in the foreground for remote clients (tcp:// needs --keys)",
      (y) =>
        y
          .option("endpoint", { type: "string", demandOption: true, describe: "tcp://0.0.0.0:5555 or ipc:///path" })
          .option("keys", { type: "string", describe: "server.json from `bridge keys` (private to its owner: chmod 600)" })
          .option("device", { type: "string", describe: "torch device (default: cuda if available, else cpu)" })
          .option("root", { type: "string", describe: "clients' file paths (checkpoints, imports) must lie inside this folder (default: the current folder)" }),
      (a) =>
        run(async () => {
          const { serve } = await import("./commands/serve.js");
          return serve({ endpoint: a.endpoint, keys: a.keys, device: a.device, root: a.root });
        }),
    )
    .command(
      "call <op>",
      "start a backend, send one request, print the reply",
      (y) =>
        y
          .positional("op", { type: "string", demandOption: true })
          .option("args", { type: "string", default: "{}", describe: "the request's arguments as JSON" }),
      (a) =>
        run(async () => {
          const { call } = await import("./commands/call.js");
          let args: unknown;
          try {
            args = JSON.parse(a.args);
          } catch (err) {
            throw new Error(`--args is not JSON: ${(err as Error).message}`);
          }
          if (typeof args !== "object" || args === null || Array.isArray(args)) throw new Error("--args must be a JSON object");
          return call({ op: a.op, args: args as JsonObject });
        }),
    )
    .demandCommand(1, "name a command (see --help)")
    .strict()
    .help()
    .version(false);
}

installSignalHandlers();
await buildCli(hideBin(process.argv)).parseAsync();
