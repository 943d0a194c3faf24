/**
 * `init: { from: ... }` (and `--init`): the first stage starts from pretrained weights instead of random
 * ones. The source is one of
 *
 *   RUN                    a run under runs/ (its final checkpoint and vocab.json)
 *   FILE                   a bridge checkpoint (vocabulary: import.json beside it, or its run's vocab.json)
 *   DIR                    a `bridge import fastai --out DIR` folder (import.json + model.pt) or a run folder
 *   fastai:wt103-fwd|bwd   fastai's WikiText-103 LMs, fetched by `bridge data fetch wt103-fwd` into the data
 *                          dir and converted once into the pretrained-model cache (ts/run/modelCache.ts)
 *   pretrained:NAME        a pretraining config's LM from that cache (ts/commands/train.ts builds it first)
 *
 * Vocabulary matching is ULMFiT's: a word of the run's vocabulary that the source knows keeps its
 * embedding row (and LM decoder bias); a new word starts from the mean row. A source of another model.arch
 * (awd_lstm | sha_rnn) is refused before anything is built or trained (`assertInitArch`: the source run's
 * run.json, an import's import.json, a pretraining config's model.arch); the backend's `init_from` also refuses a
 * source whose arch, sizes (emb_sz, n_hid, n_layers) or direction differ, naming them.
 *
 * A model.dual_lm model (a forward and a backward LM's encoders) takes `init: { from: FORWARD, backward: BACKWARD }`:
 * each source is resolved as above and matched onto the run's vocabulary on its own; a source of the wrong
 * direction (a forward LM given as `backward`) is refused, naming it. A dual_lm run alone as `from` gives both.
 *
 * `init: { wordVectors: FILE }` starts only the embedding: each word of the run's vocabulary that the file knows
 * (as it is, else lowercased) takes its vector (backend op init_word_vectors: mapped into the embedding's width,
 * scaled to the random rows' norm); everything else keeps its random weights. FILE is relative to the data dir.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { BackendError } from "../backend/client.js";
import type { InitFromResult, InitFromSourceResult, OpArgs, OpCaller, OpName, TypedBackend } from "../backend/ops.js";
import type { JsonObject } from "../backend/protocol.js";
import { archOf } from "../config/schema.js";
import type { Arch } from "../core/archs.js";
import { writeFileAtomic } from "../core/atomic.js";
import { type Tensors, tensor } from "../core/tensor.js";
import { MODEL_DOWNLOADS, resolveDataDir } from "../data/datasets.js";
import { readWordVectors } from "../data/readers/wordVectors.js";
import { SPECIAL_TOKENS } from "../data/tokenize.js";
import { OOV_BUCKET_PREFIX, Vocab } from "../data/vocab.js";
import { IMPORT_CHECKPOINT, IMPORT_FILE, type ImportManifest, importProblem, readImport as readImportFile } from "../run/importManifest.js";
import { readManifest, runPaths } from "../run/manifest.js";
import { modelCacheDir } from "../run/modelCache.js";

export const FASTAI_MODELS = ["wt103-fwd", "wt103-bwd"] as const;

export class InitError extends Error {
  override name = "InitError";
}

/** A pretrained model to start from: its checkpoint and its tokens by id. */
export interface InitSource {
  from: string;
  checkpoint: string;
  itos: readonly string[];
}

/** What one pretrained source gave the model. */
export type InitSourceReport = {
  from: string;
  checkpoint: string;
  /** Rows of the run's vocabulary taken from the source, words that started from the mean row, and out-of-vocabulary
   * buckets the source lacks (each keeps its own random row, so that unseen words stay apart). */
  copied: number;
  new: number;
  buckets: number;
  loaded: number;
  skipped: string[];
  source: InitFromResult["source"];
};

export type InitReport = InitSourceReport & {
  /** A model.dual_lm model: what its backward encoder took (from init.backward, or the dual_lm source's). */
  backward?: InitSourceReport;
};

export interface InitOptions {
  runsDir: string;
  dataDir?: string;
  log?: (line: string) => void;
}

/**
 * The source's id of each word of `vocab`, -1 where the source lacks it (the row starts from the source's mean
 * row), -2 for an out-of-vocabulary bucket the source lacks (it keeps the new model's random row, so that buckets
 * stay apart).
 */
export function vocabMap(sourceItos: readonly string[], vocab: Vocab): Int32Array {
  const ids = new Map<string, number>();
  sourceItos.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  // xxoovK means "hash mod N is K": a source with another bucket count N means other words by it
  const first = sourceItos.lastIndexOf(`${OOV_BUCKET_PREFIX}0`);
  const sourceBuckets = first >= 0 && sourceItos.slice(first).every((t, k) => t === `${OOV_BUCKET_PREFIX}${k}`) ? sourceItos.length - first : 0;
  return Int32Array.from(vocab.itos, (t, i) => {
    if (vocab.isBucket(i)) return sourceBuckets === vocab.oovBuckets ? (ids.get(t) ?? -2) : -2;
    return ids.get(t) ?? -1;
  });
}

/** An import folder's manifest; an InitError naming the file when it cannot be used. */
function readImport(dir: string): ImportManifest {
  try {
    return readImportFile(dir);
  } catch (e) {
    throw new InitError((e as Error).message);
  }
}

/** Converts fastai weights + vocabulary (backend op import_fastai) into `out`: model.pt and import.json. */
export async function importFastai(backend: OpCaller, opts: { weights: string; vocab: string; out: string; backwards: boolean }): Promise<ImportManifest> {
  const out = resolve(opts.out);
  await mkdir(out, { recursive: true });
  const weights = resolve(opts.weights);
  const vocab = resolve(opts.vocab);
  const r = (await backend.call("import_fastai", { weights, vocab, out: join(out, IMPORT_CHECKPOINT), backwards: opts.backwards })).result;
  const manifest: ImportManifest = {
    format: "bridge-import",
    version: 1,
    source: "fastai",
    weights,
    vocab,
    direction: opts.backwards ? "backward" : "forward",
    checkpoint: IMPORT_CHECKPOINT,
    config: r.config,
    itos: r.itos,
  };
  await writeFileAtomic(join(out, IMPORT_FILE), `${JSON.stringify(manifest)}\n`);
  return manifest;
}

/** The one file with extension `ext` in `dir` (fastai's own loader globs *.pth / *.pkl the same way). */
function onlyFile(dir: string, ext: string): string {
  const found = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(ext)) : [];
  if (found.length !== 1) throw new InitError(`${dir}: expected one *${ext} file, found ${found.length ? found.join(", ") : "none"}`);
  return join(dir, found[0]);
}

/** Where a source named by `from` is, found without a backend: so that a wrong name fails before a run is created. */
type LocatedSource =
  | { kind: "fastai"; name: string; cache: string; fetched: string }
  | { kind: "import"; dir: string }
  | { kind: "run"; dir: string }
  | { kind: "file"; path: string };

/** Finds `from` (see the top of this file) or throws an InitError naming what is missing. Reads no weights. */
export function locateInitSource(from: string, opts: Pick<InitOptions, "runsDir" | "dataDir">): LocatedSource {
  if (from.startsWith("fastai:")) {
    const name = from.slice("fastai:".length);
    if (!(FASTAI_MODELS as readonly string[]).includes(name)) {
      throw new InitError(`init.from fastai:${name}: unknown fastai model; known: ${FASTAI_MODELS.map((m) => `fastai:${m}`).join(", ")}`);
    }
    const cache = join(modelCacheDir(), `fastai-${name}`);
    const fetched = join(resolveDataDir(opts.dataDir), MODEL_DOWNLOADS[name].dir);
    if (!existsSync(join(cache, IMPORT_FILE)) && !existsSync(fetched)) {
      throw new InitError(
        `init.from fastai:${name}: not in ${dirname(fetched)}; download it with \`npx bridge data fetch ${name}\` (or point --data-dir at a folder holding ${basename(fetched)}/)`,
      );
    }
    return { kind: "fastai", name, cache, fetched };
  }
  const path = resolve(from);
  if (existsSync(join(path, IMPORT_FILE))) return { kind: "import", dir: path };
  if (existsSync(join(path, "run.json"))) return finishedRun(path, from);
  if (existsSync(path) && statSync(path).isFile()) {
    if (!looksLikeTorchFile(path))
      throw new InitError(`init.from ${from}: ${path} is not a checkpoint (not a torch archive); give a run, a checkpoint file, or pretrained:NAME`);
    return { kind: "file", path };
  }
  if (/^[A-Za-z0-9._-]+$/.test(from) && existsSync(join(opts.runsDir, from, "run.json"))) return finishedRun(join(opts.runsDir, from), from);
  throw new InitError(
    `init.from ${JSON.stringify(from)}: not a run in ${opts.runsDir}, a checkpoint file, an import folder or fastai:${FASTAI_MODELS.join("|fastai:")}`,
  );
}

/** A source's architecture and the file it was read from. */
export interface SourceArch {
  arch: Arch;
  where: string;
}

/**
 * The arch of the model `from` names (see the top of this file), read without a backend or any weights: a run's
 * run.json, an import's import.json (fastai's are AWD-LSTMs), a checkpoint file's run or import folder; null for a
 * checkpoint with neither (the backend's init_from still compares). pretrained:NAME is not located here: see
 * pretrainingArch.
 */
export function sourceArch(from: string, opts: Pick<InitOptions, "runsDir" | "dataDir">): SourceArch | null {
  // fastai's are AWD-LSTMs whether fetched or not: a mismatch is refused before asking for a download
  if ((FASTAI_MODELS as readonly string[]).some((m) => from === `fastai:${m}`)) return { arch: "awd_lstm", where: `${from} (an AWD-LSTM)` };
  const at = locateInitSource(from, opts);
  const ofRun = (dir: string): SourceArch => {
    const paths = runPaths(basename(dir), dirname(dir));
    return { arch: archOf(readManifest(paths).model), where: paths.manifest };
  };
  switch (at.kind) {
    case "fastai":
      return { arch: "awd_lstm", where: `fastai:${at.name} (an AWD-LSTM)` }; // not reached: answered above
    case "import":
      return { arch: archOf(readImport(at.dir).config), where: join(at.dir, IMPORT_FILE) };
    case "run":
      return ofRun(at.dir);
    case "file": {
      const dir = dirname(at.path);
      if (existsSync(join(dir, IMPORT_FILE))) return { arch: archOf(readImport(dir).config), where: join(dir, IMPORT_FILE) };
      return existsSync(join(dirname(dir), "run.json")) ? ofRun(dirname(dir)) : null;
    }
  }
}

/** Refuses a source of another arch than the run's model, naming both and where the source's was read. */
export function assertInitArch(model: { arch?: unknown }, from: string, source: SourceArch | null): void {
  const own = archOf(model);
  if (source === null || source.arch === own) return;
  throw new InitError(
    `init.from ${from}: arch ${source.arch} vs ${own} (the source's, from ${source.where}, vs this run's model.arch${model.arch === undefined ? ", absent: awd_lstm" : ""}): an encoder starts only from one of its own architecture; set model.arch: ${source.arch} or start from a ${own} model`,
  );
}

function finishedRun(dir: string, from: string): LocatedSource {
  const name = basename(dir);
  if (readManifest(runPaths(name, dirname(dir))).finalCheckpoint === null)
    throw new InitError(`init.from ${from}: run ${name} has not finished a stage yet (no final checkpoint)`);
  return { kind: "run", dir };
}

/** Resolves `from` (see the top of this file) to a checkpoint and its vocabulary; fastai sources are converted here. */
export async function resolveInitSource(from: string, backend: OpCaller, opts: InitOptions): Promise<InitSource> {
  const at = locateInitSource(from, opts);
  switch (at.kind) {
    case "fastai": {
      // converted on first use into the model cache, as fastai-NAME
      const converted = existsSync(join(at.cache, IMPORT_FILE));
      const problem = converted ? importProblem(at.cache) : null;
      // a conversion cut short or edited is done again from the fetched files, not loaded
      if (!converted || (problem !== null && existsSync(at.fetched))) {
        opts.log?.(
          `init: converting fastai ${at.name} from ${at.fetched} into ${at.cache}` +
            (problem === null ? "" : ` again (the converted one cannot be used: ${problem})`),
        );
        await importFastai(backend, {
          weights: onlyFile(at.fetched, ".pth"),
          vocab: onlyFile(at.fetched, ".pkl"),
          out: at.cache,
          backwards: at.name.endsWith("-bwd"),
        });
      }
      const m = readImport(at.cache);
      return { from, checkpoint: join(at.cache, m.checkpoint), itos: m.itos };
    }
    case "import": {
      const m = readImport(at.dir);
      return { from, checkpoint: join(at.dir, m.checkpoint), itos: m.itos };
    }
    case "run": {
      const paths = runPaths(basename(at.dir), dirname(at.dir));
      return { from, checkpoint: join(paths.dir, readManifest(paths).finalCheckpoint!), itos: (await Vocab.load(paths.vocab)).itos };
    }
    case "file": {
      // a checkpoint file: an import folder's, or one of a run's checkpoints/ (its vocab.json one level up)
      const dir = dirname(at.path);
      if (existsSync(join(dir, IMPORT_FILE))) return { from, checkpoint: at.path, itos: readImport(dir).itos };
      const runVocab = join(dirname(dir), "vocab.json");
      if (existsSync(runVocab)) return { from, checkpoint: at.path, itos: (await Vocab.load(runVocab)).itos };
      throw new InitError(`init.from ${from}: no vocabulary for this checkpoint (neither ${join(dir, IMPORT_FILE)} nor ${runVocab})`);
    }
  }
}

/** Loads the source into the model the backend just built, its vocabulary matched onto `vocab`; with `backward`
 * (a model.dual_lm model), the source into its forward encoder and `backward` into its backward one. */
export async function applyInit(backend: OpCaller, source: InitSource, vocab: Vocab, backward?: InitSource): Promise<InitReport> {
  const map = vocabMap(source.itos, vocab);
  const tensors: Tensors = { vocab_map: tensor("int32", [map.length], map) };
  if (backward) {
    const bwdMap = vocabMap(backward.itos, vocab);
    tensors.backward_vocab_map = tensor("int32", [bwdMap.length], bwdMap);
  }
  const r = (await backend.call("init_from", { path: source.checkpoint, ...(backward ? { backward_path: backward.checkpoint } : {}) }, tensors)).result;
  const report = (s: InitSource, h: InitFromSourceResult): InitSourceReport => ({
    from: s.from,
    checkpoint: s.checkpoint,
    copied: h.copied,
    new: h.new,
    buckets: h.buckets,
    loaded: h.loaded,
    skipped: h.skipped,
    source: h.source,
  });
  return { ...report(source, r), ...(r.backward ? { backward: report(backward ?? source, r.backward) } : {}) };
}

/** What init.wordVectors gave the embedding. */
export interface WordVectorsReport {
  path: string;
  /** Rows of the run's vocabulary that took a pretrained vector, of `of`. */
  copied: number;
  of: number;
  dim: number;
  embSz: number;
  /** Words in the file. */
  fileWords: number;
}

/** The word vectors file init.wordVectors names: absolute, or relative to the data dir. */
export function wordVectorsPath(file: string, dataDir?: string): string {
  const path = isAbsolute(file) ? file : join(resolveDataDir(dataDir), file);
  if (!existsSync(path)) throw new InitError(`init.wordVectors ${file}: no such file (${path}; a relative path is read from the data dir)`);
  if (statSync(path).isDirectory()) throw new InitError(`init.wordVectors ${file}: a folder (${path}); give the vectors file`);
  return path;
}

/** Puts the file's vectors into the embedding rows of the words of `vocab` it knows (exact word, else lowercased). */
export async function applyWordVectors(backend: OpCaller, path: string, vocab: Vocab, seed: number): Promise<WordVectorsReport> {
  const special = new Set<string>(SPECIAL_TOKENS);
  const words = vocab.itos.map((w, i) => (special.has(w) || vocab.isBucket(i) ? null : w));
  const wanted = new Set<string>();
  for (const w of words) if (w !== null) wanted.add(w).add(w.toLowerCase());
  const wv = await readWordVectors(path, wanted);
  const vectors = new Float32Array(vocab.size * wv.dim);
  const known = new Uint8Array(vocab.size);
  words.forEach((w, i) => {
    const v = w === null ? undefined : (wv.vectors.get(w) ?? wv.vectors.get(w.toLowerCase()));
    if (v === undefined) return;
    vectors.set(v, i * wv.dim);
    known[i] = 1;
  });
  if (!known.includes(1)) {
    throw new InitError(
      `init.wordVectors ${path}: none of the run's ${vocab.size} words has a vector among its ${wv.total} (a file for another language, or another tokenisation?)`,
    );
  }
  const tensors: Tensors = { vectors: tensor("float32", [vocab.size, wv.dim], vectors), known: tensor("uint8", [vocab.size], known) };
  const r = (
    await backend.call("init_word_vectors", { seed }, tensors).catch((e: unknown) => {
      // the backend's refusal (vectors wider than the embedding) is about this file: named as the config names it
      throw e instanceof BackendError && e.code === "bad_args" ? new InitError(`init.wordVectors ${path}: ${e.detail}`) : e;
    })
  ).result;
  return { path, copied: r.copied, of: vocab.size, dim: r.dim, embSz: r.emb_sz, fileWords: wv.total };
}

/** Whether the file starts as torch.save writes one: a zip archive ("PK"), or a legacy pickle (0x80). */
function looksLikeTorchFile(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(2);
    const n = readSync(fd, head, 0, 2, 0);
    return (n === 2 && head.toString("latin1") === "PK") || (n >= 1 && head[0] === 0x80);
  } finally {
    closeSync(fd);
  }
}

/**
 * The backend, with `init` run right after its first `build` (the first stage's model) and before any
 * other call: the training loop stays as it is, and a resumed run, whose first stage already has a
 * checkpoint, is not wrapped at all.
 */
export function initAfterFirstBuild(backend: TypedBackend, init: () => Promise<void>): TypedBackend {
  let pending = true;
  return {
    async call<K extends OpName>(op: K, args?: OpArgs<K>, tensors?: Tensors) {
      const reply = await backend.call(op, args, tensors);
      if (op === "build" && pending) {
        pending = false;
        await init();
      }
      return reply;
    },
    close: () => backend.close(),
  };
}

/**
 * The training loop's backend, wrapped so that the run's `init` (if any) loads right after the first stage's
 * build; as it is when the config has none or the first stage is already under way (a resume from its checkpoint).
 */
export function withInit(
  backend: TypedBackend,
  ctx: {
    init: { from?: string; backward?: string; wordVectors?: string } | null;
    seed: number;
    firstStageFresh: boolean;
    vocab: Vocab;
    note: (line: string) => void;
    record: (event: JsonObject) => void;
  } & InitOptions,
): TypedBackend {
  const { init } = ctx;
  if (init === null || !ctx.firstStageFresh) return backend;
  if (init.wordVectors !== undefined) {
    const path = wordVectorsPath(init.wordVectors, ctx.dataDir); // a missing file fails before the backend starts work
    return initAfterFirstBuild(backend, async () => {
      const r = await applyWordVectors(backend, path, ctx.vocab, ctx.seed);
      ctx.note(
        `init: word vectors ${r.path}: ${r.copied} of ${r.of} embedding rows (${r.dim}-d vectors into the ${r.embSz}-d embedding; ${r.fileWords} words in the file)`,
      );
      ctx.record({ type: "init", wordVectors: r.path, copied: r.copied, of: r.of, dim: r.dim, emb_sz: r.embSz, file_words: r.fileWords });
    });
  }
  const from = init.from;
  if (from === undefined) return backend;
  return initAfterFirstBuild(backend, async () => {
    const source = await resolveInitSource(from, backend, { ...ctx, log: ctx.note });
    const backward = init.backward === undefined ? undefined : await resolveInitSource(init.backward, backend, { ...ctx, log: ctx.note });
    const r = await applyInit(backend, source, ctx.vocab, backward);
    const said = (h: InitSourceReport, role: string) =>
      `init${role}: ${h.from}: ${h.copied} of ${ctx.vocab.size} embedding rows copied, ${h.new} new words (the mean row)${h.buckets ? `, ${h.buckets} out-of-vocabulary buckets (their own random rows)` : ""}; ${h.loaded} tensors loaded${h.skipped.length ? `, not loaded: ${h.skipped.join(", ")}` : ""}`;
    ctx.note(said(r, r.backward ? " (forward encoder)" : ""));
    if (r.backward) ctx.note(said(r.backward, " (backward encoder)"));
    ctx.record({ type: "init", ...r });
  });
}
