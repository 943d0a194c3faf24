/**
 * metrics.json flattened into rows (task, metric, split, items, value, baseline), the one view
 * behind the terminal summary, the report's table and `--compare`.
 */
import { formatTable } from "../ui/table.js";
import type { Metrics } from "./evaluate.js";

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
}

export function metricRows(m: Metrics): MetricRow[] {
  const rows: MetricRow[] = [];
  const add = (key: string, split: string, items: number, value: number | null | undefined, baseline: number | null = null, higherIsBetter = true) => {
    const [task, metric] = key.split(".", 2);
    rows.push({ key, task, metric, split, items, value: value ?? null, baseline, higherIsBetter });
  };
  if (m.snli) {
    add("snli.accuracy", m.snli.split, m.snli.items, m.snli.accuracy);
    add("snli.macro_f1", m.snli.split, m.snli.items, m.snli.macro_f1);
  }
  if (m.xnli) add("xnli.accuracy", m.xnli.split, m.xnli.items, m.xnli.accuracy);
  if (m.separation) {
    const s = m.separation;
    add("separation.roc_auc", s.split, s.items, s.roc_auc, s.baseline.tfidf.roc_auc);
    add("separation.overlap", s.split, s.items, s.overlap, s.baseline.tfidf.overlap, false);
    for (const st of s.stages) {
      if (!st.separation) continue;
      add(`separation.roc_auc@${st.stage}`, s.split, s.items, st.separation.roc_auc);
      add(`separation.overlap@${st.stage}`, s.split, s.items, st.separation.overlap, null, false);
    }
  }
  if (m.sts) {
    add("sts.spearman", m.sts.split, m.sts.items, m.sts.spearman, m.sts.baseline.tfidf.spearman);
    add("sts.pearson", m.sts.split, m.sts.items, m.sts.pearson, m.sts.baseline.tfidf.pearson);
    for (const st of m.sts.stages) add(`sts.spearman@${st.stage}`, m.sts.split, m.sts.items, st.sts_spearman);
  }
  if (m.sick) {
    const r = m.sick.relatedness;
    if (r) add("sick.spearman", r.split, r.items, r.spearman, r.baseline.tfidf.spearman);
    if (m.sick.entailment) add("sick.accuracy", m.sick.entailment.split, m.sick.entailment.items, m.sick.entailment.accuracy);
  }
  if (m.lm) add("lm.perplexity", m.lm.split, m.lm.items, m.lm.perplexity, null, false);
  return rows;
}

/** The terminal summary of one run. */
export function formatSummary(m: Metrics): string {
  const rows = metricRows(m).map((r) => [r.key, r.split, r.items, r.value, r.baseline]);
  return formatTable(["metric", "split", "items", "value", "tf-idf"], rows);
}
