/** The WikiExtractor reader (built-in `wikipedia`, `format: wikiextractor`) and the streamed LM text with its article holdout. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseSplitRef, registerConfigDatasets, splitTexts } from "../../ts/data/datasets.js";
import { BadRowError, emptyReadStats } from "../../ts/data/errors.js";
import { lmCorpus, lmHoldout } from "../../ts/data/lmStream.js";
import { concatRagged, LmTextCollector } from "../../ts/data/lmText.js";
import { numericaliseTexts } from "../../ts/data/numericalised.js";
import { readWikiExtractor, wikiExtractorFiles } from "../../ts/data/readers/wikiextractor.js";
import type { TextRecord } from "../../ts/data/records.js";
import { Tokenizer } from "../../ts/data/tokenize.js";
import { TokenCounter, Vocab } from "../../ts/data/vocab.js";
import { testWithData } from "../helpers.js";
import { tempDir, writeText } from "./helpers.js";

async function all<T>(gen: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

const doc = (id: number, title: string, ...paragraphs: string[]) =>
  [`<doc id="${id}" url="https://en.wikipedia.org/wiki?curid=${id}" title="${title}">`, title.replaceAll("&amp;", "&"), "", ...paragraphs, "</doc>", ""].join(
    "\n",
  );

/** A WikiExtractor output tree: AA/wiki_00, AA/wiki_01, AB/wiki_00, plus files it never reads. */
function tree(dir: string): void {
  mkdirSync(join(dir, "AA"));
  mkdirSync(join(dir, "AB"));
  writeText(dir, "AA/wiki_00", doc(1, "Anarchism", "Anarchism is a political philosophy.", "", "It has a history.") + doc(2, "Empty"));
  writeText(dir, "AA/wiki_01", doc(3, "Tom &amp; Jerry", "A cartoon."));
  writeText(dir, "AB/wiki_00", doc(4, "Zebra", "Zebras are striped."));
  writeText(dir, "AA/notes.txt", "not an output file\n");
}

test("WikiExtractor: one record an article (title line, paragraphs), in path order; empty articles dropped and counted", async () => {
  const { dir, cleanup } = tempDir();
  try {
    tree(dir);
    assert.equal(await wikiExtractorFiles(dir), [join(dir, "AA/wiki_00"), join(dir, "AA/wiki_01"), join(dir, "AB/wiki_00")]);
    const stats = emptyReadStats();
    const docs: TextRecord[] = await all(readWikiExtractor(dir, { stats }));
    assert.equal(
      docs.map((d) => d.doc),
      ["Anarchism", "Tom & Jerry", "Zebra"],
    );
    assert.is(docs[0].text, "Anarchism\nAnarchism is a political philosophy.\nIt has a history.");
    assert.is(docs[0].line, 1);
    assert.is(docs[1].text, "Tom & Jerry\nA cartoon.");
    assert.is(stats.records, 3);
    assert.equal(stats.dropped, { "empty article": 1 });
    // one file of the tree can be read alone
    assert.is((await all(readWikiExtractor(join(dir, "AB/wiki_00")))).length, 1);
  } finally {
    cleanup();
  }
});

test("WikiExtractor: a malformed or unbalanced tag is named by file:line; --on-bad-row skip reads on", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const bad = writeText(dir, "wiki_00", `${doc(1, "Good", "Fine text.")}<doc id="2" title=Broken>\nBroken\nLost.\n</doc>\n${doc(3, "Later", "More text.")}`);
    const err = await all(readWikiExtractor(bad)).then(
      () => assert.unreachable("a malformed tag must fail"),
      (e: unknown) => e,
    );
    assert.instance(err, BadRowError);
    assert.match((err as Error).message, new RegExp(`^${bad}:6: malformed <doc> tag`));
    const stats = emptyReadStats();
    const docs = await all(readWikiExtractor(bad, { onBadRow: "skip", stats }));
    assert.equal(
      docs.map((d) => d.doc),
      ["Good", "Later"],
    );
    assert.ok(stats.badRows >= 2, "the tag and the orphan </doc> after it are both counted");

    const unclosed = writeText(dir, "wiki_01", '<doc id="5" url="u" title="Open">\nOpen\nNo end.\n');
    await all(readWikiExtractor(unclosed)).then(
      () => assert.unreachable("an unclosed article must fail"),
      (e: unknown) =>
        assert.match((e as Error).message, new RegExp(`^${unclosed}:1: article "Open" \\(id 5\\) is not closed by </doc> before the end of the file`)),
    );
  } finally {
    cleanup();
  }
});

test("WikiExtractor: a folder with only compressed output, or none, says so", async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, "AA"));
    writeText(dir, "AA/wiki_00.bz2", "BZh9");
    await wikiExtractorFiles(dir).then(
      () => assert.unreachable("no readable file"),
      (e: unknown) =>
        assert.match(
          (e as Error).message,
          /no WikiExtractor files \(wiki_NN\).*1 compressed file\(s\) such as AA\/wiki_00\.bz2: run WikiExtractor without --compress/,
        ),
    );
    await wikiExtractorFiles(join(dir, "missing")).then(
      () => assert.unreachable("missing"),
      (e: unknown) => assert.match((e as Error).message, /missing: not found/),
    );
  } finally {
    cleanup();
  }
});

test("format: wikiextractor in data.datasets makes a text dataset of the user's WikiExtractor output", async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, "dump"));
    tree(join(dir, "dump"));
    registerConfigDatasets([{ name: "mywiki", format: "wikiextractor", files: { train: "dump" } }]);
    const texts = await all(splitTexts(parseSplitRef("mywiki", dir), {}));
    assert.is(texts.length, 3);
    assert.throws(
      () => registerConfigDatasets([{ name: "mywiki2", format: "wikiextractor", files: { train: "dump" }, columns: { text: 0 } }]),
      /drop its columns/,
    );
  } finally {
    cleanup();
  }
});

test("streamed LM text: the same rows, holdout and vocabulary counts as the in-memory path, whole articles held out", async () => {
  const texts = Array.from({ length: 300 }, (_, i) => `Article ${i % 250} says word${i % 7} and more${i % 3} .\nA second paragraph ${i} .`);
  const tokenizer = new Tokenizer({ maxLen: null });
  const heldOut = lmHoldout(0.1, 7);
  const exclude = new Set([texts[3]]);
  const counter = new TokenCounter();
  const collector = new LmTextCollector(tokenizer, counter);
  const counts = await collector.addCorpus(
    (async function* () {
      yield* texts;
    })(),
    heldOut,
    (t) => exclude.has(t),
  );
  // the in-memory reference: lmCorpus's holdout, then the excluded texts dropped from training
  const ref = lmCorpus(texts, { validFraction: 0.1, seed: 7 });
  const refTrain = ref.train.filter((t) => !exclude.has(t));
  assert.ok(ref.valid.length > 0 && refTrain.length > 0);
  assert.is(counts.valid, ref.valid.length);
  assert.is(counts.train, refTrain.length);
  assert.is(counts.dropped, exclude.has(texts[3]) && !heldOut(texts[3]) ? 1 : 0);
  const refCounter = new TokenCounter();
  for (const t of refTrain) refCounter.add(tokenizer.tokenize(t));
  assert.equal(new Map([...counter.counts].sort()), new Map([...refCounter.counts].sort()));
  const vocab = Vocab.fromCounts(counter.counts, { minFreq: 2, maxSize: 100 });
  const got = collector.finish(vocab);
  assert.equal(got.train, numericaliseTexts(refTrain, vocab, tokenizer).ragged);
  assert.equal(got.valid, numericaliseTexts(ref.valid, vocab, tokenizer).ragged);
  // a text's side depends on the text and the seed only: each held-out text is whole on the validation side
  for (const t of ref.valid) assert.ok(heldOut(t));
  // the holdout is seeded: the same seed picks the same articles, another seed others, at about the same share
  const picked = (seed: number) => texts.filter(lmHoldout(0.1, seed));
  assert.equal(picked(7), texts.filter(heldOut));
  const other = picked(8);
  assert.not.equal(other, picked(7));
  assert.ok(other.length > 10 && other.length < 50, `${other.length} of 300 held out at 0.1`);
});

test("concatRagged: rows of a then rows of b", () => {
  const a = { offsets: Int32Array.from([0, 2, 3]), ids: Int32Array.from([1, 2, 3]) };
  const b = { offsets: Int32Array.from([0, 1]), ids: Int32Array.from([9]) };
  assert.equal(concatRagged(a, b), { offsets: Int32Array.from([0, 2, 3, 4]), ids: Int32Array.from([1, 2, 3, 9]) });
  assert.equal(concatRagged(b, { offsets: Int32Array.from([0]), ids: new Int32Array(0) }), b);
});

testWithData(test, "wikipedia (built in): the shared excellent and general splits read as 4,007 + 1,981 articles", async (shared) => {
  for (const [split, n] of [
    ["excellent", 4007],
    ["general", 1981],
  ] as const) {
    const ref = parseSplitRef(`wikipedia:${split}`, shared);
    const stats = emptyReadStats();
    let count = 0;
    for await (const r of ref.dataset.kind === "text" ? ref.dataset.read(ref.path, { stats }) : []) {
      count++;
      assert.ok(r.doc !== undefined && r.text.startsWith(r.doc), "an article starts with its title");
    }
    assert.is(count, n, split);
    assert.is(stats.badRows, 0);
  }
});

test.run();
