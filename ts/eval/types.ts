/**
 * The shapes shared by evaluation, the report, its charts, the summary and --compare: metrics.json
 * and what the report draws. They live here (types only) so those modules import this file, not
 * each other.
 */
import type { Histogram, RocPoint } from "./metrics.js";

export interface Skipped {
  task: string;
  split: string;
  reason: string;
}

/** One dataset split the run trained on, and how (from run.json's data plan and config.json). */
export interface TrainedSplit {
  /** e.g. "snli:dev" (aliases resolved where the dataset is known). */
  split: string;
  /** "pairs": the sentence stages' labelled pairs; "groups": sentence groups (an image's captions); "lm text": the
   * language-model stage's text. */
  use: "pairs" | "groups" | "lm text";
  /** Rows that trained, where the run records them. */
  rows?: number;
  /** Rows of the same split held out of training (evaluation uses only these). */
  heldOut?: number;
}

/** What every metrics.json entry states: its split, its count of items, and whether the run trained on that task's data. */
export interface EntryBase {
  split: string;
  items: number;
  /** True when the run trained on this dataset (any of its splits, e.g. its training split): not an unsupervised transfer result. */
  supervised: boolean;
}

export interface NliResult extends EntryBase {
  /** What part of the split, and why (held-out rows of a split the run trained on). */
  subset: string;
  accuracy: number;
  macro_f1: number;
  confusion: { labels: string[]; matrix: number[][] };
  per_class: Record<string, { precision: number; recall: number; f1: number; support: number }>;
}

export interface SeparationScores {
  roc_auc: number;
  overlap: number;
  mean_cosine: Record<string, number>;
}

export interface StageScores {
  stage: string;
  checkpoint: string;
  separation?: SeparationScores;
  sts_spearman?: number;
}

export interface SeparationResult extends EntryBase, SeparationScores {
  subset: string;
  positive: "entailment";
  negative: "contradiction";
  bins: number;
  baseline: { tfidf: SeparationScores };
  stages: StageScores[];
}

export interface Correlation {
  spearman: number;
  pearson: number;
}

export interface SimilarityResult extends EntryBase, Correlation {}

export interface StsResult extends SimilarityResult {
  baseline: { tfidf: Correlation };
  stages: StageScores[];
}

export interface ProbeResult extends EntryBase {
  accuracy: number;
  probe: { train_split: string; train_items: number; features: string; l2: number; train_accuracy: number };
}

export interface SickResult extends EntryBase {
  spearman?: number;
  pearson?: number;
  accuracy?: number;
  relatedness?: SimilarityResult & { baseline: { tfidf: Correlation } };
  entailment?: ProbeResult;
}

export interface SamplingSettings {
  n: number;
  max_len: number;
  temperature: number;
  top_k: number;
  seed: number;
}

/** An LM entry's `items` are the tokens scored (targets). */
export interface LmResult extends EntryBase {
  perplexity: number;
  oov_rate: number;
  checkpoint: string;
  bptt: number;
  /** How to read the number (xxunk is scored as a word: a high OOV rate makes perplexity look better). */
  note: string;
  samples: string[];
  sampling: SamplingSettings;
}

/** One year of SentEval's STS12-16: Spearman / Pearson of cosine over all its subsets pooled (SentEval's "all"). */
export interface StsYearResult extends SimilarityResult {
  baseline: { tfidf: Correlation };
  subsets: Record<string, { items: number } & Correlation>;
  /**
   * The pairs the run trained on (by content: STS-B train holds many STS12-16 pairs), their share of `items`, and
   * the correlation over the rest; `unread`: training splits not found, whose overlap is not counted.
   */
  seen: { pairs: number; share: number; unseen: { items: number } & Correlation; unread?: string[] };
}

/** The mean over the STS12-16 years present. */
export interface StsYearsMean extends EntryBase {
  /** Mean of the years' pooled Spearman. */
  mean: number;
  years: string[];
}

/** The metrics.json entries, by contract key; each present when its task ran on data. */
export interface MetricEntries {
  snli: NliResult;
  xnli: NliResult;
  separation: SeparationResult;
  sts: StsResult;
  sick: SickResult;
  lm: LmResult;
  sts12: StsYearResult;
  sts13: StsYearResult;
  sts14: StsYearResult;
  sts15: StsYearResult;
  sts16: StsYearResult;
  sts12_16: StsYearsMean;
}

export interface Metrics extends Partial<MetricEntries> {
  run: string;
  checkpoint: string;
  created: string;
  data_dir: string;
  tasks: string[];
  /** The splits the run trained on: entries on these datasets are marked `supervised`. */
  trained_on: TrainedSplit[];
  skipped: Skipped[];
}

export interface CurvePoint {
  step: number;
  value: number;
  series: string;
}

export interface HistogramPanel {
  name: string;
  histogram: Histogram;
  overlap: number;
}

export interface RocSeries {
  name: string;
  points: RocPoint[];
  auc: number;
}

/** What the report draws beside metrics.json. */
export interface ReportFigures {
  histograms: HistogramPanel[];
  roc: RocSeries[];
  scatter: { split: string; cosine: number[]; gold: number[] } | null;
}

export interface ReportData extends ReportFigures {
  metrics: Metrics;
  curves: CurvePoint[];
}

/**
 * One flattened metric: the view behind the terminal summary, the report's table and --compare.
 */
export interface MetricRow {
  /** Stable key, e.g. "separation.roc_auc" or "separation.roc_auc@0-lm". */
  key: string;
  task: string;
  metric: string;
  split: string;
  items: number;
  value: number | null;
  /** The lexical TF-IDF baseline on the same items, where there is one. */
  baseline: number | null;
  /** Higher is better (false for perplexity and overlap). */
  higherIsBetter: boolean;
  /** The run trained on this dataset (see EntryBase.supervised). */
  supervised: boolean;
  /** Where known by content (STS12-16): the share of the items the run trained on; under 1: partly supervised. */
  supervisedShare?: number;
}
