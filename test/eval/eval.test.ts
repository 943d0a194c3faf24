/**
 * `bridge eval` end to end on a tiny fixture run: metrics.json carries every contract key with its
 * split and item count, the Arrow vectors and the report are written, missing splits are skipped
 * with a message, `--compare` tables two runs, and the CLI is wired.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { tableFromIPC } from "apache-arrow";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type EvalCommandOptions, evalCommand } from "../../ts/commands/eval.js";
import { correlations } from "../../ts/core/stats.js";
import { HOLDOUT_SEED, premiseHoldout } from "../../ts/data/holdout.js";
import { readStsBenchmark } from "../../ts/data/readers/similarity.js";
import type { PairRecord } from "../../ts/data/records.js";
import { compareMetrics, formatComparison, readMetrics } from "../../ts/eval/compare.js";
import { evaluateRun } from "../../ts/eval/evaluate.js";
import { formatSummary } from "../../ts/eval/summary.js";
import { tfidfCosines } from "../../ts/eval/tfidf.js";
import { pairKey } from "../../ts/eval/trainedPairs.js";
import type { Metrics } from "../../ts/eval/types.js";
import type { RunManifest } from "../../ts/run/manifest.js";
import { bridgeBin, tempFolder, testWithData } from "../helpers.js";
import { makeFixtureRun, sharedRun } from "./fixtures.js";

{
  testWithData(test, "metrics.json has every contract key, each naming its split and item count", async (dataDir) => {
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
    assert.is(
      m.snli!.confusion.matrix.flat().reduce((a, b) => a + b, 0),
      m.snli!.items,
    );
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
    assert.ok(
      m.skipped.some((s) => s.split === "snli:test"),
      "missing SNLI test is listed as skipped",
    );
    // tiny.yaml with only snli:dev at hand: trains on snli:dev less its held-out rows, so SNLI figures are supervised
    const pairs = m.trained_on.find((t) => t.use === "pairs")!;
    assert.is(pairs.split, "snli:dev");
    assert.ok(pairs.heldOut! > 0 && m.snli!.items <= pairs.heldOut!, `${m.snli!.items} evaluated of ${pairs.heldOut} held-out rows`);
    assert.is(m.snli!.supervised, true);
    assert.is(m.separation!.supervised, true);
    for (const task of ["sts", "sick", "lm", "xnli"] as const) assert.is(m[task]!.supervised, false, `${task} is a transfer result`);
  });

  testWithData(test, "the vectors are written as Arrow for the notebooks; report and PNGs exist", async (dataDir) => {
    const { evaluation } = await sharedRun(dataDir);
    const t = tableFromIPC(readFileSync(join(evaluation.dir, "snli.arrow")));
    assert.equal(
      t.schema.fields.map((f) => f.name),
      ["line", "premise", "hypothesis", "label", "cosine", "pred", "p_entailment", "p_neutral", "p_contradiction", "u", "v"],
    );
    assert.is(t.numRows, evaluation.metrics.separation!.items);
    const u = t.getChild("u")!.get(0) as { length: number };
    assert.ok(u.length > 0);
    assert.ok(existsSync(join(evaluation.dir, "snli-stage-0-lm.arrow")));
    const html = readFileSync(join(evaluation.dir, "report.html"), "utf8");
    assert.not.match(html, /https?:\/\/(?!www\.w3\.org)/, "report.html must not load anything from the network");
    for (const id of ["separation-histogram", "separation-roc", "snli-confusion", "sts-scatter", "training-curves"]) assert.match(html, `id="${id}"`);
    // the run never trained on STS-B: the scatter's caption must not call it supervised
    assert.match(html, "cosine vs gold similarity (transfer: the run never trained on STS-B)");
    // panels named for people: the final vectors by their stage's place in the run, an earlier stage by its name
    assert.match(html, "final (after stage 2 of 2, siamese)");
    assert.match(html, "after stage 1 of 2, lm");
    for (const png of ["separation-histogram.png", "separation-roc.png"]) {
      const head = readFileSync(join(evaluation.dir, png)).subarray(0, 8);
      assert.equal(Array.from(head), [137, 80, 78, 71, 13, 10, 26, 10], `${png} is a PNG`);
    }
  });

  testWithData(test, "missing splits are listed and skipped, never a crash", async (dataDir) => {
    const { root, dir } = await sharedRun(dataDir);
    // A copy of the run, so that its eval/ folder (shared by the other tests) stays as it was.
    const name = "t1-partial";
    cpSync(dir, join(root, name), { recursive: true });
    const partial = join(root, "partial-data");
    mkdirSync(partial, { recursive: true });
    symlinkSync(join(dataDir, "snli_1.0"), join(partial, "snli_1.0"));
    const { metrics } = await evaluateRun({
      run: name,
      runsDir: root,
      dataDir: partial,
      tasks: ["separation", "sts", "sick", "lm"],
      limit: 100,
      log: () => undefined,
    });
    assert.ok(metrics.separation);
    assert.is(metrics.sts, undefined);
    assert.is(metrics.sick, undefined);
    const skipped = metrics.skipped.map((s) => s.split);
    for (const s of ["stsb:dev", "sick:trial", "wikitext-2:test", "wikitext-2:valid"]) assert.ok(skipped.includes(s), `${s} listed as skipped: ${skipped}`);
    assert.match(metrics.skipped.find((s) => s.split === "stsb:dev")!.reason, "bridge data fetch stsb");
    // no LM text: no placeholder entry (perplexity NaN on split "none"), no row in the summary
    assert.is(metrics.lm, undefined);
    assert.not.match(formatSummary(metrics), "lm.perplexity");
  });

  testWithData(test, "an eval that fails after its tasks wrote their vectors leaves eval/ as it was; the next one cleans up after it", async (dataDir) => {
    const { root, dir } = await sharedRun(dataDir);
    const name = "t1-interrupted";
    cpSync(dir, join(root, name), { recursive: true });
    const evalDir = join(root, name, "eval");
    const before = { arrow: readFileSync(join(evalDir, "snli.arrow")), metrics: readFileSync(join(evalDir, "metrics.json"), "utf8") };
    // the stage comparison is logged after the final checkpoint's vectors are written: fail there
    const err = await evaluateRun({
      run: name,
      runsDir: root,
      dataDir,
      tasks: ["separation"],
      limit: 50,
      log: (l) => {
        if (l.startsWith("stage ")) throw new Error("interrupted");
      },
    }).catch((e: Error) => e);
    assert.instance(err, Error);
    assert.is((err as Error).message, "interrupted");
    assert.ok(readFileSync(join(evalDir, "snli.arrow")).equals(before.arrow), "snli.arrow is the one metrics.json describes");
    assert.is(readFileSync(join(evalDir, "metrics.json"), "utf8"), before.metrics);
    assert.not.ok(existsSync(join(evalDir, ".pending")), "no staging folder left behind");
    // a run never evaluated keeps having no eval/ folder
    const fresh = "t1-interrupted-fresh";
    cpSync(dir, join(root, fresh), { recursive: true, filter: (src) => !src.includes(join(dir, "eval")) });
    const failing = (l: string) => {
      if (l.startsWith("stage ")) throw new Error("interrupted");
    };
    await evaluateRun({ run: fresh, runsDir: root, dataDir, tasks: ["separation"], limit: 50, log: failing }).catch(() => undefined);
    assert.not.ok(existsSync(join(root, fresh, "eval")), "an eval that wrote nothing left an eval/ folder");
    // one left by a killed eval (no finally ran) is cleared by the next, which writes its files in eval/
    mkdirSync(join(evalDir, ".pending"));
    writeFileSync(join(evalDir, ".pending", "snli.arrow"), "stale");
    const { files } = await evaluateRun({ run: name, runsDir: root, dataDir, tasks: ["separation"], limit: 50, log: () => undefined });
    assert.ok(files.includes(join(evalDir, "snli.arrow")), files.join(", "));
    assert.is(tableFromIPC(readFileSync(join(evalDir, "snli.arrow"))).numRows, 50);
    assert.not.ok(existsSync(join(evalDir, ".pending")));
  });

  testWithData(test, "evaluating nothing fails (exit 1, naming the data dir) and leaves a complete metrics.json as it was", async (dataDir) => {
    const { root, dir } = await sharedRun(dataDir);
    const name = "t1-nothing";
    cpSync(dir, join(root, name), { recursive: true });
    const metricsFile = join(root, name, "eval", "metrics.json");
    const before = readFileSync(metricsFile, "utf8");
    const empty = join(root, "no-data");
    mkdirSync(empty, { recursive: true });
    const r = await promisify(execFile)(process.execPath, [bridgeBin, "eval", "--run", name, "--data-dir", empty], {
      env: { ...process.env, BRIDGE_RUNS_DIR: root },
    }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    assert.ok(r !== null, "eval with no data must exit non-zero");
    assert.is(r.code, 1);
    assert.match(r.stderr, `data dir ${empty}`);
    assert.match(r.stderr, "snli:dev");
    assert.is(readFileSync(metricsFile, "utf8"), before);
    // --run takes a run folder's path too, as embed and search do: found without BRIDGE_RUNS_DIR
    const byPath = await promisify(execFile)(process.execPath, [bridgeBin, "eval", "--run", join(root, name), "--data-dir", empty], {
      env: { ...process.env, BRIDGE_RUNS_DIR: join(root, "elsewhere") },
    }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    assert.ok(byPath !== null);
    assert.match(byPath.stderr, `data dir ${empty}`, "the run was found by its path");
    assert.not.match(byPath.stderr, "letters, digits");
  });

  testWithData(test, "--compare never evaluates: a run without metrics.json is an error naming it and the command that makes it", async (dataDir) => {
    const { root, dir, name } = await sharedRun(dataDir);
    const never = "t1-never-evaluated";
    cpSync(dir, join(root, never), { recursive: true, filter: (src) => !src.includes(`${join(dir, "eval")}`) });
    process.env.BRIDGE_RUNS_DIR = root;
    try {
      await evalCommand({ compare: [name, never] }).then(
        () => assert.unreachable("comparing with an unevaluated run must fail"),
        (e: Error) => {
          assert.match(e.message, join(root, never, "eval", "metrics.json"));
          assert.match(e.message, `npx bridge eval --run ${never}`);
        },
      );
    } finally {
      delete process.env.BRIDGE_RUNS_DIR;
    }
    assert.not.ok(existsSync(join(root, never, "eval", "metrics.json")), "nothing was evaluated");
    // --compare with no names, a run that does not exist, or a flag of evaluation: each refused, naming it, nothing evaluated
    const before = readFileSync(join(dir, "eval", "metrics.json"), "utf8");
    process.env.BRIDGE_RUNS_DIR = root;
    try {
      for (const [opts, message] of [
        [{ compare: [] }, "--compare needs at least two runs (got none)"],
        [{ compare: [name] }, `--compare needs at least two runs (got only ${name})`],
        [{ compare: [name, name] }, `--compare names ${name} twice`],
        [{ compare: [name, "no-such-run"] }, `no run named "no-such-run" in ${root}; runs there: `],
        [{ compare: [name, never], dataDir, tasks: "sts" }, "--compare only reads the runs' metrics.json, so --tasks, --data-dir have no use with it"],
      ] as [EvalCommandOptions, string][]) {
        await evalCommand(opts).then(
          () => assert.unreachable(JSON.stringify(opts)),
          (e: Error) => assert.match(e.message, message),
        );
      }
    } finally {
      delete process.env.BRIDGE_RUNS_DIR;
    }
    assert.is(readFileSync(join(dir, "eval", "metrics.json"), "utf8"), before, "the latest run was not evaluated");
    // a metrics.json of the wrong shape is named with what is wrong, not read as an empty column
    const metrics = join(root, never, "eval", "metrics.json");
    mkdirSync(dirname(metrics), { recursive: true });
    process.env.BRIDGE_RUNS_DIR = root;
    try {
      for (const [text, message] of [
        ["null", "(top level): got null; expected object"],
        ["[]", "(top level): got []; expected object"],
        ['{"run": "x", "tasks": "snli"}', 'tasks: got "snli"; expected array'],
      ]) {
        writeFileSync(metrics, text);
        await evalCommand({ compare: [name, never] }).then(
          () => assert.unreachable(`metrics.json ${text} was read`),
          (e: Error) => assert.match(e.message, `${metrics}: ${message}`),
        );
      }
    } finally {
      delete process.env.BRIDGE_RUNS_DIR;
    }
  });

  testWithData(
    test,
    "sts12-16 in SentEval's layout: per-year Spearman with subsets pooled, their mean; absent years skipped; sick supervised after sick:train",
    async (dataDir) => {
      const { root, dir } = await sharedRun(dataDir);
      // A copy of the run whose manifest says it trained on sick:train (as a run with data.pairs: sick records it).
      const name = "t1-sick";
      cpSync(dir, join(root, name), { recursive: true });
      const manifestPath = join(root, name, "run.json");
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as RunManifest;
      manifest.data = { train: { split: "sick:train", rows: 4500 }, valid: { split: "sick:trial", rows: 500 }, holdout: null };
      writeFileSync(manifestPath, JSON.stringify(manifest));
      // STS12 and STS13 from STS-B dev pairs, two subsets each, some gold lines blank (unscored); no STS14-16.
      const data = join(root, "sts-data");
      mkdirSync(data, { recursive: true });
      symlinkSync(join(dataDir, "sick"), join(data, "sick"));
      const stsb: PairRecord[] = [];
      for await (const r of readStsBenchmark(join(dataDir, "stsbenchmark", "sts-dev.csv"))) stsb.push(r);
      const blank = (i: number) => i % 7 === 3;
      const years = { STS12: { MSRpar: stsb.slice(0, 40), headlines: stsb.slice(40, 70) }, STS13: { FNWN: stsb.slice(70, 120), OnWN: stsb.slice(120, 150) } };
      for (const [year, subsets] of Object.entries(years)) {
        mkdirSync(join(data, "sts", year), { recursive: true });
        for (const [subset, rows] of Object.entries(subsets)) {
          writeFileSync(join(data, "sts", year, `STS.input.${subset}.txt`), `${rows.map((r) => `${r.s1}\t${r.s2}`).join("\n")}\n`);
          writeFileSync(join(data, "sts", year, `STS.gs.${subset}.txt`), `${rows.map((r, i) => (blank(i) ? "" : String(r.score))).join("\n")}\n`);
        }
      }
      const { metrics } = await evaluateRun({ run: name, runsDir: root, dataDir: data, tasks: ["sick", "sts12-16"], limit: 100, log: () => undefined });
      assert.is(metrics.sick!.supervised, true, "the run trained on sick:train");
      assert.ok(metrics.trained_on.some((t) => t.split === "sick:train" && t.use === "pairs"));
      for (const [key, subsets] of [
        ["sts12", years.STS12],
        ["sts13", years.STS13],
      ] as const) {
        const y = metrics[key]!;
        const scored = Object.values(subsets).flatMap((rows) => rows.filter((_, i) => !blank(i)));
        assert.is(y.items, scored.length, `${key}: unscored pairs are skipped`);
        assert.equal(Object.keys(y.subsets).sort(), Object.keys(subsets).sort());
        assert.is(
          Object.values(y.subsets).reduce((a, s) => a + s.items, 0),
          y.items,
        );
        assert.is(y.supervised, false);
        // pooled ("all"): the TF-IDF baseline over every subset's pairs at once
        const pooled = correlations(
          tfidfCosines(
            scored.map((r) => r.s1),
            scored.map((r) => r.s2),
          ),
          scored.map((r) => r.score!),
        );
        assert.ok(Math.abs(y.baseline.tfidf.spearman - pooled.spearman) < 1e-12, `${key}: baseline ${y.baseline.tfidf.spearman} vs pooled ${pooled.spearman}`);
        assert.ok(y.spearman >= -1 && y.spearman <= 1);
      }
      assert.equal(metrics.sts12_16!.years, ["sts12", "sts13"]);
      assert.ok(Math.abs(metrics.sts12_16!.mean - (metrics.sts12!.spearman + metrics.sts13!.spearman) / 2) < 1e-12);
      for (const y of ["sts14", "sts15", "sts16"])
        assert.match(metrics.skipped.find((s) => s.split === `${y}:all`)!.reason, join(data, "sts", y.toUpperCase()));
      const summary = formatSummary(metrics);
      for (const key of ["sts12.spearman", "sts13.spearman", "sts12_16.mean", "sick.spearman"]) assert.match(summary, key);
    },
  );

  testWithData(
    test,
    "sts16 in STS2016.* naming; pairs the run trained on (stsb:train) mark a year partly supervised, with the unseen pairs' Spearman",
    async (dataDir) => {
      const { root, dir } = await sharedRun(dataDir);
      // A copy of the run whose manifest says a multi-task stage also trained on stsb:train (10% held out).
      const name = "t1-stsb";
      cpSync(dir, join(root, name), { recursive: true });
      const manifestPath = join(root, name, "run.json");
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as RunManifest;
      const train: PairRecord[] = [];
      for await (const r of readStsBenchmark(join(dataDir, "stsbenchmark", "sts-train.csv"))) train.push(r);
      const held = new Set(
        premiseHoldout(
          train.map((r) => r.s1),
          0.1,
          HOLDOUT_SEED,
        ).validRows,
      );
      manifest.data = { ...manifest.data!, tasks: [{ split: "stsb:train", rows: train.length - held.size, heldOut: held.size }] };
      writeFileSync(manifestPath, JSON.stringify(manifest));
      const config = JSON.parse(readFileSync(join(root, name, "config.json"), "utf8")) as { data: { holdout: number } };
      assert.is(config.data.holdout, 0.1);
      // STS16 as SentEval ships it: 30 pairs the run trained on, 10 it held out, 30 from STS-B dev
      const trainedKeys = new Set(train.filter((_, i) => !held.has(i)).map((r) => pairKey(r.s1, r.s2)));
      const dev: PairRecord[] = [];
      for await (const r of readStsBenchmark(join(dataDir, "stsbenchmark", "sts-dev.csv"))) if (!trainedKeys.has(pairKey(r.s1, r.s2))) dev.push(r);
      const seenRows = train.filter((_, i) => !held.has(i)).slice(0, 30);
      const heldRows = train.filter((_, i) => held.has(i)).slice(0, 10);
      const rows = [...seenRows, ...heldRows, ...dev.slice(0, 30)];
      const data = join(root, "sts16-data");
      mkdirSync(join(data, "sts", "STS16"), { recursive: true });
      for (const d of ["snli_1.0", "stsbenchmark"]) symlinkSync(join(dataDir, d), join(data, d));
      writeFileSync(join(data, "sts", "STS16", "STS2016.input.headlines.txt"), `${rows.map((r) => `${r.s1}\t${r.s2}`).join("\n")}\n`);
      writeFileSync(join(data, "sts", "STS16", "STS2016.gs.headlines.txt"), `${rows.map((r) => String(r.score)).join("\n")}\n`);
      const { metrics } = await evaluateRun({ run: name, runsDir: root, dataDir: data, tasks: ["sts12-16"], log: () => undefined });
      const y = metrics.sts16!;
      assert.ok(y, "STS2016.input / STS2016.gs were read");
      assert.is(y.items, 70);
      assert.is(y.seen.pairs, 30, "the trained pairs, not the held-out ones");
      assert.ok(Math.abs(y.seen.share - 30 / 70) < 1e-12);
      assert.is(y.supervised, true);
      assert.is(y.seen.unseen.items, 40);
      const summary = formatSummary(metrics);
      assert.match(summary, /sts16\.spearman .*partly \(43% of the items\)/);
      assert.match(summary, /sts16\.spearman_unseen/);
      // the same folder for (a copy of) the run it was copied from, which never trained on STS-B: nothing seen, not supervised
      cpSync(dir, join(root, "t1-plain"), { recursive: true });
      const plain = await evaluateRun({ run: "t1-plain", runsDir: root, dataDir: data, tasks: ["sts12-16"], log: () => undefined });
      assert.is(plain.metrics.sts16!.seen.pairs, 0);
      assert.is(plain.metrics.sts16!.supervised, false);
    },
  );

  testWithData(test, "--compare tables every metric of two runs side by side", async (dataDir) => {
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
        assert.is(await evalCommand({ compare: [name, "t2"] }), 0);
      } finally {
        console.log = orig;
      }
      assert.ok(existsSync(join(root, `compare-${name}-t2.html`)));
    } finally {
      delete process.env.BRIDGE_RUNS_DIR;
    }
  });

  testWithData(test, "the CLI: npx bridge eval --run NAME --tasks separation", async (dataDir) => {
    const { root, dir } = await sharedRun(dataDir);
    const name = "t1-cli"; // a copy: this eval rewrites its eval/ folder
    cpSync(dir, join(root, name), { recursive: true });
    const { stdout } = await promisify(execFile)(process.execPath, [bridgeBin, "eval", "--run", name, "--tasks", "separation", "--data-dir", dataDir], {
      env: { ...process.env, BRIDGE_RUNS_DIR: root },
    });
    assert.match(stdout, "separation.roc_auc");
    assert.match(stdout, "report.html");
  });

  testWithData(test, "the CLI without --run evaluates the latest run", async (dataDir) => {
    const { dir } = await sharedRun(dataDir);
    const only = tempFolder("bridge-latest-");
    try {
      cpSync(dir, join(only, "solo"), { recursive: true });
      const { stdout } = await promisify(execFile)(process.execPath, [bridgeBin, "eval", "--tasks", "separation", "--data-dir", dataDir], {
        env: { ...process.env, BRIDGE_RUNS_DIR: only },
      });
      assert.match(stdout, "run solo trained on");
      assert.match(stdout, join(only, "solo", "eval", "metrics.json"));
    } finally {
      rmSync(only, { recursive: true, force: true });
    }
  });
}

test.run();
