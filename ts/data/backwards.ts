/**
 * Backward language models (ULMFiT's second direction, `model.backwards: true`): the LM reads each text
 * right to left. Its training streams run over every text reversed (xxbos then closes each text, as in
 * fastai's backwards data loaders); the backend reverses single sentences itself (within their lengths),
 * so only the LM stream is reversed here.
 */
import type { Ragged } from "./numericalised.js";

/** Each row of `r` reversed in place of itself: row i holds r's row i back to front. */
export function reverseRows(r: Ragged): Ragged {
  const ids = new Int32Array(r.ids.length);
  for (let i = 0; i + 1 < r.offsets.length; i++) {
    const start = r.offsets[i];
    const end = r.offsets[i + 1];
    for (let k = start; k < end; k++) ids[k] = r.ids[end - 1 - (k - start)];
  }
  return { offsets: r.offsets, ids };
}

/** The LM text in the model's reading order: as it is, or every text reversed for a backward model. */
export function lmReadingOrder(lm: { train: Ragged; valid: Ragged }, backwards: boolean): { train: Ragged; valid: Ragged } {
  return backwards ? { train: reverseRows(lm.train), valid: reverseRows(lm.valid) } : lm;
}
