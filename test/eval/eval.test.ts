/**
 * `bridge eval` end to end on a tiny fixture run: metrics.json carries every contract key with its
 * split and item count, the Arrow vectors and the report are written, missing splits are skipped
 * with a message, `--compare` tables two runs, and the CLI is wired.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { tableFromIPC } from "apache-arrow";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { evalCommand } from "../../ts/commands/eval.js";
import { compareMetrics, formatComparison, readMetrics } from "../../ts/eval/compare.js";
import { evaluateRun, type Metrics } from "../../ts/eval/evaluate.js";
import { bridgeBin, sharedDataDir } from "../helpers.js";
import { makeFixtureRun, sharedRun } from "./fixtures.js";

const dataDir = sharedDataDir("bridge eval");

if (dataDir !== null) {
  test("metrics.json has every contract key, each naming its split and item count", async () => {
    const { evaluation } = await sharedRun(dataDir);
    const m = JSON.parse(readFileSync(join(evaluation.dir, "metrics.json"), "utf8")) as Metrics;
    for (const [task, keys] of [
      ["snli", ["accuracy", "confusion", "per_class", "macro_f1"]],
      ["separation", ["roc_auc", "overlap", "mean_cosine"]],
      ["sick", ["accuracy", "spearman"]],
      ["sts", ["spearman", "pearson"]],
      ["lm", ["perplexity", "samples"]],
    ] as const) {
      const entry = m[task] as unknown as Record<string, unknown>;
      assert.ok(entry, `metrics.json has no ${task}`);
      assert.type(entry.split, "string", `${task}.split`);
      assert.ok((entry.items as number) > 0, `${task}.items`);
      for (const k of keys) assert.ok(entry[k] !== undefined && entry[k] !== null, `${task}.${k} missing`);
    }
    assert.is(m.snli!.split, "snli:dev");
    assert.equal(m.snli!.confusion.labels, ["entailment", "neutral", "contradiction"]);
    assert.is(m.snli!.confusion.matrix.flat().reduce((a, b) => a + b, 0), m.snli!.items);
    assert.ok(m.separation!.roc_auc >= 0 && m.separation!.roc_auc <= 1);
    assert.ok(m.separation!.overlap >= 0 && m.separation!.overlap <= 1);
    assert.ok(m.separation!.baseline.tfidf.roc_auc > 0.6, "TF-IDF separates SNLI entailments from contradictions somewhat");
    assert.equal(
      m.separation!.stages.map((s) => s.stage),
      ["0-lm"],
    );
    assert.is(m.sts!.split, "stsb:dev");
    assert.is(m.sick!.entailment!.probe.train_split, "sick:train");
    assert.ok(Number.isFinite(m.lm!.perplexity) && m.lm!.perplexity > 1);
    assert.is(m.lm!.samples.length, m.lm!.sampling.n);
    assert.is(m.lm!.checkpoint, "checkpoints/0-lm.pt");
    assert.ok(m.skipped.some((s) => s.split === "snli:test"), "missing SNLI test is listed as skipped");
  });

  test("the vectors are written as Arrow for the notebooks; report and PNGs exist", async () => {
    const { evaluation } = await sharedRun(dataDir);
    const t = tableFromIPC(readFileSync(join(evaluation.dir, "snli.arrow")));
    assert.equal(t.schema.fields.map((f) => f.name), ["line", "premise", "hypothesis", "label", "cosine", "pred", "p_entailment", "p_neutral", "p_contradiction", "u", "v"]);
    assert.is(t.numRows, evaluation.metrics.separation!.items);
    const u = t.getChild("u")!.get(0) as { length: number };
    assert.ok(u.length > 0);
    assert.ok(existsSync(join(evaluation.dir, "snli-stage-0-lm.arrow")));
    const html = readFileSync(join(evaluation.dir, "report.html"), "utf8");
    assert.not.match(html, /https?:\/\/(?!www\.w3\.org)/, "report.html must not load anything from the network");
    for (const id of ["separation-histogram", "separation-roc", "snli-confusion", "sts-scatter", "training-curves"]) assert.match(html, `id="${id}"`);
    for (const png of ["separation-histogram.png", "separation-roc.png"]) {
      const head = readFileSync(join(evaluation.dir, png)).subarray(0, 8);
      assert.equal(Array.from(head), [137, 80, 78, 71, 13, 10, 26, 10], `${png} is a PNG`);
    }
  });

  test("missing splits are listed and skipped, never a crash", async () => {
    const { root, dir } = await sharedRun(dataDir);
    // A copy of the run, so that its eval/ folder (shared by the other tests) stays as it was.
    const name = "t1-partial";
    cpSync(dir, join(root, name), { recursive: true });
    const partial = join(root, "partial-data");
    mkdirSync(partial, { recursive: true });
    symlinkSync(join(dataDir, "snli_1.0"), join(partial, "snli_1.0"));
    const { metrics } = await evaluateRun({ run: name, runsDir: root, dataDir: partial, tasks: ["separation", "sts", "sick", "lm"], limit: 100, log: () => undefined });
    assert.ok(metrics.separation);
    assert.is(metrics.sts, undefined);
    assert.is(metrics.sick, undefined);
    const skipped = metrics.skipped.map((s) => s.split);
    for (const s of ["stsb:dev", "sick:trial", "wikitext-2:valid"]) assert.ok(skipped.includes(s), `${s} listed as skipped: ${skipped}`);
    assert.match(metrics.skipped.find((s) => s.split === "stsb:dev")!.reason, "bridge data fetch stsb");
  });

  test("--compare tables every metric of two runs side by side", async () => {
    const { root, name } = await sharedRun(dataDir);
    // t2's siamese stage has another head and optimizer than its LM stage: the before / after comparison loads the
    // LM checkpoint into a model rebuilt from its own config (not into the final one's: a checkpoint mismatch)
    const siameseBuild = { pool: "max", pool_layers: "all", opt: "sgd" };
    await makeFixtureRun({ root, name: "t2", dataDir, seed: 1, pairs: 300, lmSteps: 4, siameseSteps: 4, siameseBuild });
    process.env.BRIDGE_RUNS_DIR = root;
    try {
      await evaluateRun({ run: "t2", runsDir: root, dataDir, tasks: ["separation", "sts"], limit: 200, log: () => undefined });
      const c = compareMetrics([name, "t2"], [readMetrics(name, root), readMetrics("t2", root)]);
      const t2 = readMetrics("t2", root);
      assert.equal(
        t2.separation!.stages.map((st) => st.stage),
        ["0-lm"],
        "the LM stage's checkpoint is evaluated too",
      );
      const row = c.rows.find((r) => r.key === "separation.roc_auc")!;
      assert.is(row.values.length, 2);
      assert.ok(row.values.every((v) => v !== null));
      assert.is(c.rows.find((r) => r.key === "snli.accuracy")!.values[1], null, "t2 has no snli entry");
      assert.match(formatComparison(c), "separation.roc_auc");
      const logged: string[] = [];
      const orig = console.log;
      console.log = (s: string) => logged.push(s);
      try {
        assert.is(await evalCommand({ compare: [name, "t2"], dataDir }), 0);
      } finally {
        console.log = orig;
      }
      assert.ok(existsSync(join(root, `compare-${name}-t2.html`)));
    } finally {
      delete process.env.BRIDGE_RUNS_DIR;
    }
  });

  test("the CLI: npx bridge eval --run NAME --tasks separation", async () => {
    const { root, dir } = await sharedRun(dataDir);
    const name = "t1-cli"; // a copy: this eval rewrites its eval/ folder
    cpSync(dir, join(root, name), { recursive: true });
    const { stdout } = await promisify(execFile)(process.execPath, [bridgeBin, "eval", "--run", name, "--tasks", "separation", "--data-dir", dataDir], {
      env: { ...process.env, BRIDGE_RUNS_DIR: root },
    });
    assert.match(stdout, "separation.roc_auc");
    assert.match(stdout, "report.html");
  });
}

test.run();
