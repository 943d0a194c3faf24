/**
 * The backend's process: spawned from the project's Python environment, bound to an ipc://
 * socket in a private (0700) temp directory, and never outliving this process:
 * - it watches its stdin, which closes when this process dies, however it dies;
 * - on a normal exit of this process every live backend is killed and its directory removed;
 * - `installSignalHandlers()` (the CLI calls it) does the same on Ctrl-C / SIGTERM.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backendEnv, backendPython } from "../paths.js";

const STDERR_TAIL_BYTES = 8192;

export interface SpawnOptions {
  /** Interpreter; default: BRIDGE_PYTHON or the project's .venv. */
  python?: string;
  /** torch device for the backend (default: cuda when available, else cpu). */
  device?: string;
  /** Extra environment for the backend. */
  env?: NodeJS.ProcessEnv;
  /** Copy the backend's stderr to ours as it comes (default: only kept for error messages). */
  echoStderr?: boolean;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** sun_path holds 108 bytes on Linux, its terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

const live = new Set<BackendProcess>();

export class BackendProcess {
  readonly child: ChildProcess;
  readonly endpoint: string;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | null = null;
  private readonly dir: string;
  private stderrBuf = "";

  constructor(opts: SpawnOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "bridge-")); // mkdtemp makes it 0700
    const socketPath = join(this.dir, "backend.sock");
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
      this.removeDir();
      throw new Error(
        `bridge: cannot start a backend: its socket path ${socketPath} is ${Buffer.byteLength(socketPath)} bytes, over the ` +
          `${MAX_SOCKET_PATH_BYTES} a Unix socket's name may have; set TMPDIR to a shorter folder`,
      );
    }
    this.endpoint = `ipc://${socketPath}`;
    const python = opts.python ?? backendPython();
    const args = ["-m", "bridge_backend", "--endpoint", this.endpoint, "--watch-stdin"];
    if (opts.device) args.push("--device", opts.device);
    this.child = spawn(python, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: backendEnv({ ...opts.env, PYTHONUNBUFFERED: "1" }),
    });
    if (this.child.pid === undefined) {
      // spawn failed synchronously (no such interpreter): the 'error' event says why
      this.pid = -1;
    } else {
      this.pid = this.child.pid;
    }
    const keep = (chunk: Buffer) => {
      this.stderrBuf = (this.stderrBuf + chunk.toString("utf8")).slice(-STDERR_TAIL_BYTES);
      if (opts.echoStderr) process.stderr.write(chunk);
    };
    this.child.stderr!.on("data", keep);
    this.child.stdout!.on("data", keep); // the backend prints nothing on stdout; keep anything that does
    this.child.stdin!.on("error", () => {}); // EPIPE when the child is gone is expected
    this.exited = new Promise((resolve) => {
      const done = (info: ExitInfo) => {
        if (this.exitInfo) return;
        this.exitInfo = info;
        live.delete(this);
        this.removeDir();
        resolve(info);
      };
      this.child.once("exit", (code, signal) => done({ code, signal }));
      this.child.once("error", (err) => {
        this.stderrBuf += `\n${python}: ${err.message}`;
        done({ code: null, signal: null });
      });
    });
    live.add(this);
  }

  /** The last lines the backend wrote to stderr. */
  stderrTail(lines = 20): string {
    return this.stderrBuf.trimEnd().split("\n").slice(-lines).join("\n");
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Waits up to `graceMs` for the process to exit by itself, then kills it. */
  async stop(graceMs = 2000): Promise<ExitInfo> {
    if (!this.alive) return this.exitInfo!;
    this.child.stdin!.end(); // the backend exits when its stdin closes
    const timer = setTimeout(() => this.kill("SIGKILL"), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }

  private removeDir(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous, for exit handlers. */
  killNow(): void {
    this.kill("SIGKILL");
    this.removeDir();
  }
}

/** Kills every backend this process started (synchronously). */
export function killAllBackends(): void {
  for (const p of live) p.killNow();
  live.clear();
}

process.on("exit", killAllBackends);

let handlersInstalled = false;

/** Ctrl-C and SIGTERM kill the backends and exit with the conventional status. */
export function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, status] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const) {
    process.on(signal, () => {
      killAllBackends();
      process.exit(status);
    });
  }
}
