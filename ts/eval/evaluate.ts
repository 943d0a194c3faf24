/**
 * `bridge eval` end to end: open the run, run the asked tasks on the splits present, compare with
 * the baselines (TF-IDF cosine; the vectors at the end of each earlier stage), and write
 * runs/NAME/eval/{metrics.json, report.html, *.png, snli.arrow, snli-stage-*.arrow}.
 */
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { missingSplitMessage, parseSplitRef, resolveDataDir, splitExists } from "../data/datasets.js";
import { NLI_LABELS, type PairRecord } from "../data/records.js";
import { writeArrowFile } from "./arrowFile.js";
import { correlations } from "./metrics.js";
import { writeReport, type ReportData } from "./report.js";
import { RunModel } from "./runModel.js";
import {
  evalRows,
  nliTask,
  pairVectors,
  perplexityTask,
  readPairs,
  sampleTexts,
  SAMPLING,
  separationScores,
  sickProbeTask,
  similarityTask,
  TASKS,
  type LmResult,
  type NliResult,
  type ProbeResult,
  type SamplingSettings,
  type SeparationResult,
  type SeparationScores,
  type SimilarityResult,
  type Skipped,
  type TaskContext,
  type TaskName,
} from "./tasks.js";
import { tfidfCosines } from "./tfidf.js";

export interface EvalOptions {
  run: string;
  tasks?: readonly TaskName[];
  dataDir?: string;
  checkpoint?: string;
  runsDir?: string;
  device?: string;
  /** Most items per split (tests). */
  limit?: number;
  /** Most LM tokens scored (tests). */
  lmMaxTokens?: number;
  log?: (line: string) => void;
}

export interface StageScores {
  stage: string;
  checkpoint: string;
  separation?: SeparationScores;
  sts_spearman?: number;
}

export interface Metrics {
  run: string;
  checkpoint: string;
  created: string;
  data_dir: string;
  tasks: TaskName[];
  skipped: Skipped[];
  snli?: NliResult;
  xnli?: NliResult;
  separation?: SeparationResult & { baseline: { tfidf: SeparationScores }; stages: StageScores[] };
  sts?: SimilarityResult & { baseline: { tfidf: { spearman: number; pearson: number } }; stages: StageScores[] };
  sick?: {
    split: string;
    items: number;
    spearman?: number;
    pearson?: number;
    accuracy?: number;
    relatedness?: SimilarityResult & { baseline: { tfidf: { spearman: number; pearson: number } } };
    entailment?: ProbeResult;
  };
  lm?: LmResult & { samples: string[]; sampling: SamplingSettings };
}

export interface EvalResult {
  metrics: Metrics;
  dir: string;
  files: string[];
}

/** SNLI's primary split: test when present (report test once), else dev. */
const NLI_SPLITS = { snli: ["snli:test", "snli:dev"], xnli: ["xnli:test", "xnli:dev"] };

export async function evaluateRun(opts: EvalOptions): Promise<EvalResult> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const tasks = [...(opts.tasks ?? TASKS)];
  const model = await RunModel.open({ run: opts.run, runsDir: opts.runsDir, checkpoint: opts.checkpoint, device: opts.device });
  const skipped: Skipped[] = [];
  const ctx: TaskContext = { model, dataDir: opts.dataDir, limit: opts.limit, lmMaxTokens: opts.lmMaxTokens, skipped, log };
  const finalCheckpoint = model.checkpoint;
  const metrics: Metrics = {
    run: opts.run,
    checkpoint: finalCheckpoint,
    created: new Date().toISOString(),
    data_dir: resolveDataDir(opts.dataDir),
    tasks,
    skipped,
  };
  const report: ReportData = { metrics, histograms: [], roc: [], scatter: null, curves: readLog(model.paths.log) };
  const files: string[] = [];
  const stages = model.manifest.stages.filter((s) => s.completed && s.checkpoint !== null);
  const earlier = stages.filter((s) => s.checkpoint !== finalCheckpoint);
  const hasHead = stages.some((s) => s.objective === "siamese");
  try {
    // --- NLI classification by the siamese head
    let snliPred: { records: PairRecord[]; probs: Float32Array; pred: Int32Array } | null = null;
    if (tasks.includes("snli")) {
      if (!hasHead) skipped.push({ task: "snli", split: "*", reason: "the run has no siamese stage: its classifier head is untrained" });
      else {
        for (const [task, candidates] of Object.entries(NLI_SPLITS)) {
          const id = await firstPresent(ctx, task, candidates);
          if (id === null) continue;
          const out = await nliTask(ctx, task, id);
          if (!out) continue;
          metrics[task as "snli" | "xnli"] = out.metrics;
          if (task === "snli") snliPred = out;
        }
      }
    }

    // --- Separation of entailed vs contradicting pairs (cosine of the sentence vectors)
    let sepRecords: PairRecord[] = [];
    if (tasks.includes("separation")) {
      const id = await firstPresent(ctx, "separation", NLI_SPLITS.snli);
      const data = id === null ? null : await readPairs(ctx, "separation", id);
      if (data) {
        const { rows, subset } = evalRows(model, data.ref.id, data.records.length);
        sepRecords = rows.map((r) => data.records[r]).filter((r) => r.label !== undefined).slice(0, opts.limit);
        const pv = await pairVectors(model, sepRecords);
        const labels = sepRecords.map((r) => r.label);
        const s = separationScores(pv.cosines, labels);
        const lex = separationScores(tfidfCosines(sepRecords.map((r) => r.s1), sepRecords.map((r) => r.s2)), labels);
        metrics.separation = {
          split: data.ref.id,
          items: sepRecords.length,
          subset,
          positive: "entailment",
          negative: "contradiction",
          bins: s.histogram.edges.length - 1,
          roc_auc: s.roc_auc,
          overlap: s.overlap,
          mean_cosine: s.mean_cosine,
          baseline: { tfidf: pick(lex) },
          stages: [],
        };
        report.histograms.push({ name: `final (${checkpointLabel(model, finalCheckpoint)})`, histogram: s.histogram, overlap: s.overlap });
        report.histograms.push({ name: "TF-IDF baseline", histogram: lex.histogram, overlap: lex.overlap });
        report.roc.push({ name: `final (${checkpointLabel(model, finalCheckpoint)})`, points: s.roc, auc: s.roc_auc }, { name: "TF-IDF baseline", points: lex.roc, auc: lex.roc_auc });
        log(`separation ${data.ref.id}: roc_auc ${s.roc_auc.toFixed(4)}, overlap ${s.overlap.toFixed(4)} (tf-idf ${lex.roc_auc.toFixed(4)} / ${lex.overlap.toFixed(4)})`);
        const pred = snliPred && snliPred.records.length === sepRecords.length ? snliPred : null;
        const path = join(model.paths.eval, "snli.arrow");
        await writeArrowFile(path, snliColumns(sepRecords, pv, pred), { "bridge.run": opts.run, "bridge.checkpoint": finalCheckpoint, "bridge.split": data.ref.id });
        files.push(path);
      }
    }

    // --- STS-B: cosine vs gold, no training on STS
    let stsRecords: PairRecord[] = [];
    if (tasks.includes("sts")) {
      const id = await firstPresent(ctx, "sts", ["stsb:test", "stsb:dev"]);
      const out = id === null ? null : await similarityTask(ctx, "sts", id);
      if (out) {
        stsRecords = out.records;
        metrics.sts = { ...out.metrics, baseline: { tfidf: out.baseline }, stages: [] };
        report.scatter = { split: out.metrics.split, cosine: Array.from(out.cosines), gold: out.gold };
      }
    }

    // --- SICK: relatedness (cosine, no training) and entailment (probe on frozen vectors)
    if (tasks.includes("sick")) {
      const id = await firstPresent(ctx, "sick", ["sick:test", "sick:trial"]);
      if (id !== null) {
        const rel = await similarityTask(ctx, "sick", id);
        const ent = await sickProbeTask(ctx, "sick:train", id);
        if (rel || ent) {
          metrics.sick = {
            split: id,
            items: rel?.metrics.items ?? ent!.items,
            spearman: rel?.metrics.spearman,
            pearson: rel?.metrics.pearson,
            accuracy: ent?.accuracy,
            ...(rel ? { relatedness: { ...rel.metrics, baseline: { tfidf: rel.baseline } } } : {}),
            ...(ent ? { entailment: ent } : {}),
          };
        }
      }
    }

    // --- The vectors at the end of each earlier stage (the before / after of fine-tuning)
    for (const stage of earlier) {
      if (sepRecords.length === 0 && stsRecords.length === 0) break;
      await model.load(stage.checkpoint!);
      const name = `${stage.index}-${stage.name}`;
      const checkpoint = stage.checkpoint!;
      let line = `stage ${name}:`;
      if (sepRecords.length > 0 && metrics.separation) {
        const pv = await pairVectors(model, sepRecords);
        const s = separationScores(pv.cosines, sepRecords.map((r) => r.label));
        metrics.separation.stages.push({ stage: name, checkpoint, separation: pick(s) });
        report.histograms.splice(report.histograms.length - 1, 0, { name: `after stage ${name}`, histogram: s.histogram, overlap: s.overlap });
        report.roc.push({ name: `after stage ${name}`, points: s.roc, auc: s.roc_auc });
        const path = join(model.paths.eval, `snli-stage-${name}.arrow`);
        await writeArrowFile(path, snliColumns(sepRecords, pv, null), { "bridge.run": opts.run, "bridge.checkpoint": checkpoint, "bridge.stage": name });
        files.push(path);
        line += ` roc_auc ${s.roc_auc.toFixed(4)}, overlap ${s.overlap.toFixed(4)}`;
      }
      if (stsRecords.length > 0 && metrics.sts) {
        const { cosines } = await pairVectors(model, stsRecords);
        const sts = correlations(cosines, stsRecords.map((r) => r.score!)).spearman;
        metrics.sts.stages.push({ stage: name, checkpoint, sts_spearman: sts });
        line += ` sts spearman ${sts.toFixed(4)}`;
      }
      log(line);
    }

    // --- Language model: the last LM stage's checkpoint (fine-tuning later changes the encoder)
    if (tasks.includes("lm")) {
      const lmStage = [...stages].reverse().find((s) => s.objective === "lm");
      if (!lmStage) skipped.push({ task: "lm", split: "*", reason: "the run has no language-model stage" });
      else {
        if (model.checkpoint !== lmStage.checkpoint) await model.load(lmStage.checkpoint!);
        const id = await firstPresent(ctx, "lm", ["wikitext-2:test", "wikitext-2:valid"]);
        const ppl = id === null ? null : await perplexityTask(ctx, id);
        const samples = await sampleTexts(model);
        if (ppl) metrics.lm = { ...ppl, samples, sampling: SAMPLING };
        else metrics.lm = { split: "none", items: 0, perplexity: Number.NaN, oov_rate: Number.NaN, checkpoint: lmStage.checkpoint!, bptt: 0, note: "no held-out text found", samples, sampling: SAMPLING };
      }
    }
  } finally {
    await model.close();
  }

  const metricsPath = join(model.paths.eval, "metrics.json");
  await writeFileAtomic(metricsPath, JSON.stringify(metrics, jsonNumbers, 2) + "\n");
  files.unshift(metricsPath);
  files.push(...(await writeReport(model.paths.eval, report)));
  return { metrics, dir: model.paths.eval, files };
}

/** The first split of the list that is present; the missing ones before it are listed as skipped. */
async function firstPresent(ctx: TaskContext, task: string, ids: string[]): Promise<string | null> {
  for (const id of ids) {
    const ref = parseSplitRef(id, ctx.dataDir);
    if (splitExists(ref)) return ref.id;
    ctx.skipped.push({ task, split: ref.id, reason: missingSplitMessage(ref) });
    ctx.log(`${task}: ${ref.id} not present, skipped`);
  }
  return null;
}

function pick(s: SeparationScores): SeparationScores {
  return { roc_auc: s.roc_auc, overlap: s.overlap, mean_cosine: s.mean_cosine };
}

/** The label of a checkpoint in the report: its stage's "INDEX-NAME" in the manifest, else the file name. */
function checkpointLabel(model: RunModel, checkpoint: string): string {
  const s = model.manifest.stages.find((st) => st.checkpoint === checkpoint);
  return s ? `${s.index}-${s.name}` : checkpoint;
}

/** NaN / Infinity are not JSON: they become null. */
function jsonNumbers(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? null : value;
}

function snliColumns(records: PairRecord[], pv: { u: Float32Array; v: Float32Array; dim: number; cosines: Float64Array }, pred: { probs: Float32Array; pred: Int32Array } | null) {
  const n = records.length;
  const prob = (c: number) => Float32Array.from({ length: n }, (_, i) => (pred ? pred.probs[i * 3 + c] : Number.NaN));
  return {
    line: { type: "int32" as const, values: Int32Array.from(records, (r) => r.line) },
    premise: { type: "utf8" as const, values: records.map((r) => r.s1) },
    hypothesis: { type: "utf8" as const, values: records.map((r) => r.s2) },
    label: { type: "utf8" as const, values: records.map((r) => r.label ?? "") },
    cosine: { type: "float64" as const, values: Float64Array.from(pv.cosines) },
    pred: { type: "utf8" as const, values: records.map((_, i) => (pred ? NLI_LABELS[pred.pred[i]] : "")) },
    p_entailment: { type: "float32" as const, values: prob(0) },
    p_neutral: { type: "float32" as const, values: prob(1) },
    p_contradiction: { type: "float32" as const, values: prob(2) },
    u: { type: "vector" as const, values: pv.u, dim: pv.dim },
    v: { type: "vector" as const, values: pv.v, dim: pv.dim },
  };
}

export interface CurvePoint {
  step: number;
  value: number;
  series: string;
}

/**
 * Training curves from log.jsonl: every record with a numeric step and loss / accuracy / perplexity
 * values, one series per stage and quantity. Where a stage counts its steps from 0 again, it is
 * shifted past the stages before it, so stages follow each other on one axis.
 */
export function readLog(path: string): CurvePoint[] {
  if (!existsSync(path)) return [];
  const out: CurvePoint[] = [];
  const offsets = new Map<string, number>();
  let lastStep = 0;
  let lastStage: string | null = null;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // a line cut by a crash: skip it
    }
    const raw = rec.step ?? rec.global_step;
    if (typeof raw !== "number") continue;
    const stage = typeof rec.stage === "string" ? rec.stage : "";
    if (!offsets.has(stage)) offsets.set(stage, lastStage !== null && raw + 0 < lastStep ? lastStep : 0);
    const step = raw + offsets.get(stage)!;
    lastStep = Math.max(lastStep, step);
    lastStage = stage;
    for (const [k, v] of Object.entries(rec)) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      if (!/loss|accuracy|perplexity|ppl/i.test(k)) continue;
      out.push({ step, value: v, series: stage ? `${stage} ${k}` : k });
    }
  }
  return out;
}
