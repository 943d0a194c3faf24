/** Training curves from log.jsonl and the --compare table, on hand-made inputs. */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compareMetrics, formatComparison } from "../../ts/eval/compare.js";
import { readLog } from "../../ts/eval/evaluate.js";
import { lastValidation } from "../../ts/eval/report.js";
import type { Metrics } from "../../ts/eval/types.js";
import { tempFolder } from "../helpers.js";

test("readLog: numeric loss / accuracy series per stage; a stage counting from 0 again follows the one before", () => {
  const dir = tempFolder("bridge-log-");
  try {
    const path = join(dir, "log.jsonl");
    const lines = [
      { type: "run_start", seed: 1 },
      { type: "train", stage: "lm", step: 1, loss: 5, lr: 0.1 },
      { type: "train", stage: "lm", step: 2, loss: 4 },
      { type: "train", stage: "siamese", step: 1, loss: 1.1, accuracy: 0.3 },
    ];
    writeFileSync(path, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n{"cut by a cr`);
    assert.equal(readLog(path), [
      { step: 1, value: 5, series: "lm loss" },
      { step: 2, value: 4, series: "lm loss" },
      { step: 3, value: 1.1, series: "siamese loss" },
      { step: 3, value: 0.3, series: "siamese accuracy" },
    ]);
    assert.equal(readLog(join(dir, "missing.jsonl")), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function metrics(run: string, auc: number, ppl: number): Metrics {
  const sep = { roc_auc: auc, overlap: 1 - auc, mean_cosine: {} };
  return {
    run,
    checkpoint: "c",
    created: "",
    data_dir: "",
    tasks: [],
    trained_on: [{ split: "snli:train", use: "pairs" }],
    skipped: [],
    separation: {
      split: "snli:dev",
      items: 10,
      supervised: true,
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
      perplexity: ppl,
      oov_rate: 0,
      checkpoint: "c",
      bptt: 70,
      note: "",
      samples: [],
      sampling: { n: 0, max_len: 1, temperature: 1, top_k: 0, seed: 0 },
    },
  };
}

test("compare: one row per metric, the best run marked (lower is better for perplexity and overlap)", () => {
  const c = compareMetrics(["a", "b"], [metrics("a", 0.6, 50), metrics("b", 0.7, 80)]);
  const row = (k: string) => c.rows.find((r) => r.key === k)!;
  assert.equal(row("separation.roc_auc").values, [0.6, 0.7]);
  assert.is(row("separation.roc_auc").best, 1);
  assert.is(row("separation.overlap").best, 1);
  assert.is(row("lm.perplexity").best, 0);
  assert.match(formatComparison(c), /lm\.perplexity\s+wikitext-2:test\s+50\.0+ \*/);
  assert.equal(row("separation.roc_auc").supervised, [true, true]);
  assert.match(formatComparison(c), /separation\.roc_auc\s+snli:dev\s+0\.6000 \(s\)/, "a supervised value is marked");
});

test("report: each validation series' last point, a multi-task stage's per-task accuracies among them", () => {
  const curves = [
    { step: 10, value: 0.5, series: "sentence val_accuracy/snli-siamese" },
    { step: 10, value: 0.7, series: "sentence val_accuracy/mnli-m-siamese" },
    { step: 20, value: 0.6, series: "sentence val_accuracy/snli-siamese" },
    { step: 20, value: 1.2, series: "sentence train_loss" },
    { step: 20, value: 0.72, series: "sentence val_accuracy/mnli-m-siamese" },
  ];
  assert.equal(lastValidation(curves), [
    { series: "sentence val_accuracy/snli-siamese", step: 20, value: 0.6 },
    { series: "sentence val_accuracy/mnli-m-siamese", step: 20, value: 0.72 },
  ]);
});

test.run();
