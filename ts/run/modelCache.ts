/**
 * The pretrained-model cache: language models a recipe starts from by name (`init: { from: pretrained:wiki-fwd }`),
 * built once per machine and reused by every later run, as fastai keeps its downloads in ~/.fastai. It lives in
 * $BRIDGE_CACHE_DIR/models, else ~/.cache/bridge/models ($XDG_CACHE_HOME honoured). Each entry is a bridge run
 * folder named NAME-KEY, KEY a digest of the pretraining config (as validated) and of every input it reads, so a
 * changed config or changed data builds a new entry beside the old one; `entry.json` records what was built.
 *
 * The build itself is `bridge train` of the pretraining config (ts/commands/train.ts does it when a run starts
 * from a name not yet built); an unfinished build resumes from its checkpoints; an entry that cannot be read is
 * named and moved aside, then built again. fastai's converted WT103 models are kept here too (fastai-wt103-*).
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { ConfigError } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { shapeProblems } from "../core/jsonShape.js";
import { parseSplitRef, registerConfigDatasets, splitExists } from "../data/datasets.js";
import { inputFingerprint } from "../data/prepare.js";
import { projectRoot } from "../paths.js";
import { IMPORT_FILE, importProblem } from "./importManifest.js";
import { readManifest, runPaths } from "./manifest.js";

/** The names a recipe may use after `pretrained:`: each a pretraining config of the project, with its cost here. */
export const PRETRAINED: Record<string, { config: string; about: string; buildTime: string }> = {
  "wiki-fwd": {
    config: "configs/pretrain.yaml",
    about: "forward AWD-LSTM LM on English Wikipedia + general text",
    buildTime: "1-2 h on 2 CPU cores (docs/pretraining.md)",
  },
  "wiki-bwd": { config: "configs/pretrain-bwd.yaml", about: "its backward twin", buildTime: "1-2 h on 2 CPU cores (docs/pretraining.md)" },
  "wiki-fwd-sha": {
    config: "configs/pretrain-sha.yaml",
    about: "its SHA-RNN twin (model.arch sha_rnn; for SHA-RNN recipes)",
    buildTime: "not timed yet; about wiki-fwd's multiply-adds per token",
  },
};

export const PRETRAINED_PREFIX = "pretrained:";
export const ENTRY_FILE = "entry.json";

export interface CacheEntryRecord {
  format: "bridge-model-cache";
  version: 1;
  name: string;
  /** The pretraining config file it was built from. */
  config: string;
  key: string;
  built: string;
  seconds: number;
  vocab: number;
  /** The last stage's validation perplexity, where it has one. */
  perplexity: number | null;
}

/** The cache's folder: $BRIDGE_CACHE_DIR/models, else ~/.cache/bridge/models. */
export function modelCacheDir(): string {
  const root = process.env.BRIDGE_CACHE_DIR;
  if (root !== undefined && root.trim() !== "") return join(isAbsolute(root) ? root : resolve(root), "models");
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), ".cache"), "bridge", "models");
}

/** `pretrained:NAME` when `configFile` is the pretraining config of the project's NAME, else null. */
export function pretrainedNameOf(configFile: string): string | null {
  const file = resolve(configFile);
  const name = Object.keys(PRETRAINED).find((n) => join(projectRoot, PRETRAINED[n].config) === file);
  return name === undefined ? null : PRETRAINED_PREFIX + name;
}

/** `pretrained:wiki-fwd` -> the pretraining config; `pretrained:path/to/config.yaml` names a config of the user's. */
export function pretrainedConfig(from: string): { name: string; config: string } {
  const name = from.slice(PRETRAINED_PREFIX.length);
  if (Object.hasOwn(PRETRAINED, name)) return { name, config: join(projectRoot, PRETRAINED[name].config) };
  if (/\.(ya?ml|json)$/i.test(name)) return { name: name.replace(/^.*\//, "").replace(/\.(ya?ml|json)$/i, ""), config: resolve(name) };
  throw new ConfigError(
    `init.from ${from}: unknown pretrained model; known: ${Object.keys(PRETRAINED)
      .map((n) => PRETRAINED_PREFIX + n)
      .join(", ")} (or pretrained:PATH.yaml, a pretraining config)`,
  );
}

/**
 * The cache key of a pretraining config: its validated fields (but threads and device) and a fingerprint of every
 * split it would read (absent ones as absent: fetching one later changes what a build reads, so the key).
 */
export async function cacheKey(cfg: Config, dataDir: string | undefined): Promise<string> {
  registerConfigDatasets(cfg.data.datasets);
  const d = cfg.data;
  const ids = [`${d.pairs}:${d.trainSplit}`, `${d.pairs}:${d.validSplit}`, ...d.lmText, ...cfg.stages.flatMap((s) => (s.tasks ?? []).map((t) => t.dataset))];
  const inputs: Record<string, string> = {};
  for (const id of ids) {
    const ref = parseSplitRef(id, dataDir);
    inputs[ref.id] = splitExists(ref) ? await inputFingerprint(ref) : "absent";
  }
  // what is trained, not where or on how many threads: those change no more than float rounding
  const { threads: _threads, device: _device, ...trained } = cfg;
  return createHash("sha256")
    .update(JSON.stringify({ config: trained, inputs }))
    .digest("hex")
    .slice(0, 16);
}

const EntryShape = z.object({
  format: z.literal("bridge-model-cache"),
  version: z.literal(1),
  name: z.string(),
  config: z.string(),
  key: z.string(),
  built: z.string(),
  seconds: z.number(),
  vocab: z.number().int(),
  perplexity: z.number().nullable(),
});

/** An entry's record, or why it cannot be read (missing, not JSON, a field of the wrong kind). */
function readEntryRecord(dir: string): { record: CacheEntryRecord } | { problem: string } {
  const file = join(dir, ENTRY_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    return {
      problem: `${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "missing (the build did not finish)" : `unreadable (${(e as Error).message})`}`,
    };
  }
  const r = EntryShape.safeParse(raw);
  return r.success ? { record: r.data } : { problem: `${file}: not a cache entry record (${shapeProblems(r.error.issues, raw, 2).join("; ")})` };
}

/** Why an entry cannot be used, or null when it is complete and readable (`read`: its record, when already read). */
export function entryProblem(dir: string, read = readEntryRecord(dir)): string | null {
  if ("problem" in read) return read.problem;
  try {
    const name = dir.replace(/^.*\//, "");
    if (!existsSync(join(dir, "run.json"))) return `${join(dir, "run.json")}: missing (the build did not finish, or the entry was damaged)`;
    const manifest = readManifest(runPaths(name, join(dir, "..")));
    if (manifest.finalCheckpoint === null) return `${dir}: no final checkpoint`;
    const ckpt = join(dir, manifest.finalCheckpoint);
    if (!existsSync(ckpt)) return `${ckpt}: missing`;
    if (statSync(ckpt).size < 1024) return `${ckpt}: truncated (${statSync(ckpt).size} bytes)`;
    // the first 4 bytes only: a checkpoint is hundreds of MB, and `bridge models` asks of every entry
    const head = Buffer.alloc(4);
    const fd = openSync(ckpt, "r");
    try {
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    if (!head.equals(Buffer.from("PK\x03\x04", "latin1"))) return `${ckpt}: not a checkpoint (torch's zip archive)`;
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/** Moves a broken entry aside (kept for inspection, never loaded) and says where. */
export function setAside(dir: string): string {
  const to = `${dir}.broken-${new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15)}`;
  renameSync(dir, to);
  return to;
}

/** One line of `bridge models`: a cache entry as found. */
export interface CacheListing {
  entry: string;
  name: string;
  config: string | null;
  sizeMb: number;
  vocab: number | null;
  perplexity: number | null;
  built: string | null;
  /** null: usable; else why not. */
  problem: string | null;
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? folderBytes(p) : e.isFile() ? statSync(p).size : 0;
  }
  return total;
}

/** Every entry of the cache, sorted by name. */
export function listCache(dir = modelCacheDir()): CacheListing[] {
  const where = process.env.BRIDGE_CACHE_DIR?.trim() ? " (BRIDGE_CACHE_DIR/models)" : "";
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`the model cache ${dir}${where} is a file, not a folder: move it away`);
  if (!existsSync(dir)) {
    const parent = dirname(dir);
    if (existsSync(parent) && !statSync(parent).isDirectory())
      throw new Error(`the model cache's folder ${parent}${where ? " (BRIDGE_CACHE_DIR)" : ""} is a file, not a folder`);
    return [];
  }
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()
    .map((entry) => {
      const path = join(dir, entry);
      const read = readEntryRecord(path);
      const record: Partial<CacheEntryRecord> = "record" in read ? read.record : {}; // else entryProblem names it
      const fastai = entry.startsWith("fastai-") && existsSync(join(path, IMPORT_FILE));
      return {
        entry,
        name: record.name ?? entry,
        config: record.config ?? (fastai ? "fastai import" : null),
        sizeMb: Math.round(folderBytes(path) / 1e5) / 10,
        vocab: record.vocab ?? null,
        perplexity: record.perplexity ?? null,
        built: record.built ?? null,
        problem: fastai ? importProblem(path) : entry.includes(".broken-") ? "set aside (was unreadable)" : entryProblem(path, read),
      };
    });
}
