/**
 * One command at a time in a run folder: `<runDir>/.lock`, created with O_EXCL (so of two commands
 * started at the same moment exactly one gets it), holding {pid, host, command, started}.
 *
 * - A lock held by a live process (or by any process on another host, which cannot be checked from
 *   here) is an error naming the pid, the command and since when.
 * - A lock whose pid is dead on this host is stale (its command was SIGKILLed, or the machine went
 *   down): a note on stderr names it, and this command takes it over.
 * - release() removes the lock; it also runs on process exit and on SIGINT / SIGTERM / SIGHUP, so a
 *   command that fails or is interrupted does not leave its folder locked. If acquiring created the
 *   folder and nothing else was written into it, release removes the folder too: a command that fails
 *   before writing anything leaves no half-made run behind.
 */
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { tempPathFor } from "../core/atomic.js";

interface LockHolder {
  pid: number;
  host: string;
  command: string;
  /** ISO time the lock was taken. */
  started: string;
}

const LOCK_FILE = ".lock";
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
// A lock file is written right after it is created; one still unreadable after this long was left
// half-written by a process that died in between.
const UNREADABLE_GRACE_MS = 2000;

/** Runs `fn` holding the run folder's lock; the lock is released however `fn` ends. */
export async function withRunLock<T>(runDir: string, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = acquireRunLock(runDir, command);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** Takes `<runDir>/.lock` for `command` (creating runDir if needed), or throws naming the holder. */
export function acquireRunLock(runDir: string, command: string): { release(): void } {
  const createdDir = !existsSync(runDir);
  mkdirSync(runDir, { recursive: true });
  const path = join(runDir, LOCK_FILE);
  const mine: LockHolder = { pid: process.pid, host: hostname(), command, started: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;
  try {
    // A stale lock is moved aside and the create tried again.
    for (let attempt = 0; ; attempt++) {
      if (tryCreate(path, text)) break;
      if (attempt >= 3) throw new Error(`${path}: could not take the lock (other commands keep taking and releasing it); try again`);
      const held = readHolder(path);
      if (held === "gone") continue; // released between our create and our read
      if (held !== "unreadable" && !isStale(held)) throw lockedError(runDir, held);
      breakStaleLock(path, held);
    }
  } catch (err) {
    removeIfEmpty(runDir, createdDir);
    throw err;
  }

  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    // Only our own lock: never remove one that another command holds now.
    if (readText(path) === text) rmSync(path, { force: true });
    removeIfEmpty(runDir, createdDir);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    release();
    // Alone on this signal, we would have swallowed its default action (exit): do it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on("exit", release);
  for (const s of SIGNALS) process.on(s, onSignal);
  return { release };
}

/** O_EXCL create; false when the lock file already exists. */
function tryCreate(path: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid === "number" && typeof h.host === "string") {
      return { pid: h.pid, host: h.host, command: String(h.command ?? "?"), started: String(h.started ?? "?") };
    }
  } catch {
    // half-written
  }
  return null;
}

/** The lock's holder; "unreadable" once it has stayed unparsable past the grace time; "gone" if removed meanwhile. */
function readHolder(path: string): LockHolder | "unreadable" | "gone" {
  for (;;) {
    const text = readText(path);
    if (text === null) return "gone";
    const h = parseHolder(text);
    if (h) return h;
    let age: number;
    try {
      age = Date.now() - statSync(path).mtimeMs;
    } catch {
      return "gone";
    }
    if (age > UNREADABLE_GRACE_MS) return "unreadable";
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // its writer is between open and write
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // alive, someone else's
  }
}

/** Dead on this host; a lock from another host cannot be checked, so it counts as live. */
function isStale(h: LockHolder): boolean {
  return h.host === hostname() && !pidAlive(h.pid);
}

function lockedError(runDir: string, h: LockHolder): Error {
  const where = h.host === hostname() ? `pid ${h.pid}` : `pid ${h.pid} on host ${h.host}`;
  const remedy =
    h.host === hostname()
      ? "wait for it to finish or stop it, then try again"
      : `wait for it to finish; if it no longer runs there, delete ${join(runDir, LOCK_FILE)}`;
  return new Error(`${runDir} is locked: ${where} is running \`${h.command}\` there since ${h.started}; ${remedy}`);
}

/**
 * Moves the stale lock aside and deletes it, saying so. The move is atomic, so of two commands taking
 * over at once only one moves the stale file; should the other move the winner's fresh lock instead,
 * it sees the difference and puts it back.
 */
function breakStaleLock(path: string, held: LockHolder | "unreadable"): void {
  const staleText = held === "unreadable" ? null : JSON.stringify(held);
  const aside = tempPathFor(path);
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return; // someone else moved it: retry the create
    throw err;
  }
  const moved = parseHolder(readText(aside) ?? "");
  if (staleText !== null && (moved === null || JSON.stringify(moved) !== staleText)) {
    // Not the lock judged stale: another command's fresh one. Put it back unless a newer one is there already.
    try {
      linkSync(aside, path);
    } catch {
      // a newer lock is in place; the create below fails against it and reports its holder
    }
    rmSync(aside, { force: true });
    return;
  }
  rmSync(aside, { force: true });
  const what =
    held === "unreadable"
      ? "an unreadable lock file (its writer died while writing it)"
      : `a stale lock: pid ${held.pid} (\`${held.command}\`, since ${held.started}) is no longer running`;
  process.stderr.write(`bridge: note: ${path}: taking over ${what}\n`);
}

function removeIfEmpty(dir: string, createdDir: boolean): void {
  if (!createdDir) return;
  try {
    rmdirSync(dir); // fails, as it should, once anything was written into it
  } catch {
    // not empty, or already gone
  }
}
