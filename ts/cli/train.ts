/** `bridge train`. */
import { OBJECTIVES } from "../config/objectives.js";
import { defineCommand } from "./command.js";
import { dataDirOption, onBadRowOption, remoteBackendOptions, runOption } from "./options.js";

export const trainCommand = defineCommand({
  command: "train",
  // the top-level help needs this before any command runs, so the objective registry loads at start-up
  describe: `train a model in stages (${OBJECTIVES.join(", ")}) into runs/NAME`,
  // async: the fastai model list comes from train/init.ts, which loads only when `train` is the command
  builder: async (y) => {
    const { FASTAI_MODELS } = await import("../train/init.js");
    return y.options({
      config: { type: "string", describe: "config file, YAML or JSON (default: configs/default.yaml)" },
      set: { type: "string", array: true, default: [] as string[], describe: "override a config field: --set stages.0.epochs=2 (repeatable)" },
      ...runOption("run name: the folder runs/NAME (default: config name and time)"),
      resume: { type: "boolean", default: false, describe: "continue the run from its last checkpoint" },
      quiet: { type: "boolean", default: false, describe: "no progress output" },
      ...dataDirOption,
      ...remoteBackendOptions,
      nproc: { type: "number", default: 1, describe: "data-parallel ranks: N backend processes with torch.distributed (gloo on CPU)" },
      hosts: {
        type: "string",
        describe: "data-parallel ranks on other machines: `bridge serve` endpoints, comma-separated, rank 0 first (tcp://h1:5555,tcp://h2:5555; needs --keys)",
      },
      master: {
        type: "string",
        describe: "--hosts: rendezvous HOST:PORT on rank 0's machine, reachable by every host (default: the first endpoint's host, port 29500)",
      },
      ...onBadRowOption,
      download: { type: "boolean", describe: "download missing datasets (default: only into the default cache, ~/.cache/bridge/data; --no-download: never)" },
      cache: {
        type: "boolean",
        describe:
          "build the config into the pretrained-model cache (as init.from pretrained:PATH.yaml finds it) instead of runs/; the project's pretraining configs (configs/pretrain*.yaml) go there without it",
      },
      init: {
        type: "string",
        describe: `start from pretrained weights: a run, a checkpoint, an import folder, or ${FASTAI_MODELS.map((m) => `fastai:${m}`).join("|")} (the config's init.from)`,
      },
    });
  },
  handler: async (a) => {
    const { train } = await import("../commands/train.js");
    await train({
      config: a.config,
      set: a.set,
      run: a.run,
      resume: a.resume,
      quiet: a.quiet,
      dataDir: a.dataDir,
      backend: a.backend,
      keys: a.keys,
      nproc: a.nproc,
      hosts: a.hosts
        ?.split(",")
        .map((h) => h.trim())
        .filter((h) => h !== ""),
      master: a.master,
      onBadRow: a.onBadRow,
      download: a.download,
      init: a.init,
      cache: a.cache,
    });
  },
});
