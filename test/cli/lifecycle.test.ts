/**
 * The CLI as a user runs it: it exits on its own when done, and no backend process outlives it,
 * whether it ends normally, with an error, by Ctrl-C or by SIGKILL. Each CLI run gets a unique
 * environment mark, which its backend inherits; afterwards no process may carry that mark.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { doctor } from "../../ts/commands/doctor.js";
import { bridgeBin, tempFolder, waitFor } from "../helpers.js";

/** Pids of live processes whose environment holds BRIDGE_TEST_MARK=mark. */
function marked(mark: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, "latin1").includes(`BRIDGE_TEST_MARK=${mark}\0`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

function runCli(args: string[]) {
  const mark = randomUUID();
  const child = spawn(process.execPath, [bridgeBin, ...args], { env: { ...process.env, BRIDGE_TEST_MARK: mark }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, mark, exited, output: () => out };
}

/** The backend's pid, once the CLI has started it. */
async function backendOf(mark: string, cliPid: number): Promise<number> {
  let pid = 0;
  const found = await waitFor(() => {
    pid = marked(mark).find((p) => p !== cliPid) ?? 0;
    return pid !== 0;
  }, 30_000);
  assert.ok(found, "the CLI started a backend");
  return pid;
}

test("doctor runs, exits on its own with status 0, and leaves no backend behind", async () => {
  const run = runCli(["doctor"]);
  const { code } = await run.exited;
  assert.is(code, 0, run.output());
  assert.match(run.output(), "doctor: all good");
  assert.match(run.output(), "arrow echo");
  assert.equal(marked(run.mark), []);
});

test("doctor names why a backend could not start: a Python traceback's last line, not its first frames", async () => {
  const dir = tempFolder("bridge-doctor-");
  const python = join(dir, "python");
  // an interpreter whose backend dies on import, as one missing a package does
  const frames = Array.from({ length: 6 }, (_, i) => `echo '  File "/x/m${i}.py", line ${i}, in <module>' >&2`).join("\n");
  writeFileSync(python, `#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n${frames}\necho "ModuleNotFoundError: No module named 'zmq'" >&2\nexit 1\n`);
  chmodSync(python, 0o755);
  const lines: string[] = [];
  const saved = process.env.BRIDGE_PYTHON;
  process.env.BRIDGE_PYTHON = python;
  try {
    assert.is(await doctor({ skipPythonia: true, print: (l) => lines.push(l) }), 1);
  } finally {
    if (saved === undefined) delete process.env.BRIDGE_PYTHON;
    else process.env.BRIDGE_PYTHON = saved;
  }
  const row = lines
    .join("\n")
    .split("\n")
    .find((l) => l.startsWith("FAIL"));
  assert.ok(row, lines.join("\n"));
  assert.match(row!, /exited with code 1 \| ModuleNotFoundError: No module named 'zmq'$/);
  assert.not.match(row!, "m0.py");
});

test("an error in the backend: message on stderr, status 1, no backend left", async () => {
  const run = runCli(["call", "raise", "--args", '{"type": "RuntimeError", "message": "deliberate"}']);
  const { code } = await run.exited;
  assert.is(code, 1);
  assert.match(run.output(), "RuntimeError: deliberate");
  assert.match(run.output(), "Traceback");
  assert.equal(marked(run.mark), []);
});

test("bad arguments: a clear message and status 1", async () => {
  const run = runCli(["call", "ping", "--args", "{not json"]);
  const { code } = await run.exited;
  assert.is(code, 1);
  assert.match(run.output(), "--args is not JSON");
});

test("Ctrl-C (SIGINT) while a call is pending: the CLI exits 130 and its backend is gone", async () => {
  const run = runCli(["call", "sleep", "--args", '{"seconds": 30}']);
  const backend = await backendOf(run.mark, run.child.pid!);
  run.child.kill("SIGINT");
  const { code } = await run.exited;
  assert.is(code, 130);
  assert.ok(await waitFor(() => marked(run.mark).length === 0, 3000), `backend ${backend} still running`);
});

test("SIGKILL of the CLI itself: the orphaned backend notices and exits", async () => {
  const run = runCli(["call", "sleep", "--args", '{"seconds": 30}']);
  const backend = await backendOf(run.mark, run.child.pid!);
  run.child.kill("SIGKILL");
  await run.exited;
  // the backend is mid-op (sleeping 30 s); its watch on stdin ends it at once
  assert.ok(await waitFor(() => marked(run.mark).length === 0, 3000), `backend ${backend} outlived its parent`);
});

test.run();
