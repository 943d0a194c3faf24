/** Small helpers shared by the tests. */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { tableFromIPC } from "apache-arrow";
import type { Test } from "uvu";
import * as assert from "uvu/assert";
import { type BackendClient, startBackend } from "../ts/backend/client.js";
import type { TrainStepsArgs } from "../ts/backend/ops.js";
import { ConfigError, validateConfig } from "../ts/config/load.js";
import type { Config } from "../ts/config/schema.js";
import { projectRoot } from "../ts/paths.js";
import type { TrainBackend } from "../ts/train/context.js";

const tempFolders: string[] = [];
process.on("exit", () => {
  for (const dir of tempFolders) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the system's temp dir, named `prefix` + a random suffix; removed when the test process exits (a test may remove it sooner). */
export function tempFolder(prefix = "bridge-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempFolders.push(dir);
  return dir;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 20 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

/** Where the shared datasets should be: BRIDGE_DATA_DIR, else ../shared/data. */
function sharedDataPath(): string {
  return process.env.BRIDGE_DATA_DIR ? resolve(process.env.BRIDGE_DATA_DIR) : join(projectRoot, "..", "shared", "data");
}

/** The shared datasets (BRIDGE_DATA_DIR, else ../shared/data), or null with a printed reason. */
export function sharedDataDir(what: string): string | null {
  const dir = sharedDataPath();
  if (existsSync(dir)) return dir;
  console.log(`  skipped (${what}): no shared data at ${dir}; set BRIDGE_DATA_DIR`);
  return null;
}

/**
 * Registers a test that needs the shared datasets: it gets their folder. Without them (or without one
 * of `files`, relative to that folder: data added later) the test is registered with `t.skip`, so uvu
 * counts it as skipped (never as passed) and the reason is printed.
 */
export function testWithData<T>(t: Test<T>, name: string, fn: (dataDir: string) => Promise<void> | void, files: readonly string[] = []): void {
  const dir = sharedDataPath();
  const missing = existsSync(dir) ? files.find((f) => !existsSync(join(dir, f))) : undefined;
  if (existsSync(dir) && missing === undefined) {
    t(name, () => fn(dir));
    return;
  }
  console.log(`  skipped "${name}": ${missing === undefined ? `no shared data at ${dir}` : `no ${missing} in ${dir}`}; set BRIDGE_DATA_DIR`);
  t.skip(name);
}

export const bridgeBin = join(projectRoot, "bin", "bridge.js");

/** A real backend that is SIGKILLed right after the `killAt`-th train_step of stage `stage` is sent. It runs with
 * the config's thread count, as train's own backend does (another count changes float reductions, hence losses). */
export function killingBackend(stage: number, killAt: number): (cfg: Config) => Promise<TrainBackend> {
  return async (cfg) => {
    const client: BackendClient = await startBackend(cfg.threads ? { env: { OMP_NUM_THREADS: String(cfg.threads) } } : {});
    let builds = 0;
    let steps = 0;
    return {
      close: () => client.close(),
      call(op, args, tensors) {
        if (op === "build") builds++;
        const p = client.call(op, args, tensors);
        // train_steps carries several steps: killed while the request holding step killAt runs
        const n = op === "train_step" ? 1 : op === "train_steps" ? (args as TrainStepsArgs).steps.length : 0;
        if (n > 0 && builds - 1 === stage && steps < killAt && (steps += n) >= killAt) client.process!.kill("SIGKILL");
        return p;
      },
    };
  };
}

/** Asserts that validateConfig refuses `raw` with a ConfigError whose message holds every fragment. */
export function refused(raw: unknown, ...fragments: string[]): void {
  try {
    validateConfig(raw, "test.yaml");
  } catch (err) {
    assert.instance(err, ConfigError);
    for (const f of fragments) assert.ok((err as Error).message.includes(f), `"${f}" not in:\n${(err as Error).message}`);
    return;
  }
  assert.unreachable("the config was accepted");
}

/** The vectors `bridge embed` writes for `sentences` with the run in `runDir`, as their float32 bytes (row after row). */
export async function bridgeEmbedBytes(runDir: string, sentences: readonly string[], scratch: string): Promise<Buffer> {
  const input = join(scratch, "in.txt");
  writeFileSync(input, `${sentences.join("\n")}\n`);
  const output = join(scratch, "cli.arrow");
  await promisify(execFile)(process.execPath, [bridgeBin, "embed", "--run", runDir, "--input", input, "--output", output, "--device", "cpu"]);
  const col = tableFromIPC(readFileSync(output)).getChild("vector")!;
  return Buffer.concat(Array.from({ length: col.length }, (_, i) => Buffer.from(Float32Array.from(col.get(i) as ArrayLike<number>).buffer)));
}

/** run.json of a finished run as bridge train writes it, with only what readers check (a fixture: no model behind it). */
export function finishedManifestJson(finalCheckpoint: string): string {
  const vocab = { size: 0, fingerprint: "" };
  return JSON.stringify({ version: 1, name: "r", seed: 1, model: {}, tokenizer: {}, vocab, finalCheckpoint, stages: [] });
}
