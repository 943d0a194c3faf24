/**
 * sts12-16: SentEval's STS tasks of 2012-2016, in SentEval's layout under the data dir:
 * `sts/STS12/STS.input.NAME.txt` (s1 TAB s2) with `STS.gs.NAME.txt` (gold 0-5; blank = unscored,
 * skipped as SentEval does), one pair of files per subset; STS16 names them `STS2016.input.NAME.txt`
 * and `STS2016.gs.NAME.txt`, and both namings are read. Per year: Spearman / Pearson of cosine
 * with all its subsets pooled (SentEval's "all"), each subset's own; then the mean over the years
 * present (`sts12_16.mean`). Absent years are skipped with a message.
 *
 * STS-B was assembled from these years, so a run trained on stsb:train has seen some of their pairs:
 * each year counts the pairs the run trained on (by content, ts/eval/trainedPairs.ts), is marked
 * supervised when there are any, and gives the Spearman on the pairs it never saw (`unseen`).
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { correlations } from "../../core/stats.js";
import { resolveDataDir } from "../../data/datasets.js";
import { readStsInputGs } from "../../data/readers/similarity.js";
import type { PairRecord } from "../../data/records.js";
import { pairKey } from "../trainedPairs.js";
import type { MetricRow, StsYearResult } from "../types.js";
import { type EvalTask, entryBase, rowAdder, skip, type TaskContext, type TaskOutput } from "./common.js";
import { similarity } from "./sts.js";

export const STS_YEARS = ["sts12", "sts13", "sts14", "sts15", "sts16"] as const;
export type StsYear = (typeof STS_YEARS)[number];

/** A year's folder: <dataDir>/sts/STS12 for sts12. */
export function stsYearDir(year: StsYear, dataDir: string | undefined): string {
  return join(resolveDataDir(dataDir), "sts", year.toUpperCase());
}

/**
 * The subsets of a year's folder: every STS.input.NAME.txt (or STSYYYY.input.NAME.txt, as STS16 ships) that
 * has its gold file of the same prefix, sorted by name.
 */
export function stsSubsets(dir: string): { name: string; input: string; gs: string }[] {
  if (!existsSync(dir)) return [];
  const out: { name: string; input: string; gs: string }[] = [];
  for (const f of readdirSync(dir).sort()) {
    const m = /^(STS(?:\d{4})?)\.input\.(.+)\.txt$/.exec(f);
    if (!m) continue;
    const gs = join(dir, `${m[1]}.gs.${m[2]}.txt`);
    if (existsSync(gs)) out.push({ name: m[2], input: join(dir, f), gs });
  }
  return out;
}

/** The split id of a year's pooled subsets in metrics.json, e.g. "sts12:all". */
const yearSplit = (year: StsYear) => `${year}:all`;

async function evaluateYear(ctx: TaskContext, year: StsYear): Promise<StsYearResult | null> {
  const dir = stsYearDir(year, ctx.dataDir);
  const subsets = stsSubsets(dir);
  if (subsets.length === 0) {
    skip(
      ctx,
      "sts12-16",
      yearSplit(year),
      `${year}: no STS.input.NAME.txt with its STS.gs.NAME.txt (nor STS2016.input / STS2016.gs) in ${dir} (SentEval's layout: sts/${year.toUpperCase()}/)`,
    );
    return null;
  }
  const records: PairRecord[] = [];
  const ranges: { name: string; start: number; end: number }[] = [];
  for (const s of subsets) {
    const start = records.length;
    for await (const r of readStsInputGs(s.input, s.gs)) {
      if (ctx.limit !== undefined && records.length - start >= ctx.limit) break;
      records.push(r);
    }
    ranges.push({ name: s.name, start, end: records.length });
  }
  if (records.length < 2) {
    skip(ctx, "sts12-16", yearSplit(year), `${year}: ${records.length} scored pair(s) in ${dir}; a correlation needs at least 2`);
    return null;
  }
  const all = await similarity(ctx, records);
  const subsetScores: StsYearResult["subsets"] = {};
  for (const r of ranges) {
    const n = r.end - r.start;
    subsetScores[r.name] =
      n < 2
        ? { items: n, spearman: Number.NaN, pearson: Number.NaN }
        : { items: n, ...correlations(all.cosines.subarray(r.start, r.end), all.gold.slice(r.start, r.end)) };
  }
  const seen = await seenPairs(ctx, records, all.cosines, all.gold);
  const base = entryBase(ctx, yearSplit(year), records.length);
  const share =
    seen.pairs > 0 ? ` (${Math.round(seen.share * 100)}% of the pairs trained on; unseen: ${seen.unseen.spearman.toFixed(4)} on ${seen.unseen.items})` : "";
  ctx.log(
    `${year} (${subsets.length} subsets pooled): spearman ${all.spearman.toFixed(4)} (tf-idf ${all.baseline.spearman.toFixed(4)}) on ${records.length} pairs${share}`,
  );
  return {
    ...base,
    supervised: base.supervised || seen.pairs > 0,
    spearman: all.spearman,
    pearson: all.pearson,
    baseline: { tfidf: all.baseline },
    subsets: subsetScores,
    seen,
  };
}

/** How many of the pairs the run trained on, and the correlation over the others. */
async function seenPairs(
  ctx: TaskContext,
  records: readonly PairRecord[],
  cosines: Float32Array | Float64Array,
  gold: readonly number[],
): Promise<StsYearResult["seen"]> {
  const trained = await ctx.trainedPairs();
  const unseen = records.flatMap((r, i) => (trained.keys.has(pairKey(r.s1, r.s2)) ? [] : [i]));
  const pairs = records.length - unseen.length;
  const corr =
    unseen.length >= 2
      ? correlations(
          Float64Array.from(unseen, (i) => cosines[i]),
          unseen.map((i) => gold[i]),
        )
      : { spearman: Number.NaN, pearson: Number.NaN };
  return { pairs, share: pairs / records.length, unseen: { items: unseen.length, ...corr }, ...(trained.unread.length > 0 ? { unread: trained.unread } : {}) };
}

export const sts12to16Task: EvalTask = {
  name: "sts12-16",
  describe: "SentEval's STS12-STS16: Spearman of cosine per year (subsets pooled) and their mean",
  splits: STS_YEARS.map(yearSplit),
  lookFor: (dataDir) =>
    STS_YEARS.map((y) => ({ what: `${yearSplit(y)} (${stsYearDir(y, dataDir)}/STS.input.*.txt)`, present: stsSubsets(stsYearDir(y, dataDir)).length > 0 })),
  async run(ctx: TaskContext): Promise<TaskOutput> {
    const out: TaskOutput = { entries: {} };
    const years: StsYear[] = [];
    for (const year of STS_YEARS) {
      const r = await evaluateYear(ctx, year);
      if (!r) continue;
      out.entries[year] = r;
      years.push(year);
    }
    if (years.length > 0) {
      const results = years.map((y) => out.entries[y]!);
      out.entries.sts12_16 = {
        split: `${years[0]}..${years[years.length - 1]}`,
        items: results.reduce((a, r) => a + r.items, 0),
        supervised: results.some((r) => r.supervised),
        mean: results.reduce((a, r) => a + r.spearman, 0) / results.length,
        years,
      };
    }
    return out;
  },
  rows(m) {
    const rows: MetricRow[] = [];
    const add = rowAdder(rows);
    for (const year of STS_YEARS) {
      const r = m[year];
      if (!r) continue;
      // older metrics.json files have no `seen`
      add(`${year}.spearman`, r, r.spearman, r.baseline.tfidf.spearman, true, r.seen?.share);
      if (r.seen && r.seen.pairs > 0) add(`${year}.spearman_unseen`, { ...r, items: r.seen.unseen.items, supervised: false }, r.seen.unseen.spearman);
    }
    if (m.sts12_16) add("sts12_16.mean", m.sts12_16, m.sts12_16.mean);
    return rows;
  },
};
