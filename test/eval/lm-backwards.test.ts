/**
 * The lm eval task on a backward LM (model.backwards): it must score the text right to left, as the model trained,
 * and show its samples (generated right to left) in reading order. A tiny backward LM learns a fixed ten-word
 * sequence (the real backend, a few seconds); read left to right that text would be a string of surprises to it.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { train } from "../../ts/commands/train.js";
import { evaluateRun } from "../../ts/eval/evaluate.js";
import { tempDir } from "../data/helpers.js";

const WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
const LINE = WORDS.join(" ");

test("an empty LM validation text is named; a backward LM's perplexity is on reversed text and its samples read forwards", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const data = join(dir, "data");
    mkdirSync(join(data, "wikitext-2"), { recursive: true });
    writeFileSync(join(data, "wikitext-2", "wiki.test.tokens"), Array.from({ length: 40 }, () => ` ${LINE} \n`).join(""));
    // distinct texts (the LM holdout hashes each text): runs of 4-9 words of the cycle, each from its own start
    const cycle = (start: number, n: number) => Array.from({ length: n }, (_, k) => WORDS[(start + k) % WORDS.length]).join(" ");
    writeFileSync(
      join(data, "seq.jsonl"),
      Array.from({ length: 60 }, (_, i) => `${JSON.stringify({ text: cycle(i % 10, 4 + Math.floor(i / 10)) })}\n`).join(""),
    );
    const labels = ["entailment", "neutral", "contradiction"];
    const pairs = Array.from({ length: 60 }, (_, i) => `${JSON.stringify({ s1: LINE, s2: WORDS.slice(i % 5).join(" "), label: labels[i % 3] })}\n`);
    writeFileSync(join(data, "toy.jsonl"), pairs.join(""));
    const cfg = {
      seed: 1,
      threads: 1,
      data: {
        datasets: [
          { name: "toy", format: "jsonl", files: { train: "toy.jsonl", dev: "toy.jsonl" }, columns: { s1: "s1", s2: "s2", label: "label" } },
          { name: "seq", format: "jsonl", files: { train: "seq.jsonl" }, columns: { text: "text" } },
        ],
        pairs: "toy",
        lmText: ["seq:train"],
        lmHoldout: 0.2,
      },
      vocab: { minFreq: 1 },
      model: { preset: "tiny", backwards: true },
      stages: [{ objective: "lm", steps: 150, batchSize: 16, bptt: 20, lr: { max: 0.01, schedule: "constant" } }],
    };
    const file = join(dir, "bwd.json");
    writeFileSync(file, JSON.stringify(cfg));
    const runsDir = join(dir, "runs");
    // LM text whose every distinct line trains leaves nothing to validate: named before the stage trains
    const same = join(dir, "same.json");
    writeFileSync(join(data, "seq-same.jsonl"), `${JSON.stringify({ text: LINE })}\n`);
    const sameData = {
      ...cfg.data,
      datasets: [cfg.data.datasets[0], { ...cfg.data.datasets[1], name: "seqsame", files: { train: "seq-same.jsonl" } }],
      lmText: ["seqsame:train"],
    };
    writeFileSync(same, JSON.stringify({ ...cfg, data: { ...sameData, lmHoldout: 0.01 } }));
    const empty = await train({ config: same, run: "empty", runsDir, dataDir: data, quiet: true }).catch((e: unknown) => e);
    assert.match(String(empty), /stage 1 \(lm\): the language-model validation text is empty/);
    assert.not.ok(existsSync(join(runsDir, "empty")), "named before the run's folder was written");
    // a batch of more rows than the LM text can fill, likewise, naming the field and what fits
    const wide = join(dir, "wide.json");
    writeFileSync(wide, JSON.stringify({ ...cfg, stages: [{ ...cfg.stages[0], batchSize: 100000 }] }));
    const tooWide = await train({ config: wide, run: "wide", runsDir, dataDir: data, quiet: true }).catch((e: unknown) => e);
    assert.match(
      String(tooWide),
      /stages\.0\.batchSize 100000 \(stage 1, lm\): the LM text has \d+ training tokens, too few for 100000 rows of at least 2 tokens each; at most \d+/,
    );
    assert.not.ok(existsSync(join(runsDir, "wide")));

    await train({ config: file, run: "bwd", runsDir, dataDir: data, quiet: true });

    const { metrics } = await evaluateRun({ run: "bwd", runsDir, dataDir: data, tasks: ["lm"], log: () => undefined });
    const lm = metrics.lm!;
    // right to left every word but a line's last is certain; left to right (the old bug) they were all surprises
    assert.ok(lm.perplexity < 3, `perplexity ${lm.perplexity}: the text was not read right to left`);
    const inOrder = lm.samples.filter((s) => /bravo charlie delta/.test(s.toLowerCase()));
    assert.ok(inOrder.length > 0, `no sample in reading order:\n${lm.samples.join("\n")}`);
    assert.not.ok(
      lm.samples.some((s) => /delta charlie bravo/.test(s.toLowerCase())),
      `a sample reads backwards:\n${lm.samples.join("\n")}`,
    );
  } finally {
    cleanup();
  }
});

test.run();
