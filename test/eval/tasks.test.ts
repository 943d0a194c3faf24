/**
 * The evaluation task registry and the parts of evaluation that need no backend: what a run trained
 * on (and so which entries are supervised), the held-out rows, the join of SNLI predictions by row,
 * refusing to evaluate nothing, and keeping a metrics.json with more results than the new one.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { PairRecord } from "../../ts/data/records.js";
import { evaluateRun, keepPreviousMetrics } from "../../ts/eval/evaluate.js";
import { metricRows } from "../../ts/eval/summary.js";
import { rowKey } from "../../ts/eval/tasks/common.js";
import { EVAL_TASKS, parseTasks, tasksHelp } from "../../ts/eval/tasks/index.js";
import { joinPredictions } from "../../ts/eval/tasks/separation.js";
import { describeTrainedOn, evalRows, isSupervised, trainedOn } from "../../ts/eval/trainedOn.js";
import type { Metrics } from "../../ts/eval/types.js";
import type { RunManifest, StageRecord } from "../../ts/run/manifest.js";
import { tempFolder } from "../helpers.js";

const stage = (index: number, objective: StageRecord["objective"]): StageRecord => ({
  index,
  name: objective,
  objective,
  checkpoint: `checkpoints/${index}-${objective}.pt`,
  completed: true,
  step: 1,
  metrics: {},
});

function manifest(data: RunManifest["data"], objectives: StageRecord["objective"][] = ["lm", "siamese"]): RunManifest {
  return {
    version: 1,
    name: "r",
    created: "",
    seed: 0,
    model: {},
    tokenizer: {} as RunManifest["tokenizer"],
    vocab: { size: 1, fingerprint: "x" },
    stages: objectives.map((o, i) => stage(i, o)),
    finalCheckpoint: null,
    ...(data ? { data } : {}),
  };
}

test("registry: --tasks is validated and described from the registered tasks", () => {
  const names = EVAL_TASKS.map((t) => t.name);
  assert.equal(names, ["snli", "separation", "sts", "sick", "sts12-16", "lm"]);
  for (const n of names) assert.match(tasksHelp(), n);
  assert.equal(parseTasks("sts12-16, lm"), ["sts12-16", "lm"]);
  assert.is(parseTasks(undefined), undefined);
  assert.throws(() => parseTasks("sts,bogus"), /unknown task "bogus"; known: snli, separation, sts, sick, sts12-16, lm/);
  assert.throws(() => parseTasks(","), /names no task/);
});

test("trainedOn: a run whose manifest says it trained on sick:train marks sick entries supervised, not snli's", () => {
  const m = manifest({ train: { split: "sick:train", rows: 4500 }, valid: { split: "sick:trial", rows: 500 }, holdout: null });
  const t = trainedOn(m, { data: { pairs: "sick", lmText: ["wikitext-2:train"] } });
  assert.equal(t, [
    { split: "sick:train", use: "pairs", rows: 4500 },
    { split: "sick:train", use: "lm text" },
    { split: "wikitext-2:train", use: "lm text" },
  ]);
  assert.ok(isSupervised(t, "sick:trial"));
  assert.ok(isSupervised(t, "wikitext-2:test"), "LM text of wikitext-2:train: perplexity on its test split is not transfer");
  assert.not.ok(isSupervised(t, "snli:dev"));
  assert.not.ok(isSupervised(t, "stsb:dev"));
});

test("trainedOn: snli:dev with a holdout: snli supervised, evaluation on the held-out rows only", () => {
  const m = manifest({
    train: { split: "snli:dev", rows: 8 },
    valid: { split: "snli:dev", rows: 2 },
    holdout: { split: "snli:dev", fraction: 0.2, seed: 1, validRows: [3, 7] },
  });
  const t = trainedOn(m, {});
  assert.equal(t[0], { split: "snli:dev", use: "pairs", rows: 8, heldOut: 2 });
  assert.ok(isSupervised(t, "snli:dev"));
  const { rows, subset } = evalRows(m, t, "snli:dev", 10);
  assert.equal(rows, [3, 7]);
  assert.match(subset, "held out");
  // another split of a dataset it trained on whole, with no record of held-out rows: all rows, with a warning
  const whole = trainedOn(manifest({ train: { split: "snli:train", rows: 5 }, valid: { split: "snli:dev", rows: 5 }, holdout: null }), {});
  assert.match(evalRows(manifest(undefined), whole, "snli:train", 4).subset, "WARNING");
  assert.equal(evalRows(manifest(undefined), whole, "snli:dev", 3).rows, [0, 1, 2]);
});

test("trainedOn: a multi-task stage's other datasets count as trained on (STS-B and SICK supervised), with their held-out rows", () => {
  const m = manifest(
    {
      train: { split: "snli:dev", rows: 8 },
      valid: { split: "snli:dev", rows: 2 },
      holdout: { split: "snli:dev", fraction: 0.2, seed: 1, validRows: [3, 7] },
      tasks: [
        { split: "stsb:train", rows: 90, heldOut: 10 },
        { split: "sick:train", rows: 45, heldOut: 5 },
      ],
    },
    ["lm", "multitask"],
  );
  const t = trainedOn(m, {});
  assert.equal(t.slice(1, 3), [
    { split: "stsb:train", use: "pairs", rows: 90, heldOut: 10 },
    { split: "sick:train", use: "pairs", rows: 45, heldOut: 5 },
  ]);
  for (const split of ["stsb:dev", "sick:trial", "snli:dev"]) assert.ok(isSupervised(t, split), split);
  assert.not.ok(isSupervised(t, "xnli:dev"));
  // without those tasks the same run's STS-B figure is unsupervised
  assert.not.ok(isSupervised(trainedOn({ ...m, data: { ...m.data!, tasks: [] } }, {}), "stsb:dev"));
});

test("trainedOn: MultiNLI dev, cad and the caption groups as tasks are trained on: MultiNLI dev is supervised, XNLI stays held out", () => {
  const m = manifest(
    {
      train: { split: "snli:dev", rows: 8 },
      valid: { split: "snli:dev", rows: 2 },
      holdout: null,
      tasks: [
        { split: "multinli:dev_matched", rows: 90, heldOut: 10 },
        { split: "cad:train", rows: 70, heldOut: 8 },
        { split: "multi30k:train", rows: 240, heldOut: 27, unit: "groups" },
      ],
    },
    ["multitask"],
  );
  const t = trainedOn(m, {});
  assert.equal(t[3], { split: "multi30k:train", use: "groups", rows: 240, heldOut: 27 });
  for (const split of ["multinli:dev_matched", "multinli:dev_mismatched", "cad:original"]) assert.ok(isSupervised(t, split), split);
  assert.not.ok(isSupervised(t, "xnli:dev"), "XNLI is the out-of-domain check: never trained on");
  assert.match(describeTrainedOn(t), "multi30k:train (groups, 240 groups, 27 groups held out)");
});

test("trainedOn: an LM-only run used its text, not its labels; an old run without a data plan falls back to config.json", () => {
  assert.equal(trainedOn(manifest({ train: { split: "snli:train", rows: 5 }, valid: { split: "snli:dev", rows: 5 }, holdout: null }, ["lm"]), {}), [
    { split: "snli:train", use: "lm text" },
  ]);
  assert.equal(trainedOn(manifest(undefined, ["siamese"]), { data: { pairs: "sick", trainSplit: "dev" } }), [{ split: "sick:trial", use: "pairs" }]);
});

test("separation joins SNLI predictions by row identity, not by position", () => {
  const rec = (line: number): PairRecord => ({ id: String(line), s1: "a", s2: "b", label: "entailment", line });
  const records = [rec(5), rec(2), rec(9)];
  // predictions for a different, shorter set of rows (e.g. another holdout or limit), in another order
  const preds = new Map([
    [rowKey("snli:dev", 9), { probs: Float32Array.from([0.1, 0.2, 0.7]), pred: 2 }],
    [rowKey("snli:dev", 5), { probs: Float32Array.from([0.8, 0.1, 0.1]), pred: 0 }],
    [rowKey("snli:test", 2), { probs: Float32Array.from([0.1, 0.8, 0.1]), pred: 1 }],
  ]);
  const joined = joinPredictions("snli:dev", records, preds);
  assert.equal(
    joined.map((p) => p?.pred ?? null),
    [0, null, 2],
  );
});

function fullMetrics(): Metrics {
  const sep = { roc_auc: 0.7, overlap: 0.5, mean_cosine: {} };
  return {
    run: "r",
    checkpoint: "c",
    created: "",
    data_dir: "/d",
    tasks: ["separation", "lm"],
    trained_on: [],
    skipped: [],
    separation: {
      split: "snli:dev",
      items: 10,
      supervised: false,
      subset: "",
      positive: "entailment",
      negative: "contradiction",
      bins: 40,
      ...sep,
      baseline: { tfidf: sep },
      stages: [],
    },
    lm: {
      split: "wikitext-2:test",
      items: 100,
      supervised: false,
      perplexity: 50,
      oov_rate: 0,
      checkpoint: "c",
      bptt: 70,
      note: "",
      samples: [],
      sampling: { n: 0, max_len: 1, temperature: 1, top_k: 0, seed: 0 },
    },
  };
}

test("a metrics.json with results the new one lacks is kept as metrics.prev.json; one with no more is replaced", () => {
  const dir = tempFolder("bridge-metrics-");
  try {
    const path = join(dir, "metrics.json");
    writeFileSync(path, JSON.stringify(fullMetrics()));
    const fewer = { ...fullMetrics(), lm: undefined };
    const notes: string[] = [];
    const kept = keepPreviousMetrics(dir, fewer, (l) => notes.push(l));
    assert.is(kept, join(dir, "metrics.prev.json"));
    assert.equal(
      metricRows(JSON.parse(readFileSync(kept!, "utf8")) as Metrics).map((r) => r.key),
      ["separation.roc_auc", "separation.overlap", "lm.perplexity"],
    );
    assert.match(notes.join("\n"), "lm.perplexity");
    writeFileSync(path, JSON.stringify(fewer));
    assert.is(
      keepPreviousMetrics(dir, fullMetrics(), () => undefined),
      null,
      "the new one has every result of the old",
    );
    // two partial evaluations in a row: the full set in metrics.prev.json is not replaced by a partial one
    const lmOnly = { ...fullMetrics(), separation: undefined };
    const asideNotes: string[] = [];
    keepPreviousMetrics(dir, lmOnly, (l) => asideNotes.push(l));
    const aside = join(dir, "metrics.prev.1.json");
    assert.equal(
      metricRows(JSON.parse(readFileSync(aside, "utf8")) as Metrics).map((r) => r.key),
      ["separation.roc_auc", "separation.overlap", "lm.perplexity"],
    );
    assert.equal(
      metricRows(JSON.parse(readFileSync(join(dir, "metrics.prev.json"), "utf8")) as Metrics).map((r) => r.key),
      ["separation.roc_auc", "separation.overlap"],
    );
    assert.match(asideNotes.join("\n"), `kept the earlier ${join(dir, "metrics.prev.json")} as ${aside}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("evaluating nothing is an error naming the data dir and what was looked for; metrics.json stays as it was", async () => {
  const root = tempFolder("bridge-nothing-");
  try {
    const empty = join(root, "empty-data");
    mkdirSync(empty);
    const evalDir = join(root, "runs", "r", "eval");
    mkdirSync(evalDir, { recursive: true });
    const before = JSON.stringify(fullMetrics());
    writeFileSync(join(evalDir, "metrics.json"), before);
    await evaluateRun({ run: "r", runsDir: join(root, "runs"), dataDir: empty, log: () => undefined }).then(
      () => assert.unreachable("evaluating nothing must fail"),
      (e: Error) => {
        assert.match(e.message, `data dir ${empty}`);
        assert.match(e.message, join(empty, "snli_1.0", "snli_1.0_dev.jsonl"));
        assert.match(e.message, join(empty, "sts", "STS12"));
      },
    );
    assert.is(readFileSync(join(evalDir, "metrics.json"), "utf8"), before);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("trainedOn: a SimCSE-only run trained on its text (the pair split's sentences and data.lmText), not on pairs", () => {
  const m = manifest({ train: { split: "snli:dev", rows: 8 }, valid: { split: "snli:dev", rows: 2 }, holdout: null }, ["simcse"]);
  const t = trainedOn(m, { data: { pairs: "snli", lmText: ["multi30k:train", "stsb:train"] } });
  assert.equal(t, [
    { split: "snli:dev", use: "lm text" },
    { split: "multi30k:train", use: "lm text" },
    { split: "stsb:train", use: "lm text" },
  ]);
  // STS-B's sentences were its training text: its STS figure is not a transfer result
  assert.ok(isSupervised(t, "stsb:dev"));
  assert.not.ok(isSupervised(t, "sick:trial"));
});

test.run();
