/**
 * The inspection notebooks execute top to bottom (nbclient, the project's venv as kernel) against
 * the evaluated tiny run, so they never rot; their shared first cell (notebooks/bridge_notebook.py)
 * finds the run to open. Skipped, visibly, where the shared data or nbclient is missing.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { backendPython, projectRoot } from "../../ts/paths.js";
import { tempFolder, testWithData } from "../helpers.js";
import { sharedRun } from "./fixtures.js";

const NOTEBOOKS = ["language-model", "sentence-vectors", "nli-errors", "semantic-search"];
const hasNbclient = spawnSync(backendPython(), ["-c", "import nbclient, ipykernel, matplotlib"]).status === 0;

/** The run folder bridge_notebook.find_run picks in `runsDir`, under `env`. */
function findRun(runsDir: string, env: Record<string, string> = {}) {
  const code = "import sys\nfrom pathlib import Path\nfrom bridge_notebook import find_run\nprint(find_run(Path(sys.argv[1])))";
  const clean: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: join(projectRoot, "notebooks") };
  for (const k of ["BRIDGE_RUN", "BRIDGE_RUN_DIR"]) delete clean[k];
  const r = spawnSync(backendPython(), ["-c", code, runsDir], { encoding: "utf8", env: { ...clean, ...env } });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr };
}

test("the notebooks open BRIDGE_RUN_DIR, else BRIDGE_RUN, else runs/latest, else the newest run", () => {
  const runs = tempFolder("bridge-nb-runs-");
  try {
    const none = findRun(runs);
    assert.is.not(none.status, 0);
    assert.match(none.err, `no run in ${runs}`);
    const made = (name: string, mtime: number) => {
      mkdirSync(join(runs, name));
      writeFileSync(join(runs, name, "run.json"), "{}");
      utimesSync(join(runs, name, "run.json"), mtime, mtime);
    };
    made("older", 1_000_000);
    made("newer", 2_000_000);
    made("oldest", 500_000);
    assert.is(findRun(runs).out, join(runs, "newer"));
    symlinkSync("older", join(runs, "latest"));
    assert.is(findRun(runs).out, join(runs, "older"), "runs/latest wins over modification times");
    assert.is(findRun(runs, { BRIDGE_RUN: "oldest" }).out, join(runs, "oldest"));
    assert.is(findRun(runs, { BRIDGE_RUN: "oldest", BRIDGE_RUN_DIR: join(runs, "newer") }).out, join(runs, "newer"));
  } finally {
    rmSync(runs, { recursive: true, force: true });
  }
});

test("committed notebooks carry no outputs, and share their first code cell through bridge_notebook", () => {
  for (const nb of NOTEBOOKS) {
    const book = JSON.parse(readFileSync(join(projectRoot, "notebooks", `${nb}.ipynb`), "utf8")) as {
      cells: { cell_type: string; source: string[]; outputs?: unknown[]; execution_count?: unknown }[];
    };
    for (const c of book.cells)
      if (c.cell_type === "code") assert.ok((c.outputs ?? []).length === 0 && c.execution_count === null, `${nb}: a cell has outputs`);
    const first = book.cells.find((c) => c.cell_type === "code")!.source.join("");
    assert.match(first, /from bridge_notebook import [^\n]*\bopen_run\b/, nb);
    assert.ok(first.split("\n").length <= 8, `${nb}: the first cell should stay short`);
  }
});

if (hasNbclient) {
  testWithData(test, "language-model, sentence-vectors, nli-errors and semantic-search notebooks execute against a run", async (dataDir) => {
    const { dir } = await sharedRun(dataDir);
    const r = spawnSync(backendPython(), [join(projectRoot, "notebooks", "execute.py"), dir, "--data-dir", dataDir, "--out", join(dir, "executed")], {
      encoding: "utf8",
      timeout: 300_000,
      env: { ...process.env, BRIDGE_NODE: process.execPath },
    });
    assert.is(r.status, 0, `notebooks failed:\n${r.stdout}\n${r.stderr.split("\n").slice(-40).join("\n")}`);
    for (const nb of NOTEBOOKS) assert.match(r.stdout, `${nb}.ipynb: ok`);
    // the search notebook showed hits: a score and an SNLI sentence under each query
    const executed = JSON.parse(readFileSync(join(dir, "executed", "semantic-search.ipynb"), "utf8")) as {
      cells: { outputs?: { text?: string | string[] }[] }[];
    };
    const printed = executed.cells
      .flatMap((c) => c.outputs ?? [])
      .map((o) => [o.text ?? ""].flat().join(""))
      .join("");
    assert.match(printed, /A man is playing a guitar\.\n {2}[01]\.\d{3} {2}\S/);
  });
} else {
  console.log("  skipped (notebooks execute): nbclient / ipykernel / matplotlib missing from the venv (requirements.txt)");
  test.skip("language-model, sentence-vectors, nli-errors and semantic-search notebooks execute against a run");
}

test.run();
