/**
 * separation: are entailed pairs closer than contradictions? Cosine of the premise and hypothesis
 * vectors: ROC AUC (entailment positive), histogram overlap, mean cosine per label, beside TF-IDF
 * and the vectors at the end of each earlier stage. Writes the vectors (with the snli task's
 * predictions, joined by row) as snli.arrow / snli-stage-*.arrow for the notebooks.
 */
import { join } from "node:path";
import { NLI_LABELS, type PairRecord } from "../../data/records.js";
import { writeArrowFile } from "../arrowFile.js";
import { type Histogram, histogramOverlap, histograms, type RocPoint, rocAuc, rocCurve } from "../metrics.js";
import { tfidfCosines } from "../tfidf.js";
import { evalRows } from "../trainedOn.js";
import type { HistogramPanel, MetricRow, RocSeries, SeparationResult, SeparationScores } from "../types.js";
import {
  checkpointLabel,
  type EvalTask,
  entryBase,
  firstPresent,
  lookForSplits,
  type PairVectors,
  pairVectors,
  type RowPrediction,
  readPairs,
  rowAdder,
  rowKey,
  type TaskContext,
  type TaskOutput,
} from "./common.js";
import { NLI_SPLITS } from "./snli.js";

export const HISTOGRAM_BINS = 40;

export interface SeparationDetail {
  histogram: Histogram;
  roc: RocPoint[];
}

/** ROC AUC of cosine for entailment (positive) vs contradiction, histogram overlap, mean cosine per label. */
export function separationScores(cosines: ArrayLike<number>, labels: readonly (string | undefined)[]): SeparationScores & SeparationDetail {
  const groups: Record<string, number[]> = {};
  for (const l of NLI_LABELS) groups[l] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] !== undefined) groups[labels[i]!].push(cosines[i]);
  const pos = groups.entailment;
  const neg = groups.contradiction;
  const histogram = histograms(groups, HISTOGRAM_BINS);
  const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    roc_auc: rocAuc(pos, neg),
    overlap: histogramOverlap(histogram.fractions.entailment, histogram.fractions.contradiction),
    mean_cosine: Object.fromEntries(NLI_LABELS.map((l) => [l, mean(groups[l])])),
    histogram,
    roc: rocCurve(pos, neg),
  };
}

function pick(s: SeparationScores): SeparationScores {
  return { roc_auc: s.roc_auc, overlap: s.overlap, mean_cosine: s.mean_cosine };
}

/** Each record's prediction, joined by row identity (split and line): null where the snli task has none for that row. */
export function joinPredictions(split: string, records: readonly PairRecord[], predictions: ReadonlyMap<string, RowPrediction>): (RowPrediction | null)[] {
  return records.map((r) => predictions.get(rowKey(split, r.line)) ?? null);
}

/** The columns of snli.arrow: one row per pair, its vectors and cosine, and the head's prediction where there is one. */
export function snliColumns(records: readonly PairRecord[], pv: PairVectors, pred: readonly (RowPrediction | null)[]) {
  const prob = (c: number) => Float32Array.from(pred, (p) => (p ? p.probs[c] : Number.NaN));
  return {
    line: { type: "int32" as const, values: Int32Array.from(records, (r) => r.line) },
    premise: { type: "utf8" as const, values: records.map((r) => r.s1) },
    hypothesis: { type: "utf8" as const, values: records.map((r) => r.s2) },
    label: { type: "utf8" as const, values: records.map((r) => r.label ?? "") },
    cosine: { type: "float64" as const, values: Float64Array.from(pv.cosines) },
    pred: { type: "utf8" as const, values: pred.map((p) => (p ? NLI_LABELS[p.pred] : "")) },
    p_entailment: { type: "float32" as const, values: prob(0) },
    p_neutral: { type: "float32" as const, values: prob(1) },
    p_contradiction: { type: "float32" as const, values: prob(2) },
    u: { type: "vector" as const, values: pv.u, dim: pv.dim },
    v: { type: "vector" as const, values: pv.v, dim: pv.dim },
  };
}

export const separationTask: EvalTask = {
  name: "separation",
  describe: "cosine of premise / hypothesis vectors, entailment vs contradiction: ROC AUC, histogram overlap",
  splits: NLI_SPLITS.snli,
  lookFor: (dataDir) => lookForSplits(separationTask.splits, dataDir),
  async run(ctx: TaskContext): Promise<TaskOutput> {
    const { model } = ctx;
    const id = firstPresent(ctx, "separation", NLI_SPLITS.snli);
    const data = id === null ? null : await readPairs(ctx, "separation", id);
    if (!data) return { entries: {} };
    const split = data.ref.id;
    const { rows, subset } = evalRows(model.manifest, ctx.trainedOn, split, data.records.length);
    const records = rows
      .map((r) => data.records[r])
      .filter((r) => r.label !== undefined)
      .slice(0, ctx.limit);
    const labels = records.map((r) => r.label);
    const pv = await pairVectors(model, records);
    const s = separationScores(pv.cosines, labels);
    const lex = separationScores(
      tfidfCosines(
        records.map((r) => r.s1),
        records.map((r) => r.s2),
      ),
      labels,
    );
    const entry: SeparationResult = {
      ...entryBase(ctx, split, records.length),
      subset,
      positive: "entailment",
      negative: "contradiction",
      bins: s.histogram.edges.length - 1,
      ...pick(s),
      baseline: { tfidf: pick(lex) },
      stages: [],
    };
    const final = `final (${checkpointLabel(model, ctx.checkpoint)})`;
    const stagePanels: HistogramPanel[] = [];
    const histograms: HistogramPanel[] = [{ name: final, histogram: s.histogram, overlap: s.overlap }];
    const tfidfPanel: HistogramPanel = { name: "TF-IDF baseline", histogram: lex.histogram, overlap: lex.overlap };
    const roc: RocSeries[] = [
      { name: final, points: s.roc, auc: s.roc_auc },
      { name: "TF-IDF baseline", points: lex.roc, auc: lex.roc_auc },
    ];
    ctx.log(
      `separation ${split}: roc_auc ${s.roc_auc.toFixed(4)}, overlap ${s.overlap.toFixed(4)} (tf-idf ${lex.roc_auc.toFixed(4)} / ${lex.overlap.toFixed(4)})`,
    );
    const path = join(ctx.outDir, "snli.arrow");
    await writeArrowFile(path, snliColumns(records, pv, joinPredictions(split, records, ctx.predictions)), {
      "bridge.run": ctx.run,
      "bridge.checkpoint": ctx.checkpoint,
      "bridge.split": split,
    });
    const files = [path];
    const out: TaskOutput = {
      entries: { separation: entry },
      // the panels in order: final, each earlier stage, TF-IDF (stage panels are filled in by atStage)
      figures: { histograms, roc },
      files,
      atStage: async (stage) => {
        const spv = await pairVectors(model, records);
        const st = separationScores(spv.cosines, labels);
        entry.stages.push({ stage: stage.name, checkpoint: stage.checkpoint, separation: pick(st) });
        stagePanels.push({ name: stage.label, histogram: st.histogram, overlap: st.overlap });
        histograms.splice(1, histograms.length - 1, ...stagePanels, tfidfPanel);
        roc.push({ name: stage.label, points: st.roc, auc: st.roc_auc });
        const stagePath = join(ctx.outDir, `snli-stage-${stage.name}.arrow`);
        await writeArrowFile(
          stagePath,
          snliColumns(
            records,
            spv,
            records.map(() => null),
          ),
          { "bridge.run": ctx.run, "bridge.checkpoint": stage.checkpoint, "bridge.stage": stage.name },
        );
        files.push(stagePath);
        return `roc_auc ${st.roc_auc.toFixed(4)}, overlap ${st.overlap.toFixed(4)}`;
      },
    };
    histograms.push(tfidfPanel);
    return out;
  },
  rows(m) {
    const rows: MetricRow[] = [];
    const add = rowAdder(rows);
    const s = m.separation;
    if (!s) return rows;
    add("separation.roc_auc", s, s.roc_auc, s.baseline.tfidf.roc_auc);
    add("separation.overlap", s, s.overlap, s.baseline.tfidf.overlap, false);
    for (const st of s.stages) {
      if (!st.separation) continue;
      add(`separation.roc_auc@${st.stage}`, s, st.separation.roc_auc);
      add(`separation.overlap@${st.stage}`, s, st.separation.overlap, null, false);
    }
    return rows;
  },
};
