import { Writable } from "node:stream";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { dataInspect } from "../../ts/commands/data.js";
import { parseSplitRef, registerDataset, tabularDataset } from "../../ts/data/datasets.js";
import { summarise } from "../../ts/data/inspect.js";
import { sharedDataDir, tempDir, writeText } from "./helpers.js";

function sink(): { out: Writable; text: () => string } {
  let buf = "";
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  });
  return { out, text: () => buf };
}

const shared = sharedDataDir("data inspect on the shared datasets");

test("inspect --json on the shared data: official counts", async () => {
  if (!shared) return;
  const s = sink();
  const snli = await dataInspect({ name: "snli:dev", dataDir: shared, json: true, out: s.out });
  const printed = JSON.parse(s.text());
  assert.is(printed.pairs, 9842);
  assert.is(printed.dataset, "snli");
  assert.is(printed.split, "dev");
  assert.is(printed.dropped, 0);
  assert.equal(printed.labels, { entailment: 3329, neutral: 3235, contradiction: 3278 });
  assert.is(snli.pairs, 9842);
  const quiet = sink().out;
  assert.is((await dataInspect({ name: "sick:train", dataDir: shared, json: true, out: quiet })).pairs, 4500);
  assert.is((await dataInspect({ name: "stsb:train", dataDir: shared, json: true, out: quiet })).pairs, 5749);
  assert.is((await dataInspect({ name: "stsb:dev", dataDir: shared, json: true, out: quiet })).pairs, 1500);
  const xnli = await dataInspect({ name: "xnli:dev", dataDir: shared, json: true, out: quiet });
  assert.is(xnli.pairs, 2490);
  assert.is(xnli.file, join(shared, "xnli_en", "xnli_validation_en.tsv"));
  const wiki = await dataInspect({ name: "wikitext-2:valid", dataDir: shared, json: true, out: quiet });
  assert.is(wiki.lines, 2461);
  assert.ok(wiki.tokens > 200_000);
  assert.is(wiki.pairs, undefined);
  // OOV against the training split when there is one.
  const sickTrial = await dataInspect({ name: "sick:dev", dataDir: shared, json: true, out: quiet });
  assert.is(sickTrial.split, "trial");
  assert.is(sickTrial.oov.vocab, "sick:train");
  assert.ok(sickTrial.oov.rate! > 0 && sickTrial.oov.rate! < 0.05);
});

test("inspect: dropped and bad rows counted with skip, human-readable output", async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, "snli_1.0"));
    writeText(
      dir,
      "snli_1.0/snli_1.0_test.jsonl",
      ['{"gold_label":"neutral","sentence1":"A b .","sentence2":"C ."}', '{"gold_label":"-","sentence1":"x","sentence2":"y"}', "nope"].join("\n"),
    );
    const s = sink();
    const r = await dataInspect({ name: "snli:test", dataDir: dir, onBadRow: "skip", out: s.out });
    assert.equal([r.pairs, r.dropped, r.bad_rows], [1, 1, 1]);
    assert.match(s.text(), /pairs\s+1/);
    assert.match(s.text(), /dropped\s+1 \(1 with gold label -\)/);
    assert.match(s.text(), /line 3: not valid JSON/);
    assert.is(r.oov.rate, null);
    assert.match(r.oov.vocab, /snli:train is not in the data dir/);
    try {
      await dataInspect({ name: "snli:test", dataDir: dir, out: sink().out });
      assert.unreachable("bad row accepted");
    } catch (e) {
      assert.match((e as Error).message, /snli_1\.0_test\.jsonl:3: not valid JSON/);
    }
  } finally {
    cleanup();
  }
});

test("missing splits and unknown names give clear messages", async () => {
  const { dir, cleanup } = tempDir();
  try {
    try {
      await dataInspect({ name: "snli:train", dataDir: dir, out: sink().out });
      assert.unreachable("missing split");
    } catch (e) {
      assert.match((e as Error).message, /snli:train: not found at .*snli_1\.0_train\.jsonl \(run `npx bridge data fetch snli/);
    }
    assert.throws(() => parseSplitRef("nosuch:dev", dir), /unknown dataset "nosuch:dev"; known: snli, multinli/);
    assert.throws(() => parseSplitRef("snli:nosuch", dir), /snli has no split "nosuch"; its splits: train, dev, test/);
    assert.throws(() => parseSplitRef("constructor:dev", dir), /unknown dataset/);
    assert.is(parseSplitRef("xnli:validation", dir).split, "dev");
    assert.is(parseSplitRef("brown", dir).path, null);
  } finally {
    cleanup();
  }
});

test("config-defined tabular datasets inspect like the built-in ones", async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, "quora"));
    writeText(dir, "quora/train.csv", 'q1,q2,dup\n"How, really?",Why?,1\nA,B,0\n');
    registerDataset(tabularDataset("quora-test", "pairs", { train: "quora/train.csv" }, { format: "csv", columns: { s1: "q1", s2: "q2", label: "dup" }, labels: { "1": "entailment", "0": "contradiction" } }));
    const r = await dataInspect({ name: "quora-test:train", dataDir: dir, out: sink().out });
    assert.is(r.pairs, 2);
    assert.equal(r.labels, { entailment: 1, neutral: 0, contradiction: 1 });
    assert.throws(() => registerDataset(tabularDataset("snli", "text", { train: "x" }, { format: "tsv", columns: { text: 0 } })), /already defined/);
  } finally {
    cleanup();
  }
});

test("percentiles are nearest-rank", () => {
  const s = summarise(Array.from({ length: 100 }, (_, i) => i + 1));
  assert.equal([s.p50, s.p90, s.p99, s.max, s.mean], [50, 90, 99, 100, 50.5]);
  assert.equal(summarise([]).max, 0);
});

test.run();
