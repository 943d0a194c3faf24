/** `bridge eval`. */
import { defineCommand } from "./command.js";
import { dataDirOption, deviceOption, runOption } from "./options.js";

export const evalCommand = defineCommand({
  command: "eval",
  describe: "evaluate a run: metrics.json, report.html with plots, sentence vectors as Arrow",
  // async: the task registry (and what it imports) loads only when `eval` is the command
  builder: async (y) => {
    const { tasksHelp } = await import("../eval/tasks/index.js");
    return y.options({
      ...runOption("the run to evaluate (runs/NAME; default: the latest, runs/latest)"),
      tasks: { type: "string", describe: tasksHelp() },
      ...dataDirOption,
      checkpoint: {
        type: "string",
        describe: "checkpoint to evaluate instead of the run's final one (relative to the run folder, as run.json names them, else to this folder)",
      },
      compare: { type: "string", array: true, describe: "compare the metrics.json of these already evaluated runs side by side (evaluates nothing)" },
      ...deviceOption,
    });
  },
  handler: async (a) => {
    const { evalCommand } = await import("../commands/eval.js");
    return evalCommand({ run: a.run, tasks: a.tasks, dataDir: a.dataDir, checkpoint: a.checkpoint, compare: a.compare, device: a.device });
  },
});
