/**
 * The run-folder lock: one holder at a time (O_EXCL), a live holder is an error naming its pid,
 * command and start, a dead one's lock is taken over with a note, and the lock goes on release,
 * on error and on SIGINT; a folder the lock created is removed again if nothing else was written.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { projectRoot } from "../../ts/paths.js";
import { acquireRunLock, withRunLock } from "../../ts/run/lock.js";
import { tempFolder, waitFor } from "../helpers.js";

const root = tempFolder("bridge-lock-");
let n = 0;
const freshDir = () => join(root, `run${n++}`);

/** Captures what is written to stderr while `fn` runs. */
function captureStderr<T>(fn: () => T): { result: T; text: string } {
  const write = process.stderr.write.bind(process.stderr);
  let text = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { result: fn(), text };
  } finally {
    process.stderr.write = write;
  }
}

/** The pid of a process that has exited (a short-lived child's). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => child.on("exit", r));
  return child.pid!;
}

test.after(() => rmSync(root, { recursive: true, force: true }));

test("the lock holds pid, host, command and start; a second taker is refused naming them", () => {
  const dir = freshDir();
  const lock = acquireRunLock(dir, "npx bridge train --run a");
  const held = JSON.parse(readFileSync(join(dir, ".lock"), "utf8")) as { pid: number; host: string; command: string; started: string };
  assert.is(held.pid, process.pid);
  assert.is(held.host, hostname());
  assert.is(held.command, "npx bridge train --run a");
  assert.ok(!Number.isNaN(Date.parse(held.started)));
  try {
    acquireRunLock(dir, "npx bridge train --run a --resume");
    assert.unreachable("the second lock was granted");
  } catch (err) {
    const msg = (err as Error).message;
    assert.match(msg, `${dir} is locked`);
    assert.match(msg, `pid ${process.pid}`);
    assert.match(msg, "`npx bridge train --run a`");
    assert.match(msg, `since ${held.started}`);
  }
  lock.release();
  assert.not.ok(existsSync(join(dir, ".lock")));
  acquireRunLock(dir, "again").release(); // free again
});

test("a lock held by another live process is refused", async () => {
  const dir = freshDir();
  mkdirSync(dir);
  const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  try {
    writeFileSync(
      join(dir, ".lock"),
      JSON.stringify({ pid: holder.pid, host: hostname(), command: "npx bridge eval --run b", started: "2024-01-02T03:04:05.000Z" }),
    );
    assert.throws(
      () => acquireRunLock(dir, "npx bridge train --run b --resume"),
      (e: Error) => e.message.includes(`pid ${holder.pid} is running \`npx bridge eval --run b\` there since 2024-01-02T03:04:05.000Z`),
    );
    // and it is left in place
    assert.match(readFileSync(join(dir, ".lock"), "utf8"), String(holder.pid));
  } finally {
    holder.kill();
  }
});

test("a lock whose pid is dead on this host is stale: taken over with a note naming it", async () => {
  const dir = freshDir();
  mkdirSync(dir);
  const pid = await deadPid();
  writeFileSync(join(dir, ".lock"), JSON.stringify({ pid, host: hostname(), command: "npx bridge train --run c", started: "2024-05-06T07:08:09.000Z" }));
  const { result: lock, text } = captureStderr(() => acquireRunLock(dir, "npx bridge train --run c --resume"));
  assert.match(text, "stale lock");
  assert.match(text, `pid ${pid}`);
  assert.match(text, "npx bridge train --run c");
  assert.match(text, "2024-05-06T07:08:09.000Z");
  const held = JSON.parse(readFileSync(join(dir, ".lock"), "utf8")) as { pid: number; command: string };
  assert.is(held.pid, process.pid);
  assert.is(held.command, "npx bridge train --run c --resume");
  lock.release();
});

test("a lock from another host cannot be checked: refused, naming the host and the file to delete", () => {
  const dir = freshDir();
  mkdirSync(dir);
  writeFileSync(
    join(dir, ".lock"),
    JSON.stringify({ pid: 1, host: "elsewhere.example", command: "npx bridge train --run d", started: "2024-01-01T00:00:00.000Z" }),
  );
  assert.throws(
    () => acquireRunLock(dir, "x"),
    (e: Error) => e.message.includes("on host elsewhere.example") && e.message.includes(join(dir, ".lock")),
  );
});

test("a folder the lock created is removed on release when nothing else was written; one with files stays", () => {
  const empty = freshDir();
  acquireRunLock(empty, "x").release();
  assert.not.ok(existsSync(empty), "the empty folder was left behind");
  const used = freshDir();
  const lock = acquireRunLock(used, "x");
  writeFileSync(join(used, "run.json"), "{}");
  lock.release();
  assert.ok(existsSync(join(used, "run.json")));
  assert.not.ok(existsSync(join(used, ".lock")));
  // a folder that was there before is never removed, empty or not
  const existing = freshDir();
  mkdirSync(existing);
  acquireRunLock(existing, "x").release();
  assert.ok(existsSync(existing));
});

test("withRunLock releases when its function fails", async () => {
  const dir = freshDir();
  mkdirSync(dir);
  let err: Error | null = null;
  await withRunLock(dir, "x", async () => {
    assert.ok(existsSync(join(dir, ".lock")));
    throw new Error("deliberate");
  }).catch((e: Error) => (err = e));
  assert.is((err as unknown as Error).message, "deliberate");
  assert.not.ok(existsSync(join(dir, ".lock")));
  assert.is(await withRunLock(dir, "x", async () => 7), 7);
});

test("SIGINT: the lock is released and the process still ends by the signal", async () => {
  const dir = freshDir();
  const lockModule = pathToFileURL(join(projectRoot, "dist", "ts", "run", "lock.js")).href;
  const script = `import { acquireRunLock } from ${JSON.stringify(lockModule)}; acquireRunLock(${JSON.stringify(dir)}, "held"); console.log("locked"); setTimeout(() => {}, 60000);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on("exit", (_code, signal) => r(signal)));
  assert.ok(await waitFor(() => out.includes("locked"), 20_000), "the child took the lock");
  assert.ok(existsSync(join(dir, ".lock")));
  child.kill("SIGINT");
  assert.is(await exited, "SIGINT");
  assert.not.ok(existsSync(join(dir, ".lock")), "the lock outlived SIGINT");
  assert.not.ok(existsSync(dir), "the empty folder outlived SIGINT");
});

test.run();
