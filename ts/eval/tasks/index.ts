/**
 * The registry of `bridge eval` tasks: one module each under tasks/, run in this order (snli
 * before separation: separation's vectors file carries snli's predictions). A new task is one
 * module added here; --tasks, its help text and its validation come from this list.
 */
import type { EvalTask } from "./common.js";
import { lmTask } from "./lm.js";
import { separationTask } from "./separation.js";
import { sickTask } from "./sick.js";
import { snliTask } from "./snli.js";
import { stsTask } from "./sts.js";
import { sts12to16Task } from "./sts12_16.js";

export const EVAL_TASKS: readonly EvalTask[] = [snliTask, separationTask, stsTask, sickTask, sts12to16Task, lmTask];

export const TASK_NAMES: readonly string[] = EVAL_TASKS.map((t) => t.name);

/** The --tasks help text: every task's name and what it measures. */
export function tasksHelp(): string {
  return `comma-separated, of: ${EVAL_TASKS.map((t) => `${t.name} (${t.describe})`).join("; ")}. Default: all`;
}

/** Parses --tasks "a,b" against the registry (undefined: every task). */
export function parseTasks(list: string | undefined): string[] | undefined {
  if (list === undefined) return undefined;
  const names = list
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  if (names.length === 0) throw new Error(`--tasks ${JSON.stringify(list)} names no task; known: ${TASK_NAMES.join(", ")}`);
  for (const t of names) if (!TASK_NAMES.includes(t)) throw new Error(`--tasks: unknown task ${JSON.stringify(t)}; known: ${TASK_NAMES.join(", ")}`);
  return names;
}

/** The registered tasks of the given names, in registry order (all of them for undefined). */
export function selectTasks(names: readonly string[] | undefined): EvalTask[] {
  if (names === undefined) return [...EVAL_TASKS];
  for (const n of names) if (!TASK_NAMES.includes(n)) throw new Error(`unknown eval task ${JSON.stringify(n)}; known: ${TASK_NAMES.join(", ")}`);
  return EVAL_TASKS.filter((t) => names.includes(t.name));
}

export type { EvalTask, TaskContext, TaskOutput } from "./common.js";
