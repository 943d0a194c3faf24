/**
 * Loading a config: YAML or JSON file -> `--set key=value` overrides -> schema validation.
 * An error names the file, each bad field's path, the value found and what is allowed.
 *
 * `--set` paths are dotted; a list is indexed by position or, for stages, by name
 * (`stages.1.epochs=3` or `stages.siamese.epochs=3`); values are parsed as YAML scalars/flow
 * collections (`3`, `1e-3`, `true`, `null`, `[0.9, 0.8]`, `text`).
 *
 * `extends: OTHER.yaml` (relative to the file) starts from another config: mappings merge key by key, a list
 * given as a list replaces the base's, and a mapping given for a list edits its items by position or by name,
 * as --set does (`stages: { sentence: { steps: 3896 } }`). Chains are followed; a loop is an error.
 */
import { readFileSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { valueAt } from "../core/jsonShape.js";
import { projectRoot } from "../paths.js";
import { type Config, ConfigSchema, rawStageObjectives, unusedLegacyKeys } from "./schema.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export const DEFAULT_CONFIG = join(projectRoot, "configs", "default.yaml");

export interface LoadConfigOptions {
  /** Config file; default configs/default.yaml. */
  file?: string;
  /** `key=value` overrides, applied in order. */
  set?: readonly string[];
  /** How errors name the config (default: the file, with the --set overrides applied); a caller that names the
   * overrides itself in its own words (a grid's `set:`) gives the file alone. */
  source?: string;
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const file = opts.file ?? DEFAULT_CONFIG;
  const bases: string[] = [];
  let raw = readExtended(file, [], bases);
  for (const s of opts.set ?? []) raw = applySet(raw, s);
  // a bad value may be a base config's or --set's, not the file's: the message names the files and sets it came from
  const named = bases.length ? `${file} (extends ${bases.join(", which extends ")})` : file;
  const source = opts.source ?? (opts.set?.length ? `${named} with --set ${opts.set.join(" --set ")}` : named);
  refuseUnusedOptions(raw, source);
  return validateConfig(raw, source);
}

/** A stage option (`margin: 5`) that none of the stage's objectives take would be dropped without a word (see unusedLegacyKeys). */
function refuseUnusedOptions(raw: unknown, source: string): void {
  const stages = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>).stages : undefined;
  if (!Array.isArray(stages)) return;
  const lines = stages.flatMap((stage, i) => {
    const objectives = rawStageObjectives(stage); // never empty where a key is unused (unusedLegacyKeys)
    const take = `${objectives.join(", ")} take${objectives.length === 1 ? "s" : ""}`;
    return unusedLegacyKeys(stage).map((k) => `  stages.${i}.${k}: ${take} no option ${JSON.stringify(k)}`);
  });
  if (lines.length > 0) throw new ConfigError(`${source}: invalid config\n${lines.join("\n")}`);
}

/** A config file with its `extends:` chain resolved (the base first, this file's fields on top); `bases` gets the
 * chain's files after this one, in order. */
function readExtended(file: string, chain: string[], bases: string[]): unknown {
  const abs = resolve(file);
  if (chain.includes(abs)) throw new ConfigError(`${file}: extends loops back to itself (${[...chain, abs].join(" -> ")})`);
  const raw = readStructuredFile(file, "config", (m) => new ConfigError(m));
  if (raw === null || typeof raw !== "object" || Array.isArray(raw) || !Object.hasOwn(raw, "extends")) return raw;
  const { extends: base, ...own } = raw as Record<string, unknown>;
  if (typeof base !== "string" || base.trim() === "")
    throw new ConfigError(`${file}: extends: expected the path of another config file, got ${JSON.stringify(base)}`);
  const basePath = resolve(dirname(abs), base);
  bases.push(basePath);
  let baseRaw: unknown;
  try {
    baseRaw = readExtended(basePath, [...chain, abs], bases);
  } catch (e) {
    // a base that cannot be read is named with the file that points to it
    if (e instanceof ConfigError && e.message.startsWith(`${basePath}: cannot read`)) throw new ConfigError(`${file}: extends ${base}: ${e.message}`);
    throw e;
  }
  // an empty base (comments only) reads as null: no fields to start from, not an error
  if (baseRaw !== null && (typeof baseRaw !== "object" || Array.isArray(baseRaw)))
    throw new ConfigError(
      `${file}: extends ${base}: ${basePath} is not a config (its top level is ${Array.isArray(baseRaw) ? "a list" : JSON.stringify(baseRaw)}, not fields)`,
    );
  try {
    return mergeConfig(baseRaw ?? {}, own, "");
  } catch (e) {
    // the merge speaks of field paths: say which file wrote them and which it extends
    if (e instanceof ConfigError) throw new ConfigError(`${file} (extends ${base}): ${e.message}`);
    throw e;
  }
}

/** `over` merged onto `base` (see the top of this file); `where` is the field path, for messages. */
function mergeConfig(base: unknown, over: unknown, where: string): unknown {
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (Array.isArray(base) && isMap(over)) {
    const out = [...base];
    const editedBy = new Map<number, string>(); // item -> the key that edited it: two keys for one item is ambiguous
    for (const [key, value] of Object.entries(over)) {
      if (FORBIDDEN_KEYS.has(key)) throw new ConfigError(`${where}.${key}: not a config field`);
      const byName = out.findIndex((e) => isMap(e) && (e.name ?? e.objective) === key);
      const k = /^\d+$/.test(key) ? Number(key) : byName;
      if (k < 0 || k >= out.length)
        throw new ConfigError(`${where}.${key}: the base config has no list item ${/^\d+$/.test(key) ? "at that position" : "of that name"}`);
      const other = editedBy.get(k);
      if (other !== undefined) throw new ConfigError(`${where}.${key} and ${where}.${other} edit the same list item (${k}); give its edits under one key`);
      editedBy.set(k, key);
      out[k] = mergeConfig(out[k], value, `${where}.${key}`);
    }
    return out;
  }
  if (!isMap(base) || !isMap(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (FORBIDDEN_KEYS.has(key)) throw new ConfigError(`${where ? `${where}.` : ""}${key}: not a config field`);
    out[key] = Object.hasOwn(base, key) ? mergeConfig(base[key], value, where ? `${where}.${key}` : key) : value;
  }
  return out;
}

/** A YAML (or, by its extension, JSON) file's parsed content; an unreadable or unparsable file is `fail(message)`,
 * the message naming the file, what it should be (`what`) and why. */
export function readStructuredFile(file: string, what: string, fail: (message: string) => Error): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw fail(`${file}: cannot read the ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const json = extname(file).toLowerCase() === ".json";
  try {
    return json ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw fail(`${file}: not valid ${json ? "JSON" : "YAML"}: ${(err as Error).message}`);
  }
}

/** Validates a parsed config (defaults filled in); `source` names it in errors. */
export function validateConfig(raw: unknown, source = "config"): Config {
  const infinite = nonFiniteNumbers(raw);
  if (infinite.length > 0) {
    // checked before the schema: a YAML .inf or 1e400 would pass z.number() and fail deep in the backend, or be saved as null
    throw new ConfigError(`${source}: invalid config\n${infinite.map(({ path, value }) => `  ${path}: got ${value}; every number must be finite`).join("\n")}`);
  }
  const r = ConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((issue) => `  ${describeIssue(issue, raw)}`);
  throw new ConfigError(`${source}: invalid config\n${lines.join("\n")}`);
}

function describeIssue(issue: z.ZodIssue, raw: unknown): string {
  const path = issue.path.length ? issue.path.join(".") : "(top level)";
  const value = valueAt(raw, issue.path);
  const got = value === undefined ? "missing" : `got ${JSON.stringify(value)}`;
  switch (issue.code) {
    case z.ZodIssueCode.unrecognized_keys: {
      const allowed = keysAt(issue.path);
      return `${path}: unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}${allowed ? `; allowed: ${allowed.join(", ")}` : ""}`;
    }
    case z.ZodIssueCode.invalid_enum_value:
      return `${path}: ${got}; allowed: ${issue.options.map((o) => JSON.stringify(o)).join(", ")}`;
    case z.ZodIssueCode.invalid_type:
      return `${path}: ${got}; expected ${issue.expected}`;
    case z.ZodIssueCode.custom:
      // a cross-field check says what it found itself; a value it names may sit at a path the file does not have
      return value === undefined ? `${path}: ${issue.message}` : `${path}: ${got}; ${issue.message}`;
    default:
      return `${path}: ${got}; ${issue.message.replace(/^Number must be/, "must be").replace(/^Array must contain/, "must contain")}`;
  }
}

/** The fields the schema allows at `path` (for "unknown field" messages). */
function keysAt(path: readonly (string | number)[]): string[] | null {
  let s: z.ZodTypeAny = ConfigSchema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodOptional || t instanceof z.ZodNullable) t = t.unwrap();
      else if (t instanceof z.ZodEffects) t = t.innerType();
      else return t;
    }
  };
  for (const k of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodTypeAny>)[k as string];
    else if (s instanceof z.ZodArray) s = s.element;
    else return null;
    if (s === undefined) return null;
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : null;
}

/** Applies one `a.b.c=value` override to a parsed config (returns the updated object). */
/** Every number in a parsed config that is not finite (Infinity, -Infinity, NaN), with its field path. */
export function nonFiniteNumbers(raw: unknown, path: (string | number)[] = []): { path: string; value: string }[] {
  if (typeof raw === "number") return Number.isFinite(raw) ? [] : [{ path: path.length > 0 ? path.join(".") : "(top level)", value: String(raw) }];
  if (raw === null || typeof raw !== "object") return [];
  return Object.entries(raw).flatMap(([k, v]) => nonFiniteNumbers(v, [...path, Array.isArray(raw) ? Number(k) : k]));
}

/** Key segments that would reach Object.prototype instead of the config. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

export function applySet(raw: unknown, assignment: string): unknown {
  const eq = assignment.indexOf("=");
  if (eq <= 0) throw new ConfigError(`--set ${JSON.stringify(assignment)}: expected key=value, e.g. --set stages.0.epochs=2`);
  const keys = assignment.slice(0, eq).trim().split(".");
  const text = assignment.slice(eq + 1);
  // YAML reads nothing as null, which unsets a nullable field (a cap, say): an unset shell variable must not do that
  if (text.trim() === "")
    throw new ConfigError(`--set ${assignment.slice(0, eq)}=: no value after "="; to unset a field, say so with ${assignment.slice(0, eq)}=null`);
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    // a bare word stays a string; a list or map that does not parse is a mistake, not a string
    if (/^\s*[[{]/.test(text))
      throw new ConfigError(
        `--set ${assignment.slice(0, eq)}=...: the value is not valid YAML (${(err as Error).message.split("\n")[0]}); quote a string that starts with [ or {`,
      );
    value = text;
  }
  if (Array.isArray(raw)) throw new ConfigError(`--set ${assignment}: the config's top level is a list, not fields`);
  const root: Record<string, unknown> = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>) : {};
  let cur: Record<string | number, unknown> = root;
  keys.forEach((key, depth) => {
    if (key === "") throw new ConfigError(`--set ${JSON.stringify(assignment)}: empty key segment`);
    if (FORBIDDEN_KEYS.has(key))
      throw new ConfigError(`--set ${JSON.stringify(assignment)}: ${JSON.stringify(key)} is not a config field (refused: it would change every object)`);
    const where = keys.slice(0, depth + 1).join(".");
    let k: string | number = key;
    if (Array.isArray(cur)) {
      const byName = cur.findIndex(
        (e) => e !== null && typeof e === "object" && ((e as Record<string, unknown>).name ?? (e as Record<string, unknown>).objective) === key,
      );
      if (/^\d+$/.test(key)) k = Number(key);
      else if (byName >= 0) k = byName;
      else throw new ConfigError(`--set ${assignment}: ${where}: no list item named ${JSON.stringify(key)} (index by position or by stage name)`);
      if (k > cur.length) throw new ConfigError(`--set ${assignment}: ${where}: index ${k} is past the end of the list (length ${cur.length})`);
    }
    if (depth === keys.length - 1) {
      cur[k] = value;
      return;
    }
    const next = cur[k];
    if (next === undefined || next === null) cur[k] = {};
    else if (typeof next !== "object") throw new ConfigError(`--set ${assignment}: ${where} is ${JSON.stringify(next)}, not an object`);
    cur = cur[k] as Record<string | number, unknown>;
  });
  return root;
}
