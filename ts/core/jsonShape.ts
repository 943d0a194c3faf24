/**
 * Checks a JSON file bridge wrote itself (a ledger, a run's record, a cache entry) against its shape, so a file
 * edited by hand or cut short is named with the field that is wrong, not met later as "x.toFixed is not a function".
 */
import type { z } from "zod";

/** "runs.3.values.sts\.spearman.value: got "0.77"; expected number" for each problem, at most `max` of them. */
export function shapeProblems(issues: readonly z.ZodIssue[], raw: unknown, max = 5): string[] {
  const lines = issues.slice(0, max).map((issue) => {
    const path = issue.path.length ? issue.path.join(".") : "(top level)";
    const value = valueAt(raw, issue.path);
    const got = value === undefined ? "missing" : `got ${JSON.stringify(value)?.slice(0, 80)}`;
    return `${path}: ${got}; ${issue.code === "invalid_type" ? `expected ${issue.expected}` : issue.message}`;
  });
  if (issues.length > max) lines.push(`and ${issues.length - max} more`);
  return lines;
}

/** The parsed value when it has the schema's shape; else `fail` with the file and each wrong field. */
export function checkShape<T extends z.ZodTypeAny>(schema: T, raw: unknown, file: string, fail: (message: string) => Error): z.infer<T> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  throw fail(`${file}: ${shapeProblems(r.error.issues, raw).join("; ")}`);
}

/** The value at `path` in parsed YAML/JSON, or undefined where the path leaves the data. */
export function valueAt(raw: unknown, path: readonly (string | number)[]): unknown {
  let cur = raw;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}
