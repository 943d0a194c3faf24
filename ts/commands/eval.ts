/** `npx bridge eval`: evaluate a run (metrics.json, report.html, vectors), or `--compare` several. */
import { TASKS, type TaskName } from "../eval/tasks.js";

export interface EvalCommandOptions {
  run?: string;
  tasks?: string;
  dataDir?: string;
  checkpoint?: string;
  compare?: string[];
  device?: string;
}

export function parseTasks(list: string | undefined): TaskName[] | undefined {
  if (list === undefined) return undefined;
  const names = list
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  for (const t of names) {
    if (!(TASKS as readonly string[]).includes(t)) throw new Error(`unknown task ${JSON.stringify(t)}; known: ${TASKS.join(", ")}`);
  }
  return names as TaskName[];
}

export async function evalCommand(opts: EvalCommandOptions): Promise<number> {
  const tasks = parseTasks(opts.tasks);
  if (opts.compare && opts.compare.length > 0) {
    const { compareMetrics, formatComparison, readMetrics, writeComparison, metricsPath } = await import("../eval/compare.js");
    const { existsSync } = await import("node:fs");
    const runs = opts.compare;
    if (runs.length < 2) throw new Error("--compare needs at least two runs");
    const metrics = [];
    for (const run of runs) {
      if (!existsSync(metricsPath(run))) {
        // Not evaluated yet: evaluate it now, with the same tasks and data.
        const { evaluateRun } = await import("../eval/evaluate.js");
        await evaluateRun({ run, tasks, dataDir: opts.dataDir, device: opts.device });
      }
      metrics.push(readMetrics(run));
    }
    const c = compareMetrics(runs, metrics);
    console.log(formatComparison(c));
    console.log(`\nwrote ${await writeComparison(c)}`);
    return 0;
  }
  if (opts.run === undefined) throw new Error("give --run NAME (or --compare RUN_A RUN_B ...)");
  const { evaluateRun } = await import("../eval/evaluate.js");
  const { formatSummary } = await import("../eval/summary.js");
  const { metrics, files } = await evaluateRun({ run: opts.run, tasks, dataDir: opts.dataDir, checkpoint: opts.checkpoint, device: opts.device });
  console.log(formatSummary(metrics));
  if (metrics.skipped.length > 0) console.log(`\nskipped: ${metrics.skipped.map((s) => `${s.task} ${s.split}`).join(", ")} (see metrics.json)`);
  console.log(`\nwrote ${files.join("\n      ")}`);
  return 0;
}
