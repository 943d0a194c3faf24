/** Small helpers shared by the tests. */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { projectRoot } from "../ts/paths.js";

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

/** The shared datasets (BRIDGE_DATA_DIR, else ../shared/data), or null with a printed reason. */
export function sharedDataDir(what: string): string | null {
  const dir = process.env.BRIDGE_DATA_DIR ? resolve(process.env.BRIDGE_DATA_DIR) : join(projectRoot, "..", "shared", "data");
  if (existsSync(dir)) return dir;
  console.log(`  skipped (${what}): no shared data at ${dir}; set BRIDGE_DATA_DIR`);
  return null;
}

export const bridgeBin = join(projectRoot, "bin", "bridge.js");
