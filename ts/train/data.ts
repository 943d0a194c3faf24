/**
 * A run's data, from the config: which pairs train and which validate, the vocabulary (training
 * text only), the numericalised pairs and the language-model streams' text.
 *
 * No leakage: the vocabulary and the LM text come from the training pairs (and the extra LM text's
 * training splits) only; validation sentences also seen in training are dropped from LM validation.
 * Without the pair dataset's training split (e.g. only SNLI dev at hand) a fixed, seeded share of the
 * validation split is held out for validation and the rest trains. It is held out by premise: every
 * row of a held-out premise (SNLI has ~3 a premise) is held out, so no held-out premise trains. The
 * held-out rows are recorded in the run so that evaluation can keep off the rows the model trained on.
 * Extra LM text may not be the validation split or a non-training split of the pair dataset, and its
 * texts that are also validation sentences are dropped from LM training.
 */

import { ConfigError } from "../config/load.js";
import { type Objective, objectiveTakes } from "../config/objectives.js";
import type { Config } from "../config/schema.js";
import { DATASETS, isConfigDataset, missingSplitMessage, parseSplitRef, registerConfigDatasets, type SplitRef, splitTexts } from "../data/datasets.js";
import { ensureSplit } from "../data/download.js";
import { type BadRowPolicy, DataError, emptyReadStats, noUsableRows } from "../data/errors.js";
import { EVALUATION_DATASETS, type EvaluationSentences, evaluationSentences } from "../data/evaluation.js";
import type { NumericalisedGroups } from "../data/groups.js";
import { HOLDOUT_SEED, pairHoldout, permutation, premiseHoldout } from "../data/holdout.js";
import { lmCorpus, lmHoldout } from "../data/lmStream.js";
import { concatRagged, LmTextCollector } from "../data/lmText.js";
import { type NumericalisedPairs, numericaliseTexts, type Ragged, rowLength } from "../data/numericalised.js";
import { prepareSplit, type SplitReport } from "../data/prepare.js";
import { mixSeed } from "../data/random.js";
import { SPECIAL_TOKENS, Tokenizer, type TokenizerSettings } from "../data/tokenize.js";
import { TokenCounter, Vocab } from "../data/vocab.js";

export interface PairSplitInfo {
  /** e.g. "snli:train", or "snli:dev" when the validation split trains too. */
  split: string;
  rows: number;
}

export interface DataPlan {
  train: PairSplitInfo;
  valid: PairSplitInfo;
  /** Set when validation rows were held out of the split that trains. */
  holdout: { split: string; fraction: number; seed: number; validRows: number[] } | null;
  /** The multi-task stages' other datasets: rows (pairs, or groups) trained on, rows held out of their training split to validate. */
  tasks: { split: string; rows: number; heldOut: number; unit?: "groups"; evalOverlap?: number }[];
  lmText: string[];
  /** The evaluation splits whose sentences were kept out of training (read only when a dataset needed it): which
   * rows train depends on them as on the files. */
  evaluationSplits?: string[];
  notes: string[];
}

/** What a run's manifest recorded of its data (RunManifest.data): the parts of a DataPlan that name rows. */
export type RecordedData = Pick<DataPlan, "train" | "valid" | "holdout" | "tasks" | "evaluationSplits">;

/**
 * On --resume: the data just loaded must be the data the run started with, or the resumed batches would be other
 * rows than the ones the saved position counts (another --data-dir, an edited file). The vocabulary check catches
 * most of it; this catches data of the same words: each split's rows, and the held-out rows. `recorded` is undefined
 * for runs older than the record (nothing to compare).
 */
export function assertDataMatches(recorded: Partial<RecordedData> | undefined, plan: DataPlan, manifestPath: string): void {
  if (recorded === undefined) return;
  const rows = (d: Partial<RecordedData>) => [
    ...(d.train ? [[`${d.train.split} (training)`, d.train.rows] as const] : []),
    ...(d.valid ? [[`${d.valid.split} (validation)`, d.valid.rows] as const] : []),
    ...(d.tasks ?? []).map((t) => [`${t.split} (task)`, t.rows] as const),
  ];
  const now = new Map(rows(plan));
  const changed = rows(recorded)
    .filter(([name, n]) => now.get(name) !== n)
    .map(([name, n]) => `${name}: ${n} rows then, ${now.has(name) ? `${now.get(name)} now` : "absent now"}`);
  // rows cleared of evaluation sentences change when an evaluation split is added to the data dir, not a training file
  const evalThen = recorded.evaluationSplits?.join(", ");
  const evalNow = plan.evaluationSplits?.join(", ");
  if (changed.length > 0 && evalThen !== undefined && evalThen !== evalNow)
    changed.push(`the evaluation splits whose sentences are kept out of training were ${evalThen}, now ${evalNow ?? "none read"}`);
  const heldThen = recorded.holdout?.validRows;
  if (changed.length === 0 && heldThen !== undefined && heldThen.join() !== (plan.holdout?.validRows ?? []).join())
    changed.push(`${recorded.holdout?.split}: other rows held out for validation than then`);
  if (changed.length > 0)
    throw new DataError(
      `the data differs from what this run trained on (${manifestPath}): ${changed.join("; ")}. ` +
        "Resume with the --data-dir and files it started with, or start a new run",
    );
}

/** A multi-task stage's pair dataset other than data.pairs: its training split less a held-out share that validates. */
export interface TaskPairs {
  /** The training split's id, e.g. "stsb:train". */
  split: string;
  train: NumericalisedPairs;
  valid: NumericalisedPairs;
}

/** A multi-task stage's groups dataset (e.g. multi30k): its groups less a seeded share held out, by whole group, to validate. */
export interface TaskGroups {
  split: string;
  train: NumericalisedGroups;
  valid: NumericalisedGroups;
}

export interface TrainingData {
  tokenizer: Tokenizer;
  vocab: Vocab;
  /** data.pairs's training and validation pairs; scores (where the dataset has them) scaled to 0..1 (scaleScores). */
  pairs: { train: NumericalisedPairs; valid: NumericalisedPairs };
  /** The pairs of every multi-task stage's task, by its `dataset` as the config writes it (data.pairs's included). */
  tasks: Map<string, TaskPairs>;
  /** The multi-task stages' groups datasets, by their `dataset` as the config writes it. */
  groups: Map<string, TaskGroups>;
  /** model.pool_weighting idf: each token id's inverse document frequency over the training sentences. */
  idf: Float32Array | null;
  /** LM text, one row per sentence / paragraph, each starting with xxbos. */
  lm: { train: Ragged; valid: Ragged };
  plan: DataPlan;
  /** The model reads right to left (model.backwards): LM streams run over each text reversed (ts/data/backwards.ts). */
  backwards?: boolean;
}

export interface LoadDataOptions {
  dataDir?: string;
  onBadRow?: BadRowPolicy;
  /**
   * A missing split's dataset is downloaded on first use: true into whichever data dir, false
   * never (offline), undefined only into the default user cache (no --data-dir / BRIDGE_DATA_DIR).
   */
  download?: boolean;
  cacheDir?: string;
  log?: (line: string) => void;
}

export function tokenizerSettings(cfg: Config): TokenizerSettings {
  return { caseMarkers: cfg.tokenizer.caseMarkers, addBos: true, addEos: cfg.tokenizer.addEos, maxLen: cfg.tokenizer.maxLen };
}

/** A pair split's usable rows, as read (bad rows skipped or fatal, by the policy); none is an error naming the file and why. */
interface PairRow {
  s1: string;
  s2: string;
  labelled: boolean;
}

type Ensure = (ref: SplitRef) => Promise<boolean>;

async function readPairRows(ref: SplitRef, onBadRow: BadRowPolicy): Promise<PairRow[]> {
  const out: PairRow[] = [];
  const stats = emptyReadStats();
  for await (const r of (ref.dataset as Extract<SplitRef["dataset"], { kind: "pairs" }>).read(ref.path!, { onBadRow, stats })) {
    out.push({ s1: r.s1, s2: r.s2, labelled: r.label !== undefined || (r.score !== undefined && Number.isFinite(r.score)) });
  }
  if (out.length === 0) throw noUsableRows(ref.path!, stats, "pairs");
  if (!out.some((r) => r.labelled))
    throw new DataError(`${ref.path}: none of its ${out.length} pairs has an NLI label or a similarity score; the sentence stages need one or the other`);
  return out;
}

const labelledRows = (recs: readonly PairRow[]) => Int32Array.from(recs.flatMap((r, i) => (r.labelled ? [i] : [])));

/** data.pairs's rows: which split trains and which validates, and which of their rows (holdout, subsamples). */
interface PairRows {
  trainSource: SplitRef;
  validSource: SplitRef;
  trainRecords: PairRow[];
  validRecords: PairRow[];
  trainRows: Int32Array;
  validRows: Int32Array;
  holdout: DataPlan["holdout"];
}

async function choosePairRows(cfg: Config, trainRef: SplitRef, validRef: SplitRef, ensure: Ensure, onBadRow: BadRowPolicy, notes: string[]): Promise<PairRows> {
  const d = cfg.data;
  let trainSource: SplitRef;
  let validSource: SplitRef;
  const heldOut = `a fixed, seeded ${Math.round(d.holdout * 100)}% of it held out for validation`;
  if (await ensure(trainRef)) {
    trainSource = trainRef;
    if (validRef.id === trainRef.id) {
      validSource = trainRef;
      notes.push(`training on ${trainRef.id} less ${heldOut}`);
    } else if (await ensure(validRef)) validSource = validRef;
    else throw new DataError(`${missingSplitMessage(validRef)}; the sentence stages need a validation split`);
  } else if (isConfigDataset(trainRef.dataset.name)) {
    // the user named this file: a typo, not a release half fetched, so never a quiet fallback to another split
    throw new DataError(`data.datasets: ${trainRef.dataset.name}'s ${trainRef.split} file ${trainRef.path} does not exist`);
  } else if (await ensure(validRef)) {
    trainSource = validSource = validRef;
    notes.push(
      `${trainRef.id} not found at ${trainRef.path}: training on ${validRef.id} less ${heldOut}` +
        (trainRef.dataset.download ? ` (the full release: \`npx bridge data fetch ${trainRef.dataset.name}\`)` : ""),
    );
  } else {
    throw new DataError(`${missingSplitMessage(trainRef)}; ${validRef.id} is not there either`);
  }
  const trainRecords = await readPairRows(trainSource, onBadRow);
  let trainRows: Int32Array | null = null; // null: every row
  let validRows: Int32Array | null = null;
  let holdout: DataPlan["holdout"] = null;
  if (trainSource === validSource) {
    ({ validRows, trainRows } = pairHoldout(trainRecords, trainSource.dataset.holdoutBy ?? "premise", d.holdout, HOLDOUT_SEED));
    holdout = { split: validRef.id, fraction: d.holdout, seed: HOLDOUT_SEED, validRows: Array.from(validRows) };
  }
  trainRows = (trainRows ?? labelledRows(trainRecords)).filter((i) => trainRecords[i].labelled);
  if (trainRows.length === 0)
    throw new DataError(`${trainSource.path}: no labelled pair is left to train on after holding out ${validRef.id}'s validation rows`);
  if (d.maxTrainPairs !== null && trainRows.length > d.maxTrainPairs) {
    const all = trainRows;
    trainRows = Int32Array.from(permutation(all.length, mixSeed(cfg.seed, 1)).slice(0, d.maxTrainPairs), (k) => all[k]).sort();
    notes.push(`training on a seeded subsample of ${trainRows.length} pairs (data.maxTrainPairs)`);
  }
  const validRecords = validSource === trainSource ? trainRecords : await readPairRows(validSource, onBadRow);
  validRows = (validRows ?? labelledRows(validRecords)).filter((i) => validRecords[i].labelled);
  if (d.maxValidPairs !== null && validRows.length > d.maxValidPairs) {
    const all = validRows;
    validRows = permutation(all.length, HOLDOUT_SEED + 1)
      .slice(0, d.maxValidPairs)
      .map((k) => all[k])
      .sort();
  }
  return { trainSource, validSource, trainRecords, validRecords, trainRows, validRows, holdout };
}

/** A multi-task stage's other pair dataset: its rows, less a premise-held-out share that validates. */
interface TaskSplit {
  ref: SplitRef;
  records: PairRow[];
  trainRows: Int32Array;
  validRows: Int32Array;
  /** Rows left out because a sentence of theirs is an evaluation sentence; absent for evaluation datasets. */
  evalOverlap?: number;
}

/** A multi-task stage's groups dataset: its groups, less a seeded share of whole groups that validates. */
interface GroupSplit {
  ref: SplitRef;
  groups: string[][];
  trainRows: Int32Array;
  validRows: Int32Array;
  /** Groups left out because a sentence of theirs is an evaluation sentence; absent for evaluation datasets. */
  evalOverlap?: number;
}

/** Rows kept clear of evaluation sentences, how many were left out, and the evaluation splits read (when any). */
interface Cleared {
  rows: Int32Array;
  left: number;
  splits?: string[];
}

/**
 * The rows of `rows` none of whose sentences is an evaluation sentence, and how many were left out. Only for
 * datasets evaluation does not read (cad, multinli, multi30k, the user's own): an evaluation dataset's own
 * training rows are kept apart from its evaluated ones by held-out rows instead.
 */
async function clearOfEvaluation(
  ref: SplitRef,
  rows: Int32Array,
  sentences: (row: number) => readonly string[],
  evaluation: () => Promise<EvaluationSentences>,
): Promise<Cleared> {
  if (EVALUATION_DATASETS.has(ref.dataset.name)) return { rows, left: 0 };
  const evaluated = await evaluation();
  const kept = rows.filter((i) => !sentences(i).some((x) => evaluated.has(x)));
  return { rows: kept, left: rows.length - kept.length, splits: evaluated.splits };
}

/** Training rows cleared of evaluation sentences (clearOfEvaluation): every one gone would only surface later, as a
 * stage with nothing to train on, blamed on something else. */
function assertTrainingLeft(ref: SplitRef, cleared: Cleared): Int32Array {
  if (cleared.rows.length === 0 && cleared.left > 0)
    throw new DataError(
      `${ref.id} (${ref.path}): all ${cleared.left} of its training rows hold a sentence of an evaluation split (${(cleared.splits ?? []).join(", ")}); ` +
        "none is left to train on (a run never trains on sentences it is evaluated on)",
    );
  return cleared.rows;
}

async function loadTaskSplits(
  cfg: Config,
  validRef: SplitRef,
  taskRefs: ReturnType<typeof taskDatasetRefs>,
  ensure: Ensure,
  onBadRow: BadRowPolicy,
  evaluation: () => Promise<EvaluationSentences>,
): Promise<{ pairs: TaskSplit[]; groups: GroupSplit[] }> {
  const d = cfg.data;
  const out: TaskSplit[] = [];
  const groups: GroupSplit[] = [];
  for (const { ref, where, objective } of taskRefs) {
    if (ref.id === validRef.id) {
      throw new ConfigError(
        `${where}: ${ref.id} is data.pairs's validation split; name the dataset as ${d.pairs} to train on the rows the run does not hold out`,
      );
    }
    checkTaskDataset(where, ref, objective);
    if (out.some((t) => t.ref.id === ref.id) || groups.some((g) => g.ref.id === ref.id)) continue;
    if (!(await ensure(ref))) throw new DataError(`${where}: ${missingSplitMessage(ref)}`);
    const share = subsampleShare(cfg, ref);
    const overlap = (left: number) => (EVALUATION_DATASETS.has(ref.dataset.name) ? {} : { evalOverlap: left });
    if (ref.dataset.kind === "groups") {
      const g = await readGroupSplit(ref, d.holdout, onBadRow);
      const train = await clearOfEvaluation(ref, g.trainRows, (i) => g.groups[i], evaluation);
      const valid = await clearOfEvaluation(ref, g.validRows, (i) => g.groups[i], evaluation);
      groups.push({ ...g, trainRows: subsample(assertTrainingLeft(ref, train), share), validRows: valid.rows, ...overlap(train.left + valid.left) });
      continue;
    }
    const recs = await readPairRows(ref, onBadRow);
    const h = pairHoldout(recs, ref.dataset.holdoutBy ?? "premise", d.holdout, HOLDOUT_SEED);
    const pairSentences = (i: number) => [recs[i].s1, recs[i].s2];
    const train = await clearOfEvaluation(ref, h.trainRows, pairSentences, evaluation);
    const valid = await clearOfEvaluation(ref, h.validRows, pairSentences, evaluation);
    out.push({
      ref,
      records: recs,
      trainRows: subsample(
        assertTrainingLeft(ref, train).filter((i) => recs[i].labelled),
        share,
      ),
      validRows: valid.rows.filter((i) => recs[i].labelled),
      ...overlap(train.left + valid.left),
    });
  }
  const loaded = new Set([...out, ...groups].map((t) => t.ref.id));
  for (const name of Object.keys(d.subsample ?? {})) {
    let id: string;
    try {
      id = parseSplitRef(name).id;
    } catch (e) {
      throw new ConfigError(`data.subsample.${name}: ${(e as Error).message}`);
    }
    if (!loaded.has(id)) throw new ConfigError(`data.subsample.${name}: no task trains on ${name} (data.pairs's own pairs are capped by data.maxTrainPairs)`);
  }
  return { pairs: out, groups };
}

const evalOverlapOf = (t: { evalOverlap?: number }) => (t.evalOverlap === undefined ? {} : { evalOverlap: t.evalOverlap });

/** data.subsample's share for a task dataset (named as any task names it: cad, cad:train, ...); 1 when none. */
function subsampleShare(cfg: Config, ref: SplitRef): number {
  for (const [name, share] of Object.entries(cfg.data.subsample ?? {})) {
    let id: string;
    try {
      id = parseSplitRef(name).id;
    } catch (e) {
      throw new ConfigError(`data.subsample.${name}: ${(e as Error).message}`);
    }
    if (id === ref.id) return share;
  }
  return 1;
}

/** A seeded share of `rows` (the same rows for the same share and count, whatever the run's seed), sorted. */
function subsample(rows: Int32Array, share: number): Int32Array {
  if (share >= 1) return rows;
  const keep = Math.max(1, Math.round(share * rows.length));
  return Int32Array.from(permutation(rows.length, HOLDOUT_SEED + 2).slice(0, keep), (k) => rows[k]).sort();
}

/** A task's dataset must be one its objective trains on: pairs for the pair objectives, groups for supcon / contrastive. */
function checkTaskDataset(where: string, ref: SplitRef, objective: Objective): void {
  if (objectiveTakes(objective, ref.dataset.kind)) return;
  const needs = objectiveTakes(objective, "groups") ? "a groups dataset (e.g. multi30k)" : "a pair dataset (e.g. sick:train, stsb:train)";
  const takes = objectiveTakes(objective, "pairs") && objectiveTakes(objective, "groups") ? "a pair or groups dataset (e.g. snli, multi30k)" : needs;
  throw new ConfigError(`${where}: ${ref.id} is a ${ref.dataset.kind} dataset; ${objective} needs ${takes}`);
}

/** A groups split's groups, with a seeded share of whole groups (d.holdout) held out to validate. */
async function readGroupSplit(ref: SplitRef, holdout: number, onBadRow: BadRowPolicy): Promise<GroupSplit> {
  const groups: string[][] = [];
  const ids: string[] = [];
  const stats = emptyReadStats();
  if (ref.dataset.kind !== "groups") throw new Error(`${ref.id} is not a groups dataset`);
  for await (const r of ref.dataset.read(ref.path!, { onBadRow, stats })) {
    groups.push(r.sentences);
    ids.push(r.id);
  }
  if (groups.length < 2) throw noUsableRows(ref.path!, stats, "groups");
  const h = premiseHoldout(ids, holdout, HOLDOUT_SEED); // ids are distinct: each group is held out or not as a whole
  return { ref, groups, trainRows: h.trainRows, validRows: h.validRows };
}

/** data.lmText's splits, refused when one is the validation split or another non-training split of data.pairs. */
function lmTextRefs(cfg: Config, trainRef: SplitRef, validRef: SplitRef, dataDir: string | undefined): SplitRef[] {
  const d = cfg.data;
  const refs = d.lmText.map((name, k) => {
    try {
      return parseSplitRef(name, dataDir);
    } catch (e) {
      throw new ConfigError(`data.lmText[${k}]: ${(e as Error).message}`);
    }
  });
  for (const [k, ref] of refs.entries()) {
    if (ref.id === validRef.id || (ref.dataset.name === trainRef.dataset.name && ref.split !== trainRef.split)) {
      throw new ConfigError(
        `data.lmText[${k}]: ${JSON.stringify(d.lmText[k])} (${ref.id}) is ${ref.id === validRef.id ? "the validation split" : `a non-training split of ${d.pairs}`}; ` +
          `LM text may not include validation or test sentences (use ${trainRef.id} or another dataset's training text)`,
      );
    }
  }
  return refs;
}

/** data.pairs with one of its split fields: an error names the field the user wrote, and the split's own field. */
function pairsSplitRef(pairs: string, split: string, splitField: string, dataDir: string | undefined): SplitRef {
  if (pairs.includes(":")) {
    const [name, given] = pairs.split(":");
    throw new ConfigError(
      `data.pairs: ${JSON.stringify(pairs)} is a dataset name only; give ${JSON.stringify(name)} and its split in ${splitField} (${given})`,
    );
  }
  // parseSplitRef speaks of NAME:SPLIT; the config has two fields
  if (!Object.hasOwn(DATASETS, pairs)) throw new DataError(`data.pairs: unknown dataset ${JSON.stringify(pairs)}; known: ${Object.keys(DATASETS).join(", ")}`);
  try {
    return parseSplitRef(`${pairs}:${split}`, dataDir);
  } catch (e) {
    if (e instanceof DataError) throw new DataError(`${splitField}: ${e.message}`);
    throw e;
  }
}

export async function loadTrainingData(cfg: Config, opts: LoadDataOptions = {}): Promise<TrainingData> {
  const d = cfg.data;
  const log = opts.log ?? (() => {});
  const onBadRow = opts.onBadRow ?? "error";
  const notes: string[] = [];
  registerConfigDatasets(d.datasets);
  const ensure: Ensure = (ref) => ensureSplit(ref, { download: opts.download, log, progress: process.stderr.isTTY === true });
  const trainRef = pairsSplitRef(d.pairs, d.trainSplit, "data.trainSplit", opts.dataDir);
  if (trainRef.dataset.kind !== "pairs")
    throw new DataError(`data.pairs: ${d.pairs} is a ${trainRef.dataset.kind} dataset; the sentence stages need a pair dataset (e.g. snli)`);
  // a config's own dataset of one file validates on a share held out of it, as data.validSplit = its training split does
  const ownWithoutValid = isConfigDataset(d.pairs) && !Object.hasOwn(trainRef.dataset.splits, d.validSplit);
  const validRef = ownWithoutValid ? trainRef : pairsSplitRef(d.pairs, d.validSplit, "data.validSplit", opts.dataDir);
  if (ownWithoutValid) notes.push(`${d.pairs} has no ${d.validSplit} file (data.validSplit) among its files`);
  const lmRefs = lmTextRefs(cfg, trainRef, validRef, opts.dataDir);

  // Which rows of which split train and which validate; the multi-task stages' other pair datasets.
  const chosen = await choosePairRows(cfg, trainRef, validRef, ensure, onBadRow, notes);
  const { trainSource, validSource, trainRecords, validRecords, validRows, holdout } = chosen;
  let evaluation: Promise<EvaluationSentences> | undefined; // read once, and only when some dataset needs it
  const evaluationOnce = () => (evaluation ??= evaluationSentences(opts.dataDir));
  // data.pairs of a dataset evaluation does not read (the user's own, cad, ...): as the tasks' rows below
  const clearPairs = await clearOfEvaluation(trainSource, chosen.trainRows, (i) => [trainRecords[i].s1, trainRecords[i].s2], evaluationOnce);
  const trainRows = assertTrainingLeft(trainSource, clearPairs);
  const overlapNote = async (id: string, left: number, unit: string) =>
    notes.push(`${id}: ${left} ${unit} left out: a sentence of theirs is in an evaluation split (${(await evaluationOnce()).splits.join(", ")})`);
  if (clearPairs.left > 0) await overlapNote(trainSource.id, clearPairs.left, "pairs");
  const taskRefs = taskDatasetRefs(cfg, opts.dataDir);
  const { pairs: taskSplits, groups: groupSplits } = await loadTaskSplits(cfg, validRef, taskRefs, ensure, onBadRow, evaluationOnce);
  for (const t of [...taskSplits, ...groupSplits]) if (t.evalOverlap) await overlapNote(t.ref.id, t.evalOverlap, "groups" in t ? "groups" : "pairs");

  // Vocabulary: the training pairs' sentences (data.pairs's and the tasks') and the extra LM text's training splits.
  const tokenizer = new Tokenizer(tokenizerSettings(cfg));
  // LM text is a stream cut into bptt windows: its paragraphs are not cut at maxLen.
  const lmTokenizer = tokenizer.uncapped();
  const counter = new TokenCounter();
  const trainSentences: string[] = [];
  for (const i of trainRows) trainSentences.push(trainRecords[i].s1, trainRecords[i].s2);
  const validSentences: string[] = [];
  for (const i of validRows) validSentences.push(validRecords[i].s1, validRecords[i].s2);
  for (const s of trainSentences) counter.add(tokenizer.tokenize(s));
  for (const t of taskSplits) for (const i of t.trainRows) for (const x of [t.records[i].s1, t.records[i].s2]) counter.add(tokenizer.tokenize(x));
  // the groups' training sentences are training text too: vocabulary and LM text
  for (const g of groupSplits) for (const i of g.trainRows) for (const x of g.groups[i]) counter.add(tokenizer.tokenize(x));
  for (const g of groupSplits) for (const i of g.trainRows) trainSentences.push(...g.groups[i]);
  const validSet = new Set(validSentences);
  const extra = new LmTextCollector(lmTokenizer, counter);
  for (const ref of lmRefs) {
    if (!(await ensure(ref))) throw new DataError(`data.lmText: ${missingSplitMessage(ref)}`);
    // as the tasks' rows: an evaluation dataset's own training text is kept apart by its splits, any other's is checked
    const evaluated = EVALUATION_DATASETS.has(ref.dataset.name) ? null : await evaluationOnce();
    const exclude = (t: string) => validSet.has(t) || (evaluated?.has(t) ?? false);
    const c = await extra.addCorpus(splitTexts(ref, { onBadRow }), lmHoldout(d.lmHoldout, HOLDOUT_SEED), exclude);
    log(
      `lm text ${ref.id}: ${c.train} texts train (${c.trainTokens} tokens), ${c.valid} validate${c.dropped ? ` (${c.dropped} dropped: validation or evaluation sentences)` : ""}`,
    );
  }
  const vocab = Vocab.fromCounts(counter.counts, { minFreq: cfg.vocab.minFreq, maxSize: cfg.vocab.maxSize, oovBuckets: cfg.vocab.oovBuckets });
  if (vocab.size - vocab.oovBuckets <= SPECIAL_TOKENS.length && counter.counts.size > 0) {
    let top = 0; // a loop, not Math.max(...): a corpus counts hundreds of thousands of words
    for (const n of counter.counts.values()) top = Math.max(top, n);
    throw new ConfigError(
      `vocab.minFreq ${cfg.vocab.minFreq}: no word of the training text occurs that often (the most frequent one: ${top} times), so the vocabulary would hold only its ${SPECIAL_TOKENS.length} special tokens; lower it`,
    );
  }
  // the adaptive softmax's clusters split the vocabulary: said here, not by the backend's build after the run folder exists
  const cuts = cfg.model.cutoffs ?? [];
  if (cfg.model.softmax === "adaptive" && cuts.length > 0 && cuts[cuts.length - 1] >= vocab.size)
    throw new ConfigError(`model.cutoffs [${cuts.join(", ")}]: the vocabulary has ${vocab.size} tokens; each cutoff must be below that`);

  // Numericalised: the pairs (cached per split), the tasks', the idf weights and the LM streams' text.
  const prepared = async (ref: SplitRef) => {
    const { data, report } = await prepareSplit({ ref, vocab, tokenizer, cacheDir: opts.cacheDir, onBadRow });
    notes.push(...rowNotes(ref, report));
    return data as NumericalisedPairs;
  };
  const trainAll = await prepared(trainSource);
  const validAll = validSource === trainSource ? trainAll : await prepared(validSource);
  const pairs = scaleScores({ train: selectPairs(trainAll, trainRows), valid: selectPairs(validAll, validRows) });
  const bySplit = new Map<string, TaskPairs>();
  for (const t of taskSplits) {
    const all = await prepared(t.ref);
    bySplit.set(t.ref.id, { split: t.ref.id, ...scaleScores({ train: selectPairs(all, t.trainRows), valid: selectPairs(all, t.validRows) }) });
  }
  // by the dataset as each task writes it: data.pairs's own pairs, or the split it resolved to
  const tasks = new Map<string, TaskPairs>();
  for (const { dataset, ref } of taskRefs) {
    const split = bySplit.get(ref.id);
    if (split) tasks.set(dataset, split); // groups datasets are in `groups`
  }
  for (const t of cfg.stages.flatMap((s) => s.tasks ?? [])) if (isMainPairs(cfg, t.dataset)) tasks.set(t.dataset, { split: trainSource.id, ...pairs });
  const groups = new Map<string, TaskGroups>();
  for (const g of groupSplits) {
    const split = {
      split: g.ref.id,
      train: numericaliseGroups(g.groups, g.trainRows, vocab, tokenizer),
      valid: numericaliseGroups(g.groups, g.validRows, vocab, tokenizer),
    };
    for (const { dataset, ref } of taskRefs) if (ref.id === g.ref.id) groups.set(dataset, split);
  }
  const idfDocs = [pairs.train, ...[...bySplit.values()].map((t) => t.train)].flatMap((p) => [p.s1, p.s2]);
  for (const g of groups.values()) idfDocs.push(g.train.sentences);
  const idf = cfg.model.pool_weighting === "idf" ? idfWeights(idfDocs, vocab.size) : null;

  const lmText = lmCorpus(trainSentences, { valid: validSentences, seed: HOLDOUT_SEED });
  const extraLm = extra.finish(vocab);
  const lm = {
    train: concatRagged(numericaliseTexts(lmText.train, vocab, lmTokenizer).ragged, extraLm.train),
    valid: concatRagged(numericaliseTexts(lmText.valid, vocab, lmTokenizer).ragged, extraLm.valid),
  };
  const plan: DataPlan = {
    train: { split: trainSource.id, rows: trainRows.length },
    valid: { split: validSource.id, rows: validRows.length },
    holdout,
    tasks: [
      ...taskSplits.map((t) => ({ split: t.ref.id, rows: t.trainRows.length, heldOut: t.validRows.length, ...evalOverlapOf(t) })),
      ...groupSplits.map((g) => ({ split: g.ref.id, rows: g.trainRows.length, heldOut: g.validRows.length, unit: "groups" as const, ...evalOverlapOf(g) })),
    ],
    lmText: d.lmText,
    ...(evaluation !== undefined ? { evaluationSplits: (await evaluation).splits } : {}),
    notes,
  };
  return { tokenizer, vocab, pairs, tasks, groups, idf, lm, plan, backwards: cfg.model.backwards === true };
}

/** Groups `rows` of `groups`, numericalised (each sentence cut as the pairs are). */
function numericaliseGroups(groups: readonly string[][], rows: Int32Array, vocab: Vocab, tokenizer: Tokenizer): NumericalisedGroups {
  const groupOffsets = new Int32Array(rows.length + 1);
  const texts: string[] = [];
  rows.forEach((r, k) => {
    texts.push(...groups[r]);
    groupOffsets[k + 1] = texts.length;
  });
  return { kind: "groups", size: rows.length, sentences: numericaliseTexts(texts, vocab, tokenizer).ragged, groupOffsets };
}

/** Whether a task's dataset means data.pairs as the run splits it (NAME, or NAME:trainSplit). */
function isMainPairs(cfg: Config, dataset: string): boolean {
  const [name, split] = dataset.split(":");
  return name === cfg.data.pairs && (split === undefined || split === cfg.data.trainSplit);
}

/** The multi-task stages' datasets other than data.pairs, each with where the config names it and the objective it trains. */
function taskDatasetRefs(cfg: Config, dataDir: string | undefined): { dataset: string; ref: SplitRef; where: string; objective: Objective }[] {
  const out: { dataset: string; ref: SplitRef; where: string; objective: Objective }[] = [];
  cfg.stages.forEach((s, i) =>
    s.tasks?.forEach((t, k) => {
      const where = `stages[${i}].tasks[${k}].dataset`;
      if (isMainPairs(cfg, t.dataset)) {
        if (!objectiveTakes(t.objective, "pairs"))
          throw new ConfigError(`${where}: ${t.dataset} is data.pairs (pairs); ${t.objective} needs a groups dataset (e.g. multi30k)`);
        return;
      }
      try {
        out.push({ dataset: t.dataset, ref: parseSplitRef(t.dataset, dataDir), where, objective: t.objective });
      } catch (e) {
        throw new ConfigError(`${where}: ${(e as Error).message}`);
      }
    }),
  );
  return out;
}

/** Gold similarity scores mapped to 0..1 by the training split's range (STS-B 0-5, SICK 1-5), validation clamped alike. */
function scaleScores(p: { train: NumericalisedPairs; valid: NumericalisedPairs }): { train: NumericalisedPairs; valid: NumericalisedPairs } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of p.train.scores) if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  if (!(hi > lo)) return p; // no scores (NaN stays NaN), or all equal
  const scale = (x: Float32Array) => x.map((v) => (Number.isFinite(v) ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : v));
  return { train: { ...p.train, scores: scale(p.train.scores) }, valid: { ...p.valid, scores: scale(p.valid.scores) } };
}

/**
 * Inverse document frequency of every token id over the training sentences (each sentence a document):
 * log((1 + n) / (1 + df)) + 1, as scikit-learn's smooth idf, so a word in every sentence (xxbos) weighs 1 and
 * an unseen one the most. Padding never counts; the backend ignores its weight.
 */
export function idfWeights(docs: readonly Ragged[], vocabSize: number): Float32Array {
  const df = new Float64Array(vocabSize);
  const seen = new Int32Array(vocabSize).fill(-1);
  let n = 0;
  for (const r of docs) {
    for (let i = 0; i + 1 < r.offsets.length; i++, n++) {
      for (let k = r.offsets[i]; k < r.offsets[i + 1]; k++) {
        const id = r.ids[k];
        if (seen[id] !== n) {
          seen[id] = n;
          df[id]++;
        }
      }
    }
  }
  return Float32Array.from(df, (f) => Math.log((1 + n) / (1 + f)) + 1);
}

/** What a split's reading skipped or cut, by file:line, for the run's notes. */
function rowNotes(ref: SplitRef, r: SplitReport): string[] {
  const where = (ex: { line: number; reason: string }[]) => ex.map((e) => `${ref.path}:${e.line}: ${e.reason}`).join("; ");
  const out: string[] = [];
  if (r.badRows > 0) out.push(`${ref.id}: ${r.badRows} bad row(s) skipped (--on-bad-row skip), e.g. ${where(r.badExamples)}`);
  if (r.truncated > 0)
    out.push(`${ref.id}: ${r.truncated} sentence(s) cut at tokenizer.maxLen ${r.truncatedExamples.length > 0 ? `, e.g. ${where(r.truncatedExamples)}` : ""}`);
  return out;
}

/** The given rows of a pair set (a copy), each sentence cut to `maxLen` tokens when given. */
export function selectPairs(data: NumericalisedPairs, rows: ArrayLike<number>, maxLen: number | null = null): NumericalisedPairs {
  const n = rows.length;
  const labels = new Int8Array(n);
  const scores = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    labels[k] = data.labels[rows[k]];
    scores[k] = data.scores[rows[k]];
  }
  return { kind: "pairs", size: n, s1: selectRagged(data.s1, rows, maxLen), s2: selectRagged(data.s2, rows, maxLen), labels, scores };
}

export function selectRagged(r: Ragged, rows: ArrayLike<number>, maxLen: number | null = null): Ragged {
  const n = rows.length;
  const offsets = new Int32Array(n + 1);
  for (let k = 0; k < n; k++) offsets[k + 1] = offsets[k] + Math.min(rowLength(r, rows[k]), maxLen ?? Infinity);
  const ids = new Int32Array(offsets[n]);
  for (let k = 0; k < n; k++) ids.set(r.ids.subarray(r.offsets[rows[k]], r.offsets[rows[k]] + offsets[k + 1] - offsets[k]), offsets[k]);
  return { offsets, ids };
}

/** Every row of a pair set, cut to maxLen (the stage's view). */
export function truncatePairs(data: NumericalisedPairs, maxLen: number | null): NumericalisedPairs {
  return maxLen === null
    ? data
    : selectPairs(
        data,
        Int32Array.from({ length: data.size }, (_, i) => i),
        maxLen,
      );
}

/** At most this many sentences fit SIF's common component (a seeded sample beyond it: ~10 s of encoding on one core). */
export const SIF_SENTENCES = 20_000;

/**
 * The distinct training sentences of the sentence stages (data.pairs's and every task's training pairs), in first-seen
 * order, a seeded sample of at most `max`: what SIF's principal component is fitted on.
 */
export function trainingSentences(data: TrainingData, max = SIF_SENTENCES): Ragged {
  const seen = new Set<string>();
  const picked: { r: Ragged; i: number }[] = [];
  const sets = [data.pairs.train, ...new Set([...data.tasks.values()].map((t) => t.train))];
  // the pairs' sentences, then the groups' (a groups task's sentences trained the stage as much as the pairs')
  const texts = [...sets.flatMap((set) => [set.s1, set.s2]), ...new Set([...data.groups.values()].map((g) => g.train.sentences))];
  for (const r of texts) {
    for (let i = 0; i + 1 < r.offsets.length; i++) {
      const key = r.ids.subarray(r.offsets[i], r.offsets[i + 1]).join(",");
      if (seen.has(key)) continue;
      seen.add(key);
      picked.push({ r, i });
    }
  }
  const keep =
    picked.length <= max
      ? picked
      : Array.from(permutation(picked.length, HOLDOUT_SEED).subarray(0, max))
          .sort((a, b) => a - b)
          .map((k) => picked[k]);
  const offsets = new Int32Array(keep.length + 1);
  keep.forEach(({ r, i }, k) => (offsets[k + 1] = offsets[k] + rowLength(r, i)));
  const ids = new Int32Array(offsets[keep.length]);
  keep.forEach(({ r, i }, k) => ids.set(r.ids.subarray(r.offsets[i], r.offsets[i + 1]), offsets[k]));
  return { offsets, ids };
}
