/** `npm test`'s closing counts (test/counts.ts) on the real output of uvu and pytest: skipped tests are
 * counted apart, and never hide a failure or count as passed. */
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { backendPython, projectRoot } from "../../ts/paths.js";
import { pytestCounts, uvuCounts } from "../counts.js";
import { tempFolder } from "../helpers.js";

function inTempDir(fn: (dir: string) => void): void {
  const dir = tempFolder("bridge-counts-");
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("uvu: two passed, two failed, two skipped are counted as such (skips hide no failure)", () =>
  inTempDir((dir) => {
    const uvu = pathToFileURL(join(projectRoot, "node_modules", "uvu", "dist", "index.mjs")).href;
    const assertions = pathToFileURL(join(projectRoot, "node_modules", "uvu", "assert", "index.mjs")).href;
    writeFileSync(
      join(dir, "sample.test.mjs"),
      `import { test } from ${JSON.stringify(uvu)};
import * as assert from ${JSON.stringify(assertions)};
test("passes", () => assert.ok(true));
test.skip("skipped one");
test("fails", () => assert.ok(false));
test.skip("skipped two");
test("fails too", () => assert.is(1, 2));
test("passes too", () => assert.ok(true));
test.run();
`,
    );
    const r = spawnSync(process.execPath, [join(projectRoot, "node_modules", "uvu", "bin.js"), dir, "\\.test\\.mjs$"], { encoding: "utf8" });
    assert.equal(uvuCounts(r.stdout + r.stderr, r.status ?? 1), { passed: 2, failed: 2, skipped: 2 });
  }));

test("uvu: a crashing file with nothing counted is still a failure", () => {
  assert.equal(uvuCounts("", 1), { passed: 0, failed: 1, skipped: 0 });
});

test("pytest: passed, failed, error and skipped from its closing line", () =>
  inTempDir((dir) => {
    writeFileSync(
      join(dir, "test_sample.py"),
      `import pytest

def test_passes() -> None:
    assert True

def test_fails() -> None:
    assert False

@pytest.mark.skip(reason="shown as skipped")
def test_skipped() -> None:
    pass

@pytest.fixture
def broken() -> None:
    raise RuntimeError("fixture error")

def test_errors(broken: None) -> None:
    pass
`,
    );
    const r = spawnSync(backendPython(), ["-m", "pytest", dir, "-q", "-p", "no:cacheprovider"], { encoding: "utf8", cwd: dir });
    assert.equal(pytestCounts(r.stdout + r.stderr, r.status ?? 1), { passed: 1, failed: 2, skipped: 1 });
  }));

test.run();
