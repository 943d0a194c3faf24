/**
 * `npx bridge bench model`: forward + backward tokens/s of the backend's AWD-LSTM encoder (embedding,
 * weight-dropped LSTMs, locked dropouts, all on) against torch's plain `nn.LSTM` stack of the same sizes,
 * same batches, same run; then the SHA-RNN encoder (model.arch sha_rnn) of the preset of the same name, carrying its
 * LM state and attention memory between steps, taking turns with that AWD-LSTM (its tokens/s as a ratio to the
 * AWD-LSTM's in those turns); then a whole LM step (encoder + output layer + loss) with the full softmax against
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
  /** The SHA-RNN encoder's forward + backward tokens/s, timed taking turns with the AWD-LSTM after the figures above. */
  sha_rnn_tokens_per_s: number;
  /** The AWD-LSTM's tokens/s in those turns, and the SHA-RNN's over it. */
  sha_rnn_awd_tokens_per_s: number;
  sha_rnn_ratio: number;
  /** Its preset: --preset's name, or sha_rnn_paper for ulmfit. */
  sha_rnn_preset: string;
  /** Its sizes (n_hid: the Boom's width) and its attention memory. */
  sha_rnn_sizes: { emb_sz: number; n_hid: number; n_layers: number; mem_len: number };
  /** Parameters of each encoder (embedding included). */
  params: { awd: number; sha_rnn: number };
  lm_full_softmax_tokens_per_s: number;
  lm_adaptive_tokens_per_s: number;
  /** Whole LM training steps (adaptive softmax, state carried) of the AWD-LSTM and the same-named SHA-RNN, taking turns. */
  lm_awd_tokens_per_s: number;
  lm_sha_rnn_tokens_per_s: number;
  /** SHA-RNN over AWD-LSTM tokens/s of those steps: sizes equal wall time budgets. */
  lm_sha_rnn_ratio: number;
  lm_params: { awd: number; sha_rnn: number };
  /** One AdamW step over that LM's parameters: torch's per-tensor loop, the fused kernel the trainer uses (when
   * lm_adamw_fused: torch has one for the device), and loop over fused. */
  lm_adamw_loop_ms: number;
  lm_adamw_fused_ms: number;
  lm_adamw_fused: boolean;
  lm_adamw_speedup: number;
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
