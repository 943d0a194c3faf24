/**
 * uvu runs the tests registered before a file's `test.run()`: one registered after it is silently never run.
 * Each test file ends with its `test.run()`, after every registration.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { projectRoot } from "../../ts/paths.js";

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
  );
}

test("no test file registers a test after its test.run()", () => {
  const files = testFiles(join(projectRoot, "test"));
  assert.ok(files.length > 50, `${files.length} test files found`);
  const late: string[] = [];
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    const run = lines.lastIndexOf("test.run();");
    if (run < 0) {
      late.push(`${relative(projectRoot, file)}: no test.run() at the start of a line`);
      continue;
    }
    // a registration at the start of a line: test(...), test.skip(...), testWithData(test, ...) and the like
    const after = lines.slice(run + 1).findIndex((l) => /^(test|testWith\w*)(\.\w+)?\(/.test(l));
    if (after >= 0) late.push(`${relative(projectRoot, file)}:${run + 2 + after}: registered after test.run() (line ${run + 1})`);
  }
  assert.equal(late, []);
});

test.run();
