/**
 * What each objective trains on and how it is judged: a stage's batches (a pure function of seed,
 * epoch and batch index, so a resumed stage replays them exactly) and its validation batches.
 *
 *   lm                    contiguous LM streams x, y from the training text (AWD-LSTM windows)
 *   siamese / triplet /   premise, hypothesis, labels from the training pairs (the backend forms
 *   contrastive           triplets / in-batch negatives from them)
 *   simcse                x, lengths: single sentences of the training text (two dropout masks)
 */
import type { Tensors } from "../backend/client.js";
import { collatePairs, collateSentences, evalBatchPlan, lengthsOf, pairLengths, trainBatchPlan } from "../data/batches.js";
import { LmStream } from "../data/lmStream.js";
import type { NumericalisedPairs, Ragged } from "../data/numericalised.js";
import { mixSeed } from "../data/random.js";
import { OBJECTIVE_SPECS, type StageConfig } from "../config/schema.js";
import { lmReadingOrder } from "./backwards.js";
import { selectRagged, truncatePairs, type TrainingData } from "./data.js";

export interface Batch {
  tensors: Tensors;
  /** Pairs, sentences or tokens in it (for throughput). */
  items: number;
  /** LM: start a fresh hidden state with this batch. */
  reset?: boolean;
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
  /** Validation batches, in a fixed order. */
  valid(): EpochBatches;
}

export function pairTensors(data: NumericalisedPairs, rows: Int32Array, padId: number): Tensors {
  const b = collatePairs(data, rows, padId);
  return { premise: b.s1.ids, premise_lengths: b.s1.lengths, hypothesis: b.s2.ids, hypothesis_lengths: b.s2.lengths, labels: b.labels };
}

export function stageData(s: StageConfig, stageIndex: number, data: TrainingData, seed: number): StageData {
  const padId = data.vocab.padId;
  const stageSeed = mixSeed(seed, stageIndex);
  const evalBs = Math.max(s.batchSize, 64);
  const spec = OBJECTIVE_SPECS[s.objective];
  if (spec.data === "lm_stream") {
    const lm = lmReadingOrder(data.lm, data.backwards === true); // a backward LM reads every text reversed
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
      epoch: (epoch) => {
        const st = stream(epoch);
        return {
          count: st.steps,
          batch: (b) => {
            const { x, y } = st.batch(b);
            return { tensors: { x, y }, items: x.shape[0] * x.shape[1], reset: b === 0 };
          },
        };
      },
      valid: () => {
        const bs = Math.min(s.batchSize, Math.max(1, Math.floor((lm.valid.ids.length - 1) / 2)));
        const st = new LmStream(lm.valid, { bs, bptt: s.bptt, seed: stageSeed, epoch: 0, train: false });
        return {
          count: st.steps,
          batch: (b) => {
            const { x, y } = st.batch(b);
            return { tensors: { x, y }, items: x.shape[0] * x.shape[1], reset: b === 0 };
          },
        };
      },
    };
  }
  if (spec.data === "sentences") {
    const cut = (r: Ragged) => selectRagged(r, Int32Array.from({ length: r.offsets.length - 1 }, (_, i) => i), s.maxLen);
    const train = cut(data.lm.train);
    const valid = cut(data.lm.valid);
    const sentences = (r: Ragged, plan: Int32Array[]): EpochBatches => ({
      count: plan.length,
      batch: (b) => {
        const c = collateSentences(r, plan[b], padId);
        return { tensors: { x: c.ids, lengths: c.lengths }, items: plan[b].length };
      },
    });
    const trainLengths = [lengthsOf(train)];
    return {
      unit: "sentences",
      epoch: (epoch) => sentences(train, trainBatchPlan(trainLengths, { batchSize: s.batchSize, seed: stageSeed, epoch })),
      valid: () => sentences(valid, evalBatchPlan([lengthsOf(valid)], { batchSize: s.batchSize })),
    };
  }
  const train = truncatePairs(data.pairs.train, s.maxLen);
  const valid = truncatePairs(data.pairs.valid, s.maxLen);
  const pairs = (d: NumericalisedPairs, plan: Int32Array[]): EpochBatches => ({
    count: plan.length,
    batch: (b) => ({ tensors: pairTensors(d, plan[b], padId), items: plan[b].length }),
  });
  const trainLengths = pairLengths(train);
  // in-batch negatives (not shardable): each anchor is scored against the whole batch, so validate with the training batch size
  const validBs = spec.shardable ? evalBs : s.batchSize;
  return {
    unit: "pairs",
    epoch: (epoch) => pairs(train, trainBatchPlan(trainLengths, { batchSize: s.batchSize, seed: stageSeed, epoch })),
    valid: () => pairs(valid, evalBatchPlan(pairLengths(valid), { batchSize: validBs })),
  };
}
