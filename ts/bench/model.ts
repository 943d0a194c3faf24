/**
 * `npx bridge bench model`: forward + backward tokens/s of the backend's AWD-LSTM encoder (embedding,
 * weight-dropped LSTMs, locked dropouts, all on) against torch's plain `nn.LSTM` stack of the same sizes,
 * same batches, same run. Runs `python -m bridge_backend.bench_model --json` in the project's environment;
 * the target is ratio >= 0.85 on CPU.
 */
import { runPythonJson } from "./python.js";

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
  return runPythonJson<ModelBenchResult>("bridge bench model", args);
}
