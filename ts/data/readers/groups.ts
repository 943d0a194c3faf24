/** Paraphrase groups: Multi30K task 2's caption groups (image, caption1..captionK), one group a line; read, and built from the release. */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { badRow, DataError, emptyReadStats } from "../errors.js";
import { readLines } from "../lines.js";
import type { GroupRecord, ReadOptions } from "../records.js";
import { headerIndex } from "./tsv.js";

/** Tab-separated, with a header: an id column (`image`) and caption1, caption2, ... (no quoting: captions hold bare quotes). */
export async function* readCaptionGroups(path: string, opts: ReadOptions = {}): AsyncGenerator<GroupRecord> {
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  let idAt = -1;
  let captionCols: number[] | undefined;
  for await (const { text, no } of readLines(path, { onBadRow: policy, stats })) {
    if (captionCols === undefined) {
      const index = headerIndex(text);
      captionCols = [...index.entries()].filter(([name]) => /^caption\d+$/.test(name)).map(([, i]) => i);
      idAt = index.get("image") ?? -1;
      if (idAt < 0 || captionCols.length < 2)
        throw new DataError(
          `${path}:1: header needs an image column and two or more caption columns (caption1, caption2, ...); found: ${[...index.keys()].join(", ")}`,
        );
      continue;
    }
    if (text.trim() === "") continue;
    const fields = text.split("\t");
    const width = Math.max(idAt, ...captionCols) + 1;
    if (fields.length < width) {
      badRow(policy, stats, path, no, `expected ${width} tab-separated columns, found ${fields.length}`);
      continue;
    }
    const sentences = captionCols.map((c) => fields[c]).filter((c) => c.trim() !== "");
    if (sentences.length < 2) {
      badRow(policy, stats, path, no, `a group needs two or more non-empty captions, found ${sentences.length}`);
      continue;
    }
    stats.records++;
    yield { id: fields[idAt], sentences, line: no };
  }
  if (captionCols === undefined) throw new DataError(`${path}: empty file (no header line)`);
}

/** The files Multi30K task 2 releases for one split: an image list and K caption files, line i of each for image i. */
export interface CaptionRelease {
  /** One image file name a line. */
  images: string;
  /** captions[k]: one caption a line (the (k+1)-th caption of each image). */
  captions: string[];
  /** The group TSV to write. */
  out: string;
}

/**
 * Writes the group TSV (image, caption1..captionK) from a release's files under dir, then removes
 * them (the layout keeps only the TSV). Files of unequal length are an error naming each count;
 * errors name the files relative to dir (the downloader's staging folder, gone afterwards).
 * Empty captions are kept: the reader decides what a group needs.
 */
export async function assembleCaptionGroups(dir: string, release: CaptionRelease): Promise<void> {
  const inputs = [release.images, ...release.captions];
  const columns = await Promise.all(inputs.map((f) => readColumn(join(dir, f))));
  if (columns.some((c) => c.length !== columns[0].length)) {
    throw new DataError(
      `the files disagree in length (lines: ${inputs.map((f, i) => `${f} ${columns[i].length}`).join(", ")}); line i of each must be image i`,
    );
  }
  const blank = columns[0].findIndex((name) => name.trim() === "");
  if (blank >= 0) throw new DataError(`${release.images}:${blank + 1}: empty image name`);
  const header = ["image", ...release.captions.map((_, k) => `caption${k + 1}`)].join("\t");
  const rows = columns[0].map((_, i) => columns.map((c) => c[i]).join("\t"));
  await writeFile(join(dir, release.out), `${[header, ...rows].join("\n")}\n`);
  await Promise.all(inputs.map((f) => rm(join(dir, f))));
}

/** A file's lines (strict UTF-8: a bad byte stops with file:line), a tab inside one turned into a space so it cannot split a column. */
async function readColumn(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const { text } of readLines(path)) out.push(text.replaceAll("\t", " "));
  return out;
}
