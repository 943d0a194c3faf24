/** The set-up script's messages and idempotence, run as `npm install` runs it. */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { projectRoot } from "../../ts/paths.js";

const script = join(projectRoot, "dist", "ts", "setup", "pythonEnv.js");

function setup(env: Record<string, string>, args: string[] = []) {
  const r = spawnSync(process.execPath, [script, ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
  return { status: r.status, out: r.stdout + r.stderr };
}

test("a re-run with nothing changed is a no-op that says so", () => {
  const r = setup({});
  assert.is(r.status, 0, r.out);
  assert.match(r.out, "up to date");
});

test("BRIDGE_PYTHON that is not an interpreter: a clear error, status 1", () => {
  const r = setup({ BRIDGE_PYTHON: "/nonexistent/python3" });
  assert.is(r.status, 1);
  assert.match(r.out, "BRIDGE_PYTHON=/nonexistent/python3 does not run as a Python interpreter");
});

test("BRIDGE_PYTHON without the packages: names what is missing and how to fix it", () => {
  const bare = spawnSync("/usr/bin/python3", ["-c", "import torch"]);
  if (bare.status === 0) {
    console.log("  skipped: /usr/bin/python3 has torch; no bare interpreter to test with");
    return;
  }
  const r = setup({ BRIDGE_PYTHON: "/usr/bin/python3" });
  assert.is(r.status, 1);
  assert.match(r.out, "lacks torch");
  assert.match(r.out, "pip install -r");
});

test("an unknown BRIDGE_TORCH is refused", () => {
  const r = setup({ BRIDGE_TORCH: "rocm-maybe" });
  assert.is(r.status, 1);
  assert.match(r.out, "BRIDGE_TORCH=rocm-maybe is not understood: use cpu or cuda");
});

test("--exec runs the backend's interpreter with the arguments", () => {
  const r = setup({}, ["--exec", "-c", "import sys, torch; print('prefix', sys.prefix)"]);
  assert.is(r.status, 0, r.out);
  assert.match(r.out, join(projectRoot, ".venv"));
});

test.run();
