/**
 * A tiny trained run made without `bridge train` (for a second, different run in the --compare
 * test, in a few seconds): a vocabulary from the first SNLI dev pairs, a `tiny` AWD-LSTM, a few
 * language-model steps then a few siamese steps (a checkpoint at each stage's end), and the run
 * folder written through ts/run/manifest.ts exactly as train writes it. Takes a few seconds.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBackend } from "../../ts/backend/client.js";
import { train } from "../../ts/commands/train.js";
import { collatePairs, pairLengths, trainBatchPlan } from "../../ts/data/batches.js";
import { parseSplitRef } from "../../ts/data/datasets.js";
import { LmStream } from "../../ts/data/lmStream.js";
import { type NumericalisedPairs, numericaliseTexts } from "../../ts/data/numericalised.js";
import { NLI_LABELS, type PairRecord } from "../../ts/data/records.js";
import { Tokenizer } from "../../ts/data/tokenize.js";
import { TokenCounter, Vocab } from "../../ts/data/vocab.js";
import { type EvalResult, evaluateRun } from "../../ts/eval/evaluate.js";
import { projectRoot } from "../../ts/paths.js";
import { MANIFEST_VERSION, type RunManifest, runPaths, type StageRecord, writeManifest } from "../../ts/run/manifest.js";
import { tempFolder } from "../helpers.js";

export interface FixtureOptions {
  root: string;
  name: string;
  dataDir: string;
  /** SNLI dev pairs to learn from (default 800). */
  pairs?: number;
  lmSteps?: number;
  siameseSteps?: number;
  seed?: number;
  /** Build args of the siamese stage that differ from the LM stage's (its head / optimizer), as a config's
   * stage settings do: the stage is then built afresh from the LM stage's encoder, as train does. */
  siameseBuild?: Record<string, string | number>;
}

export async function makeFixtureRun(opts: FixtureOptions): Promise<string> {
  const { root, name, dataDir } = opts;
  const seed = opts.seed ?? 0;
  const paths = runPaths(name, root);
  mkdirSync(paths.checkpoints, { recursive: true });
  const ref = parseSplitRef("snli:dev", dataDir);
  const records: PairRecord[] = [];
  for await (const r of ref.dataset.kind === "pairs" ? ref.dataset.read(ref.path!, {}) : []) {
    if (records.length >= (opts.pairs ?? 800)) break;
    records.push(r);
  }
  const tokenizer = new Tokenizer();
  const counter = new TokenCounter();
  for (const r of records) {
    counter.add(tokenizer.tokenize(r.s1));
    counter.add(tokenizer.tokenize(r.s2));
  }
  const vocab = Vocab.fromCounts(counter.counts, { minFreq: 2 });
  await vocab.save(paths.vocab);
  const model = { preset: "tiny", vocab_sz: vocab.size, vocab_fingerprint: vocab.fingerprint, seed, head_hidden: 32, drop_mult: 0.1, lr: 0.01 };
  const config = { name, seed, model, data: { pairs: "snli", trainSplit: "dev", lmText: [] }, note: "test fixture (test/eval/fixtures.ts)" };
  writeFileSync(paths.config, `${JSON.stringify(config, null, 2)}\n`);
  const log: object[] = [];
  const stages: StageRecord[] = [];
  const client = await startBackend({ device: "cpu" });
  try {
    await client.call("build", model);
    // Stage 0: language model on the pairs' sentences.
    const lm = numericaliseTexts(
      records.flatMap((r) => [r.s1, r.s2]),
      vocab,
      tokenizer,
    ).ragged;
    const stream = new LmStream(lm, { bs: 8, bptt: 20, seed, epoch: 0, train: true });
    let step = 0;
    for (let k = 0; k < (opts.lmSteps ?? 12); k++) {
      const { x, y } = stream.batch(k % stream.steps);
      const { result } = await client.call("train_step", { objective: "lm", reset: k === 0 }, { x, y });
      log.push({ event: "train", stage: "lm", step: ++step, loss: result.loss });
    }
    stages.push(await endStage(client, paths.checkpoints, 0, "lm", "lm", step, {}));
    if (opts.siameseBuild) {
      await client.call("build", { ...model, ...opts.siameseBuild });
      await client.call("load", { path: join(paths.checkpoints, "0-lm.pt"), parts: "encoder" });
    }
    // Stage 1: siamese NLI classifier.
    const pairs: NumericalisedPairs = {
      kind: "pairs",
      size: records.length,
      s1: numericaliseTexts(
        records.map((r) => r.s1),
        vocab,
        tokenizer,
      ).ragged,
      s2: numericaliseTexts(
        records.map((r) => r.s2),
        vocab,
        tokenizer,
      ).ragged,
      labels: Int8Array.from(records, (r) => (r.label === undefined ? -1 : NLI_LABELS.indexOf(r.label))),
      scores: new Float32Array(records.length).fill(Number.NaN),
    };
    const plan = trainBatchPlan(pairLengths(pairs), { batchSize: 32, seed, epoch: 0 });
    for (let k = 0; k < (opts.siameseSteps ?? 12); k++) {
      const b = collatePairs(pairs, plan[k % plan.length], vocab.padId);
      const { result } = await client.call(
        "train_step",
        { objective: "siamese" },
        { premise: b.s1.ids, premise_lengths: b.s1.lengths, hypothesis: b.s2.ids, hypothesis_lengths: b.s2.lengths, labels: b.labels },
      );
      log.push({ event: "train", stage: "siamese", step: ++step, loss: result.loss, accuracy: result.correct / result.count });
    }
    log.push({ event: "eval", stage: "siamese", step, val_loss: 1.05 });
    stages.push(await endStage(client, paths.checkpoints, 1, "siamese", "siamese", step, { val_accuracy: 0.4 }));
  } finally {
    await client.close();
  }
  writeFileSync(paths.log, `${log.map((l) => JSON.stringify(l)).join("\n")}\n`);
  const manifest: RunManifest = {
    version: MANIFEST_VERSION,
    name,
    created: new Date().toISOString(),
    seed,
    model,
    tokenizer: tokenizer.settings,
    vocab: { size: vocab.size, fingerprint: vocab.fingerprint },
    stages,
    finalCheckpoint: stages[stages.length - 1].checkpoint,
    // as train records it: the first pairs of snli:dev trained, none held out
    data: { train: { split: "snli:dev", rows: records.length }, valid: { split: "snli:dev", rows: records.length }, holdout: null },
  };
  await writeManifest(paths, manifest);
  return paths.dir;
}

async function endStage(
  client: Awaited<ReturnType<typeof startBackend>>,
  dir: string,
  index: number,
  name: string,
  objective: StageRecord["objective"],
  step: number,
  metrics: Record<string, number>,
): Promise<StageRecord> {
  const file = `${index}-${name}.pt`;
  await client.call("save", { path: join(dir, file), meta: { stage: name } });
  return { index, name, objective, checkpoint: `checkpoints/${file}`, completed: true, step, metrics };
}

/** Items per split and LM tokens in the shared evaluation: enough for every metric, seconds not minutes. */
export const EVAL_LIMITS = { limit: 400, lmMaxTokens: 8000 };

export interface SharedRun {
  root: string;
  name: string;
  dataDir: string;
  dir: string;
  evaluation: EvalResult;
}

let shared: Promise<SharedRun> | null = null;

/**
 * One run made by the real `bridge train --config configs/tiny.yaml` (about 30 s on 2 busy CPU
 * cores), evaluated once, for all the eval tests of this process (removed at exit).
 */
export function sharedRun(dataDir: string): Promise<SharedRun> {
  shared ??= (async () => {
    const root = tempFolder("bridge-eval-");
    process.on("exit", () => rmSync(root, { recursive: true, force: true }));
    const name = "t1";
    const { dir } = await train({ config: join(projectRoot, "configs", "tiny.yaml"), run: name, runsDir: root, dataDir, quiet: true });
    const evaluation = await evaluateRun({ run: name, runsDir: root, dataDir, device: "cpu", ...EVAL_LIMITS, log: () => undefined });
    return { root, name, dataDir, dir, evaluation };
  })();
  return shared;
}

/** Sentences of very different lengths, in an order unlike their length order, one repeated. */
export const EMBED_SENTENCES = [
  "A man is playing a guitar on the stage while the crowd is cheering loudly .",
  "Dogs run .",
  "",
  "Two women are sitting at a table in a cafe and drinking coffee together on a sunny afternoon .",
  "A child smiles .",
  "Dogs run .",
  "The people are outside .",
  "A woman in a red dress walks down the street .",
  "Nobody is here .",
];
