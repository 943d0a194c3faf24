/**
 * Ablation grids are validated at the edge, from real files: unknown keys, duplicate names, missing
 * config files, a --set the config loader refuses (found before anything trains), seeds; and a run
 * folder the grid cannot take over is refused naming it.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadGrid, parseSeeds } from "../../ts/ablate/grid.js";
import { type AblateRecord, configHash, planRuns, RECORD_FILE, RECORD_VERSION, runName } from "../../ts/ablate/plan.js";
import { ablate } from "../../ts/commands/ablate.js";
import { loadConfig } from "../../ts/config/load.js";
import { projectRoot } from "../../ts/paths.js";
import { finishedManifestJson, tempFolder } from "../helpers.js";

const tmp = tempFolder("bridge-ablate-grid-");
const tiny = join(projectRoot, "configs", "tiny.yaml");
let n = 0;

/** Writes a grid file (YAML text) into its own temp folder; returns its path. */
function gridFile(yaml: string): string {
  const dir = join(tmp, `g${n++}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "grid.yaml");
  writeFileSync(file, yaml);
  return file;
}

const head = `name: t\nbase: ${tiny}\nseeds: [1, 2]\n`;

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test("an unknown variant key names the file, the variant and the allowed fields", () => {
  const file = gridFile(`${head}variants:\n  - name: a\n    sett: ["x=1"]\n`);
  const e = errorOf(() => loadGrid(file));
  assert.match(e.message, file);
  assert.match(e.message, 'variants.0 (a): unknown field "sett"; allowed: name, about, config, set, baseline');
});

test("an unknown top-level key, a bad name and repeated seeds are each named", () => {
  const e = errorOf(() => loadGrid(gridFile(`name: "a b"\nseeds: [1, 1]\nrows: []\nvariants:\n  - name: a\n`)));
  assert.match(e.message, '(top level): unknown field "rows"');
  assert.match(e.message, "name: got \"a b\"; use letters, digits, '.', '_' and '-' only");
  assert.match(e.message, "seeds: got [1,1]; seeds must be distinct");
});

test("duplicate variant names, a missing config file, a seed in set and an unknown eval task are all listed", () => {
  const file = gridFile(
    `${head}eval: { tasks: [sts, stss] }\nvariants:\n  - name: a\n  - name: a\n    config: nope.yaml\n  - name: b\n    set: ["seed=3", "noequals"]\n  - name: base\n    baseline: tfidf\n    set: ["model.pool=mean"]\n`,
  );
  const e = errorOf(() => loadGrid(file));
  assert.match(e.message, "variants.1 (a).name: duplicate of variants.0");
  assert.match(e.message, `variants.1 (a).config: nope.yaml: no such file (resolved to ${join(file, "..", "nope.yaml")})`);
  assert.match(e.message, 'variants.2 (b).set.0: "seed=3": the seed comes from the grid\'s seeds');
  assert.match(e.message, 'variants.2 (b).set.1: "noequals": expected key=value');
  assert.match(e.message, "variants.3 (base): a baseline row trains nothing");
  assert.match(e.message, 'eval.tasks: unknown task "stss"; known: snli, separation');
});

test("a missing base config is named with the path it resolved to", () => {
  const file = gridFile(`name: t\nbase: ../missing.yaml\nseeds: [1]\nvariants:\n  - name: a\n`);
  assert.match(errorOf(() => loadGrid(file)).message, `base: ../missing.yaml: no such file (resolved to ${join(file, "..", "..", "missing.yaml")})`);
});

test("a --set the config loader refuses fails when the runs are planned, naming the variant, the seed and the field", () => {
  const runsDir = join(tmp, "runs-plan");
  for (const [set, what] of [
    ["stages.siamese.epochs=-1", "stages.1.epochs: got -1"],
    ["stages.nosuch.epochs=2", 'stages.nosuch: no list item named "nosuch"'],
    ["model.poool=mean", 'model: unknown field "poool"'],
    ["stages.siamese.tasks=[{dataset: snli, objective: siamese}", "stages.siamese.tasks=...: the value is not valid YAML"],
  ] as const) {
    const grid = loadGrid(gridFile(`${head}variants:\n  - name: ok\n  - name: bad\n    set: ["${set}"]\n`));
    const e = errorOf(() => planRuns(grid, { runsDir }));
    // the base config alone loads, so the variant's set is named as the cause
    assert.match(e.message, `${grid.file}: variants.1 (bad).set [${set}], seed 1: `);
    assert.match(e.message, what);
  }
});

test("through the command: the error comes before any run folder is made", async () => {
  const runsDir = join(tmp, "runs-cmd");
  const file = gridFile(`${head}variants:\n  - name: ok\n  - name: bad\n    set: ["stages.0.epochs=0"]\n`);
  const e = await ablate({ grid: file, runsDir, log: () => {} }).then(
    () => null,
    (err: Error) => err,
  );
  assert.ok(e, "a grid with a refused --set ran");
  assert.match(e.message, "variants.1 (bad).set [stages.0.epochs=0], seed 1");
  assert.not.ok(existsSync(runsDir), "a runs folder was made");
});

test("--seeds and --only are checked", async () => {
  assert.equal(parseSeeds("1, 2,3"), [1, 2, 3]);
  assert.match(errorOf(() => parseSeeds("1,x")).message, '--seeds "1,x": expected comma-separated non-negative integers');
  assert.match(errorOf(() => parseSeeds("2,2")).message, "a seed is repeated");
  const file = gridFile(`${head}variants:\n  - name: a\n  - name: base\n    baseline: tfidf\n`);
  const err = (only: string[]) =>
    ablate({ grid: file, only, runsDir: join(tmp, "runs-only"), dryRun: true, log: () => {} }).then(
      () => null,
      (e: Error) => e,
    );
  assert.match((await err(["zz"]))!.message, "--only zz: no such variant");
  assert.match((await err(["base"]))!.message, "--only base: a baseline row, nothing to train");
});

test("the grids in configs/ablations load, and plan their runs (every config resolves)", () => {
  for (const name of ["quality", "example-tiny"]) {
    const grid = loadGrid(join(projectRoot, "configs", "ablations", `${name}.yaml`));
    const runs = planRuns(grid, { runsDir: join(tmp, "runs-empty") });
    const trained = grid.variants.filter((v) => v.kind === "trained").length;
    assert.is(runs.length, trained * grid.seeds.length, name);
    assert.ok(runs.every((r) => r.status === "pending"));
    assert.is(runs[0].run, `ablate-${grid.name}-${grid.variants[0].name}-s${grid.seeds[0]}`);
  }
  assert.is(loadGrid(join(projectRoot, "configs", "ablations", "quality.yaml")).output, join(projectRoot, "docs", "results.md"));
});

test("a run folder not made by ablate, or trained with another config, is refused before anything trains", () => {
  const runsDir = join(tmp, "runs-owned");
  const grid = loadGrid(gridFile(`${head}variants:\n  - name: a\n    set: ["stages.siamese.epochs=1"]\n`));
  const dir = join(runsDir, runName(grid, "a", 1));
  mkdirSync(dir, { recursive: true });
  assert.match(errorOf(() => planRuns(grid, { runsDir })).message, `${dir} exists but was not made by \`bridge ablate\` (no ablate.json)`);

  // a finished training whose config differs from what the grid now resolves: the differing field is named
  const previous = loadConfig({ file: tiny, set: ["seed=1"] }); // the variant before its set was added
  const record: AblateRecord = {
    version: RECORD_VERSION,
    grid: "t",
    gridFile: grid.file,
    variant: "a",
    seed: 1,
    configHash: configHash(previous),
    trainSeconds: 5,
    evalSeconds: null,
    started: "",
    finished: null,
  };
  writeFileSync(join(dir, RECORD_FILE), JSON.stringify(record));
  writeFileSync(join(dir, "run.json"), finishedManifestJson("checkpoints/1-siamese.pt"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(previous));
  const e = errorOf(() => planRuns(grid, { runsDir }));
  assert.match(e.message, `${dir} was trained by variant a seed 1 with another config than the grid now gives`);
  assert.match(e.message, "stages.1.epochs: 2 -> 1");

  // the same folder before its training finished: taken over (removed and trained again)
  writeFileSync(join(dir, RECORD_FILE), JSON.stringify({ ...record, trainSeconds: null }));
  assert.is(planRuns(grid, { runsDir })[0].status, "restart");

  // a record cut short or edited by hand: the file and the field are named, not met later as a crash
  for (const [text, message] of [
    ["null", "ablate.json: (top level): got null; expected object"],
    [JSON.stringify({ version: 1 }), "ablate.json: grid: missing; expected string"],
    [JSON.stringify({ ...record, seed: "1" }), 'ablate.json: seed: got "1"; expected number'],
  ]) {
    writeFileSync(join(dir, RECORD_FILE), text);
    const bad = errorOf(() => planRuns(grid, { runsDir })).message;
    assert.match(bad, message);
    assert.match(bad, `remove the run folder ${dir} to train it again`);
  }
});

test("the output is a markdown file of its own: not the grid, a config or a folder", () => {
  const base = `${head}variants:\n  - name: a\n`;
  assert.match(
    errorOf(() => loadGrid(gridFile(`${base}output: grid.yaml\n`))).message,
    "output: grid.yaml: the results table is markdown; give a file ending in .md",
  );
  assert.match(errorOf(() => loadGrid(gridFile(`${base}output: ${tiny}\n`))).message, "the results table is markdown");
  const file = gridFile(`${base}output: tables.md\n`);
  mkdirSync(join(file, "..", "tables.md"));
  assert.match(errorOf(() => loadGrid(file)).message, "output: tables.md: a folder");
  assert.is(loadGrid(gridFile(`${base}output: sub/results.md\n`)).output.endsWith(join("sub", "results.md")), true);
});

test("--jobs is checked before anything, --dry-run and --table-only included", async () => {
  const file = gridFile(`${head}variants:\n  - name: a\n`);
  for (const jobs of [0, -1, 1.5, Number.NaN]) {
    for (const mode of [{ dryRun: true }, { tableOnly: true }]) {
      const e = await ablate({ grid: file, jobs, runsDir: join(tmp, "runs-jobs"), ...mode, log: () => {} }).then(
        () => null,
        (err: Error) => err,
      );
      assert.match(e?.message ?? "accepted", `--jobs ${jobs}: a whole number of runs at a time, 1 or more`);
    }
  }
});

test.run();
