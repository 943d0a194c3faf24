import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { dataInspect } from "../../ts/commands/data.js";
import { DATASETS, defaultDataDir, fetchableDatasets, parseSplitRef, registerConfigDatasets, resolveDataDir } from "../../ts/data/datasets.js";
import { summarise } from "../../ts/data/inspect.js";
import { testWithData } from "../helpers.js";
import { tempDir, writeText } from "./helpers.js";

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

testWithData(test, "inspect --json on the shared data: official counts", async (shared) => {
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

const ISSUE21_FILES = [
  "multinli_1.0/multinli_1.0_dev_matched.jsonl",
  "multinli_1.0/multinli_1.0_dev_mismatched.jsonl",
  "cad/NLI/all_combined/train.tsv",
  "cad/NLI/original/train.tsv",
  "multi30k/captions.train.tsv",
];

testWithData(
  test,
  "inspect on the shared data: MultiNLI dev splits, CAD and Multi30K counts",
  async (shared) => {
    const quiet = sink().out;
    const inspect = (name: string) => dataInspect({ name, dataDir: shared, json: true, out: quiet });
    // MultiNLI dev: 9,996 / 9,997 rows, of which 185 / 168 have gold label "-" (dropped, counted)
    for (const [split, rows, noGold] of [
      ["dev_matched", 9996, 185],
      ["dev_mismatched", 9997, 168],
    ] as const) {
      const r = await inspect(`multinli:${split}`);
      assert.equal([r.pairs, r.dropped, r.dropped_by_reason, r.bad_rows], [rows - noGold, noGold, { "gold_label -": noGold }, 0], split);
      assert.is(
        Object.values(r.labels!).reduce((a, b) => a + b, 0),
        rows - noGold,
      );
    }
    assert.is((await inspect("multinli:dev")).split, "dev_matched");
    // CAD: 1,666 SNLI pairs, 8,330 with their four counterfactual edits each; no "-" labels in either
    const combined = await inspect("cad");
    assert.equal([combined.split, combined.pairs, combined.dropped, combined.bad_rows], ["train", 8330, 0, 0]);
    assert.equal(combined.labels, { entailment: 2770, neutral: 2778, contradiction: 2782 });
    assert.is((await inspect("cad:all_combined")).file, join(shared, "cad/NLI/all_combined/train.tsv"));
    const original = await inspect("cad:original");
    assert.equal([original.pairs, original.dropped, original.oov.vocab], [1666, 0, "cad:train"]);
    // Multi30K: 27,072 images with 5 non-empty captions each
    const s = sink();
    const m = await dataInspect({ name: "multi30k", dataDir: shared, out: s.out });
    assert.equal([m.groups, m.sentences, m.bad_rows, m.lines], [27072, 135360, 0, undefined]);
    assert.match(s.text(), /\n {2}groups {6}27,072\n {2}sentences {3}135,360\n/);
    assert.not.match(s.text(), /lines/);
    // 2,606 of those groups hold an evaluation sentence (up to case, spacing and punctuation): training leaves them out
    assert.equal(m.evaluation_overlap, { rows: 2606, splits: ["snli:dev", "xnli:dev", "stsb:dev", "sick:trial"] });
    assert.match(s.text(), "eval text   2,606 groups hold a sentence of snli:dev, xnli:dev, stsb:dev, sick:trial (training leaves them out)");
    assert.is(combined.evaluation_overlap?.rows, 292, "counterfactual SNLI pairs with a sentence of SNLI dev");
    // an evaluation dataset itself is not compared this way (its held-out rows keep it apart)
    assert.is((await inspect("snli:dev")).evaluation_overlap, undefined);
  },
  ISSUE21_FILES,
);

testWithData(test, "inspect shows what it reads and how far on its status line; the report stays clean", async (shared) => {
  const [report, status] = [sink(), sink()];
  await dataInspect({ name: "multi30k", dataDir: shared, json: true, out: report.out, progress: true, progressOut: status.out });
  assert.is(JSON.parse(report.text()).groups > 20_000, true);
  const lines = status
    .text()
    .split(/[\r\n]/)
    .filter(Boolean);
  assert.match(lines[0], /^multi30k: building the OOV vocabulary from multi30k:train, 1 row$/);
  const reading = lines.filter((l) => l.startsWith("multi30k: reading multi30k:train, "));
  assert.ok(reading.length > 0, status.text().slice(-300));
  assert.match(reading[0], /^multi30k: reading multi30k:train, 1 row +$/); // blanks the rest of the longer line before
  assert.ok(reading.every((l) => /^multi30k: reading multi30k:train, [\d,]+ rows? *$/.test(l)));
  assert.ok(status.text().endsWith("\n"));
  const quiet = sink();
  await dataInspect({ name: "sick:trial", dataDir: shared, json: true, out: sink().out, progress: false, progressOut: quiet.out });
  assert.is(quiet.text(), "");
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

test("config-defined tabular datasets inspect like the built-in ones; registering again is a no-op, a clash an error", async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, "quora"));
    writeText(dir, "quora/train.csv", 'q1,q2,dup\n"How, really?",Why?,1\nA,B,0\n');
    const spec = {
      name: "quora-test",
      format: "csv" as const,
      files: { train: "quora/train.csv" },
      columns: { s1: "q1", s2: "q2", label: "dup" },
      labels: { "1": "entailment" as const, "0": "contradiction" as const },
    };
    registerConfigDatasets([spec]);
    registerConfigDatasets([spec]);
    const r = await dataInspect({ name: "quora-test:train", dataDir: dir, out: sink().out });
    assert.is(r.pairs, 2);
    assert.equal(r.labels, { entailment: 1, neutral: 0, contradiction: 1 });
    assert.throws(() => registerConfigDatasets([{ ...spec, files: { train: "other.csv" } }]), /quora-test is already defined differently/);
    assert.throws(() => registerConfigDatasets([{ ...spec, name: "snli" }]), /snli is already a built-in dataset/);
    assert.throws(() => registerConfigDatasets([{ ...spec, name: "nodev", files: { dev: "x.csv" } }]), /nodev has no train file among files\.dev/);
  } finally {
    cleanup();
  }
});

test("bad rows: empty sentences and invalid UTF-8 are counted by line and dropped (skip) or stop (error)", async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, "snli_1.0"));
    const good = '{"gold_label":"neutral","sentence1":"A dog runs .","sentence2":"An animal moves ."}';
    const file = join(dir, "snli_1.0", "snli_1.0_test.jsonl");
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from(`${good}\n{"gold_label":"neutral","sentence1":"A b .","sentence2":"  "}\n`),
        Buffer.from('{"gold_label":"neutral","sentence1":"caf'),
        Buffer.from([0xe9]), // Latin-1 é: not UTF-8
        Buffer.from(`","sentence2":"x"}\n${good}\n`),
      ]),
    );
    const r = await dataInspect({ name: "snli:test", dataDir: dir, onBadRow: "skip", json: true, out: sink().out });
    assert.is(r.pairs, 2);
    assert.is(r.bad_rows, 2);
    assert.equal(r.bad_examples, [
      { line: 2, reason: "empty sentence2" },
      { line: 3, reason: "invalid UTF-8 at byte 41 (0xe9)" },
    ]);
    try {
      await dataInspect({ name: "snli:test", dataDir: dir, out: sink().out });
      assert.unreachable("empty sentence accepted");
    } catch (e) {
      assert.match((e as Error).message, /snli_1\.0_test\.jsonl:2: empty sentence2/);
    }
  } finally {
    cleanup();
  }
});

test("an over-long sentence: error names file:line; skip cuts it at max_len (default 512) and reports the line", async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, "snli_1.0"));
    const long = Array.from({ length: 5000 }, (_, i) => `w${i % 50}`).join(" ");
    const rows = [
      { gold_label: "neutral", sentence1: "A b .", sentence2: "C ." },
      { gold_label: "entailment", sentence1: long, sentence2: "C ." },
    ];
    writeText(dir, "snli_1.0/snli_1.0_test.jsonl", `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
    try {
      await dataInspect({ name: "snli:test", dataDir: dir, out: sink().out });
      assert.unreachable("a 5,000-word sentence passed silently");
    } catch (e) {
      assert.match((e as Error).message, /snli_1\.0_test\.jsonl:2: a sentence is 5001 tokens long, more than tokenizer\.maxLen 512/);
    }
    // with --max-len the advice names the flag, not the config field
    const flagged = await dataInspect({ name: "snli:test", dataDir: dir, maxLen: 3, out: sink().out }).catch((e: Error) => e);
    assert.match((flagged as Error).message, /more than --max-len 3 \(raise --max-len/);
    const s = sink();
    const r = await dataInspect({ name: "snli:test", dataDir: dir, onBadRow: "skip", out: s.out });
    assert.is(r.pairs, 2);
    assert.is(r.max_len, 512);
    assert.is(r.truncated, 1);
    assert.is(r.token_lengths.max, 512);
    assert.equal(
      r.truncated_examples.map((t) => t.line),
      [2],
    );
    assert.match(s.text(), /max_len\s+512; 1 texts cut to it\n\s+line 2: a sentence is 5001 tokens long/);
  } finally {
    cleanup();
  }
});

test("an empty split is an error naming the file, not 0 pairs", async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, "snli_1.0"));
    writeText(dir, "snli_1.0/snli_1.0_test.jsonl", "");
    try {
      await dataInspect({ name: "snli:test", dataDir: dir, out: sink().out });
      assert.unreachable("an empty file inspected as 0 pairs");
    } catch (e) {
      assert.match((e as Error).message, /snli_1\.0_test\.jsonl: no usable pairs \(the file has no data rows\)/);
    }
    writeText(dir, "snli_1.0/snli_1.0_test.jsonl", '{"gold_label":"-","sentence1":"x","sentence2":"y"}\nnope\n');
    try {
      await dataInspect({ name: "snli:test", dataDir: dir, onBadRow: "skip", out: sink().out });
      assert.unreachable("a split of only bad rows inspected as 0 pairs");
    } catch (e) {
      assert.match((e as Error).message, /no usable pairs \(1 bad row\(s\) skipped, e\.g\. line 2: not valid JSON.*; 1 dropped \(gold_label -\)\)/);
    }
  } finally {
    cleanup();
  }
});

test("one descriptor per dataset: fetch choices are the datasets with a download; default data dir is the user cache", () => {
  const withDownload = Object.values(DATASETS)
    .filter((d) => d.download !== undefined)
    .map((d) => d.name);
  assert.equal(withDownload, ["snli", "multinli", "sick", "stsb", "wikitext-2", "wikitext-103", "cad", "multi30k"]);
  assert.equal(fetchableDatasets().slice(0, withDownload.length), withDownload);
  const saved = { data: process.env.BRIDGE_DATA_DIR, xdg: process.env.XDG_CACHE_HOME };
  try {
    delete process.env.BRIDGE_DATA_DIR;
    process.env.XDG_CACHE_HOME = "/tmp/xdg-test";
    assert.is(defaultDataDir(), "/tmp/xdg-test/bridge/data");
    assert.is(resolveDataDir(), "/tmp/xdg-test/bridge/data");
    assert.is(parseSplitRef("snli:dev").path, "/tmp/xdg-test/bridge/data/snli_1.0/snli_1.0_dev.jsonl");
    process.env.BRIDGE_DATA_DIR = "/elsewhere";
    assert.is(resolveDataDir(), "/elsewhere");
  } finally {
    for (const [k, v] of [
      ["BRIDGE_DATA_DIR", saved.data],
      ["XDG_CACHE_HOME", saved.xdg],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test("percentiles are nearest-rank", () => {
  const s = summarise(Array.from({ length: 100 }, (_, i) => i + 1));
  assert.equal([s.p50, s.p90, s.p99, s.max, s.mean], [50, 90, 99, 100, 50.5]);
  assert.equal(summarise([]).max, 0);
});

test("inspect refuses a bad --min-freq or --max-len, --min-freq with --vocab, and an empty split after the colon, before reading anything", async () => {
  for (const [opts, message] of [
    [{ name: "cad", minFreq: -1 }, "--min-freq -1: a whole number, 1 or more"],
    [{ name: "cad", minFreq: 1.5 }, "--min-freq 1.5: a whole number"],
    [{ name: "cad", maxLen: Number.NaN }, "--max-len NaN: a whole number"],
    [{ name: "snli:" }, "snli:: no split after the colon"],
    [{ name: "cad", vocab: "v.json", minFreq: 2 }, "--min-freq shapes a vocabulary built from the split; --vocab v.json gives one already built"],
  ] as const) {
    const e = await dataInspect({ dataDir: "/nonexistent-data", ...opts }).then(
      () => null,
      (err: Error) => err,
    );
    assert.match(e?.message ?? "accepted", message);
  }
});

test.run();
