/** `npx bridge eval`: evaluate a run (metrics.json, report.html, vectors), or `--compare` several already evaluated. */
import { parseTasks } from "../eval/tasks/index.js";
import { locateRun } from "../run/manifest.js";

export interface EvalCommandOptions {
  /** The run: a name in the runs folder, a run folder, or the latest (the default). */
  run?: string;
  /** Comma-separated task names of the registry (ts/eval/tasks/index.ts). */
  tasks?: string;
  dataDir?: string;
  checkpoint?: string;
  compare?: string[];
  device?: string;
}

export async function evalCommand(opts: EvalCommandOptions): Promise<number> {
  const tasks = parseTasks(opts.tasks);
  // --compare given with no names arrives as []: still a comparison, refused below, never an evaluation of the latest run
  if (opts.compare !== undefined) {
    // --compare reads each run's metrics.json and never evaluates (a missing one is an error naming the command that makes it)
    const { compareMetrics, formatComparison, readMetrics, writeComparison } = await import("../eval/compare.js");
    const runs = opts.compare;
    if (runs.length < 2) throw new Error(`--compare needs at least two runs (got ${runs.length === 0 ? "none" : `only ${runs[0]}`})`);
    const twice = runs.find((r, i) => runs.indexOf(r) !== i);
    if (twice !== undefined) throw new Error(`--compare names ${twice} twice; a comparison is of different runs`);
    const evaluating = (
      [
        ["--run", opts.run],
        ["--tasks", opts.tasks],
        ["--data-dir", opts.dataDir],
        ["--checkpoint", opts.checkpoint],
      ] as const
    ).filter(([, v]) => v !== undefined);
    if (evaluating.length > 0) {
      throw new Error(
        `--compare only reads the runs' metrics.json, so ${evaluating.map(([f]) => f).join(", ")} ${evaluating.length === 1 ? "has" : "have"} no use with it; ` +
          "evaluate a run first with `npx bridge eval --run NAME [--tasks ...] [--data-dir DIR]`, then compare",
      );
    }
    const c = compareMetrics(
      runs,
      runs.map((run) => readMetrics(run)),
    );
    console.log(formatComparison(c));
    console.log(`\nwrote ${await writeComparison(c)}`);
    return 0;
  }
  const { name: run, runsDir } = locateRun(opts.run); // a name in the runs folder, or a run folder's path
  const { evaluateRun } = await import("../eval/evaluate.js");
  const { formatSummary } = await import("../eval/summary.js");
  const { describeTrainedOn } = await import("../eval/trainedOn.js");
  const { metrics, files, previous } = await evaluateRun({ run, runsDir, tasks, dataDir: opts.dataDir, checkpoint: opts.checkpoint, device: opts.device });
  console.log(`run ${run} trained on ${describeTrainedOn(metrics.trained_on)}\n`);
  console.log(formatSummary(metrics));
  if (metrics.skipped.length > 0) console.log(`\nskipped: ${metrics.skipped.map((s) => `${s.task} ${s.split}`).join(", ")} (see metrics.json)`);
  if (previous !== null) console.log(`\nthe previous metrics.json had results this one lacks: kept as ${previous}`);
  console.log(`\nwrote ${files.join("\n      ")}`);
  return 0;
}
