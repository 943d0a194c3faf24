/**
 * The training data plan: the seeded holdout keeps whole premise groups out of training, extra LM
 * text may not be a validation or test split, and resume's log truncation is exact and atomic.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ConfigError, loadConfig } from "../../ts/config/load.js";
import { ConfigSchema } from "../../ts/config/schema.js";
import { DATASETS, parseSplitRef } from "../../ts/data/datasets.js";
import { DataError } from "../../ts/data/errors.js";
import { HOLDOUT_SEED, pairHoldout, premiseHoldout } from "../../ts/data/holdout.js";
import { projectRoot } from "../../ts/paths.js";
import { truncateLog } from "../../ts/train/checkpoints.js";
import { loadTrainingData } from "../../ts/train/data.js";
import { makeZip } from "../data/helpers.js";
import { tempFolder, testWithData } from "../helpers.js";

const tiny = loadConfig({ file: join(projectRoot, "configs", "tiny.yaml") });

function checkHoldout(premises: string[], fraction: number) {
  const a = premiseHoldout(premises, fraction, HOLDOUT_SEED);
  const b = premiseHoldout(premises, fraction, HOLDOUT_SEED);
  assert.equal(Array.from(a.validRows), Array.from(b.validRows), "same seed, same split");
  assert.is(a.validRows.length + a.trainRows.length, premises.length);
  const trained = new Set(Array.from(a.trainRows, (i) => premises[i]));
  for (const i of a.validRows) assert.not.ok(trained.has(premises[i]), `held-out premise ${premises[i]} also trains`);
  return a;
}

test("premiseHoldout: whole premise groups, about the fraction, deterministic", () => {
  const premises = Array.from({ length: 3000 }, (_, i) => `premise ${Math.floor(i / 3) % 700}`); // groups of 3 and 6
  const a = checkHoldout(premises, 0.1);
  assert.ok(a.validRows.length >= 300 && a.validRows.length < 306, `${a.validRows.length}`);
  const c = premiseHoldout(premises, 0.1, HOLDOUT_SEED + 1);
  assert.not.equal(Array.from(c.validRows), Array.from(a.validRows), "another seed, another split");
});

testWithData(test, "premiseHoldout on SNLI dev: no held-out premise among the training rows", async (dataDir) => {
  const ref = parseSplitRef("snli:dev", dataDir);
  const premises: string[] = [];
  if (ref.dataset.kind !== "pairs") throw new Error("snli is a pair dataset");
  for await (const r of ref.dataset.read(ref.path!, { onBadRow: "error" })) premises.push(r.s1);
  const a = checkHoldout(premises, 0.1);
  assert.ok(Math.abs(a.validRows.length - Math.round(0.1 * premises.length)) < 10, `${a.validRows.length}`);
});

/** Rows of the held-out side that share a sentence with a training row. */
function leaks(pairs: { s1: string; s2: string }[], h: { validRows: Int32Array; trainRows: Int32Array }): number {
  const trained = new Set(Array.from(h.trainRows).flatMap((i) => [pairs[i].s1, pairs[i].s2]));
  return Array.from(h.validRows).filter((i) => trained.has(pairs[i].s1) || trained.has(pairs[i].s2)).length;
}

test("pairHoldout by family: a pair and its edits (sharing either side, directly or through others) stay together", () => {
  // families of 5 as in counterfactual SNLI: (P, H), two edits of P with H, two edits of H with P
  const pairs = Array.from({ length: 200 }, (_, f) => [
    { s1: `P${f}`, s2: `H${f}` },
    { s1: `P${f}a`, s2: `H${f}` },
    { s1: `P${f}b`, s2: `H${f}` },
    { s1: `P${f}`, s2: `H${f}a` },
    { s1: `P${f}`, s2: `H${f}b` },
  ]).flat();
  const byFamily = pairHoldout(pairs, "family", 0.1, HOLDOUT_SEED);
  assert.is(leaks(pairs, byFamily), 0);
  assert.is(byFamily.validRows.length, 100, "whole families of 5, about a tenth");
  assert.ok(leaks(pairs, pairHoldout(pairs, "premise", 0.1, HOLDOUT_SEED)) > 50, "by premise, edits of held-out pairs train");
});

testWithData(test, "cad holds out by family: no held-out pair shares a sentence with a training pair", async (dataDir) => {
  const ref = parseSplitRef("cad", dataDir);
  assert.is(ref.dataset.holdoutBy, "family");
  if (ref.dataset.kind !== "pairs") throw new Error("cad is a pair dataset");
  const pairs: { s1: string; s2: string }[] = [];
  for await (const r of ref.dataset.read(ref.path!, { onBadRow: "error" })) pairs.push(r);
  const h = pairHoldout(pairs, "family", 0.1, HOLDOUT_SEED);
  assert.is(leaks(pairs, h), 0);
  assert.ok(Math.abs(h.validRows.length - 833) < 10, `${h.validRows.length} held out`);
});

testWithData(test, "data.subsample: a seeded share of a task dataset's training pairs, its validation rows untouched", async (dataDir) => {
  const cfg = (subsample?: Record<string, number>) =>
    ConfigSchema.parse({
      ...tiny,
      data: { ...tiny.data, ...(subsample ? { subsample } : {}) },
      stages: [
        {
          tasks: [
            { dataset: "cad", objective: "siamese" },
            { dataset: "snli", objective: "siamese" },
          ],
        },
      ],
    });
  const all = (await loadTrainingData(cfg(), { dataDir })).plan.tasks[0];
  const quarter = (await loadTrainingData(cfg({ "cad:train": 0.25 }), { dataDir })).plan.tasks[0];
  assert.is(quarter.rows, Math.round(all.rows / 4));
  assert.is(quarter.heldOut, all.heldOut);
  const again = await loadTrainingData(cfg({ cad: 0.25 }), { dataDir });
  assert.is(again.plan.tasks[0].rows, quarter.rows, "cad and cad:train name the same split");
  const err = await loadTrainingData(cfg({ "sick:train": 0.5 }), { dataDir }).then(
    () => null,
    (e: Error) => e,
  );
  assert.match(err?.message ?? "", /data\.subsample\.sick:train: no task trains on sick:train/);
});

test("data.lmText may not be the validation split or a dev/test split of the pairs", async () => {
  for (const ref of ["snli:dev", "snli:validation", "snli:test"]) {
    const cfg = { ...tiny, data: { ...tiny.data, lmText: ["wikitext-2:train", ref] } };
    const err = await loadTrainingData(cfg, { dataDir: tempFolder("bridge-nodata-") }).then(
      () => null,
      (e: Error) => e,
    );
    assert.instance(err, ConfigError, ref);
    assert.match(err!.message, "data.lmText[1]");
    assert.match(err!.message, ref);
  }
  const unknown = await loadTrainingData({ ...tiny, data: { ...tiny.data, lmText: ["nope"] } }, { dataDir: tempFolder("bridge-nodata-") }).catch(
    (e: Error) => e,
  );
  assert.match((unknown as Error).message, 'data.lmText[0]: unknown dataset "nope"');
  // one split that trains and validates needs a share held out for validation
  const none = ConfigSchema.safeParse({ ...tiny, data: { ...tiny.data, holdout: 0 } });
  assert.not.ok(none.success, "data.holdout 0 was accepted");
});

const pairRows = (n: number, tag: string) =>
  `${Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      gold_label: ["entailment", "neutral", "contradiction"][i % 3],
      sentence1: `A ${tag} premise number ${i} .`,
      sentence2: `Some hypothesis ${i % 7} .`,
    }),
  ).join("\n")}\n`;

async function loadError(cfg: typeof tiny, opts: Parameters<typeof loadTrainingData>[1]): Promise<Error | null> {
  return loadTrainingData(cfg, opts).then(
    () => null,
    (e: Error) => e,
  );
}

test("data.pairs and its split fields: an error names the field written (a NAME:SPLIT, a wrong case, a split that is not there)", async () => {
  for (const [data, message] of [
    [{ pairs: "snli:dev" }, 'data.pairs: "snli:dev" is a dataset name only; give "snli" and its split in data.trainSplit (dev)'],
    [{ pairs: "SNLI" }, 'data.pairs: unknown dataset "SNLI"; known: snli, '],
    [{ validSplit: "devv" }, 'data.validSplit: snli has no split "devv"; its splits: train, dev, test'],
    [{ trainSplit: "training" }, 'data.trainSplit: snli has no split "training"'],
  ] as const) {
    const err = await loadError(ConfigSchema.parse({ ...tiny, data: { ...tiny.data, ...data } }), {});
    assert.ok(err, JSON.stringify(data));
    assert.match(err!.message, message);
  }
});

test("model.cutoffs past the vocabulary, and a minFreq that keeps no word, are named when the data has loaded (was: the backend's build, after the run folder existed)", async () => {
  const dir = tempFolder("bridge-cutoffs-");
  try {
    mkdirSync(join(dir, "snli_1.0"));
    writeFileSync(join(dir, "snli_1.0", "snli_1.0_train.jsonl"), pairRows(60, "train"));
    writeFileSync(join(dir, "snli_1.0", "snli_1.0_dev.jsonl"), pairRows(20, "dev"));
    const cfg = (cutoffs: number[]) => ConfigSchema.parse({ ...tiny, model: { ...tiny.model, softmax: "adaptive", cutoffs } });
    const err = await loadError(cfg([10, 100000]), { dataDir: dir });
    assert.instance(err, ConfigError);
    assert.match(err!.message, /^model\.cutoffs \[10, 100000\]: the vocabulary has \d+ tokens; each cutoff must be below that$/);
    assert.is(await loadError(cfg([10, 20]), { dataDir: dir }), null);
    // a minFreq no word reaches leaves only the special tokens: named, with the count that would do
    const rare = await loadError(ConfigSchema.parse({ ...tiny, vocab: { ...tiny.vocab, minFreq: 100000 } }), { dataDir: dir });
    assert.instance(rare, ConfigError);
    assert.match(rare!.message, /^vocab\.minFreq 100000: no word of the training text occurs that often \(the most frequent one: \d+ times\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an empty training split fails early in the data layer, naming the file (no LmStream error later)", async () => {
  const dir = tempFolder("bridge-empty-");
  try {
    mkdirSync(join(dir, "snli_1.0"));
    writeFileSync(join(dir, "snli_1.0", "snli_1.0_train.jsonl"), "");
    writeFileSync(join(dir, "snli_1.0", "snli_1.0_dev.jsonl"), pairRows(20, "dev"));
    const err = await loadError(tiny, { dataDir: dir });
    assert.instance(err, DataError);
    assert.match(err!.message, /snli_1\.0_train\.jsonl: no usable pairs \(the file has no data rows\)/);
    writeFileSync(join(dir, "snli_1.0", "snli_1.0_train.jsonl"), '{"gold_label":"neutral","sentence1":"","sentence2":"x"}\n');
    const skipped = await loadError(tiny, { dataDir: dir, onBadRow: "skip" });
    assert.match(skipped!.message, /snli_1\.0_train\.jsonl: no usable pairs \(1 bad row\(s\) skipped, e\.g\. line 1: empty sentence1\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("data.datasets: the user's own TSV pairs, registered from the config, train as data.pairs", async () => {
  const dir = tempFolder("bridge-userdata-");
  try {
    const tsv = (n: number) =>
      "premise\thypothesis\tlabel\n" +
      Array.from({ length: n }, (_, i) => `The cat ${i} sits .\tA cat ${i % 5} rests .\t${["entailment", "neutral", "contradiction"][i % 3]}`).join("\n") +
      "\n";
    writeFileSync(join(dir, "train.tsv"), tsv(40));
    writeFileSync(join(dir, "dev.tsv"), tsv(9));
    const cfg = ConfigSchema.parse({
      ...tiny,
      data: {
        pairs: "my-pairs",
        datasets: [
          {
            name: "my-pairs",
            format: "tsv",
            files: { train: join(dir, "train.tsv"), dev: "dev.tsv" },
            columns: { s1: "premise", s2: "hypothesis", label: "label" },
          },
        ],
      },
    });
    const data = await loadTrainingData(cfg, { dataDir: dir, cacheDir: join(dir, "cache") });
    assert.equal([data.plan.train.split, data.plan.train.rows, data.plan.valid.split, data.plan.valid.rows], ["my-pairs:train", 40, "my-pairs:dev", 9]);
    assert.is(data.pairs.train.size, 40);
    assert.ok(data.vocab.has("cat"));
    const bad = ConfigSchema.safeParse({ ...tiny, data: { datasets: [{ name: "x", format: "tsv", files: { dev: "d.tsv" }, columns: { s1: 0 } }] } });
    assert.not.ok(bad.success, "a dataset without a train file or s2 column was accepted");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a config's own dataset: a missing train file is named (never a quiet fallback to dev); one file validates on a held-out share", async () => {
  const dir = tempFolder("bridge-userdata-");
  const tsv = (n: number) =>
    "premise\thypothesis\tlabel\n" +
    Array.from({ length: n }, (_, i) => `The dog ${i} runs .\tA dog ${i % 7} moves .\t${["entailment", "neutral", "contradiction"][i % 3]}`).join("\n") +
    "\n";
  writeFileSync(join(dir, "only.tsv"), tsv(60));
  const columns = { s1: "premise", s2: "hypothesis", label: "label" };
  const typo = ConfigSchema.parse({
    ...tiny,
    data: {
      pairs: "typo-pairs",
      datasets: [{ name: "typo-pairs", format: "tsv", files: { train: join(dir, "nothere.tsv"), dev: join(dir, "only.tsv") }, columns }],
    },
  });
  const err = await loadError(typo, { dataDir: dir, cacheDir: join(dir, "cache"), download: false });
  assert.instance(err, DataError);
  assert.match(err!.message, `data.datasets: typo-pairs's train file ${join(dir, "nothere.tsv")} does not exist`);
  const one = ConfigSchema.parse({
    ...tiny,
    data: { pairs: "one-file", datasets: [{ name: "one-file", format: "tsv", files: { train: join(dir, "only.tsv") }, columns }] },
  });
  const data = await loadTrainingData(one, { dataDir: dir, cacheDir: join(dir, "cache") });
  const { train, valid } = data.plan;
  assert.equal([train.split, valid.split], ["one-file:train", "one-file:train"]);
  assert.ok(valid.rows > 0 && train.rows + valid.rows === 60, `${train.rows} + ${valid.rows}`);
  assert.ok(
    data.plan.notes.some((n) => n.includes("one-file has no dev file (data.validSplit)")),
    data.plan.notes.join("\n"),
  );
  assert.ok(
    data.plan.notes.some((n) => n.startsWith("training on one-file:train less a fixed, seeded")),
    data.plan.notes.join("\n"),
  );
  // data.validSplit naming the training split asks for the same held-out share, for a built-in dataset too
  mkdirSync(join(dir, "snli_1.0"));
  writeFileSync(join(dir, "snli_1.0", "snli_1.0_train.jsonl"), pairRows(60, "train"));
  const own = await loadTrainingData(ConfigSchema.parse({ ...tiny, data: { ...tiny.data, validSplit: "train" } }), {
    dataDir: dir,
    cacheDir: join(dir, "cache"),
  });
  assert.equal([own.plan.train.split, own.plan.valid.split], ["snli:train", "snli:train"]);
  assert.ok(own.plan.valid.rows > 0 && own.plan.train.rows + own.plan.valid.rows <= 60);
  // a groups dataset as data.pairs is named as such, not as a missing dev split
  const groups = await loadError(ConfigSchema.parse({ ...tiny, data: { ...tiny.data, pairs: "multi30k" } }), { dataDir: dir, download: false });
  assert.match(groups!.message, "data.pairs: multi30k is a groups dataset");
});

test("first use downloads the missing dataset (into the cache by default; --no-download refuses; a named folder is left alone)", async () => {
  const zip = makeZip({
    "snli_1.0/snli_1.0_train.jsonl": pairRows(60, "train"),
    "snli_1.0/snli_1.0_dev.jsonl": pairRows(15, "dev"),
    "snli_1.0/snli_1.0_test.jsonl": pairRows(3, "test"),
  });
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(200, { "content-length": String(zip.length) }).end(zip);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/snli.zip`;
  const real = DATASETS.snli.download!;
  DATASETS.snli.download = { ...real, archives: [{ url, checksum: null, format: "zip", stripPrefix: "snli_1.0/" }] };
  const saved = { data: process.env.BRIDGE_DATA_DIR, xdg: process.env.XDG_CACHE_HOME };
  const tmp = tempFolder("bridge-firstuse-");
  try {
    const named = join(tmp, "named");
    const refused = await loadError(tiny, { dataDir: named, download: false });
    assert.match(refused!.message, /snli:train: not found at .*named.*snli_1\.0_train\.jsonl/);
    const leftAlone = await loadError(tiny, { dataDir: named });
    assert.match(leftAlone!.message, /not found/);
    assert.is(hits, 0, "downloaded without being asked");

    const logs: string[] = [];
    const fetched = await loadTrainingData(tiny, { dataDir: named, download: true, cacheDir: join(tmp, "cache"), log: (l) => logs.push(l) });
    assert.is(fetched.plan.train.split, "snli:train");
    assert.is(hits, 1);
    assert.ok(
      logs.some((l) => /snli:train: not in .*named; downloading snli \(first use; --no-download to refuse\)/.test(l)),
      logs.join("\n"),
    );

    delete process.env.BRIDGE_DATA_DIR;
    process.env.XDG_CACHE_HOME = join(tmp, "xdg");
    const cached = await loadTrainingData(tiny, { cacheDir: join(tmp, "cache") });
    assert.is(cached.plan.train.rows, 60);
    assert.ok(existsSync(join(tmp, "xdg", "bridge", "data", "snli_1.0", "snli_1.0_train.jsonl")));
    assert.is(hits, 2);
    await loadTrainingData(tiny, { cacheDir: join(tmp, "cache") });
    assert.is(hits, 2, "downloaded again although cached");
  } finally {
    DATASETS.snli.download = real;
    for (const [k, v] of [
      ["BRIDGE_DATA_DIR", saved.data],
      ["XDG_CACHE_HOME", saved.xdg],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    server.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("truncateLog: drops what follows the checkpoint and a restarting stage's stage_start, atomically", () => {
  const dir = tempFolder("bridge-log-");
  const path = join(dir, "log.jsonl");
  const lines = [
    { type: "run_start" },
    { type: "stage_start", stage_index: 0 },
    { type: "train", stage_index: 0, step: 1 },
    { type: "stage_end", stage_index: 0, step: 1 },
    { type: "stage_start", stage_index: 1 },
    ...[1, 2, 3, 4].map((step) => ({ type: "train", stage_index: 1, step })),
  ];
  const write = () => writeFileSync(path, `${lines.map((l) => `${JSON.stringify(l)}\n`).join("")}{"type":"tr`);
  const read = () =>
    readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; stage_index?: number; step?: number });
  write();
  truncateLog(path, 1, 2); // resuming stage 1 from its step-2 checkpoint: stage_start stays
  assert.equal(read(), lines.slice(0, 7));
  write();
  truncateLog(path, 1, 0); // stage 1 starts over: its stage_start is written again, so it goes
  assert.equal(read(), lines.slice(0, 4));
  assert.equal(readdirSync(dir), ["log.jsonl"], "no temp file left");
  rmSync(dir, { recursive: true, force: true });
});

test("training data from datasets evaluation does not read is kept clear of evaluation sentences (a fetched Multi30K holds SNLI's premises)", async () => {
  const dir = tempFolder("bridge-evalclean-");
  try {
    mkdirSync(join(dir, "snli_1.0"));
    mkdirSync(join(dir, "multi30k"));
    writeFileSync(join(dir, "snli_1.0", "snli_1.0_train.jsonl"), pairRows(60, "train"));
    writeFileSync(join(dir, "snli_1.0", "snli_1.0_dev.jsonl"), pairRows(20, "dev"));
    // 30 images; image 4's third caption is SNLI dev's premise 7 up to case, spacing and the full stop's space,
    // image 9's first is a training premise (not evaluated: it stays)
    const caption = (g: number, k: number) =>
      g === 4 && k === 3 ? "a DEV premise number 7." : g === 9 && k === 1 ? "A train premise number 3 ." : `Image ${g} shows scene ${k} .`;
    const rows = Array.from({ length: 30 }, (_, g) => [`img${g}.jpg`, ...[1, 2, 3, 4, 5].map((k) => caption(g, k))].join("\t"));
    writeFileSync(join(dir, "multi30k", "captions.train.tsv"), `image\tcaption1\tcaption2\tcaption3\tcaption4\tcaption5\n${rows.join("\n")}\n`);
    const cfg = ConfigSchema.parse({
      ...tiny,
      stages: [
        {
          tasks: [
            { dataset: "snli", objective: "siamese" },
            { dataset: "multi30k", objective: "supcon" },
          ],
        },
      ],
    });
    const data = await loadTrainingData(cfg, { dataDir: dir });
    const m30k = data.plan.tasks.find((t) => t.split === "multi30k:train")!;
    assert.is(m30k.evalOverlap, 1);
    assert.equal(data.plan.evaluationSplits, ["snli:dev"], "run.json records which evaluation splits were kept out");
    // the one group holding an evaluation sentence is gone, from training or validation; image 9's stays
    assert.is(m30k.rows + m30k.heldOut, 29);
    assert.ok(
      data.plan.notes.includes("multi30k:train: 1 groups left out: a sentence of theirs is in an evaluation split (snli:dev)"),
      data.plan.notes.join("\n"),
    );
    // an evaluation dataset's own rows are not checked this way (its held-out rows keep it apart)
    assert.is(data.plan.tasks.find((t) => t.split === "snli:train")?.evalOverlap, undefined);
    // the same captions as LM text (SimCSE's sentences, an LM stage's text): the evaluation sentence never trains
    const logged: string[] = [];
    const asText = ConfigSchema.parse({ ...tiny, data: { ...tiny.data, lmText: ["multi30k"], lmHoldout: 0 } });
    await loadTrainingData(asText, { dataDir: dir, log: (l) => logged.push(l) });
    assert.match(logged.join("\n"), /lm text multi30k:train: 149 texts train \(\d+ tokens\), 0 validate \(1 dropped: validation or evaluation sentences\)/);
    // every caption group holding an evaluation sentence: none left, refused here, naming the dataset (was: a stage
    // later said its dataset had nothing to train on, after the run's folder was written)
    const every = Array.from({ length: 30 }, (_, g) =>
      [`img${g}.jpg`, "a DEV premise number 7.", ...[2, 3, 4, 5].map((k) => `Image ${g} shows scene ${k} .`)].join("\t"),
    );
    writeFileSync(join(dir, "multi30k", "captions.train.tsv"), `image\tcaption1\tcaption2\tcaption3\tcaption4\tcaption5\n${every.join("\n")}\n`);
    const err = await loadTrainingData(cfg, { dataDir: dir }).catch((e: Error) => e);
    assert.instance(err, Error);
    assert.match(
      (err as Error).message,
      /^multi30k:train \(.*captions\.train\.tsv\): all \d+ of its training rows hold a sentence of an evaluation split \(snli:dev\); none is left to train on/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
