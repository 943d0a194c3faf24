/**
 * The encoder architectures, named alike by the config (config/schema.ts) and the wire (backend/ops.ts), which sit
 * side by side and import neither each other; py/bridge_backend/models/archs.py holds the same names.
 */

/** ULMFiT's AWD-LSTM, and Merity 2019's SHA-RNN. */
export const ARCHS = ["awd_lstm", "sha_rnn"] as const;
export type Arch = (typeof ARCHS)[number];

/** sha_rnn, sentences: full (every token attends to its sentence's real tokens, both sides) or causal (the LM's). */
export const SENTENCE_ATTENTIONS = ["full", "causal"] as const;
export type SentenceAttention = (typeof SENTENCE_ATTENTIONS)[number];
