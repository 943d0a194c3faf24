/**
 * `npx bridge ablate` for real: configs/ablations/example-tiny.yaml (2 variants of configs/tiny.yaml
 * and the TF-IDF row) with --seeds 1 trains and evaluates both runs through the CLI, writes the table
 * with both rows, and a second invocation skips both runs (no retraining, the table rewritten alike).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { AblateRecord } from "../../ts/ablate/plan.js";
import { displayPath } from "../../ts/ablate/table.js";
import { projectRoot } from "../../ts/paths.js";
import { bridgeBin, tempFolder, testWithData } from "../helpers.js";

const tmp = tempFolder("bridge-ablate-run-");
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** The example grid with its base config made absolute and its table written into the temp folder. */
function exampleGrid(): string {
  const grid = parseYaml(readFileSync(join(projectRoot, "configs", "ablations", "example-tiny.yaml"), "utf8")) as Record<string, unknown>;
  grid.base = join(projectRoot, "configs", "tiny.yaml");
  grid.output = "results.md";
  const file = join(tmp, "example-tiny.yaml");
  writeFileSync(file, stringifyYaml(grid));
  return file;
}

const cli = (args: string[], runsDir: string) =>
  promisify(execFile)(process.execPath, [bridgeBin, ...args], { env: { ...process.env, BRIDGE_RUNS_DIR: runsDir }, maxBuffer: 16 * 1024 * 1024 });

const row = (md: string, name: string) => md.split("\n").find((l) => l.startsWith(`| ${name} |`));

testWithData(test, "a 2-variant x 1-seed grid on tiny.yaml, 2 runs at a time: both rows in the table; run again, both runs are skipped", async (dataDir) => {
  const runsDir = join(tmp, "runs");
  const grid = exampleGrid();
  const args = ["ablate", grid, "--data-dir", dataDir, "--seeds", "1"];
  const first = await cli([...args, "--jobs", "2"], runsDir);
  assert.match(first.stdout, "[1/2] ablate-example-tiny-siamese2-s1: training");
  assert.match(
    first.stdout,
    /\[2\/2\] ablate-example-tiny-siamese1-s1: done in \d+\.\d min: separation\.roc_auc 0\.\d{3}, sts\.spearman -?0\.\d{3}, snli\.accuracy 0\.\d{3}/,
  );
  assert.match(first.stdout, "2 runs finished now, 0 done before, 0 failed");

  const out = join(tmp, "results.md");
  const md = readFileSync(out, "utf8");
  // the data folder as the README writes it (../shared/data) where it sits beside the project
  assert.match(md, `Reproduce: \`npx bridge ablate ${grid} --data-dir ${displayPath(dataDir, { besideProject: true })} --seeds 1\``);
  assert.match(md, "- Runs: 2 of 2 done");
  for (const v of ["siamese2", "siamese1"]) {
    const r = row(md, v);
    assert.ok(r, `no ${v} row:\n${md}`);
    // seeds done, then separation (supervised: tiny trains on snli:dev less its held-out rows), STS, SNLI, XNLI (out of domain), minutes
    assert.match(
      r,
      new RegExp(
        `^\\| ${v} \\| [^|]+ \\| 1/1 \\| (\\*\\*)?0\\.\\d{3}(\\*\\*)? \\(s\\) \\| (\\*\\*)?-?0\\.\\d{3}(\\*\\*)? \\| (\\*\\*)?0\\.\\d{3}(\\*\\*)? \\(s\\) \\| (\\*\\*)?0\\.\\d{3}(\\*\\*)? \\| \\d+\\.\\d \\|$`,
      ),
    );
  }
  assert.match(row(md, "tfidf")!, /^\| tfidf \| [^|]+ \| - \| (\*\*)?0\.\d{3}(\*\*)? \| (\*\*)?-?0\.\d{3}(\*\*)? \| {2}\| {2}\| - \|$/);
  assert.match(md, /\| ablate-example-tiny-siamese1-s1 \| siamese1 \| 1 \| .* \| done \|/);
  const record = JSON.parse(readFileSync(join(runsDir, "ablate-example-tiny-siamese1-s1", "ablate.json"), "utf8")) as AblateRecord;
  assert.ok(record.trainSeconds! > 0 && record.evalSeconds! > 0);
  assert.ok(existsSync(join(runsDir, "ablate-example-tiny-siamese1-s1", "ablate.log")));

  // again: nothing trains (the runs' files are untouched), the table says the same
  const metrics = join(runsDir, "ablate-example-tiny-siamese2-s1", "eval", "metrics.json");
  const mtime = statSync(metrics).mtimeMs;
  const second = await cli(args, runsDir);
  assert.match(second.stdout, "ablate-example-tiny-siamese2-s1: done already (same config), skipped");
  assert.match(second.stdout, "ablate-example-tiny-siamese1-s1: done already (same config), skipped");
  assert.match(second.stdout, "0 runs finished now, 2 done before, 0 failed");
  assert.not.match(second.stdout, "training");
  assert.is(statSync(metrics).mtimeMs, mtime);
  const again = readFileSync(out, "utf8");
  assert.is(row(again, "siamese2"), row(md, "siamese2"));
  assert.is(row(again, "siamese1"), row(md, "siamese1"));

  // --only one variant: the other's finished run is counted, not listed
  const only = await cli([...args, "--only", "siamese1"], runsDir);
  assert.match(only.stdout, "ablate-example-tiny-siamese1-s1: done already (same config), skipped");
  assert.not.match(only.stdout, "ablate-example-tiny-siamese2-s1: done already");
  assert.match(only.stdout, "1 finished run of other variants (not in --only): kept in the table");
});

test.run();
