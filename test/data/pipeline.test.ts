import { test } from "uvu";
import * as assert from "uvu/assert";
import { collatePairs, pairLengths, trainBatchPlan } from "../../ts/data/batches.js";
import { parseSplitRef } from "../../ts/data/datasets.js";
import { LmStream, lmCorpus } from "../../ts/data/lmStream.js";
import { numericaliseTexts } from "../../ts/data/numericalised.js";
import { buildVocab, prepareSplit } from "../../ts/data/prepare.js";
import { Tokenizer } from "../../ts/data/tokenize.js";
import { TokenCounter, Vocab } from "../../ts/data/vocab.js";
import { testWithData } from "../helpers.js";
import { tempDir } from "./helpers.js";

testWithData(test, "SNLI dev: file -> vocabulary -> cached Arrow -> bucketed pair batches -> tensors", async (shared) => {
  const { dir, cleanup } = tempDir();
  try {
    const ref = parseSplitRef("snli:dev", shared);
    const tokenizer = new Tokenizer();
    const vocab = await buildVocab([ref], tokenizer, { minFreq: 2 });
    const { data } = await prepareSplit({ ref, vocab, tokenizer, cacheDir: dir });
    if (data.kind !== "pairs") throw new Error("kind");
    const plan = trainBatchPlan(pairLengths(data), { batchSize: 64, seed: 0, epoch: 0 });
    assert.is(
      plan.reduce((n, b) => n + b.length, 0),
      9842,
    );
    let padded = 0;
    let real = 0;
    for (const rows of plan) {
      const b = collatePairs(data, rows, vocab.padId);
      padded += b.s1.ids.data.length + b.s2.ids.data.length;
      for (const l of [...b.s1.lengths.data, ...b.s2.lengths.data]) real += l;
      assert.ok([...b.labels.data].every((l) => l >= 0n && l <= 2n));
    }
    assert.ok(real / padded > 0.6, `bucketing keeps padding low (${real / padded})`);
  } finally {
    cleanup();
  }
});

testWithData(test, "SNLI dev as language-model text: premises de-duplicated, held-out sentences unseen, stream batches", async (shared) => {
  const ref = parseSplitRef("snli:dev", shared);
  const premises: string[] = [];
  const hypotheses: string[] = [];
  for await (const r of ref.dataset.kind === "pairs" ? ref.dataset.read(ref.path!, {}) : []) {
    premises.push(r.s1);
    hypotheses.push(r.s2);
  }
  const corpus = lmCorpus([...premises, ...hypotheses], { validFraction: 0.1, seed: 0 });
  assert.ok(corpus.duplicates >= premises.length - new Set(premises).size);
  const train = new Set(corpus.train);
  assert.ok(corpus.valid.every((s) => !train.has(s)));
  const tokenizer = new Tokenizer();
  const counter = new TokenCounter();
  for (const s of corpus.train) counter.add(tokenizer.tokenize(s));
  const vocab = Vocab.fromCounts(counter.counts);
  const { ragged } = numericaliseTexts(corpus.train, vocab, tokenizer);
  const stream = new LmStream(ragged, { bs: 16, bptt: 40, seed: 0, epoch: 0, train: true });
  const b = stream.batch(0);
  assert.is(b.x.shape[0], 16);
  assert.is(b.x.data[0], vocab.id("xxbos")); // row 0 starts at a text's xxbos
  assert.is(b.y.data[0], b.x.data[1]);
});

test.run();
