/** Paraphrase groups: Multi30K task 2's caption groups (image, caption1..captionK), one group a line. */
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
