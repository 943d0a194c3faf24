/**
 * An ablation grid (configs/ablations/*.yaml): a base training config, seeds, eval tasks, and one
 * variant per row of the results table. Validated at the edge: every error names the grid file and
 * the field. Paths in the grid are relative to the grid file.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import { z } from "zod";
import { DEFAULT_CONFIG, readStructuredFile } from "../config/load.js";
import { valueAt } from "../core/jsonShape.js";
import { TASK_NAMES } from "../eval/tasks/index.js";
import { projectRoot } from "../paths.js";

export class GridError extends Error {
  override name = "GridError";
}

/** Letters, digits, '.', '_' and '-': the grid and variant names become run folder names. */
const NAME = /^[A-Za-z0-9._-]+$/;
const nameField = z.string().regex(NAME, "use letters, digits, '.', '_' and '-' only");

/** The baselines a row can show without training (their numbers are in every evaluated run's metrics.json). */
export const BASELINES = ["tfidf"] as const;
export type Baseline = (typeof BASELINES)[number];

const VariantSchema = z
  .object({
    name: nameField,
    /** One line for the table's "about" column. */
    about: z.string().default(""),
    /** Another base config for this row, relative to the grid file (default: the grid's base). */
    config: z.string().min(1).optional(),
    /** `--set key=value` overrides of the config (ts/config/load.ts), applied in order. */
    set: z.array(z.string()).default([]),
    /** No training: a baseline read from the finished runs' metrics.json. */
    baseline: z.enum(BASELINES).optional(),
  })
  .strict();

const GridSchema = z
  .object({
    /** Names the runs: runs/ablate-NAME-VARIANT-sSEED. */
    name: nameField,
    title: z.string().min(1).optional(),
    /** What the table shows, in words (markdown), written under it: which levers mattered, what is pending. */
    findings: z.string().min(1).optional(),
    /** The training config every variant starts from, relative to the grid file (default: configs/default.yaml). */
    base: z.string().min(1).optional(),
    seeds: z
      .array(
        z
          .number()
          .int()
          .min(0)
          .max(2 ** 31 - 1),
      )
      .min(1)
      .refine((s) => new Set(s).size === s.length, "seeds must be distinct"),
    eval: z
      .object({ tasks: z.array(z.string()).min(1).optional() })
      .strict()
      .default({}),
    /** The results file, relative to the grid file (default: docs/results.md of the project). */
    output: z.string().min(1).optional(),
    variants: z.array(VariantSchema).min(1),
  })
  .strict();

type RawVariant = z.infer<typeof VariantSchema>;

export interface TrainedVariant {
  kind: "trained";
  name: string;
  about: string;
  /** Absolute path of the config this row trains from. */
  config: string;
  set: string[];
}

export interface BaselineVariant {
  kind: "baseline";
  name: string;
  about: string;
  baseline: Baseline;
}

export type Variant = TrainedVariant | BaselineVariant;

export interface Grid {
  /** Absolute path of the grid file. */
  file: string;
  name: string;
  title: string;
  findings: string | undefined;
  /** Absolute path of the base config. */
  base: string;
  seeds: number[];
  /** Eval task names (registry order is eval's business); undefined: every task. */
  tasks: string[] | undefined;
  /** Absolute path of the results file. */
  output: string;
  variants: Variant[];
}

const ALLOWED_KEYS: Record<string, readonly string[]> = {
  "": Object.keys(GridSchema.shape),
  variant: Object.keys(VariantSchema.shape),
  eval: ["tasks"],
};

/** One zod issue as "field: problem" (unknown keys list what is allowed). */
function describeIssue(issue: z.ZodIssue, raw: unknown): string {
  const path = issue.path.length ? issue.path.join(".") : "(top level)";
  const field = labelPath(issue.path, raw);
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const at = issue.path.length === 0 ? "" : issue.path[0] === "variants" ? "variant" : String(issue.path[0]);
    const allowed = ALLOWED_KEYS[at];
    return `${field || path}: unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}${allowed ? `; allowed: ${allowed.join(", ")}` : ""}`;
  }
  const value = valueAt(raw, issue.path);
  const got = value === undefined ? "missing" : `got ${JSON.stringify(value)}`;
  return `${field}: ${got}; ${issue.message}`;
}

/** "variants.1 (contrastive).set" for a path into the grid: the variant's name helps find it. */
function labelPath(path: readonly (string | number)[], raw: unknown): string {
  if (path[0] === "variants" && typeof path[1] === "number") {
    const name = valueAt(raw, ["variants", path[1], "name"]);
    const head = `variants.${path[1]}${typeof name === "string" ? ` (${name})` : ""}`;
    return [head, ...path.slice(2)].join(".");
  }
  return path.length ? path.join(".") : "(top level)";
}

/** Reads and validates a grid file; paths come back absolute. Config files are checked to exist, not yet loaded (see plan.ts). */
export function loadGrid(file: string): Grid {
  const path = resolve(file);
  const raw = readStructuredFile(path, "grid", (m) => new GridError(m.replace(path, file)));
  const r = GridSchema.safeParse(raw);
  if (!r.success) throw new GridError(`${file}: invalid ablation grid\n${r.error.issues.map((i) => `  ${describeIssue(i, raw)}`).join("\n")}`);
  const g = r.data;
  const dir = dirname(path);
  const problems: string[] = [];

  const base = g.base === undefined ? DEFAULT_CONFIG : resolve(dir, g.base);
  if (!existsSync(base)) problems.push(`base: ${g.base}: no such file (resolved to ${base})`);
  for (const t of g.eval.tasks ?? [])
    if (!TASK_NAMES.includes(t)) problems.push(`eval.tasks: unknown task ${JSON.stringify(t)}; known: ${TASK_NAMES.join(", ")}`);

  const seen = new Map<string, number>();
  const variants: Variant[] = g.variants.map((v, i) => {
    const where = `variants.${i} (${v.name})`;
    const first = seen.get(v.name);
    if (first !== undefined) problems.push(`${where}.name: duplicate of variants.${first}; each row needs its own name`);
    seen.set(v.name, i);
    return toVariant(v, where, dir, base, problems);
  });
  const output = g.output === undefined ? join(projectRoot, "docs", "results.md") : resolve(dir, g.output);
  // the table and its ledger are rewritten whole: never over the grid, a config it trains, or a folder
  if (g.output !== undefined) {
    if (extname(output).toLowerCase() !== ".md") problems.push(`output: ${g.output}: the results table is markdown; give a file ending in .md`);
    else if (existsSync(output) && statSync(output).isDirectory())
      problems.push(`output: ${g.output}: a folder (resolved to ${output}); give a file ending in .md`);
  }
  if (problems.length > 0) throw new GridError(`${file}: invalid ablation grid\n${problems.map((p) => `  ${p}`).join("\n")}`);

  return {
    file: path,
    name: g.name,
    title: g.title ?? `Ablation: ${g.name}`,
    findings: g.findings,
    base,
    seeds: g.seeds,
    tasks: g.eval.tasks,
    output,
    variants,
  };
}

function toVariant(v: RawVariant, where: string, dir: string, base: string, problems: string[]): Variant {
  if (v.baseline !== undefined) {
    if (v.config !== undefined || v.set.length > 0) problems.push(`${where}: a baseline row trains nothing; drop its config and set`);
    return { kind: "baseline", name: v.name, about: v.about, baseline: v.baseline };
  }
  const config = v.config === undefined ? base : resolve(dir, v.config);
  if (v.config !== undefined && !existsSync(config)) problems.push(`${where}.config: ${v.config}: no such file (resolved to ${config})`);
  v.set.forEach((s, j) => {
    const eq = s.indexOf("=");
    if (eq <= 0) problems.push(`${where}.set.${j}: ${JSON.stringify(s)}: expected key=value, e.g. stages.siamese.epochs=2`);
    // the seed of each run comes from the grid's seeds (or --seeds): a row that fixed it would repeat one run
    else if (s.slice(0, eq).trim() === "seed") problems.push(`${where}.set.${j}: ${JSON.stringify(s)}: the seed comes from the grid's seeds; drop it`);
  });
  return { kind: "trained", name: v.name, about: v.about, config, set: v.set };
}

/** --seeds "1,2": distinct non-negative integers. */
export function parseSeeds(list: string): number[] {
  const parts = list.split(",").map((s) => s.trim());
  const seeds = parts.map((s) => (/^\d+$/.test(s) ? Number(s) : Number.NaN));
  const bad = parts.filter((_, i) => !Number.isSafeInteger(seeds[i]) || seeds[i] > 2 ** 31 - 1);
  if (parts.length === 0 || bad.length > 0)
    throw new GridError(
      `--seeds ${JSON.stringify(list)}: expected comma-separated non-negative integers, e.g. --seeds 1,2 (bad: ${bad.map((b) => JSON.stringify(b)).join(", ")})`,
    );
  if (new Set(seeds).size !== seeds.length) throw new GridError(`--seeds ${JSON.stringify(list)}: a seed is repeated`);
  return seeds;
}
