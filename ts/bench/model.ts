/**
 * `npx bridge bench model`: forward + backward tokens/s of the backend's AWD-LSTM encoder (embedding,
 * weight-dropped LSTMs, locked dropouts, all on) against torch's plain `nn.LSTM` stack of the same sizes,
 * same batches, same run. Runs `python -m bridge_backend.bench_model --json` in the project's environment;
 * the target is ratio >= 0.85 on CPU.
 */
import { spawn } from "node:child_process";
import { backendPython, pythonSourceDir } from "../paths.js";

export interface ModelBenchOptions {
  /** Model preset (bridge_backend.models.awd_lstm presets); default cpu_medium (300 / 512 / 2 layers). */
  preset?: string;
  vocab?: number;
  bs?: number;
  bptt?: number;
  /** Timed steps per model (after 2 warm-up steps). */
  steps?: number;
  /** torch device; default cuda when available, else cpu. */
  device?: string;
}

export interface ModelBenchResult {
  awd_tokens_per_s: number;
  plain_lstm_tokens_per_s: number;
  ratio: number;
  [key: string]: unknown;
}

export async function benchModel(opts: ModelBenchOptions = {}): Promise<ModelBenchResult> {
  const args = ["-m", "bridge_backend.bench_model", "--json"];
  for (const key of ["preset", "vocab", "bs", "bptt", "steps", "device"] as const) {
    if (opts[key] !== undefined) args.push(`--${key}`, String(opts[key]));
  }
  const child = spawn(backendPython(), args, {
    env: { ...process.env, PYTHONPATH: pythonSourceDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  if (code !== 0) {
    throw new Error(`bridge bench model: python exited with code ${code}\n${stderr.trim().split("\n").slice(-20).join("\n")}`);
  }
  const last = stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(last) as ModelBenchResult;
  } catch {
    throw new Error(`bridge bench model: no JSON on the benchmark's stdout: ${JSON.stringify(stdout.slice(-500))}`);
  }
}
