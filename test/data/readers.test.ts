import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BadRowError, emptyReadStats } from "../../ts/data/errors.js";
import { readBrown, readSotu } from "../../ts/data/readers/corpora.js";
import { readCaptionGroups } from "../../ts/data/readers/groups.js";
import { readCadTsv, readNliJsonl, readXnliTsv } from "../../ts/data/readers/nli.js";
import { readSick, readStsBenchmark, readStsInputGs } from "../../ts/data/readers/similarity.js";
import { readTabularPairs, readTabularText } from "../../ts/data/readers/tabular.js";
import { readPlainText, readWikiText } from "../../ts/data/readers/text.js";
import type { TextRecord } from "../../ts/data/records.js";
import { testWithData } from "../helpers.js";
import { tempDir, writeText } from "./helpers.js";

async function all<T>(gen: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, pattern);
    return e as Error;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
  throw new Error("unreachable");
}

testWithData(test, "SNLI jsonl: real dev split has 9,842 pairs with the three labels", async (shared) => {
  const stats = emptyReadStats();
  const rows = await all(readNliJsonl(join(shared, "snli_1.0/snli_1.0_dev.jsonl"), { stats }));
  assert.is(rows.length, 9842);
  assert.is(stats.records, 9842);
  assert.equal(new Set(rows.map((r) => r.label)), new Set(["entailment", "neutral", "contradiction"]));
  assert.is(rows[0].s1, "Two women are embracing while holding to go packages .");
});

testWithData(test, "SICK, STS-B and XNLI: real files give the official counts", async (shared) => {
  const sick = await all(readSick(join(shared, "sick/SICK_train.txt")));
  assert.is(sick.length, 4500);
  assert.is(sick[0].score, 4.5);
  assert.is(sick[0].label, "neutral");
  assert.is((await all(readSick(join(shared, "sick/SICK_trial.txt")))).length, 500);
  const stsTrain = await all(readStsBenchmark(join(shared, "stsbenchmark/sts-train.csv")));
  assert.is(stsTrain.length, 5749);
  assert.is((await all(readStsBenchmark(join(shared, "stsbenchmark/sts-dev.csv")))).length, 1500);
  assert.ok(stsTrain.every((r) => r.score! >= 0 && r.score! <= 5));
  const xnli = await all(readXnliTsv(join(shared, "xnli_en/xnli_validation_en.tsv")));
  assert.is(xnli.length, 2490);
  assert.is(xnli.filter((r) => r.label === "contradiction").length, 830);
});

testWithData(
  test,
  "CAD: the real files read whole, and the sentences pandas quoted come back as SNLI wrote them",
  async (shared) => {
    const original = await all(readCadTsv(join(shared, "cad/NLI/original/train.tsv")));
    assert.is(original.length, 1666);
    const quoted = original.find((r) => r.s1.includes("TheFaceShop"));
    assert.is(quoted?.s1, 'A boy stands outside of "TheFaceShop" looking at an electronic device, while a man leans against the corner of the store.');
    const combined = await all(readCadTsv(join(shared, "cad/NLI/all_combined/train.tsv")));
    assert.is(combined.length, 8330);
    assert.ok(combined.every((r) => !r.s1.startsWith('"') && !r.s1.includes('""')));
  },
  ["cad/NLI/original/train.tsv", "cad/NLI/all_combined/train.tsv"],
);

testWithData(test, "WikiText: blank lines skipped, headings and markers kept for the tokenizer", async (shared) => {
  const rows = await all(readWikiText(join(shared, "wikitext-2/wiki.valid.tokens")));
  assert.is(rows[0].text, "= Homarus gammarus =");
  assert.ok(rows.every((r) => r.text.trim() !== ""));
  assert.ok(rows.some((r) => r.text.includes("@-@")));
});

test("NLI jsonl: gold label '-' dropped and counted; bad JSON names file and line", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = writeText(
      dir,
      "nli.jsonl",
      [
        JSON.stringify({ gold_label: "entailment", sentence1: "A b .", sentence2: "C d .", pairID: "p1" }),
        JSON.stringify({ gold_label: "-", sentence1: "x", sentence2: "y" }),
        "{not json",
        JSON.stringify({ gold_label: "maybe", sentence1: "x", sentence2: "y" }),
        JSON.stringify({ gold_label: "neutral", sentence1: 3, sentence2: "y" }),
        JSON.stringify({ gold_label: "contradiction", sentence1: "e", sentence2: "f", genre: "fiction" }),
      ].join("\n"),
    );
    const err = await rejects(all(readNliJsonl(p)), /nli\.jsonl:3: not valid JSON/);
    assert.instance(err, BadRowError);
    assert.is((err as BadRowError).line, 3);
    const stats = emptyReadStats();
    const rows = await all(readNliJsonl(p, { onBadRow: "skip", stats }));
    assert.equal(
      rows.map((r) => r.id),
      ["p1", "6"],
    );
    assert.is(rows[1].genre, "fiction");
    assert.is(stats.badRows, 3);
    assert.equal(stats.dropped, { "gold_label -": 1 });
    assert.equal(
      stats.badExamples.map((b) => b.line),
      [3, 4, 5],
    );
    assert.match(stats.badExamples[1].reason, /unknown gold_label "maybe"/);
  } finally {
    cleanup();
  }
});

test("SICK: CRLF and BOM tolerated; bad score and label reported with line", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = writeText(
      dir,
      "SICK.txt",
      "\ufeffpair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\r\n1\tA b\tC d\t4.5\tNEUTRAL\r\n2\tA\tB\tlots\tENTAILMENT\r\n3\tA\tB\t3\tPERHAPS\r\n",
    );
    await rejects(all(readSick(p)), /SICK\.txt:3: relatedness_score "lots"/);
    const stats = emptyReadStats();
    const rows = await all(readSick(p, { onBadRow: "skip", stats }));
    assert.equal(rows, [{ id: "1", s1: "A b", s2: "C d", score: 4.5, label: "neutral", line: 2 }]);
    assert.is(stats.badRows, 2);
    const noHeader = writeText(dir, "bad.txt", "a\tb\n");
    await rejects(all(readSick(noHeader)), /bad\.txt:1: header lacks column\(s\) pair_ID/);
  } finally {
    cleanup();
  }
});

test("STS-B: 7 or 9 columns, bare quotes kept, short rows and bad scores reported", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = writeText(
      dir,
      "sts.csv",
      [
        'main-news\tf\t2012\t0001\t3.5\tHe said "hi.\tShe said "bye".',
        "main-news\tf\t2012\t0002\t1.0\tA\tB\tsrc1\tsrc2",
        "main-news\tf\t2012\t0003\t7\tA\tB",
        "main-news\tf\t2012\t0004\t2.0\tonly one sentence",
      ].join("\n"),
    );
    await rejects(all(readStsBenchmark(p)), /sts\.csv:3: score "7" is not a number in \[0, 5\]/);
    const stats = emptyReadStats();
    const rows = await all(readStsBenchmark(p, { onBadRow: "skip", stats }));
    assert.is(rows.length, 2);
    assert.is(rows[0].s1, 'He said "hi.');
    assert.is(rows[0].s2, 'She said "bye".');
    assert.is(rows[1].s2, "B");
    assert.equal(
      stats.badExamples.map((b) => b.line),
      [3, 4],
    );
  } finally {
    cleanup();
  }
});

test("STS12-16: blank gold scores are unscored and skipped; line counts must match", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = writeText(dir, "STS.input.x.txt", "A b\tC d\nE\tF\nG\tH\n");
    const gs = writeText(dir, "STS.gs.x.txt", "4.2\n\n1\n");
    const stats = emptyReadStats();
    const rows = await all(readStsInputGs(input, gs, { stats }));
    assert.equal(
      rows.map((r) => [r.s1, r.score]),
      [
        ["A b", 4.2],
        ["G", 1],
      ],
    );
    assert.is(stats.dropped.unscored, 1);
    const short = writeText(dir, "STS.gs.y.txt", "1\n");
    await rejects(all(readStsInputGs(input, short)), /has 1 lines but .* has 3/);
  } finally {
    cleanup();
  }
});

test("XNLI: numeric labels mapped, unknown label reported", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = writeText(dir, "x.tsv", "id\tpremise\thypothesis\tlabel\n0\tP\tH\t2\n1\tP\tH\t5\n");
    await rejects(all(readXnliTsv(p)), /x\.tsv:3: unknown label "5"/);
    const rows = await all(readXnliTsv(p, { onBadRow: "skip" }));
    assert.is(rows[0].label, "contradiction");
  } finally {
    cleanup();
  }
});

test("CAD: pandas-quoted sentences unquoted, bare quotes kept, '-' dropped and counted, bad rows named by file:line", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const rows = [
      "sentence1\tsentence2\tgold_label",
      '"A sign reads ""Programmes & Ice Cream."\tA sign.\tentailment', // a quote left open in SNLI itself
      'A "bare" quote stays.\t"Quoted ""fully"""\tneutral',
      "A dog runs.\tA cat sleeps.\t-",
      "Too few columns.\tentailment",
      "A man sings.\tA man is silent.\tmaybe",
      "A man sings.\t \tcontradiction",
      "A man sings.\tA person makes music.\tentailment",
    ];
    const p = writeText(dir, "train.tsv", `${rows.join("\n")}\n`);
    await rejects(all(readCadTsv(p)), /train\.tsv:5: expected at least 3 tab-separated columns, found 2/);
    const stats = emptyReadStats();
    const got = await all(readCadTsv(p, { onBadRow: "skip", stats }));
    assert.equal(
      got.map((r) => [r.s1, r.s2, r.label, r.id]),
      [
        ['A sign reads "Programmes & Ice Cream.', "A sign.", "entailment", "2"],
        ['A "bare" quote stays.', 'Quoted "fully"', "neutral", "3"],
        ["A man sings.", "A person makes music.", "entailment", "8"],
      ],
    );
    assert.equal(stats.dropped, { "gold_label -": 1 });
    assert.equal(
      stats.badExamples.map((b) => [b.line, b.reason]),
      [
        [5, "expected at least 3 tab-separated columns, found 2"],
        [6, 'unknown label "maybe"'],
        [7, "empty sentence2"],
      ],
    );
    const noLabel = writeText(dir, "nolabel.tsv", "sentence1\tsentence2\nA\tB\n");
    await rejects(all(readCadTsv(noLabel)), /nolabel\.tsv:1: header lacks column\(s\) gold_label/);
  } finally {
    cleanup();
  }
});

test("caption groups: short rows and groups of fewer than two captions stop with file:line, or are skipped and counted", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const rows = [
      "image\tcaption1\tcaption2\tcaption3",
      'img1.jpg\tA dog runs.\tA "fast" dog.\t',
      "img2.jpg\tOnly two columns.",
      "img3.jpg\tOne caption.\t \t",
      "",
      "img4.jpg\tTwo men talk.\tMen chat.\tA conversation.",
    ];
    const p = writeText(dir, "captions.tsv", `${rows.join("\n")}\n`);
    await rejects(all(readCaptionGroups(p)), /captions\.tsv:3: expected 4 tab-separated columns, found 2/);
    const onlyThin = writeText(dir, "thin.tsv", `${rows[0]}\n${rows[3]}\n`);
    await rejects(all(readCaptionGroups(onlyThin)), /thin\.tsv:2: a group needs two or more non-empty captions, found 1/);
    const stats = emptyReadStats();
    const got = await all(readCaptionGroups(p, { onBadRow: "skip", stats }));
    assert.equal(
      got.map((g) => [g.id, g.sentences, g.line]),
      [
        ["img1.jpg", ["A dog runs.", 'A "fast" dog.'], 2],
        ["img4.jpg", ["Two men talk.", "Men chat.", "A conversation."], 6],
      ],
    );
    assert.is(stats.records, 2);
    assert.is(stats.badRows, 2);
    assert.equal(
      stats.badExamples.map((b) => b.line),
      [3, 4],
    );
    const badHeader = writeText(dir, "header.tsv", "id\tcaption1\tcaption2\nx\ta\tb\n");
    await rejects(all(readCaptionGroups(badHeader)), /header\.tsv:1: header needs an image column and two or more caption columns/);
  } finally {
    cleanup();
  }
});

test("plain text: one record per non-blank line, with line numbers", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = writeText(dir, "t.txt", "first\n\n  \nsecond\r\nthird");
    const rows = await all(readPlainText(p));
    assert.equal(
      rows.map((r: TextRecord) => [r.text, r.line]),
      [
        ["first", 1],
        ["second", 4],
        ["third", 5],
      ],
    );
  } finally {
    cleanup();
  }
});

test("tabular: CSV with quotes and newlines in fields, TSV by index, JSONL by key, label maps", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const csv = writeText(dir, "q.csv", 'id,question1,question2,is_duplicate\n1,"Is it ""ok""?","Line one\nline two",1\n2,a,b,0\n3,"x"y,z,1\n4,c,d,7\n');
    const mapping = {
      format: "csv" as const,
      columns: { id: "id", s1: "question1", s2: "question2", label: "is_duplicate" },
      labels: { "1": "entailment" as const, "0": "neutral" as const },
    };
    await rejects(all(readTabularPairs(csv, mapping)), /q\.csv:5: unexpected "y" after a closing quote/);
    const stats = emptyReadStats();
    const rows = await all(readTabularPairs(csv, mapping, { onBadRow: "skip", stats }));
    assert.equal(
      rows.map((r) => [r.id, r.s1, r.s2, r.label]),
      [
        ["1", 'Is it "ok"?', "Line one\nline two", "entailment"],
        ["2", "a", "b", "neutral"],
      ],
    );
    assert.is(stats.badRows, 2);
    const tsv = writeText(dir, "t.tsv", "x\t0.5\ty\n");
    const t = await all(readTabularPairs(tsv, { format: "tsv", header: false, columns: { s1: 0, s2: 2, score: 1 } }));
    assert.equal([t[0].s1, t[0].s2, t[0].score], ["x", "y", 0.5]);
    const jl = writeText(dir, "t.jsonl", '{"body": "hello"}\n{"other": 1}\n');
    await rejects(all(readTabularText(jl, { format: "jsonl", columns: { text: "body" } })), /t\.jsonl:2: missing column "body"/);
    await rejects(all(readTabularPairs(csv, { format: "csv", columns: { s1: "nope", s2: "question2" } })), /header lacks column "nope"/);
    // a row short of its label column is named by its width, as the built-in readers do (was: unknown label "")
    const short = writeText(dir, "short.tsv", "premise\thypothesis\tlabel\nA dog runs .\tAn animal moves .\tentailment\nA cat sits .\tA cat rests .\n");
    await rejects(
      all(readTabularPairs(short, { format: "tsv", columns: { s1: "premise", s2: "hypothesis", label: "label" } })),
      /short\.tsv:3: expected 3 columns, found 2/,
    );
    const noHeader = writeText(dir, "nh.tsv", "a\tb\n");
    await rejects(
      all(readTabularPairs(noHeader, { format: "tsv", header: false, columns: { s1: 0, s2: 1, label: 2 } })),
      /nh\.tsv:1: expected at least 3 columns, found 2/,
    );
    // a row wider than its header would cut a sentence at the tab inside it: refused, not read short
    const wide = writeText(dir, "wide.tsv", "premise\thypothesis\nA dog\truns .\tAn animal moves .\n");
    await rejects(
      all(readTabularPairs(wide, { format: "tsv", columns: { s1: "premise", s2: "hypothesis" } })),
      /wide\.tsv:2: expected 2 columns as the header names, found 3 \(a tab inside a field\?\)/,
    );
    // a trailing tab, and a header naming a column twice, are no wider rows
    const fine = writeText(dir, "fine.tsv", "premise\thypothesis\tnote\tnote\nA dog runs .\tAn animal moves .\ta\tb\t\n");
    assert.equal(
      (await all(readTabularPairs(fine, { format: "tsv", columns: { s1: "premise", s2: "hypothesis" } }))).map((r) => [r.s1, r.s2]),
      [["A dog runs .", "An animal moves ."]],
    );
    // a value that is there but is not text is named as such, not as a missing column
    const listValue = writeText(dir, "l.jsonl", '{"a": ["x"], "b": "y"}\n{"a": "x", "b": null}\n');
    const jsonStats = emptyReadStats();
    await rejects(all(readTabularPairs(listValue, { format: "jsonl", columns: { s1: "a", s2: "b" } })), /l\.jsonl:1: column "a" holds a list, not text/);
    assert.equal(await all(readTabularPairs(listValue, { format: "jsonl", columns: { s1: "a", s2: "b" } }, { onBadRow: "skip", stats: jsonStats })), []);
    assert.equal(jsonStats.badExamples, [
      { line: 1, reason: 'column "a" holds a list, not text' },
      { line: 2, reason: 'column "b" holds null, not text' },
    ]);
    const jlPairs = writeText(dir, "p.jsonl", '{"a": "x", "b": "y"}\n');
    await rejects(all(readTabularPairs(jlPairs, { format: "jsonl", columns: { s1: "a", s2: "b", label: "gold" } })), /p\.jsonl:1: missing column "gold"/);
  } finally {
    cleanup();
  }
});

test("lines: invalid UTF-8 is a bad row with its line, never U+FFFD; chunk boundaries, CRLF and BOM kept right", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const filler = "x".repeat(1000);
    const lines = Array.from({ length: 3000 }, (_, i) => Buffer.from(`${i + 1} ${filler} é\r\n`)); // ~3 MB: several read chunks
    lines[1499] = Buffer.concat([Buffer.from("1500 bad "), Buffer.from([0xc3, 0x28]), Buffer.from("\n")]);
    const p = join(dir, "big.txt");
    writeFileSync(p, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), ...lines]));
    await rejects(all(readPlainText(p)), /big\.txt:1500: invalid UTF-8 at byte 10 \(0xc3\)/);
    const stats = emptyReadStats();
    const rows = await all(readPlainText(p, { onBadRow: "skip", stats }));
    assert.is(rows.length, 2999);
    assert.is(stats.badRows, 1);
    assert.ok(
      rows.every((r: TextRecord) => r.text === `${r.line} ${filler} é`),
      "a line was split, merged, mis-numbered or kept its CR/BOM",
    );
    assert.not.ok(rows.some((r: TextRecord) => r.text.includes("\ufffd")));
    // a folder where a file belongs is named by its path (node's own error names none)
    mkdirSync(join(dir, "a-folder.tsv"));
    await rejects(all(readPlainText(join(dir, "a-folder.tsv"))), new RegExp(`${join(dir, "a-folder.tsv")}: a folder, not a file`));
    await rejects(all(readPlainText(join(dir, "nothere.txt"))), /nothere\.txt: no such file/);
  } finally {
    cleanup();
  }
});

test("npm corpora: Brown sentences without tags, SOTU addresses in year order", async () => {
  let n = 0;
  let first: TextRecord | undefined;
  for await (const r of readBrown()) {
    first ??= r;
    n++;
  }
  assert.is(n, 57340);
  assert.ok(first!.text.startsWith('The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced " no evidence "'));
  assert.is(first!.doc, "ca01");
  const sotu: TextRecord[] = [];
  for await (const r of readSotu()) sotu.push(r);
  assert.ok(sotu.length > 200);
  assert.match(sotu[0].doc!, /^1790_george_washington/);
  assert.ok(sotu[0].text.startsWith("Fellow-Citizens of the Senate"));
});

test.run();
