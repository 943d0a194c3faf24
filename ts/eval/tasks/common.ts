/**
 * What every evaluation task is and gets: the EvalTask interface of the registry (tasks/index.ts),
 * the context a task runs in, and the helpers tasks share (reading a split or recording why it was
 * skipped, pair vectors). The backend returns vectors, predictions and losses; every number is
 * computed on this side (metrics.ts).
 */
import { missingSplitMessage, parseSplitRef, type SplitRef, splitExists } from "../../data/datasets.js";
import type { PairRecord } from "../../data/records.js";
import { rowCosines } from "../metrics.js";
import type { RunModel } from "../runModel.js";
import { isSupervised } from "../trainedOn.js";
import type { TrainedPairs } from "../trainedPairs.js";
import type { EntryBase, MetricEntries, MetricRow, Metrics, ReportFigures, Skipped, TrainedSplit } from "../types.js";

/** One SNLI prediction, keyed by its row (split and line) so that other tasks join by identity. */
export interface RowPrediction {
  /** [3] class probabilities in NLI_LABELS order. */
  probs: Float32Array;
  pred: number;
}

export interface TaskContext {
  model: RunModel;
  run: string;
  dataDir?: string;
  /** Most items per split (tests; undefined = all). */
  limit?: number;
  /** Most tokens of LM text for perplexity (undefined = all). */
  lmMaxTokens?: number;
  skipped: Skipped[];
  log: (line: string) => void;
  /** The splits the run trained on (entries on their datasets are `supervised`). */
  trainedOn: TrainedSplit[];
  /** Where a task writes its files (vectors as Arrow): a staging folder whose files move into the run's eval/ folder
   * only once every task has finished, so that an interrupted eval leaves eval/ as it was. */
  outDir: string;
  /** The checkpoint evaluated; the model holds it when a task starts. */
  checkpoint: string;
  /** SNLI predictions by rowKey(split, line), left by the snli task for the vectors file separation writes. */
  predictions: Map<string, RowPrediction>;
  /** The pairs the run trained on, by content (read once, on first use): for sets that share pairs with training splits. */
  trainedPairs: () => Promise<TrainedPairs>;
}

/** An earlier stage whose vectors are compared with the final ones (the before / after of fine-tuning). */
export interface EarlierStage {
  /** "INDEX-NAME", e.g. "0-lm" (metric keys and file names). */
  name: string;
  /** For people: "after stage 1 of 2, lm" (report panels). */
  label: string;
  checkpoint: string;
}

export interface TaskOutput {
  /** metrics.json entries by contract key (none: everything was skipped, and `ctx.skipped` says why). */
  entries: Partial<MetricEntries>;
  figures?: Partial<ReportFigures>;
  /** Files written besides metrics.json and the report (vectors as Arrow). */
  files?: string[];
  /**
   * The same items through an earlier stage's vectors (the model holds that stage's checkpoint):
   * adds to the entries' `stages` and the figures; returns a fragment for the log line.
   */
  atStage?: (stage: EarlierStage) => Promise<string>;
}

/** One evaluation task: a module under tasks/, listed in the registry (tasks/index.ts). */
export interface EvalTask {
  /** Its --tasks name. */
  name: string;
  /** One line for --help. */
  describe: string;
  /** The dataset splits it reads, in order of preference (the first present is used). */
  splits: readonly string[];
  /** Where it looks for its data under the data dir, and whether each is there (eval refuses to evaluate nothing). */
  lookFor(dataDir: string | undefined): { what: string; present: boolean }[];
  run(ctx: TaskContext): Promise<TaskOutput>;
  /** Its entries in metrics.json flattened to rows (the summary, the report's table, --compare). */
  rows(m: Metrics): MetricRow[];
}

/** lookFor() of a task that reads dataset splits by id. */
export function lookForSplits(ids: readonly string[], dataDir: string | undefined): { what: string; present: boolean }[] {
  return ids.map((id) => {
    const ref = parseSplitRef(id, dataDir);
    return { what: `${ref.id} (${ref.path ?? ref.dataset.npmPackage})`, present: splitExists(ref) };
  });
}

/** The key of a row for joins across tasks. */
export function rowKey(split: string, line: number): string {
  return `${split}#${line}`;
}

/** The fields every entry carries: split, items, supervised. */
export function entryBase(ctx: TaskContext, split: string, items: number): EntryBase {
  return { split, items, supervised: isSupervised(ctx.trainedOn, split) };
}

/** A row builder for a task's rows(): `add(key, entry, value, baseline?, higherIsBetter?, supervisedShare?)`. */
export function rowAdder(rows: MetricRow[]) {
  return (
    key: string,
    entry: EntryBase,
    value: number | null | undefined,
    baseline: number | null = null,
    higherIsBetter = true,
    supervisedShare?: number,
  ): void => {
    const [task, metric] = key.split(".", 2);
    rows.push({
      key,
      task,
      metric,
      split: entry.split,
      items: entry.items,
      value: value ?? null,
      baseline,
      higherIsBetter,
      supervised: entry.supervised === true,
      ...(supervisedShare !== undefined ? { supervisedShare } : {}),
    });
  };
}

/** Records a skipped split (with the reason) in the context and the log. */
export function skip(ctx: TaskContext, task: string, split: string, reason: string): void {
  ctx.skipped.push({ task, split, reason });
  ctx.log(`skipped ${task} on ${split}: ${reason}`);
}

/** The first split of the list that is present; the missing ones before it are listed as skipped. */
export function firstPresent(ctx: TaskContext, task: string, ids: readonly string[]): string | null {
  for (const id of ids) {
    const ref = parseSplitRef(id, ctx.dataDir);
    if (splitExists(ref)) return ref.id;
    skip(ctx, task, ref.id, missingSplitMessage(ref));
  }
  return null;
}

/** Reads a pair split, or records why it was skipped and returns null. */
export async function readPairs(ctx: TaskContext, task: string, id: string): Promise<{ ref: SplitRef; records: PairRecord[] } | null> {
  const ref = parseSplitRef(id, ctx.dataDir);
  if (!splitExists(ref)) {
    skip(ctx, task, ref.id, missingSplitMessage(ref));
    return null;
  }
  if (ref.dataset.kind !== "pairs") throw new Error(`${ref.id} is not a pair dataset`);
  const records: PairRecord[] = [];
  for await (const r of ref.dataset.read(ref.path!, {})) records.push(r);
  return { ref, records };
}

export interface PairVectors {
  /** [n, dim] premise / first-sentence vectors and hypothesis / second-sentence vectors. */
  u: Float32Array;
  v: Float32Array;
  dim: number;
  cosines: Float64Array;
}

/** Vectors of both sides of each pair; every distinct sentence is encoded once. */
export async function pairVectors(model: RunModel, records: readonly PairRecord[]): Promise<PairVectors> {
  const index = new Map<string, number>();
  const unique: string[] = [];
  const at = (s: string) => {
    let i = index.get(s);
    if (i === undefined) {
      i = unique.length;
      index.set(s, i);
      unique.push(s);
    }
    return i;
  };
  const a = records.map((r) => at(r.s1));
  const b = records.map((r) => at(r.s2));
  const { vectors, dim } = await model.encode(model.numericalise(unique));
  const gather = (ids: number[]) => {
    const out = new Float32Array(ids.length * dim);
    ids.forEach((id, k) => out.set(vectors.subarray(id * dim, (id + 1) * dim), k * dim));
    return out;
  };
  const u = gather(a);
  const v = gather(b);
  return { u, v, dim, cosines: rowCosines(u, v, dim) };
}

/** A stage as the report names it: "after stage 2 of 2, siamese". */
export function stageLabel(stage: { index: number; name: string }, stageCount: number): string {
  return `after stage ${stage.index + 1} of ${stageCount}, ${stage.name}`;
}

/** The label of a checkpoint in the report: its stage's stageLabel, else the file name. */
export function checkpointLabel(model: RunModel, checkpoint: string): string {
  const stages = model.manifest.stages;
  const s = stages.find((st) => st.checkpoint === checkpoint);
  return s ? stageLabel(s, stages.length) : checkpoint;
}
