/**
 * The results table from fabricated runs in a temp runs dir (ablate.json, run.json, eval/metrics.json
 * as train and eval write them): means and sample standard deviations over the seeds done, pending
 * cells, supervised marks, the best mean in bold, the TF-IDF row from the runs' baselines, the
 * per-run detail table; written by `ablate --table-only`, which trains nothing.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadGrid } from "../../ts/ablate/grid.js";
import { type AblateRecord, configHash, planRuns, RECORD_FILE, RECORD_VERSION, runName } from "../../ts/ablate/plan.js";
import { displayPath } from "../../ts/ablate/table.js";
import { ablate } from "../../ts/commands/ablate.js";
import { loadConfig } from "../../ts/config/load.js";
import type { Metrics } from "../../ts/eval/types.js";
import { projectRoot } from "../../ts/paths.js";
import { acquireRunLock } from "../../ts/run/lock.js";
import { finishedManifestJson, tempFolder } from "../helpers.js";

const tmp = tempFolder("bridge-ablate-table-");
const runsDir = join(tmp, "runs");
const tiny = join(projectRoot, "configs", "tiny.yaml");
const gridPath = join(tmp, "grid.yaml");
writeFileSync(
  gridPath,
  `name: t
title: Fabricated grid
findings: "Seed spread is **large** here."
base: ${tiny}
seeds: [1, 2]
eval: { tasks: [separation, sts, snli] }
output: out/results.md
variants:
  - name: a
    about: "two seeds | both done"
  - name: b
    about: one seed done
    set: ["stages.siamese.epochs=1"]
  - name: c
    about: nothing done
    set: ["stages.lm.epochs=2"]
  - name: tfidf
    about: TF-IDF cosine
    baseline: tfidf
`,
);

interface Fake {
  auc: number;
  sts: number;
  /** Absent: the run has no classifier (no snli entry). */
  acc?: number;
  minutes: number;
}

const base = { items: 100, stages: [] };

function metricsOf(run: string, f: Fake): Metrics {
  return {
    run,
    checkpoint: "checkpoints/1-siamese.pt",
    created: "2025-01-01T00:00:00Z",
    data_dir: "/data",
    tasks: ["snli", "separation", "sts"],
    trained_on: [{ split: "snli:dev", use: "pairs", rows: 900, heldOut: 100 }],
    skipped: [],
    separation: {
      ...base,
      split: "snli:dev",
      supervised: true,
      subset: "held out",
      positive: "entailment",
      negative: "contradiction",
      bins: 40,
      roc_auc: f.auc,
      overlap: 0.5,
      mean_cosine: {},
      baseline: { tfidf: { roc_auc: 0.7, overlap: 0.6, mean_cosine: {} } },
    },
    sts: { ...base, split: "stsb:dev", supervised: false, spearman: f.sts, pearson: f.sts, baseline: { tfidf: { spearman: 0.5, pearson: 0.5 } } },
    ...(f.acc === undefined
      ? {}
      : {
          snli: {
            items: 100,
            split: "snli:dev",
            supervised: true,
            subset: "held out",
            accuracy: f.acc,
            macro_f1: f.acc,
            confusion: { labels: [], matrix: [] },
            per_class: {},
          },
        }),
  };
}

/** A finished run folder as train + eval + ablate leave it. */
function fakeRun(variant: string, set: string[], seed: number, f: Fake | "unfinished"): void {
  const grid = loadGrid(gridPath);
  const dir = join(runsDir, runName(grid, variant, seed));
  mkdirSync(join(dir, "eval"), { recursive: true });
  const cfg = loadConfig({ file: tiny, set: [`seed=${seed}`, ...set] });
  const done = f !== "unfinished";
  const record: AblateRecord = {
    version: RECORD_VERSION,
    grid: "t",
    gridFile: gridPath,
    variant,
    seed,
    configHash: configHash(cfg),
    trainSeconds: done ? f.minutes * 60 - 30 : null,
    evalSeconds: done ? 30 : null,
    started: "2025-01-01T00:00:00Z",
    finished: done ? "2025-01-01T00:10:00Z" : null,
    ...(done ? {} : { error: "bridge train exited with 1" }),
  };
  writeFileSync(join(dir, RECORD_FILE), JSON.stringify(record));
  if (!done) return;
  writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
  writeFileSync(join(dir, "run.json"), finishedManifestJson("checkpoints/1-siamese.pt"));
  writeFileSync(join(dir, "eval", "metrics.json"), JSON.stringify(metricsOf(runName(grid, variant, seed), f)));
}

fakeRun("a", [], 1, { auc: 0.78, sts: 0.4, acc: 0.6, minutes: 10 });
fakeRun("a", [], 2, { auc: 0.82, sts: 0.44, acc: 0.62, minutes: 12 });
fakeRun("b", ["stages.siamese.epochs=1"], 1, { auc: 0.9, sts: 0.3, minutes: 5 });
fakeRun("b", ["stages.siamese.epochs=1"], 2, "unfinished");

test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** The markdown table row whose first cell is `name`, as cells. */
function row(md: string, name: string): string[] {
  const line = md.split("\n").find((l) => l.startsWith(`| ${name} |`));
  assert.ok(line, `no row ${name} in:\n${md}`);
  return line
    .slice(2, -2)
    .split(/ (?<!\\)\| /)
    .map((c) => c.trim());
}

test("--table-only writes means, spreads, pending cells, supervised marks and the best mean in bold", async () => {
  const lines: string[] = [];
  assert.is(await ablate({ grid: gridPath, tableOnly: true, runsDir, log: (l) => lines.push(l) }), 0);
  const out = join(tmp, "out", "results.md");
  assert.match(lines.join("\n"), `wrote ${out} (3 of 6 runs done)`);
  const md = readFileSync(out, "utf8");

  assert.ok(md.startsWith("# Fabricated grid\n"));
  assert.match(md, `Reproduce: \`npx bridge ablate ${gridPath}\``);
  assert.match(md, /- Machine: \d+ cores, \S/);
  assert.match(md, "- Trained on (every run): snli:dev (pairs, 900 rows, 100 rows held out)");
  assert.match(md, "- Runs: 3 of 6 done");
  assert.match(md, "## What mattered\n\nSeed spread is **large** here.\n\n## Per run");
  assert.match(md, "| variant | about | seeds | separation ROC AUC (snli:dev) | STS-B Spearman (stsb:dev) | SNLI accuracy (snli:dev) | min/run |");

  // a: two seeds, mean ± sample sd (0.78, 0.82 -> 0.800 ± 0.028); SNLI and separation are supervised
  assert.equal(row(md, "a"), ["a", "two seeds \\| both done", "2/2", "0.800 ± 0.028 (s)", "0.420 ± 0.028", "0.610 ± 0.014 (s)", "11.0"]);
  // b: one seed done (its value), no classifier: blank SNLI cell; bold needs a second row to beat (SNLI has one)
  assert.equal(row(md, "b"), ["b", "one seed done", "1/2", "**0.900** (s)", "0.300", "", "5.0"]);
  assert.equal(row(md, "c"), ["c", "nothing done", "0/2", "pending", "pending", "pending", "pending"]);
  // the TF-IDF row: the baseline every run scored on the same items, once (best on STS here); no classifier
  assert.equal(row(md, "tfidf"), ["tfidf", "TF-IDF cosine", "-", "0.700", "**0.500**", "", "-"]);

  // per run: every run, its values, and why the others are not done
  assert.equal(row(md, "ablate-t-a-s2"), ["ablate-t-a-s2", "a", "2", "0.820 (s)", "0.440", "0.620 (s)", "12.0", "done"]);
  assert.match(row(md, "ablate-t-b-s2")[7], /^failed: bridge train exited with 1 \(see .*ablate-t-b-s2\/ablate\.log\)$/);
  assert.equal(row(md, "ablate-t-c-s1").slice(3), ["", "", "", "", "pending"]);
});

test("displayPath: relative inside the project, or beside it for the data folder (../shared/data); else absolute", () => {
  assert.is(displayPath(join(projectRoot, "configs", "default.yaml")), join("configs", "default.yaml"));
  assert.is(displayPath(join(projectRoot, "..", "shared", "data"), { besideProject: true }), join("..", "shared", "data"));
  assert.is(displayPath(join(projectRoot, "..", "shared", "data")), join(projectRoot, "..", "shared", "data"));
  assert.is(displayPath(join(projectRoot, "..", "..", "elsewhere"), { besideProject: true }), join(projectRoot, "..", "..", "elsewhere"));
  assert.is(displayPath(projectRoot), projectRoot);
});

test("the plan the table reads: done, restart after a failed training, pending", () => {
  const runs = planRuns(loadGrid(gridPath), { runsDir });
  assert.equal(
    runs.map((r) => `${r.run}:${r.status}`),
    ["ablate-t-a-s1:done", "ablate-t-a-s2:done", "ablate-t-b-s1:done", "ablate-t-b-s2:restart", "ablate-t-c-s1:pending", "ablate-t-c-s2:pending"],
  );
});

test("a run whose metrics.json is damaged is planned for evaluation again, not a stop for the grid", () => {
  const file = join(runsDir, "ablate-t-a-s2", "eval", "metrics.json");
  const kept = readFileSync(file);
  try {
    writeFileSync(file, '{"tasks":');
    const runs = planRuns(loadGrid(gridPath), { runsDir });
    assert.is(runs.find((r) => r.run === "ablate-t-a-s2")?.status, "eval");
    assert.is(runs.find((r) => r.run === "ablate-t-a-s1")?.status, "done");
  } finally {
    writeFileSync(file, kept);
  }
});

test("--dry-run prints the plan and writes nothing", async () => {
  const lines: string[] = [];
  const out = join(tmp, "dry", "results.md");
  const grid = join(tmp, "grid-dry.yaml");
  writeFileSync(grid, readFileSync(gridPath, "utf8").replace("output: out/results.md", "output: dry/results.md"));
  await ablate({ grid, dryRun: true, runsDir, log: (l) => lines.push(l) });
  const text = lines.join("\n");
  assert.match(text, /ablate-t-a-s1\s+a\s+1\s+done/);
  assert.match(text, /ablate-t-b-s2\s+b\s+2\s+unfinished: train again/);
  assert.match(text, /ablate-t-c-s2\s+c\s+2\s+to train/);
  assert.match(text, "6 runs: 3 done, 3 pending");
  assert.not.ok(readFileSafe(out), "--dry-run wrote the table");
});

test("one ablation of a grid at a time: a second is refused, naming the holder", async () => {
  const lock = acquireRunLock(join(runsDir, ".ablate-t"), "the test holds it");
  try {
    // --only a: every run of a is done, so nothing would train even if the lock let it through
    const e = await ablate({ grid: gridPath, only: ["a"], runsDir, log: () => {} }).then(
      () => null,
      (err: Error) => err,
    );
    assert.ok(e, "a second ablation of the grid ran");
    assert.match(e.message, `is locked: pid ${process.pid} is running \`the test holds it\``);
  } finally {
    lock.release();
  }
});

/** The same grid writing elsewhere, with a ledger (as an earlier machine left it) beside its output. */
function ledgerGrid(dir: string, entries: object[] | string): string {
  const grid = join(tmp, `grid-${dir}.yaml`);
  writeFileSync(grid, readFileSync(gridPath, "utf8").replace("output: out/results.md", `output: ${dir}/results.md`));
  mkdirSync(join(tmp, dir), { recursive: true });
  writeFileSync(join(tmp, dir, "results.runs.json"), typeof entries === "string" ? entries : JSON.stringify({ version: 1, grid: "t", runs: entries }));
  return grid;
}

/** A ledger entry for variant c (stages.lm.epochs=2) as another machine recorded it. */
function recordedC(seed: number, auc: number, hashOf: string[] = ["stages.lm.epochs=2"]): object {
  const hash = configHash(loadConfig({ file: tiny, set: [`seed=${seed}`, ...hashOf] }));
  return {
    run: `ablate-t-c-s${seed}`,
    variant: "c",
    seed,
    configHash: hash,
    minutes: 7,
    finished: "2026-11-30T10:00:00Z",
    trainedOn: "snli:dev (pairs, 900 rows, 100 rows held out)",
    values: {
      "separation.roc_auc": { split: "snli:dev", value: auc, baseline: 0.7, supervised: true },
      "sts.spearman": { split: "stsb:dev", value: 0.6, baseline: 0.5, supervised: false },
    },
  };
}

test("the ledger: runs recorded elsewhere fill the table where runs/ lacks them; a changed config's entry is kept but not shown", async () => {
  const stale = { ...recordedC(2, 0.5, ["stages.lm.epochs=3"]) };
  const grid = ledgerGrid("ledger", [recordedC(1, 0.95), stale, { ...recordedC(1, 0.4), run: "ablate-t-gone-s1", variant: "gone" }]);
  const lines: string[] = [];
  await ablate({ grid, tableOnly: true, runsDir, log: (l) => lines.push(l) });
  assert.match(lines.join("\n"), "(3 of 6 runs done, 1 more from the ledger)");
  assert.match(
    lines.join("\n"),
    "results.runs.json: 1 with another config than the grid now gives (ablate-t-c-s2); 1 of variants no longer in the grid (ablate-t-gone-s1): kept in the ledger, left out of the table",
  );
  const md = readFileSync(join(tmp, "ledger", "results.md"), "utf8");
  assert.match(md, "- Runs: 4 of 6 done, 2 not yet (see the per-run table); 1 of the done ones are from the ledger");
  // c: seed 1 from the ledger (the best separation now), seed 2's entry was made with another config: pending
  assert.equal(row(md, "c"), ["c", "nothing done", "1/2", "**0.950** (s)", "**0.600**", "", "7.0"]);
  assert.equal(row(md, "ablate-t-c-s1").slice(3), ["0.950 (s)", "0.600", "", "7.0", "done (recorded 2026-11-30; not in runs/)"]);
  assert.equal(row(md, "ablate-t-c-s2").slice(3), ["", "", "", "", "pending"]);
  // rewritten: the runs done in runs/ with their values, the valid entry, and (kept, never lost unseen) the stale one
  // and the removed variant's
  const ledger = JSON.parse(readFileSync(join(tmp, "ledger", "results.runs.json"), "utf8")) as {
    runs: { run: string; configHash: string; values: Record<string, { value: number }> }[];
  };
  assert.equal(
    ledger.runs.map((e) => e.run),
    ["ablate-t-a-s1", "ablate-t-a-s2", "ablate-t-b-s1", "ablate-t-c-s1", "ablate-t-c-s2", "ablate-t-gone-s1"],
  );
  assert.is(ledger.runs[4].configHash, (stale as { configHash: string }).configHash);
  assert.is(ledger.runs[1].values["separation.roc_auc"].value, 0.82);
  // one run a line: a commit's diff names the runs it adds
  assert.is(
    readFileSync(join(tmp, "ledger", "results.runs.json"), "utf8")
      .split("\n")
      .filter((l) => l.includes('"run":')).length,
    6,
  );
});

test("--skip-recorded: a run the ledger records is not trained again; without it, the plan trains it", async () => {
  const grid = ledgerGrid("skip", [recordedC(1, 0.95), recordedC(2, 0.9)]);
  const plain: string[] = [];
  await ablate({ grid, dryRun: true, runsDir, log: (l) => plain.push(l) });
  assert.match(plain.join("\n"), /ablate-t-c-s1\s+c\s+1\s+in the ledger: train again/);
  assert.match(plain.join("\n"), "6 runs: 3 done, 2 in the ledger");
  // every run of c is recorded: nothing to train, the table is written from the ledger
  const lines: string[] = [];
  assert.is(await ablate({ grid, only: ["c"], skipRecorded: true, runsDir, log: (l) => lines.push(l) }), 0);
  assert.match(lines.join("\n"), "ablate-t-c-s2: recorded in the ledger (same config), skipped");
  assert.match(lines.join("\n"), "0 runs finished now");
  assert.equal(row(readFileSync(join(tmp, "skip", "results.md"), "utf8"), "c").slice(2, 4), ["2/2", "**0.925 ± 0.035** (s)"]);
});

test("a ledger that is not JSON, another grid's, or of the wrong shape is refused naming the file and the field", async () => {
  for (const [dir, text, msg] of [
    ["bad-json", "{ not json", "results.runs.json: not valid JSON"],
    ["other-grid", JSON.stringify({ version: 1, grid: "other", runs: [] }), "results.runs.json: the ledger of grid other, not of t"],
    ["bad-entry", JSON.stringify({ version: 1, grid: "t", runs: [{ run: "x" }] }), "results.runs.json: runs.0.variant: missing; expected string"],
    ["null", "null", "results.runs.json: (top level): got null; expected object"],
    ["no-version", JSON.stringify({ grid: "t", runs: [] }), "results.runs.json: ledger version missing, this bridge reads 1"],
    [
      "string-value",
      JSON.stringify({
        version: 1,
        grid: "t",
        runs: [{ ...recordedC(1, 0.9), values: { "sts.spearman": { split: "stsb:dev", value: "0.77", baseline: null, supervised: false } } }],
      }),
      'results.runs.json: runs.0.values.sts.spearman.value: got "0.77"; expected number',
    ],
    [
      "finished-number",
      JSON.stringify({ version: 1, grid: "t", runs: [{ ...recordedC(1, 0.9), finished: 20261205 }] }),
      "runs.0.finished: got 20261205; expected string",
    ],
  ]) {
    const grid = ledgerGrid(dir, text);
    const e = await ablate({ grid, tableOnly: true, runsDir, log: () => {} }).then(
      () => null,
      (err: Error) => err,
    );
    assert.ok(e, `${dir}: accepted`);
    assert.match(e.message, msg);
  }
});

test("an output file that is not a table of bridge ablate is refused, left as it was; a table without its ledger is rewritten", async () => {
  const dir = join(tmp, "foreign-output");
  mkdirSync(dir, { recursive: true });
  const grid = join(tmp, "grid-foreign.yaml");
  writeFileSync(grid, readFileSync(gridPath, "utf8").replace("output: out/results.md", "output: foreign-output/notes.md"));
  const notes = join(dir, "notes.md");
  writeFileSync(notes, "# My notes\n\nHand-written.\n");
  const e = await ablate({ grid, tableOnly: true, runsDir, log: () => {} }).then(
    () => null,
    (err: Error) => err,
  );
  assert.ok(e, "a foreign file was overwritten");
  assert.match(e.message, `output: ${notes} exists and is not a results table of bridge ablate`);
  assert.is(readFileSync(notes, "utf8"), "# My notes\n\nHand-written.\n");
  assert.is(readFileSafe(join(dir, "notes.runs.json")), null, "no ledger written beside it");
  // a table of ours whose ledger was deleted is still ours
  writeFileSync(notes, "# t\n\nReproduce: `npx bridge ablate grid.yaml`\n");
  await ablate({ grid, tableOnly: true, runsDir, log: () => {} });
  assert.match(readFileSync(notes, "utf8"), "Reproduce: `npx bridge ablate");
  assert.ok(readFileSafe(join(dir, "notes.runs.json")) !== null);
});

function readFileSafe(p: string): string | null {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return null;
  }
}

test("a perplexity column (eval task lm): the lowest mean is the best", async () => {
  const dir = join(tmp, "lm-grid");
  const lmRuns = join(dir, "runs");
  const grid = join(dir, "grid.yaml");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    grid,
    `name: p\ntitle: LM grid\nbase: ${tiny}\nseeds: [1]\neval: { tasks: [lm] }\noutput: results.md\nvariants:\n  - name: low\n    about: lower perplexity\n  - name: high\n    about: higher perplexity\n    set: ["stages.lm.epochs=2"]\n`,
  );
  for (const [variant, set, perplexity] of [
    ["low", [], 120.5],
    ["high", ["stages.lm.epochs=2"], 310.25],
  ] as const) {
    const run = runName(loadGrid(grid), variant, 1);
    const runDir = join(lmRuns, run);
    mkdirSync(join(runDir, "eval"), { recursive: true });
    const cfg = loadConfig({ file: tiny, set: ["seed=1", ...set] });
    const record: AblateRecord = {
      version: RECORD_VERSION,
      grid: "p",
      gridFile: grid,
      variant,
      seed: 1,
      configHash: configHash(cfg),
      trainSeconds: 60,
      evalSeconds: 6,
      started: "2025-01-01T00:00:00Z",
      finished: "2025-01-01T00:10:00Z",
    };
    writeFileSync(join(runDir, RECORD_FILE), JSON.stringify(record));
    writeFileSync(join(runDir, "config.json"), JSON.stringify(cfg));
    writeFileSync(join(runDir, "run.json"), finishedManifestJson("checkpoints/0-lm.pt"));
    const lm = {
      items: 1000,
      split: "wikitext-2:test",
      supervised: false,
      perplexity,
      oov_rate: 0.01,
      checkpoint: "checkpoints/0-lm.pt",
      bptt: 70,
      note: "",
      samples: [],
      sampling: { n: 0, max_len: 30, temperature: 0.8, top_k: 0, seed: 0 },
    };
    const metrics = {
      run,
      checkpoint: "checkpoints/0-lm.pt",
      created: "2025-01-01T00:00:00Z",
      data_dir: "/data",
      tasks: ["lm"],
      trained_on: [],
      skipped: [],
      lm,
    };
    writeFileSync(join(runDir, "eval", "metrics.json"), JSON.stringify(metrics));
  }
  assert.is(await ablate({ grid, tableOnly: true, runsDir: lmRuns, log: () => {} }), 0);
  const md = readFileSync(join(dir, "results.md"), "utf8");
  assert.match(md, "| variant | about | seeds | perplexity (wikitext-2:test) | min/run |");
  assert.equal(row(md, "low"), ["low", "lower perplexity", "1/1", "**120.5**", "1.1"]);
  assert.equal(row(md, "high"), ["high", "higher perplexity", "1/1", "310.3", "1.1"]);
  // the ledger keeps the value, so the row outlives the run folders
  const ledger = JSON.parse(readFileSync(join(dir, "results.runs.json"), "utf8")) as { runs: { values: Record<string, { value: number }> }[] };
  assert.equal(
    ledger.runs.map((r) => r.values["lm.perplexity"]?.value),
    [120.5, 310.25],
  );
});

test.run();
