/** `npx bridge search`: the corpus lines nearest each query (the API's Encoder.search: exact cosine top-k). */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { inputItems } from "../api/embedFile.js";
import { openEncoder } from "../api/encoder.js";

export interface SearchCommandOptions {
  run?: string;
  /** One sentence a line (or a JSONL field); empty lines are skipped, the others keep their line numbers. */
  corpus: string;
  /** Query sentences given on the command line ... */
  query?: string[];
  /** ... or a file of them, one a line (empty lines skipped). */
  queries?: string;
  field?: string;
  topK?: number;
  batchSize?: number;
  device?: string;
  backend?: string;
  keys?: string;
  json?: boolean;
  print?: (line: string) => void;
}

export interface SearchCommandHit {
  /** 1-based line of the corpus file. */
  line: number;
  text: string;
  score: number;
}

async function readTexts(path: string, option: string, field?: string): Promise<{ line: number; text: string }[]> {
  if (!existsSync(path)) throw new Error(`${option} ${path}: no such file (${resolve(path)})`);
  if (statSync(path).isDirectory()) throw new Error(`${option} ${path}: is a folder; give a text file`);
  const out: { line: number; text: string }[] = [];
  for await (const it of inputItems(path, field)) if (it.text.trim() !== "") out.push(it);
  if (out.length === 0) throw new Error(`${option} ${path}: no sentences in it`);
  return out;
}

export async function searchCommand(opts: SearchCommandOptions): Promise<number> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const topK = opts.topK ?? 5;
  if (!Number.isInteger(topK) || topK < 1) throw new Error(`--top-k ${topK}: give a whole number >= 1`);
  // said before the backend starts, in the flag's words (the API would say it as embed's batchSize, seconds later)
  if (opts.batchSize !== undefined && (!Number.isInteger(opts.batchSize) || opts.batchSize < 1))
    throw new Error(`--batch-size ${opts.batchSize}: give a whole number >= 1`);
  const corpus = await readTexts(opts.corpus, "--corpus", opts.field);
  const queries = opts.queries !== undefined ? (await readTexts(opts.queries, "--queries")).map((q) => q.text) : (opts.query ?? []);
  if (queries.length === 0) throw new Error("give --query TEXT (one or more) or --queries FILE");
  const blank = queries.findIndex((q) => q.trim() === "");
  if (blank >= 0)
    throw new Error(
      `${opts.queries !== undefined ? `--queries ${opts.queries}: text ${blank + 1}` : `--query number ${blank + 1}`} is empty; nothing to search for`,
    );
  const run = opts.run ?? "latest";
  await using enc = await openEncoder(run, { device: opts.device, backend: opts.backend, keys: opts.keys, label: `--run ${run}` });
  if (enc.unfinished !== null) console.error(`note: ${enc.unfinished}`);
  const hits = await enc.search(
    queries,
    corpus.map((c) => c.text),
    { topK, batchSize: opts.batchSize },
  );
  const results = queries.map((query, i) => ({
    query,
    hits: hits[i].map((h): SearchCommandHit => ({ line: corpus[h.corpusId].line, text: corpus[h.corpusId].text, score: h.score })),
  }));
  if (opts.json) {
    print(JSON.stringify({ run: enc.run, corpus: opts.corpus, results }, null, 2));
    return 0;
  }
  for (const [i, r] of results.entries()) {
    if (i > 0) print("");
    print(`query: ${r.query}`);
    for (const h of r.hits) print(`  ${h.score.toFixed(4)}  ${opts.corpus}:${h.line}  ${h.text}`);
  }
  return 0;
}
