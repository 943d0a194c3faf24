/** The typed records every reader yields. */
import type { BadRowPolicy, ReadStats } from "./errors.js";

export const NLI_LABELS = ["entailment", "neutral", "contradiction"] as const;
export type NliLabel = (typeof NLI_LABELS)[number];

/** A sentence pair: NLI (label), similarity (score), or both (SICK). */
export interface PairRecord {
  id: string;
  s1: string;
  s2: string;
  label?: NliLabel;
  /** Relatedness / similarity score (SICK 1-5, STS 0-5). */
  score?: number;
  genre?: string;
  /** 1-based line of the row in its file. */
  line: number;
}

/** Sentences that mean the same thing (the captions of one image): positives of one another, no label. */
export interface GroupRecord {
  id: string;
  /** Two or more. */
  sentences: string[];
  /** 1-based line of the row in its file. */
  line: number;
}

/** A line (paragraph, sentence or document) of language-model text. */
export interface TextRecord {
  text: string;
  line: number;
  /** Which document it came from, when the corpus has several (Brown file, SOTU address). */
  doc?: string;
}

export interface ReadOptions {
  /** Default "error". */
  onBadRow?: BadRowPolicy;
  /** Filled in while reading; pass one to get counts back. */
  stats?: ReadStats;
}

/**
 * Why a pair cannot be used: a side that is empty or only whitespace (it would train as a bare
 * xxbos). `names` are the columns as the file calls them, for the message. Undefined: both have text.
 */
export function emptySentence(s1: string, s2: string, names: readonly [string, string]): string | undefined {
  if (s1.trim() === "") return `empty ${names[0]}`;
  if (s2.trim() === "") return `empty ${names[1]}`;
  return undefined;
}

/** Maps the label spellings found in the wild (SNLI, SICK upper case, XNLI numbers) to NliLabel. */
export function parseNliLabel(raw: string): NliLabel | undefined {
  switch (raw.trim().toLowerCase()) {
    case "entailment":
    case "0":
      return "entailment";
    case "neutral":
    case "1":
      return "neutral";
    case "contradiction":
    case "2":
      return "contradiction";
    default:
      return undefined;
  }
}
