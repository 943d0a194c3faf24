/**
 * lm: the last language-model stage's checkpoint (fine-tuning later changes the encoder):
 * perplexity on held-out WikiText-2 (test when present, else valid), and samples. Without that
 * text the task is skipped (listed in `skipped`), never a placeholder entry. A backward LM (model.backwards)
 * reads the text right to left, as it trained, and its samples, generated right to left, are shown in reading order.
 */

import type { EvalStepResult } from "../../backend/ops.js";
import { reverseRows } from "../../data/backwards.js";
import { parseSplitRef, type SplitRef, splitTexts } from "../../data/datasets.js";
import { LmStream } from "../../data/lmStream.js";
import { type NumericalisedText, numericaliseTexts, type Ragged } from "../../data/numericalised.js";
import { prepareSplit } from "../../data/prepare.js";
import type { RunModel } from "../runModel.js";
import type { LmResult, MetricRow, SamplingSettings } from "../types.js";
import { type EvalTask, entryBase, firstPresent, lookForSplits, rowAdder, skip, type TaskContext, type TaskOutput } from "./common.js";

export const SAMPLING: SamplingSettings = { n: 5, max_len: 30, temperature: 0.8, top_k: 0, seed: 0 };
const LM_SPLITS = ["wikitext-2:test", "wikitext-2:valid"] as const;
const BS = 16;
const BPTT = 70;

/** The summed negative log-likelihood of the tokens scored so far. */
export interface NllSum {
  nll: number;
  tokens: number;
}

/**
 * Adds one eval_step reply to `sum`. A null loss (non-finite: NaN / Infinity cross the wire as null) is an error
 * naming the step and `where`: counted as 0 it would make a diverged model's perplexity look good.
 */
export function addNll(sum: NllSum, r: EvalStepResult, step: number, where: string): void {
  if (r.count === 0) return;
  if (r.loss === null) {
    throw new Error(
      `${where}: eval_step ${step + 1} scored ${r.count} tokens with a non-finite loss (NaN or infinite), so the perplexity is undefined; has the model diverged?`,
    );
  }
  sum.nll += r.loss * r.count;
  sum.tokens += r.count;
}

/** Perplexity of the loaded checkpoint on a split's text (ctx.lmMaxTokens: only its first tokens). */
export async function perplexity(ctx: TaskContext, ref: SplitRef): Promise<{ perplexity: number; tokens: number; oovRate: number }> {
  const { lines, oovRate } = ctx.lmMaxTokens === undefined ? await wholeSplit(ctx, ref) : await splitPrefix(ctx, ref, ctx.lmMaxTokens);
  const stream = new LmStream(readsBackwards(ctx.model) ? reverseRows(lines) : lines, { bs: BS, bptt: BPTT, seed: 0, epoch: 0, train: false });
  const sum: NllSum = { nll: 0, tokens: 0 };
  const where = `lm perplexity on ${ref.id} (checkpoint ${ctx.model.checkpoint})`;
  for (let k = 0; k < stream.steps; k++) {
    const { x, y } = stream.batch(k);
    const { result } = await ctx.model.call("eval_step", { objective: "lm", reset: k === 0, stream: "perplexity" }, { x, y });
    addNll(sum, result, k, where);
  }
  return { perplexity: Math.exp(sum.nll / sum.tokens), tokens: sum.tokens, oovRate };
}

/** The whole split, numericalised through the cache (a second eval reads it back). */
async function wholeSplit(ctx: TaskContext, ref: SplitRef): Promise<{ lines: Ragged; oovRate: number }> {
  const prepared = await prepareSplit({ ref, vocab: ctx.model.vocab, tokenizer: ctx.model.tokenizer });
  return { lines: (prepared.data as NumericalisedText).lines, oovRate: prepared.report.oovRate };
}

/** The split's first lines, up to about `maxTokens` tokens (a prefix: the stream needs contiguous text). */
async function splitPrefix(ctx: TaskContext, ref: SplitRef, maxTokens: number): Promise<{ lines: Ragged; oovRate: number }> {
  const texts: string[] = [];
  let tokens = 0;
  for await (const r of splitTexts(ref, {})) {
    texts.push(r);
    tokens += r.split(" ").length;
    if (tokens >= maxTokens) break;
  }
  const { ragged, counts } = numericaliseTexts(texts, ctx.model.vocab, ctx.model.tokenizer.uncapped()); // LM text is never cut per paragraph
  return { lines: ragged, oovRate: counts.tokens === 0 ? 0 : counts.unknown / counts.tokens };
}

/** Whether the run's LM reads right to left (model.backwards: its build args say so). */
export function readsBackwards(model: RunModel): boolean {
  return model.manifest.model.backwards === true;
}

/** Generated texts, in reading order (a backward LM's are generated last word first). */
export async function sampleTexts(model: RunModel, s: SamplingSettings = SAMPLING): Promise<string[]> {
  const { tensors } = await model.call("generate", { ...s });
  const tokens = tensors.tokens;
  const width = tokens.shape[1];
  const lengths = Array.from(tensors.lengths.data as BigInt64Array | Int32Array, Number);
  let ids = tokens.data as BigInt64Array;
  if (readsBackwards(model)) {
    ids = ids.slice();
    lengths.forEach((n, row) => ids.subarray(row * width, row * width + n).reverse());
  }
  return model.detokenize(ids, width, lengths);
}

export const lmTask: EvalTask = {
  name: "lm",
  describe: "language model: perplexity on WikiText-2 and generated samples (the last LM stage's checkpoint)",
  splits: LM_SPLITS,
  lookFor: (dataDir) => lookForSplits(LM_SPLITS, dataDir),
  async run(ctx: TaskContext): Promise<TaskOutput> {
    const { model } = ctx;
    const lmStage = [...model.manifest.stages].reverse().find((s) => s.objective === "lm" && s.completed && s.checkpoint !== null);
    if (!lmStage) {
      skip(ctx, "lm", "*", "the run has no finished language-model stage");
      return { entries: {} };
    }
    const id = firstPresent(ctx, "lm", LM_SPLITS);
    if (id === null) return { entries: {} };
    if (model.checkpoint !== lmStage.checkpoint) await model.load(lmStage.checkpoint!);
    const ref = parseSplitRef(id, ctx.dataDir);
    const p = await perplexity(ctx, ref);
    ctx.log(`lm ${ref.id}: perplexity ${p.perplexity.toFixed(2)} over ${p.tokens} tokens (oov ${(p.oovRate * 100).toFixed(1)}%)`);
    const unseen = model.vocab.oovBuckets > 0 ? `unseen words count as one of ${model.vocab.oovBuckets} hashed bucket tokens` : "xxunk counts as a word";
    const note =
      `${unseen}, so with ${(p.oovRate * 100).toFixed(1)}% of tokens out of the run's vocabulary this is not comparable to ` +
      "published WikiText-2 perplexities (full vocabulary, trained on WikiText-2 train)";
    const entry: LmResult = {
      ...entryBase(ctx, ref.id, p.tokens),
      perplexity: p.perplexity,
      oov_rate: p.oovRate,
      checkpoint: lmStage.checkpoint!,
      bptt: BPTT,
      note,
      samples: await sampleTexts(model),
      sampling: SAMPLING,
    };
    return { entries: { lm: entry } };
  },
  rows(m) {
    const rows: MetricRow[] = [];
    if (m.lm) rowAdder(rows)("lm.perplexity", m.lm, m.lm.perplexity, null, false);
    return rows;
  },
};
