/**
 * The splits evaluation scores (ts/eval/tasks name theirs from here), and the sentences they hold, so that
 * training data from other datasets can be kept clear of them.
 *
 * Why: SNLI's premises are Flickr30K captions, and so are Multi30K's caption groups; MultiNLI and XNLI share
 * genres. A group or pair whose sentence is an evaluation sentence would put that sentence into training, and
 * the figure measured on it would not be a held-out one. The shared data folder was cleaned this way by hand;
 * `bridge data fetch` builds the public files as released, so training cleans them itself.
 */
import { existsSync } from "node:fs";
import { parseSplitRef } from "./datasets.js";
import { emptyReadStats } from "./errors.js";

/** Each evaluation dataset's splits, the held-out test split first (evaluation takes the first present). */
export const EVALUATION_SPLITS = {
  snli: ["snli:test", "snli:dev"],
  xnli: ["xnli:test", "xnli:dev"],
  stsb: ["stsb:test", "stsb:dev"],
  sick: ["sick:test", "sick:trial"],
} as const;

/** The datasets evaluation reads: their own training splits are kept apart by held-out rows, not by this check. */
export const EVALUATION_DATASETS: ReadonlySet<string> = new Set(Object.keys(EVALUATION_SPLITS));

/** A sentence as compared here: case, spacing and punctuation aside ("A dog runs ." is "a dog runs"). */
export function sentenceKey(s: string): string {
  return s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
}

export interface EvaluationSentences {
  /** sentenceKey() of every sentence of the evaluation splits present. */
  keys: Set<string>;
  /** The splits read, e.g. ["snli:dev", "stsb:dev"]. */
  splits: string[];
  /** Whether a text (an LM text: a sentence, a paragraph, an article) is one of them. */
  has(text: string): boolean;
}

/** The sentences of every evaluation split present in `dataDir` (absent splits are skipped; bad rows too). */
export async function evaluationSentences(dataDir: string | undefined): Promise<EvaluationSentences> {
  const keys = new Set<string>();
  const splits: string[] = [];
  for (const id of Object.values(EVALUATION_SPLITS).flat()) {
    const ref = parseSplitRef(id, dataDir);
    if (ref.path === null || !existsSync(ref.path) || ref.dataset.kind !== "pairs") continue;
    for await (const r of ref.dataset.read(ref.path, { onBadRow: "skip", stats: emptyReadStats() })) {
      keys.add(sentenceKey(r.s1));
      keys.add(sentenceKey(r.s2));
    }
    splits.push(ref.id);
  }
  keys.delete("");
  const longest = Math.max(0, ...[...keys].map((k) => k.length));
  // a text over 4x the longest key cannot be one (spaces and punctuation do not make up 3 in 4 characters of a
  // sentence); the bound spares keying whole articles of LM text
  const has = (text: string) => text.length <= 4 * longest && keys.has(sentenceKey(text));
  return { keys, splits, has };
}
