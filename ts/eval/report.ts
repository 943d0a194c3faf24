/**
 * report.html: one self-contained page (inline SVG charts and CSS, no script, no network) that
 * answers "are sentences with the same meaning close together, and is that what I should expect?":
 * every metric beside its baseline, the cosine histograms per gold label (final vectors, each
 * earlier stage, TF-IDF) with their overlap shaded, ROC curves, the confusion matrix, the STS
 * scatter and the training curves. PNG copies of the histogram and ROC charts sit beside it.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { confusionSpec, curvesSpec, histogramSpec, renderSvg, rocSpec, scatterSpec, svgToPng } from "./charts.js";
import { metricRows, supervisionLabel } from "./summary.js";
import { describeTrainedOn } from "./trainedOn.js";
import type { CurvePoint, MetricRow, ReportData } from "./types.js";

export type { ReportData } from "./types.js";

export const REPORT_FILES = { html: "report.html", histogramPng: "separation-histogram.png", rocPng: "separation-roc.png" };

/** Writes report.html and the PNGs into `dir`; returns their paths. */
export async function writeReport(dir: string, data: ReportData): Promise<string[]> {
  const m = data.metrics;
  const sections: string[] = [];
  const files: string[] = [];
  // older metrics.json files have no trained_on
  const trained = `<p class="meta">Trained on: ${escapeHtml(describeTrainedOn(m.trained_on ?? []))}. Metrics marked <b>supervised</b> are on a dataset the run trained on; the others are transfer results.</p>`;
  sections.push(`<h2>Metrics</h2>${trained}${metricsTable(metricRows(m))}`);
  if (data.histograms.length > 0) {
    const svg = await renderSvg(histogramSpec(data.histograms));
    sections.push(
      figure(
        "separation-histogram",
        `Cosine similarity of premise and hypothesis vectors by gold label (${m.separation?.split}, ${m.separation?.items} pairs)`,
        svg,
        "Dark bars: the overlap of the entailment and contradiction histograms (0 = separated, 1 = identical). " +
          "Each panel is one set of vectors: the final model, the end of each earlier stage, and TF-IDF bags of words.",
      ),
    );
    await writeFileAtomic(join(dir, REPORT_FILES.histogramPng), svgToPng(svg));
    files.push(join(dir, REPORT_FILES.histogramPng));
  }
  if (data.roc.length > 0) {
    const svg = await renderSvg(rocSpec(data.roc));
    sections.push(
      figure(
        "separation-roc",
        "ROC: entailment vs contradiction, scored by cosine",
        svg,
        "AUC 0.5 = no separation; 1.0 = every entailment closer than every contradiction.",
      ),
    );
    await writeFileAtomic(join(dir, REPORT_FILES.rocPng), svgToPng(svg));
    files.push(join(dir, REPORT_FILES.rocPng));
  }
  for (const task of ["snli", "xnli"] as const) {
    const r = m[task];
    if (!r) continue;
    const svg = await renderSvg(confusionSpec(r.confusion.labels, r.confusion.matrix, `${r.split}: accuracy ${r.accuracy.toFixed(3)}`));
    sections.push(
      figure(
        `${task}-confusion`,
        `${task.toUpperCase()} confusion matrix (${r.split}, ${r.items} pairs; ${escapeHtml(r.subset)})`,
        svg,
        perClassTable(r.per_class),
      ),
    );
  }
  if (data.scatter) {
    const sts = m.sts;
    const svg = await renderSvg(scatterSpec(data.scatter.cosine, data.scatter.gold, `${data.scatter.split}: Spearman ${sts?.spearman.toFixed(3)}`));
    const how = sts?.supervised ? "supervised: the run trained on STS-B's training split" : "transfer: the run never trained on STS-B";
    sections.push(
      figure(
        "sts-scatter",
        `STS Benchmark: cosine vs gold similarity (${how})`,
        svg,
        `TF-IDF cosine baseline: Spearman ${sts?.baseline.tfidf.spearman.toFixed(3)}.`,
      ),
    );
  }
  if (data.curves.length > 0) {
    const svg = await renderSvg(curvesSpec(data.curves));
    sections.push(figure("training-curves", "Training curves (log.jsonl)", svg, ""));
    const last = lastValidation(data.curves);
    if (last.length > 0) sections.push(`<h2>Validation at each stage's last evaluation</h2>${validationTable(last)}`);
  }
  if (m.lm) {
    const samples = m.lm.samples.map((s) => `<li>${escapeHtml(s)}</li>`).join("");
    const ppl = Number.isFinite(m.lm.perplexity) ? m.lm.perplexity.toFixed(2) : "n/a";
    sections.push(
      `<h2>Language model</h2><p>Perplexity ${ppl} on ${escapeHtml(m.lm.split)} (${m.lm.items} tokens, ${(m.lm.oov_rate * 100).toFixed(1)}% out of vocabulary), checkpoint ${escapeHtml(m.lm.checkpoint)}. ${escapeHtml(m.lm.note)}.</p>` +
        `<p>Samples (temperature ${m.lm.sampling.temperature}, top-k ${m.lm.sampling.top_k || "off"}, seed ${m.lm.sampling.seed}):</p><ol class="samples">${samples}</ol>`,
    );
  }
  if (m.skipped.length > 0) {
    sections.push(`<h2>Skipped</h2><ul>${m.skipped.map((s) => `<li><b>${escapeHtml(s.task)}</b> ${escapeHtml(s.reason)}</li>`).join("")}</ul>`);
  }
  const html = page(
    `bridge eval: ${m.run}`,
    `<p class="meta">run <b>${escapeHtml(m.run)}</b>, checkpoint ${escapeHtml(m.checkpoint)}, data ${escapeHtml(m.data_dir)}, ${escapeHtml(m.created)}</p>${sections.join("\n")}`,
  );
  await writeFileAtomic(join(dir, REPORT_FILES.html), html);
  return [join(dir, REPORT_FILES.html), ...files];
}

/** Each validation series' last point (a multi-task stage's per-task figures among them: val_accuracy/TASK), in log order. */
export function lastValidation(curves: readonly CurvePoint[]): { series: string; step: number; value: number }[] {
  const last = new Map<string, CurvePoint>();
  for (const p of curves) if (/(^| )val_/.test(p.series) && (last.get(p.series)?.step ?? -1) <= p.step) last.set(p.series, p);
  return [...last.values()].map((p) => ({ series: p.series, step: p.step, value: p.value }));
}

function validationTable(rows: readonly { series: string; step: number; value: number }[]): string {
  const body = rows.map((r) => `<tr><td>${escapeHtml(r.series)}</td><td>${r.step}</td><td>${fmt(r.value)}</td></tr>`).join("");
  return `<table class="metrics"><thead><tr><th>stage and metric (per task: /TASK)</th><th>step</th><th>value</th></tr></thead><tbody>${body}</tbody></table>`;
}

function figure(id: string, title: string, svg: string, caption: string): string {
  return `<section class="chart" id="${id}"><h2>${escapeHtml(title)}</h2>${svg}<div class="caption">${caption}</div></section>`;
}

export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

function metricsTable(rows: readonly MetricRow[]): string {
  const body = rows
    .map((r) => {
      const better = r.baseline === null || r.value === null ? "" : (r.higherIsBetter ? r.value > r.baseline : r.value < r.baseline) ? "better" : "worse";
      return `<tr><td>${escapeHtml(r.key)}</td><td>${escapeHtml(r.split)}</td><td class="n">${r.items}</td><td class="n ${better}">${fmt(r.value)}</td><td class="n">${fmt(r.baseline)}</td><td>${r.supervised ? (supervisionLabel(r) === "yes" ? "supervised" : supervisionLabel(r)) : ""}</td></tr>`;
    })
    .join("");
  return `<table class="metrics"><thead><tr><th>metric</th><th>split</th><th>items</th><th>value</th><th>TF-IDF baseline</th><th>trained on it</th></tr></thead><tbody>${body}</tbody></table>`;
}

function perClassTable(perClass: Record<string, { precision: number; recall: number; f1: number; support: number }>): string {
  const rows = Object.entries(perClass)
    .map(
      ([k, c]) =>
        `<tr><td>${escapeHtml(k)}</td><td class="n">${fmt(c.precision)}</td><td class="n">${fmt(c.recall)}</td><td class="n">${fmt(c.f1)}</td><td class="n">${c.support}</td></tr>`,
    )
    .join("");
  return `<table class="metrics"><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** A complete HTML page with the report's inline style. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table.metrics { border-collapse: collapse; margin: .5em 0; } table.metrics td, table.metrics th { border-bottom: 1px solid #ddd; padding: .25em .7em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } td.better { color: #1b7a3d; } td.worse { color: #b23a1b; }
.meta, .caption { color: #555; font-size: .9em; } .chart svg { max-width: 100%; height: auto; } ol.samples li { font-family: monospace; margin: .2em 0; }
</style></head>
<body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}
