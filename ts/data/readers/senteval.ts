/** SentEval's parallel files: `s1.SPLIT`, `s2.SPLIT`, `labels.SPLIT`, one item per line. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { badRow, DataError, emptyReadStats } from "../errors.js";
import { parseNliLabel, type PairRecord, type ReadOptions } from "../records.js";

export async function* readSentEvalPairs(dir: string, split: string, opts: ReadOptions = {}): AsyncGenerator<PairRecord> {
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  const paths = ["s1", "s2", "labels"].map((p) => join(dir, `${p}.${split}`));
  const [s1s, s2s, labels] = await Promise.all(paths.map(async (p) => lines(await readFile(p, "utf8"))));
  if (s1s.length !== s2s.length || s1s.length !== labels.length) {
    throw new DataError(
      `${dir}: s1.${split}, s2.${split} and labels.${split} must have the same number of lines (found ${s1s.length}, ${s2s.length}, ${labels.length})`,
    );
  }
  for (let i = 0; i < s1s.length; i++) {
    const label = parseNliLabel(labels[i]);
    if (label === undefined) {
      badRow(policy, stats, paths[2], i + 1, `unknown label ${JSON.stringify(labels[i])}`);
      continue;
    }
    stats.records++;
    yield { id: String(i + 1), s1: s1s[i], s2: s2s[i], label, line: i + 1 };
  }
}

function lines(text: string): string[] {
  const out = text.split(/\r?\n/);
  if (out.length > 0 && out[out.length - 1] === "") out.pop();
  return out;
}
