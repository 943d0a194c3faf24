/** Plain text (one item per line) and WikiText `.tokens` files for language modelling. */
import { emptyReadStats } from "../errors.js";
import { readLines } from "../lines.js";
import type { ReadOptions, TextRecord } from "../records.js";

/** Every non-blank line is a record. */
export async function* readPlainText(path: string, opts: ReadOptions = {}): AsyncGenerator<TextRecord> {
  const stats = opts.stats ?? emptyReadStats();
  for await (const { text, no } of readLines(path, { onBadRow: opts.onBadRow, stats })) {
    if (text.trim() === "") continue;
    stats.records++;
    yield { text, line: no };
  }
}

/**
 * WikiText: one paragraph or ` = Heading = ` a line, blank lines between. Headings stay (they are
 * text the model reads); the `@-@`, `@,@`, `@.@` and `<unk>` markers are the tokenizer's business.
 */
export async function* readWikiText(path: string, opts: ReadOptions = {}): AsyncGenerator<TextRecord> {
  const stats = opts.stats ?? emptyReadStats();
  for await (const { text, no } of readLines(path, { onBadRow: opts.onBadRow, stats })) {
    const t = text.trim();
    if (t === "") continue;
    stats.records++;
    yield { text: t, line: no };
  }
}
