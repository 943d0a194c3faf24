/**
 * WikiExtractor's output (the tool ULMFiT practitioners run on a Wikipedia dump): a folder tree of
 * `AA/wiki_00`, `AA/wiki_01`, ... files, each holding articles as
 *   <doc id="12" url="https://..." title="Anarchism">
 *   Anarchism                 (the title line)
 *   first paragraph           (one paragraph a line; blank lines between)
 *   </doc>
 * Each article is one record (one language-model document, xxbos first): its title line and
 * paragraphs joined by newlines. Files are read one line at a time and an article is held only until
 * its </doc>, so memory does not grow with the corpus.
 */
import { readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { badRow, countDropped, DataError, emptyReadStats } from "../errors.js";
import { readLines } from "../lines.js";
import type { ReadOptions, TextRecord } from "../records.js";

/** WikiExtractor names its output files wiki_00 .. wiki_99 (wiki_NN.bz2 with --compress). */
const WIKI_FILE = /^wiki_\d+$/;
const DOC_OPEN = /^<doc\s+([^>]*)>\s*$/;
const ATTRIBUTE = /([A-Za-z_]+)="([^"]*)"/g;

/** An article as read: its attributes and where it starts. */
interface OpenDoc {
  id: string;
  title: string;
  line: number;
  paragraphs: string[];
}

/**
 * The files of a WikiExtractor output, in path order: every wiki_NN under `root` (a folder tree), or
 * `root` itself when it is a file. Compressed output is named, not skipped silently.
 */
export async function wikiExtractorFiles(root: string): Promise<string[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(root);
  } catch (e) {
    throw new DataError(
      `${root}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "not found" : (e as Error).message} (a WikiExtractor output folder or file)`,
    );
  }
  if (info.isFile()) return [root];
  const files: string[] = [];
  const compressed: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else if (WIKI_FILE.test(e.name)) files.push(path);
      else if (/^wiki_\d+\.bz2$/.test(e.name)) compressed.push(path);
    }
  };
  await walk(root);
  if (files.length === 0) {
    const hint =
      compressed.length > 0
        ? `; it holds ${compressed.length} compressed file(s) such as ${relative(root, compressed[0])}: run WikiExtractor without --compress, or bunzip2 them`
        : "";
    throw new DataError(`${root}: no WikiExtractor files (wiki_NN) in this folder tree${hint}`);
  }
  return files;
}

/**
 * The articles of a WikiExtractor output (folder tree or one file), in file order. A malformed or
 * unbalanced <doc> tag is a bad row (file:line; the policy decides); an article with no text
 * beyond its title is dropped and counted ("empty article").
 */
export async function* readWikiExtractor(root: string, opts: ReadOptions = {}): AsyncGenerator<TextRecord> {
  const stats = opts.stats ?? emptyReadStats();
  const policy = opts.onBadRow ?? "error";
  for (const file of await wikiExtractorFiles(root)) {
    let doc: OpenDoc | null = null;
    // An article cut short (a new <doc> or the end of the file before </doc>) is a bad row at its <doc>.
    const unclosed = (d: OpenDoc, why: string) =>
      badRow(policy, stats, file, d.line, `article ${JSON.stringify(d.title)} (id ${d.id}) is not closed by </doc> before ${why}`);
    for await (const { text, no } of readLines(file, { onBadRow: opts.onBadRow, stats })) {
      if (text.startsWith("<doc")) {
        if (doc !== null) unclosed(doc, `the <doc> at line ${no}`);
        doc = null;
        const m = DOC_OPEN.exec(text);
        const attrs = m === null ? null : Object.fromEntries([...m[1].matchAll(ATTRIBUTE)].map((a) => [a[1], a[2]]));
        if (attrs === null || attrs.id === undefined || attrs.title === undefined) {
          badRow(policy, stats, file, no, `malformed <doc> tag ${JSON.stringify(text.slice(0, 120))}: expected <doc id=".." url=".." title="..">`);
          continue;
        }
        doc = { id: attrs.id, title: unescapeHtml(attrs.title), line: no, paragraphs: [] };
      } else if (text.trim() === "</doc>") {
        if (doc === null) {
          badRow(policy, stats, file, no, "</doc> without an open <doc>");
          continue;
        }
        const [first, ...rest] = doc.paragraphs;
        // The first line repeats the title; an article with nothing after it has no text to learn from.
        const body = first !== undefined && first === doc.title ? rest : doc.paragraphs;
        if (body.length === 0) countDropped(stats, "empty article");
        else {
          stats.records++;
          yield { text: [doc.title, ...body].join("\n"), line: doc.line, doc: doc.title };
        }
        doc = null;
      } else if (doc !== null) {
        const t = text.trim();
        if (t !== "") doc.paragraphs.push(t);
      } else if (text.trim() !== "") {
        badRow(policy, stats, file, no, "text outside any <doc> ... </doc>");
      }
    }
    if (doc !== null) unclosed(doc, "the end of the file");
  }
}

/** WikiExtractor escapes titles as HTML attributes: &quot; &amp; &lt; &gt; &#39;. */
function unescapeHtml(s: string): string {
  return s.replace(/&(quot|amp|lt|gt|#39|apos);/g, (_, e: string) => ({ quot: '"', amp: "&", lt: "<", gt: ">", "#39": "'", apos: "'" })[e] ?? "");
}
