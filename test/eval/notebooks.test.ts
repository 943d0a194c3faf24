/**
 * The inspection notebooks execute top to bottom (nbclient, the project's venv as kernel) against
 * the evaluated tiny run, so they never rot. Skipped with a message where nbclient is missing.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { backendPython, projectRoot } from "../../ts/paths.js";
import { sharedDataDir } from "../helpers.js";
import { sharedRun } from "./fixtures.js";

const dataDir = sharedDataDir("notebooks");
const hasNbclient = spawnSync(backendPython(), ["-c", "import nbclient, ipykernel, matplotlib"]).status === 0;

if (dataDir !== null && !hasNbclient) console.log("  skipped (notebooks): nbclient / ipykernel / matplotlib missing from the venv (requirements.txt)");
else if (dataDir !== null) {
  test("language-model, sentence-vectors and nli-errors notebooks execute against a run", async () => {
    const { dir } = await sharedRun(dataDir);
    const r = spawnSync(backendPython(), [join(projectRoot, "notebooks", "execute.py"), dir], { encoding: "utf8", timeout: 300_000 });
    assert.is(r.status, 0, `notebooks failed:\n${r.stdout}\n${r.stderr.split("\n").slice(-40).join("\n")}`);
    for (const nb of ["language-model", "sentence-vectors", "nli-errors"]) assert.match(r.stdout, `${nb}.ipynb: ok`);
  });

  test("committed notebooks carry no outputs", async () => {
    const { readFileSync } = await import("node:fs");
    for (const nb of ["language-model", "sentence-vectors", "nli-errors"]) {
      const book = JSON.parse(readFileSync(join(projectRoot, "notebooks", `${nb}.ipynb`), "utf8")) as { cells: { cell_type: string; outputs?: unknown[]; execution_count?: unknown }[] };
      for (const c of book.cells) if (c.cell_type === "code") assert.ok((c.outputs ?? []).length === 0 && c.execution_count === null, `${nb}: a cell has outputs`);
    }
  });
}

test.run();
