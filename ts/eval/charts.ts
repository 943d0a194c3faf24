/**
 * The report's charts: Vega-Lite specs compiled and rendered to SVG in Node (no browser, no
 * network), and PNG copies rasterised with resvg. Each function takes plain data and returns a
 * Vega-Lite spec; renderSvg / svgToPng do the drawing.
 */
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { RocPoint } from "./metrics.js";
import type { CurvePoint, HistogramPanel, RocSeries } from "./types.js";

const LABEL_COLORS = { domain: ["entailment", "neutral", "contradiction", "overlap"], range: ["#2a9d8f", "#e9c46a", "#e76f51", "#264653"] };
const FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif";
const CONFIG = { font: FONT, view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11 } };

/** Overlaid cosine histograms per gold label, one panel per model / stage, the entailment-contradiction overlap shaded. */
export function histogramSpec(panels: readonly HistogramPanel[]): TopLevelSpec {
  const rows: Record<string, unknown>[] = [];
  for (const p of panels) {
    const { edges, fractions } = p.histogram;
    const title = `${p.name}: overlap ${p.overlap.toFixed(3)}`;
    for (let i = 0; i < edges.length - 1; i++) {
      for (const label of Object.keys(fractions)) rows.push({ panel: title, label, x0: edges[i], x1: edges[i + 1], fraction: fractions[label][i] });
      rows.push({ panel: title, label: "overlap", x0: edges[i], x1: edges[i + 1], fraction: Math.min(fractions.entailment[i], fractions.contradiction[i]) });
    }
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    data: { values: rows },
    facet: {
      row: {
        field: "panel",
        type: "nominal",
        header: { title: null, labelFontSize: 12, labelAngle: 0, labelAlign: "left", labelAnchor: "start", labelOrient: "top" },
        sort: panels.map((p) => `${p.name}: overlap ${p.overlap.toFixed(3)}`),
      },
    },
    spec: {
      width: 560,
      height: 170,
      // rect from 0 to the fraction over [x0, x1): exact bins, overlaid (not stacked).
      layer: [
        {
          transform: [{ filter: "datum.label !== 'overlap'" }],
          mark: { type: "rect", opacity: 0.45 },
          encoding: {
            x: { field: "x0", type: "quantitative", title: "cosine similarity of premise and hypothesis vectors", scale: { zero: false, nice: false } },
            x2: { field: "x1" },
            y: { field: "fraction", type: "quantitative", title: "fraction of pairs" },
            y2: { datum: 0 },
            color: { field: "label", type: "nominal", scale: LABEL_COLORS, title: "gold label" },
          },
        },
        {
          transform: [{ filter: "datum.label === 'overlap'" }],
          mark: { type: "rect", opacity: 0.4 },
          encoding: {
            x: { field: "x0", type: "quantitative" },
            x2: { field: "x1" },
            y: { field: "fraction", type: "quantitative" },
            y2: { datum: 0 },
            color: { field: "label", type: "nominal", scale: LABEL_COLORS },
          },
        },
      ],
    },
    resolve: { scale: { x: "independent" } },
  } as TopLevelSpec;
}

/** ROC curves of entailment vs contradiction by cosine, one line per model / stage, the chance diagonal dashed. */
export function rocSpec(series: readonly RocSeries[]): TopLevelSpec {
  const rows = series.flatMap((s) => thin(s.points).map((p) => ({ series: `${s.name} (AUC ${s.auc.toFixed(3)})`, fpr: p.fpr, tpr: p.tpr })));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    width: 360,
    height: 360,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: "line", strokeDash: [4, 4], color: "#999" },
        encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
      },
      {
        data: { values: rows },
        mark: { type: "line", interpolate: "step-after" },
        encoding: {
          x: { field: "fpr", type: "quantitative", title: "false positive rate (contradictions above the threshold)", scale: { domain: [0, 1] } },
          y: { field: "tpr", type: "quantitative", title: "true positive rate (entailments above the threshold)", scale: { domain: [0, 1] } },
          color: { field: "series", type: "nominal", title: null, legend: { orient: "bottom-right", labelLimit: 320 } },
          order: { field: "fpr" },
        },
      },
    ],
  } as TopLevelSpec;
}

/** At most ~400 points per curve (every k-th plus the ends): the shape stays, the file stays small. */
function thin(points: readonly RocPoint[]): RocPoint[] {
  const k = Math.ceil(points.length / 400);
  return k <= 1 ? [...points] : points.filter((_, i) => i % k === 0 || i === points.length - 1);
}

/** Confusion-matrix heatmap, gold on rows, prediction on columns, counts written in the cells. */
export function confusionSpec(labels: readonly string[], matrix: readonly number[][], title: string): TopLevelSpec {
  const rows = matrix.flatMap((r, g) =>
    r.map((count, p) => ({
      gold: labels[g],
      pred: labels[p],
      count,
      share:
        count /
        Math.max(
          1,
          r.reduce((a, b) => a + b, 0),
        ),
    })),
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title,
    data: { values: rows },
    width: 270,
    height: 270,
    encoding: {
      x: { field: "pred", type: "nominal", sort: [...labels], title: "predicted", axis: { labelAngle: 0 } },
      y: { field: "gold", type: "nominal", sort: [...labels], title: "gold" },
    },
    layer: [
      { mark: "rect", encoding: { color: { field: "share", type: "quantitative", title: "share of gold row", scale: { scheme: "blues", domain: [0, 1] } } } },
      {
        mark: { type: "text", fontSize: 13 },
        encoding: { text: { field: "count", type: "quantitative" }, color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "black" } },
      },
    ],
  } as TopLevelSpec;
}

/** STS scatter: cosine of the two sentence vectors against the gold similarity. */
export function scatterSpec(cosine: readonly number[], gold: readonly number[], title: string): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title,
    data: { values: cosine.map((c, i) => ({ cosine: c, gold: gold[i] })) },
    width: 360,
    height: 300,
    mark: { type: "circle", size: 12, opacity: 0.35, color: "#264653" },
    encoding: {
      x: { field: "gold", type: "quantitative", title: "gold similarity" },
      y: { field: "cosine", type: "quantitative", title: "cosine of sentence vectors", scale: { zero: false } },
    },
  } as TopLevelSpec;
}

/** Training curves from log.jsonl: one line per stage and quantity; losses and accuracies in separate panels. */
export function curvesSpec(points: readonly CurvePoint[]): TopLevelSpec {
  const rows = points.map((p) => ({ ...p, panel: /acc/i.test(p.series) ? "accuracy" : /perplexity|ppl/i.test(p.series) ? "perplexity" : "loss" }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    data: { values: rows },
    facet: { row: { field: "panel", type: "nominal", title: null } },
    spec: {
      width: 560,
      height: 170,
      mark: { type: "line", point: { size: 12 } },
      encoding: {
        x: { field: "step", type: "quantitative", title: "optimizer step" },
        y: { field: "value", type: "quantitative", title: null, scale: { zero: false } },
        color: { field: "series", type: "nominal", title: null },
      },
    },
    resolve: { scale: { y: "independent" } },
  } as TopLevelSpec;
}

/** Renders a Vega-Lite spec to an SVG string (headless, no canvas, no network). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A PNG of an SVG at `scale` times its size, white background. */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const r = new Resvg(svg, { fitTo: { mode: "zoom", value: scale }, background: "white", font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" } });
  return r.render().asPng();
}
