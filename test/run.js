#!/usr/bin/env node
// `npm test`: the TypeScript tests (uvu, unit and integration with the real backend), then the
// Python tests (pytest), then one closing line with the counts of both.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");

function run(label, cmd, args, env = {}) {
  console.log(`\n=== ${label}: ${[cmd, ...args].join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024, timeout: 40 * 60 * 1000 });
  if (r.error) console.error(`${label}: ${r.error.message}`);
  process.stdout.write(r.stdout ?? "");
  process.stderr.write(r.stderr ?? "");
  return { status: r.status ?? 1, out: strip((r.stdout ?? "") + (r.stderr ?? "")) };
}

// uvu: one process over every compiled test file (dist/test/**/*.test.js)
const ts = run("TypeScript tests (uvu)", process.execPath, [join(root, "node_modules", "uvu", "bin.js"), "dist/test", "\\.test\\.js$"]);
const total = Number(/Total:\s+(\d+)/.exec(ts.out)?.[1] ?? 0);
const tsPassed = Number(/Passed:\s+(\d+)/.exec(ts.out)?.[1] ?? 0);
const tsSkipped = Number(/Skipped:\s+(\d+)/.exec(ts.out)?.[1] ?? 0);
// uvu stops counting at a file that crashes: count that as a failure
const tsFailed = Math.max(total - tsPassed - tsSkipped, ts.status === 0 ? 0 : 1);

const py = run("Python tests (pytest)", process.execPath, [join(root, "dist", "ts", "setup", "pythonEnv.js"), "--exec", "-m", "pytest", "py/tests", "-q", "-p", "no:cacheprovider"]);
const pyCount = (word) => Number(new RegExp(`(\\d+) ${word}`).exec(py.out.split("\n").filter((l) => /(passed|failed|error)/.test(l)).pop() ?? "")?.[1] ?? 0);
const pyPassed = pyCount("passed");
const pyFailed = pyCount("failed") + pyCount("errors?") + (py.status !== 0 && pyCount("failed") === 0 ? 1 : 0);
const pySkipped = pyCount("skipped");

const passed = tsPassed + pyPassed;
const failed = tsFailed + pyFailed;
console.log(`\nTypeScript: ${tsPassed} passed, ${tsFailed} failed, ${tsSkipped} skipped; Python: ${pyPassed} passed, ${pyFailed} failed, ${pySkipped} skipped`);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && ts.status === 0 && py.status === 0 ? 0 : 1);
