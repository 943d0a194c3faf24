/**
 * `npx bridge bench model`: forward + backward tokens/s of the backend's AWD-LSTM encoder (embedding,
 * weight-dropped LSTMs, locked dropouts, all on) against torch's plain `nn.LSTM` stack of the same sizes,
 * same batches, same run, and beside them the SHA-RNN encoder (model.arch sha_rnn) of the preset of the same name,
 * carrying its LM state and attention memory between steps, as a ratio to that AWD-LSTM; then a whole LM step (encoder + output layer + loss) with the full softmax against
 * the adaptive softmax over a 30k vocabulary. Runs `python -m bridge_backend.bench_model --json` in the
 * project's environment; the targets are ratio >= 0.85 and speedup >= 2 on CPU.
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
  /** Vocabulary of the full vs adaptive softmax figures (default 30,000). */
  lmVocab?: number;
  /** Timed steps per LM (default 5: a full-softmax step over 30k words takes seconds on a CPU). */
  lmSteps?: number;
}

export interface ModelBenchResult {
  awd_tokens_per_s: number;
  plain_lstm_tokens_per_s: number;
  ratio: number;
  /** The SHA-RNN encoder's forward + backward tokens/s, and over the AWD-LSTM's of the same run. */
  sha_rnn_tokens_per_s: number;
  sha_rnn_ratio: number;
  /** Its preset: --preset's name, or sha_rnn_paper for ulmfit. */
  sha_rnn_preset: string;
  lm_full_softmax_tokens_per_s: number;
  lm_adaptive_tokens_per_s: number;
  /** The LM figures' vocabulary size. */
  vocab: number;
  /** Adaptive over full tokens/s. */
  speedup: number;
  [key: string]: unknown;
}

export async function benchModel(opts: ModelBenchOptions = {}): Promise<ModelBenchResult> {
  const args = ["-m", "bridge_backend.bench_model", "--json"];
  for (const key of ["preset", "vocab", "bs", "bptt", "steps", "device"] as const) {
    if (opts[key] !== undefined) args.push(`--${key}`, String(opts[key]));
  }
  if (opts.lmVocab !== undefined) args.push("--lm-vocab", String(opts.lmVocab));
  if (opts.lmSteps !== undefined) args.push("--lm-steps", String(opts.lmSteps));
  return runPythonJson<ModelBenchResult>("bridge bench model", args);
}
