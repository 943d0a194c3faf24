import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseSplitRef } from "../../ts/data/datasets.js";
import { loadNumericalised, NumericalisedWriter, numericaliseTexts, row } from "../../ts/data/numericalised.js";
import { buildVocab, prepareSplit } from "../../ts/data/prepare.js";
import { Tokenizer } from "../../ts/data/tokenize.js";
import { Vocab } from "../../ts/data/vocab.js";
import { testWithData } from "../helpers.js";
import { tempDir } from "./helpers.js";

function miniSnli(dir: string, rows: [string, string, string][]): void {
  const lines = rows.map(([g, a, b]) => JSON.stringify({ gold_label: g, sentence1: a, sentence2: b }));
  writeFileSync(join(dir, "snli_1.0", "snli_1.0_train.jsonl"), `${lines.join("\n")}\n`);
}

test("prepareSplit: ids match the tokenizer and vocabulary; a second run is a cache hit; changed inputs miss", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, "snli_1.0"));
    miniSnli(dir, [
      ["entailment", "A man plays .", "A person plays ."],
      ["-", "ignored", "ignored"],
      ["contradiction", "A man sleeps .", "Nobody plays ."],
    ]);
    const ref = parseSplitRef("snli:train", dir);
    const tokenizer = new Tokenizer();
    const vocab = await buildVocab([ref], tokenizer, { minFreq: 1 });
    const cacheDir = join(dir, "cache");
    const first = await prepareSplit({ ref, vocab, tokenizer, cacheDir });
    assert.is(first.cached, false);
    assert.is(first.data.kind, "pairs");
    if (first.data.kind !== "pairs") return;
    assert.is(first.data.size, 2);
    assert.equal(
      [...row(first.data.s1, 0)],
      tokenizer.tokenize("A man plays .").map((t) => vocab.id(t)),
    );
    assert.equal([...first.data.labels], [0, 2]);
    assert.ok(Number.isNaN(first.data.scores[0]));
    assert.equal(first.report.dropped, { "gold_label -": 1 });
    assert.is(first.report.unknown, 0);

    const second = await prepareSplit({ ref, vocab, tokenizer: new Tokenizer(), cacheDir });
    assert.is(second.cached, true);
    assert.is(second.path, first.path);
    assert.equal(second.report, first.report);
    if (second.data.kind !== "pairs") return;
    assert.equal([...second.data.s2.ids], [...first.data.s2.ids]);

    // Another vocabulary, other tokenizer settings, or other input bytes: a different file.
    const small = Vocab.fromCounts(new Map([["man", 5]]), { minFreq: 1 });
    const third = await prepareSplit({ ref, vocab: small, tokenizer, cacheDir });
    assert.is(third.cached, false);
    assert.ok(third.report.unknown > 0);
    const fourth = await prepareSplit({ ref, vocab, tokenizer: new Tokenizer({ addEos: true }), cacheDir });
    assert.is(fourth.cached, false);
    miniSnli(dir, [["neutral", "New text .", "More ."]]);
    const fifth = await prepareSplit({ ref, vocab, tokenizer, cacheDir });
    assert.is(fifth.cached, false);
    assert.is(fifth.data.size, 1);
    assert.ok(!readdirSync(cacheDir).some((f) => f.endsWith(".tmp")), "no temp files left");
    // A damaged cache file is rebuilt.
    writeFileSync(fifth.path, "garbage");
    const sixth = await prepareSplit({ ref, vocab, tokenizer, cacheDir });
    assert.is(sixth.cached, false);
    assert.is(sixth.data.size, 1);
  } finally {
    cleanup();
  }
});

test("a failing read leaves no file in the cache", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, "snli_1.0"));
    writeFileSync(join(dir, "snli_1.0", "snli_1.0_train.jsonl"), '{"gold_label":"neutral","sentence1":"a","sentence2":"b"}\n{oops\n');
    const ref = parseSplitRef("snli:train", dir);
    const tokenizer = new Tokenizer();
    const vocab = Vocab.fromCounts(new Map(), { minFreq: 1 });
    const cacheDir = join(dir, "cache");
    try {
      await prepareSplit({ ref, vocab, tokenizer, cacheDir });
      assert.unreachable("bad row accepted");
    } catch (e) {
      assert.match((e as Error).message, /snli_1\.0_train\.jsonl:2: not valid JSON/);
    }
    assert.equal(existsSync(cacheDir) ? readdirSync(cacheDir) : [], []);
    const skipped = await prepareSplit({ ref, vocab, tokenizer, cacheDir, onBadRow: "skip" });
    assert.is(skipped.report.badRows, 1);
    assert.is(skipped.data.size, 1);
  } finally {
    cleanup();
  }
});

test("text files spanning several record batches load back row for row", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const tokenizer = new Tokenizer();
    const vocab = Vocab.fromCounts(
      new Map([
        ["w1", 9],
        ["w2", 9],
      ]),
      { minFreq: 1 },
    );
    const path = join(dir, "t.arrow");
    const w = await NumericalisedWriter.open(path, "text", vocab, tokenizer);
    const n = 70_000; // more than one record batch (65,536 rows)
    for (let i = 0; i < n; i++) w.addText(i % 3 === 0 ? "w1 w2 w1" : i % 3 === 1 ? "w2" : "");
    const counts = await w.close();
    assert.is(counts.rows, n);
    const { data } = await loadNumericalised(path);
    if (data.kind !== "text") throw new Error("kind");
    assert.is(data.size, n);
    const bos = vocab.id("xxbos");
    const w1 = vocab.id("w1");
    const w2 = vocab.id("w2");
    for (const i of [0, 1, 2, 65_535, 65_536, 65_537, n - 1]) {
      const expect = i % 3 === 0 ? [bos, w1, w2, w1] : i % 3 === 1 ? [bos, w2] : [bos];
      assert.equal([...row(data.lines, i)], expect, `row ${i}`);
    }
  } finally {
    cleanup();
  }
});

test("numericaliseTexts counts OOV tokens and truncation", () => {
  const tokenizer = new Tokenizer({ maxLen: 3 });
  const vocab = Vocab.fromCounts(new Map([["a", 5]]), { minFreq: 1 });
  const { ragged, counts } = numericaliseTexts(["a b", "a c a c"], vocab, tokenizer); // "a a a a" would become xxwrep 4 a
  assert.equal([...ragged.offsets], [0, 3, 6]);
  assert.is(counts.unknown, 2); // b, c
  assert.is(counts.truncated, 1);
  assert.is(counts.truncatedTokens, 2);
});

testWithData(test, "real SICK train numericalises and caches (shared data)", async (shared) => {
  const { dir, cleanup } = tempDir();
  try {
    const ref = parseSplitRef("sick:train", shared);
    const tokenizer = new Tokenizer();
    const vocab = await buildVocab([ref], tokenizer);
    const a = await prepareSplit({ ref, vocab, tokenizer, cacheDir: dir });
    const b = await prepareSplit({ ref, vocab, tokenizer, cacheDir: dir });
    assert.is(a.data.size, 4500);
    assert.is(b.cached, true);
    if (b.data.kind !== "pairs") return;
    assert.is(b.data.scores[0], 4.5);
    assert.ok(a.report.oovRate > 0 && a.report.oovRate < 0.05);
  } finally {
    cleanup();
  }
});

test.run();
