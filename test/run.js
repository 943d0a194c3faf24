#!/usr/bin/env node
// `npm test`: the TypeScript tests (uvu, unit and integration with the real backend), then the
// Python tests (pytest), then one closing line with the counts of both (skipped apart from passed).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pytestCounts, uvuCounts } from "../dist/test/counts.js"; // built by `npm test` before this runs

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function run(label, cmd, args, env = {}) {
  console.log(`\n=== ${label}: ${[cmd, ...args].join(" ")}`);
  const r = spawnSync(cmd, args, {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 256 * 1024 * 1024,
    timeout: 40 * 60 * 1000,
  });
  if (r.error) console.error(`${label}: ${r.error.message}`);
  process.stdout.write(r.stdout ?? "");
  process.stderr.write(r.stderr ?? "");
  return { status: r.status ?? 1, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

// formatters and linters first (Biome for TypeScript, ruff for Python): `npm run format` fixes what they report
const lint = run("Lint (npm run lint)", "npm", ["run", "--silent", "lint"]);

// uvu: one process over every compiled test file (dist/test/**/*.test.js)
const ts = run("TypeScript tests (uvu)", process.execPath, [join(root, "node_modules", "uvu", "bin.js"), "dist/test", "\\.test\\.js$"]);
const tsCounts = uvuCounts(ts.out, ts.status);

const py = run("Python tests (pytest)", process.execPath, [
  join(root, "dist", "ts", "setup", "pythonEnv.js"),
  "--exec",
  "-m",
  "pytest",
  "py/tests",
  "-q",
  "-p",
  "no:cacheprovider",
]);
const pyCounts = pytestCounts(py.out, py.status);

const line = (c) => `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
const all = { passed: tsCounts.passed + pyCounts.passed, failed: tsCounts.failed + pyCounts.failed, skipped: tsCounts.skipped + pyCounts.skipped };
console.log(`\nTypeScript: ${line(tsCounts)}; Python: ${line(pyCounts)}`);
console.log(`tests: ${line(all)}`);
if (lint.status !== 0) console.log("lint: FAILED (npm run lint; npm run format fixes formatting)");
process.exit(all.failed === 0 && ts.status === 0 && py.status === 0 && lint.status === 0 ? 0 : 1);
