/**
 * What each objective trains on and how it is judged: a stage's batches (a pure function of seed,
 * epoch and batch index, so a resumed stage replays them exactly) and its validation batches.
 *
 *   lm                    contiguous LM streams x, y from the training text (AWD-LSTM windows)
 *   siamese / triplet /   premise, hypothesis, labels from the training pairs (the backend forms
 *   contrastive           triplets / in-batch negatives from them)
 *   simcse                x, lengths: single sentences of the training text (two dropout masks)
 */

import { OBJECTIVE_SPECS, type Objective, type ObjectiveOptions, resolveOptions } from "../config/objectives.js";
import { type StageConfig, stageName, type TaskConfig, taskName } from "../config/schema.js";
import type { Tensors } from "../core/tensor.js";
import { lmReadingOrder } from "../data/backwards.js";
import { collatePairs, collateSentences, evalBatchPlan, lengthsOf, pairLengths, trainBatchPlan } from "../data/batches.js";
import { DataError } from "../data/errors.js";
import {
  groupBatchPlan,
  groupPairs,
  groupPairTensors,
  groupsPerBatch,
  groupTensors,
  largestGroup,
  type NumericalisedGroups,
  selectGroups,
} from "../data/groups.js";
import { HOLDOUT_SEED } from "../data/holdout.js";
import { LmStream } from "../data/lmStream.js";
import type { NumericalisedPairs, Ragged } from "../data/numericalised.js";
import { epochRng, mixSeed, shuffleInPlace } from "../data/random.js";
import { selectPairs, selectRagged, type TrainingData, truncatePairs } from "./data.js";
import { taskSchedule } from "./multitask.js";

export interface Batch {
  tensors: Tensors;
  /** Pairs, sentences or tokens in it (for throughput). */
  items: number;
  /** LM: start a fresh hidden state with this batch. */
  reset?: boolean;
  /** The objective this batch trains (a multi-task stage's steps differ), its options (every one it declares,
   * resolved for its task) and its task's name. */
  objective: Objective;
  options: ObjectiveOptions;
  task?: string;
}

/** One set of validation batches: a single-objective stage has one, a multi-task stage one per task. */
export interface ValidationSet {
  /** The task's name ("" for a single-objective stage: its metrics keep their plain names). */
  name: string;
  objective: Objective;
  options: ObjectiveOptions;
  weight: number;
  batches: EpochBatches;
  /** Scored pairs: the gold scores of every batch's rows, batch by batch (val_spearman correlates the cosines with them). */
  gold?: Float32Array[];
}

/** The batches of one epoch. */
export interface EpochBatches {
  count: number;
  batch(b: number): Batch;
}

export interface StageData {
  /** "pairs", "sentences" or "tokens". */
  unit: string;
  epoch(epoch: number): EpochBatches;
  /** Validation batches, in a fixed order: one set, or one per task. */
  valid(): ValidationSet[];
}

/** A batch of pairs as an objective takes it: NLI labels for the NLI objectives, gold scores (0..1) for the similarity ones. */
export function pairTensors(data: NumericalisedPairs, rows: Int32Array, padId: number, objective: Objective): Tensors {
  const b = collatePairs(data, rows, padId);
  const t: Tensors = { premise: b.s1.ids, premise_lengths: b.s1.lengths, hypothesis: b.s2.ids, hypothesis_lengths: b.s2.lengths };
  if (OBJECTIVE_SPECS[objective].data === "scored_pairs") t.scores = b.scores;
  else t.labels = b.labels;
  return t;
}

export function stageData(s: StageConfig, stageIndex: number, data: TrainingData, seed: number): StageData {
  if (s.tasks) return multiTaskData(s, s.tasks, stageIndex, data, seed);
  const stageSeed = mixSeed(seed, stageIndex);
  const objective = s.objective!;
  switch (OBJECTIVE_SPECS[objective].data) {
    case "lm_stream":
      return lmStageData(s, stageIndex, data, stageSeed);
    case "sentences":
      return sentenceStageData(s, objective, data, stageSeed);
    default: {
      const task = pairTask(s, { dataset: "", objective, weight: 1 }, "", data.pairs, stageSeed, data.vocab.padId);
      return { unit: "pairs", epoch: task.epoch, valid: () => [task.valid()] };
    }
  }
}

/**
 * What the stages ask of the data that only the data can answer (an LM stage's batch against its text), checked when
 * the data has loaded: before a fresh run writes its folder, not when the stage starts, maybe hours later.
 */
export function assertStagesFit(stages: readonly StageConfig[], data: TrainingData): void {
  stages.forEach((s, i) => {
    if (s.objective !== undefined && s.tasks === undefined && OBJECTIVE_SPECS[s.objective].data === "lm_stream") checkLmStage(s, i, data);
  });
}

function checkLmStage(s: StageConfig, stageIndex: number, data: TrainingData): void {
  const tokens = data.lm.train.ids.length;
  if (Math.floor(tokens / s.batchSize) < 2)
    throw new DataError(
      `stages.${stageIndex}.batchSize ${s.batchSize} (stage ${stageIndex + 1}, ${stageName(s)}): the LM text has ${tokens} training tokens, ` +
        `too few for ${s.batchSize} rows of at least 2 tokens each; ${tokens >= 2 ? `at most ${Math.floor(tokens / 2)}, or ` : ""}add LM text (data.lmText)`,
    );
  if (data.lm.valid.ids.length < 2) {
    // said before the stage trains: LmStream would only fail at the first validation, after an epoch's work
    throw new DataError(
      `stage ${stageIndex + 1} (${stageName(s)}): the language-model validation text is empty: data.lmHoldout held out none ` +
        "of the LM text (each distinct text is held out or not as a whole; repeated texts count once) and the pair dataset's " +
        "validation sentences all occur in training; add distinct text (data.lmText) or raise data.lmHoldout",
    );
  }
}

/** An LM stage: contiguous streams of the LM text (every text reversed for a backward LM), one epoch's stream at a time. */
function lmStageData(s: StageConfig, stageIndex: number, data: TrainingData, stageSeed: number): StageData {
  checkLmStage(s, stageIndex, data);
  const lm = lmReadingOrder(data.lm, data.backwards === true);
  const options = resolveOptions("lm", s.options);
  const batches = (st: LmStream): EpochBatches => ({
    count: st.steps,
    batch: (b) => {
      const { x, y } = st.batch(b);
      return { tensors: { x, y }, items: x.shape[0] * x.shape[1], reset: b === 0, objective: "lm", options };
    },
  });
  const streams = new Map<number, LmStream>();
  const stream = (epoch: number) => {
    let st = streams.get(epoch);
    if (!st) {
      streams.clear(); // one epoch at a time
      st = new LmStream(lm.train, { bs: s.batchSize, bptt: s.bptt, seed: stageSeed, epoch, train: true });
      streams.set(epoch, st);
    }
    return st;
  };
  return {
    unit: "tokens",
    epoch: (epoch) => batches(stream(epoch)),
    valid: () => {
      const bs = Math.min(s.batchSize, Math.max(1, Math.floor((lm.valid.ids.length - 1) / 2)));
      return [
        {
          name: "",
          objective: "lm",
          options,
          weight: 1,
          batches: batches(new LmStream(lm.valid, { bs, bptt: s.bptt, seed: stageSeed, epoch: 0, train: false })),
        },
      ];
    },
  };
}

/** A stage on single sentences (simcse): the LM text's texts, cut to maxLen, in length-bucketed batches. */
function sentenceStageData(s: StageConfig, objective: Objective, data: TrainingData, stageSeed: number): StageData {
  const padId = data.vocab.padId;
  const cut = (r: Ragged) =>
    selectRagged(
      r,
      Int32Array.from({ length: r.offsets.length - 1 }, (_, i) => i),
      s.maxLen,
    );
  const train = cut(data.lm.train);
  const valid = cut(data.lm.valid);
  const sentences = (r: Ragged, plan: Int32Array[]): EpochBatches => ({
    count: plan.length,
    batch: (b) => {
      const c = collateSentences(r, plan[b], padId);
      return { tensors: { x: c.ids, lengths: c.lengths }, items: plan[b].length, objective, options };
    },
  });
  const trainLengths = [lengthsOf(train)];
  const options = resolveOptions(objective, s.options);
  return {
    unit: "sentences",
    epoch: (epoch) => sentences(train, trainBatchPlan(trainLengths, { batchSize: s.batchSize, seed: stageSeed, epoch })),
    valid: () => [{ name: "", objective, options, weight: 1, batches: sentences(valid, evalBatchPlan([lengthsOf(valid)], { batchSize: s.batchSize })) }],
  };
}

/** One pair dataset under one objective: its usable rows (labelled for NLI objectives, scored for similarity ones) in batches. */
interface TaskBatches {
  count: number;
  epoch(epoch: number): EpochBatches;
  valid(): ValidationSet;
}

function pairTask(
  s: StageConfig,
  t: TaskConfig,
  name: string,
  pairs: { train: NumericalisedPairs; valid: NumericalisedPairs },
  seed: number,
  padId: number,
): TaskBatches {
  const { objective } = t;
  const options = resolveOptions(objective, s.options, t.options);
  const spec = OBJECTIVE_SPECS[objective];
  const scored = spec.data === "scored_pairs";
  const usable = (d: NumericalisedPairs) => {
    const rows: number[] = [];
    for (let i = 0; i < d.size; i++) if (scored ? Number.isFinite(d.scores[i]) : d.labels[i] >= 0) rows.push(i);
    return rows.length === d.size ? truncatePairs(d, s.maxLen) : selectPairs(d, rows, s.maxLen);
  };
  const train = usable(pairs.train);
  const valid = usable(pairs.valid);
  const what = `stage ${stageName(s)}${name ? `, task ${name}` : ""} (${objective})`;
  if (train.size === 0)
    throw new DataError(
      `${what}: none of its training pairs has ${scored ? "a similarity score" : "an NLI label"}; ${objective} needs ${scored ? "scored pairs (e.g. stsb:train, sick:train)" : "NLI-labelled pairs (e.g. snli, sick:train)"}`,
    );
  if (valid.size === 0) throw new DataError(`${what}: none of its validation pairs has ${scored ? "a similarity score" : "an NLI label"}`);
  const batchesOf = (d: NumericalisedPairs, plan: Int32Array[]): EpochBatches => ({
    count: plan.length,
    batch: (b) => ({ tensors: pairTensors(d, plan[b], padId, objective), items: plan[b].length, objective, options, ...(name ? { task: name } : {}) }),
  });
  const trainLengths = pairLengths(train);
  // in-batch negatives (not shardable): each anchor is scored against the whole batch, so validate with the training batch size
  const validBs = spec.shardable ? Math.max(s.batchSize, 64) : s.batchSize;
  const count = trainBatchPlan(trainLengths, { batchSize: s.batchSize, seed, epoch: 0 }).length;
  return {
    count,
    epoch: (epoch) => batchesOf(train, trainBatchPlan(trainLengths, { batchSize: s.batchSize, seed, epoch })),
    valid: () => {
      const plan = evalBatchPlan(pairLengths(valid), { batchSize: validBs });
      return {
        name,
        objective,
        options,
        weight: t.weight,
        batches: batchesOf(valid, plan),
        ...(scored ? { gold: plan.map((rows) => Float32Array.from(rows, (r) => valid.scores[r])) } : {}),
      };
    },
  };
}

/**
 * A groups dataset under one objective (ts/data/groups.ts): supcon sees whole groups, batchSize sentences at most a
 * batch; contrastive sees one pair of each group an epoch (anchor, positive), batchSize pairs a batch.
 */
function groupTask(
  s: StageConfig,
  t: TaskConfig,
  name: string,
  groups: { train: NumericalisedGroups; valid: NumericalisedGroups },
  seed: number,
  padId: number,
): TaskBatches {
  const { objective } = t;
  const options = resolveOptions(objective, s.options, t.options);
  const all = (g: NumericalisedGroups) =>
    selectGroups(
      g,
      Int32Array.from({ length: g.size }, (_, i) => i),
      s.maxLen,
    );
  const train = all(groups.train);
  const valid = all(groups.valid);
  const what = `stage ${stageName(s)}, task ${name} (${objective})`;
  if (train.size === 0) throw new DataError(`${what}: no training groups are left after the holdout (data.holdout)`);
  if (valid.size === 0) throw new DataError(`${what}: no groups are held out to validate (raise data.holdout)`);
  const whole = OBJECTIVE_SPECS[objective].data === "groups";
  const perBatch = groupsPerBatch(train, s.batchSize);
  if (whole && perBatch < 2) {
    const largest = largestGroup(train);
    throw new DataError(
      `${what}: batchSize ${s.batchSize} holds fewer than two whole groups of up to ${largest} sentences; ${objective} needs other groups in the batch as negatives: batchSize ${2 * largest} at least`,
    );
  }
  const batch = (tensors: Tensors, items: number): Batch => ({ tensors, items, objective, options, ...(name ? { task: name } : {}) });
  const epochOf = (g: NumericalisedGroups, order: { seed: number; epoch: number } | null): EpochBatches => {
    if (whole) {
      const plan = groupBatchPlan(g, perBatch, order);
      return { count: plan.length, batch: (b) => batch(groupTensors(g, plan[b], padId), plan[b].length) };
    }
    // groups as pairs: one pair per group, so a batch never holds two sentences of one group as each other's negatives;
    // validation's pairs are drawn once with the holdout's seed, the same whatever the run's seed
    const pairs = order ? groupPairs(g, seed, order.epoch) : groupPairs(g, HOLDOUT_SEED, 0);
    const rows = Int32Array.from({ length: g.size }, (_, i) => i);
    if (order) shuffleInPlace(rows, epochRng(order.seed, order.epoch, 1));
    const plan = Array.from({ length: Math.ceil(g.size / s.batchSize) }, (_, b) => rows.subarray(b * s.batchSize, (b + 1) * s.batchSize));
    return { count: plan.length, batch: (b) => batch(groupPairTensors(g, pairs, plan[b], padId), plan[b].length) };
  };
  return {
    count: epochOf(train, { seed, epoch: 0 }).count,
    epoch: (epoch) => epochOf(train, { seed, epoch }),
    valid: () => ({ name, objective, options, weight: t.weight, batches: epochOf(valid, null) }),
  };
}

/** A multi-task stage: every task's pairs in batches, steps drawn from the tasks by weight (multitask.ts). */
function multiTaskData(s: StageConfig, tasks: readonly TaskConfig[], stageIndex: number, data: TrainingData, seed: number): StageData {
  const stageSeed = mixSeed(seed, stageIndex);
  const built = tasks.map((t, k) => {
    const seed = mixSeed(stageSeed, k + 1);
    const groups = data.groups.get(t.dataset);
    if (groups) return groupTask(s, t, taskName(t), groups, seed, data.vocab.padId);
    const pairs = data.tasks.get(t.dataset);
    if (!pairs) throw new DataError(`stage ${stageName(s)}: task ${taskName(t)}'s dataset ${t.dataset} was not loaded`);
    return pairTask(s, t, taskName(t), pairs, seed, data.vocab.padId);
  });
  const counts = built.map((b) => b.count);
  const weights = tasks.map((t) => t.weight);
  let cached: { epoch: number; batches: EpochBatches } | null = null;
  return {
    unit: "pairs",
    epoch: (epoch) => {
      if (cached?.epoch === epoch) return cached.batches;
      const draws = taskSchedule(counts, weights, stageSeed, epoch);
      const taskEpochs = new Map<string, EpochBatches>(); // (task, its epoch) -> its batches, built on first use
      const batches: EpochBatches = {
        count: draws.length,
        batch: (b) => {
          const d = draws[b];
          const key = `${d.task}:${d.taskEpoch}`;
          let e = taskEpochs.get(key);
          if (!e) {
            e = built[d.task].epoch(d.taskEpoch);
            taskEpochs.set(key, e);
          }
          return e.batch(d.batch);
        },
      };
      cached = { epoch, batches };
      return batches;
    },
    valid: () => built.map((b) => b.valid()),
  };
}
