/**
 * What a run trained on, read from its folder: run.json's data plan (the pair split of the sentence
 * stages and its held-out rows) and config.json (the extra language-model text). An evaluation
 * entry on a dataset the run trained on is marked `supervised`: an STS figure from a run that saw
 * STS-B train is not the same claim as one from a run that never did.
 */
import { existsSync, readFileSync } from "node:fs";
import { OBJECTIVE_SPECS } from "../config/objectives.js";
import { parseSplitRef } from "../data/datasets.js";
import type { RunManifest, RunPaths, StageRecord } from "../run/manifest.js";
import type { TrainedSplit } from "./types.js";

/** The parts of config.json read here (older runs may lack any of them). */
interface ConfigData {
  pairs?: unknown;
  trainSplit?: unknown;
  lmText?: unknown;
}

/** The split id with aliases resolved ("sick:dev" -> "sick:trial"); unknown datasets (config-defined) as written. */
function canonicalSplit(id: string): string {
  try {
    return parseSplitRef(id).id;
  } catch {
    return id;
  }
}

/** The dataset part of a split id: "snli:dev" -> "snli". */
export function datasetOf(split: string): string {
  return split.split(":")[0];
}

/**
 * The splits the run trained on, from its manifest and resolved config (config.json's `data`):
 * the pair stages' pair split (with its held-out rows), and the text of the stages that read the
 * training text (an LM stage, or SimCSE's single sentences): the pair split's sentences plus
 * `data.lmText`. Runs without a data plan in run.json (older ones) fall back to config.json's
 * `data.pairs` + `data.trainSplit`.
 */
export function trainedOn(manifest: RunManifest, config: unknown): TrainedSplit[] {
  const data: ConfigData = isObject(config) && isObject(config.data) ? (config.data as ConfigData) : {};
  const hasText = manifest.stages.some(readsText);
  const hasSentenceStage = manifest.stages.some((s) => !readsText(s));
  let pairSplit: string | null = null;
  let rows: number | undefined;
  let heldOut: number | undefined;
  if (manifest.data) {
    pairSplit = canonicalSplit(manifest.data.train.split);
    rows = manifest.data.train.rows;
    if (manifest.data.holdout && canonicalSplit(manifest.data.holdout.split) === pairSplit) heldOut = manifest.data.holdout.validRows.length;
  } else if (typeof data.pairs === "string") {
    pairSplit = canonicalSplit(`${data.pairs}:${typeof data.trainSplit === "string" ? data.trainSplit : "train"}`);
  }
  const out: TrainedSplit[] = [];
  if (pairSplit !== null && hasSentenceStage)
    out.push({ split: pairSplit, use: "pairs", ...(rows !== undefined ? { rows } : {}), ...(heldOut !== undefined ? { heldOut } : {}) });
  for (const t of manifest.data?.tasks ?? []) out.push({ split: canonicalSplit(t.split), use: t.unit ?? "pairs", rows: t.rows, heldOut: t.heldOut });
  if (hasText) {
    if (pairSplit !== null) out.push({ split: pairSplit, use: "lm text", ...(heldOut !== undefined ? { heldOut } : {}) });
    const extra = Array.isArray(data.lmText) ? data.lmText.filter((t): t is string => typeof t === "string") : [];
    for (const t of extra) out.push({ split: canonicalSplit(t), use: "lm text" });
  }
  return out;
}

/** A stage that reads the training text (the LM stream, or single sentences for SimCSE) rather than pairs or groups. */
function readsText(stage: Pick<StageRecord, "objective">): boolean {
  if (stage.objective === "multitask") return false;
  const spec = OBJECTIVE_SPECS[stage.objective];
  // an objective this version does not know (a newer run's) counts as a pair stage, as before SimCSE did
  return spec !== undefined && (spec.data === "lm_stream" || spec.data === "sentences");
}

/** trainedOn() of a run folder (config.json is optional). */
export function readTrainedOn(paths: RunPaths, manifest: RunManifest): TrainedSplit[] {
  let config: unknown = null;
  if (existsSync(paths.config)) {
    try {
      config = JSON.parse(readFileSync(paths.config, "utf8")) as unknown;
    } catch (e) {
      throw new Error(`${paths.config}: not valid JSON (${(e as Error).message})`);
    }
  }
  return trainedOn(manifest, config);
}

/** Whether an entry on `split` is supervised: the run trained on some split of the same dataset. */
export function isSupervised(trained: readonly TrainedSplit[], split: string): boolean {
  const dataset = datasetOf(split);
  return trained.some((t) => datasetOf(t.split) === dataset);
}

/** One line for the report and the terminal: "snli:dev (pairs, 8858 rows, 984 held out); snli:dev, brown:train (lm text)". */
export function describeTrainedOn(trained: readonly TrainedSplit[]): string {
  if (trained.length === 0) return "nothing the run records";
  return trained
    .map((t) => {
      const unit = t.use === "groups" ? "groups" : "rows";
      return `${t.split} (${t.use}${t.rows !== undefined ? `, ${t.rows} ${unit}` : ""}${t.heldOut !== undefined ? `, ${t.heldOut} ${unit} held out` : ""})`;
    })
    .join("; ");
}

/**
 * The rows of a split that evaluation may use: when the run trained on part of this split (no
 * training split at hand), only the rows it held out (run.json's data.holdout.validRows).
 */
export function evalRows(manifest: RunManifest, trained: readonly TrainedSplit[], splitId: string, n: number): { rows: number[]; subset: string } {
  const holdout = manifest.data?.holdout;
  if (holdout && canonicalSplit(holdout.split) === splitId) {
    return {
      rows: holdout.validRows.filter((r) => r < n),
      subset: `the ${holdout.validRows.length} rows held out of ${splitId} by training (the rest trained the model)`,
    };
  }
  const trainedHere = trained.some((t) => t.split === splitId);
  const note = trainedHere ? ` (WARNING: the run trained on ${splitId} and records no held-out rows; these numbers are not held-out results)` : "";
  return { rows: Array.from({ length: n }, (_, i) => i), subset: `the whole split${note}` };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}
