/**
 * The vocabulary: special tokens first (fastai's order), then tokens by descending count, ties in
 * code-point order so that the same counts always give the same ids. Saved as JSON with a
 * fingerprint, sha256 over the UTF-8 of the tokens joined by "\n" (tokens never hold whitespace),
 * i.e. Python: hashlib.sha256("\n".join(itos).encode()).hexdigest(). Checkpoints record it.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../core/atomic.js";
import { DataError } from "./errors.js";
import { PAD, SPECIAL_TOKENS, UNK } from "./tokenize.js";

export interface VocabOptions {
  /** Tokens seen fewer times are left out (fastai's default 3). */
  minFreq: number;
  /** Most tokens kept, special tokens included (fastai's default 60,000); the oovBuckets come on top. */
  maxSize: number;
  /**
   * Rows after the words for words the vocabulary lacks: each unknown word goes to row
   * hash(word) mod oovBuckets instead of xxunk, so two sentences that share a rare word (a name, a
   * number) still share its vector, and two different rare words are no longer the same token. 0: xxunk.
   */
  oovBuckets: number;
}

export const DEFAULT_VOCAB_OPTIONS: VocabOptions = { minFreq: 3, maxSize: 60_000, oovBuckets: 0 };

/** The tokens naming the out-of-vocabulary buckets: xxoov0, xxoov1, ... (after the words, at the end of itos). */
export const OOV_BUCKET_PREFIX = "xxoov";

/** FNV-1a (32-bit) over the token's UTF-16 code units: a stable hash that Python can reproduce. */
export function tokenHash(token: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < token.length; i++) {
    h ^= token.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

interface VocabFile {
  format: "bridge-vocab";
  version: 1;
  fingerprint: string;
  size: number;
  min_freq: number | null;
  max_size: number | null;
  /** Absent in files written before buckets existed: 0. */
  oov_buckets?: number;
  itos: string[];
}

export class Vocab {
  readonly itos: readonly string[];
  readonly fingerprint: string;
  readonly unkId: number;
  readonly padId: number;
  /** How many out-of-vocabulary buckets end itos, and the id of the first (see VocabOptions.oovBuckets). */
  readonly oovBuckets: number;
  readonly firstBucketId: number;
  private readonly stoi: Map<string, number>;

  constructor(
    itos: readonly string[],
    readonly options: VocabOptions | null = null,
  ) {
    const buckets = options?.oovBuckets ?? 0;
    if (!Number.isInteger(buckets) || buckets < 0) throw new RangeError(`vocabulary: oovBuckets must be a whole number >= 0, got ${buckets}`);
    const stoi = new Map<string, number>();
    itos.forEach((tok, i) => {
      if (tok === "" || /\s/u.test(tok)) throw new DataError(`vocabulary: token ${i} ${JSON.stringify(tok)} is empty or holds whitespace`);
      if (stoi.has(tok)) throw new DataError(`vocabulary: token ${JSON.stringify(tok)} appears twice (ids ${stoi.get(tok)} and ${i})`);
      stoi.set(tok, i);
    });
    for (const s of SPECIAL_TOKENS) {
      if (!stoi.has(s)) throw new DataError(`vocabulary: special token ${s} is missing`);
    }
    this.itos = Object.freeze([...itos]);
    this.stoi = stoi;
    this.unkId = stoi.get(UNK)!;
    this.padId = stoi.get(PAD)!;
    this.oovBuckets = buckets;
    this.firstBucketId = itos.length - buckets;
    for (let b = 0; b < buckets; b++) {
      if (itos[this.firstBucketId + b] !== OOV_BUCKET_PREFIX + b) {
        throw new DataError(
          `vocabulary: ${buckets} out-of-vocabulary buckets must end the tokens as ${OOV_BUCKET_PREFIX}0..${OOV_BUCKET_PREFIX}${buckets - 1}; token ${this.firstBucketId + b} is ${JSON.stringify(itos[this.firstBucketId + b])}`,
        );
      }
    }
    this.fingerprint = vocabFingerprint(this.itos);
  }

  get size(): number {
    return this.itos.length;
  }

  /** Id of a token; for an unknown one its bucket's (oovBuckets > 0) or xxunk's. */
  id(token: string): number {
    const id = this.stoi.get(token);
    if (id !== undefined) return id;
    return this.oovBuckets > 0 ? this.firstBucketId + (tokenHash(token) % this.oovBuckets) : this.unkId;
  }

  /** Whether an id is one of the out-of-vocabulary buckets. */
  isBucket(id: number): boolean {
    return id >= this.firstBucketId && id < this.itos.length && this.oovBuckets > 0;
  }

  has(token: string): boolean {
    return this.stoi.has(token);
  }

  /** Builds from token counts gathered over training splits only. */
  static fromCounts(counts: ReadonlyMap<string, number>, opts: Partial<VocabOptions> = {}): Vocab {
    const o = { ...DEFAULT_VOCAB_OPTIONS, ...opts };
    if (!Number.isInteger(o.maxSize) || o.maxSize < SPECIAL_TOKENS.length) {
      throw new RangeError(`vocabulary: maxSize must be at least ${SPECIAL_TOKENS.length} (the special tokens), got ${o.maxSize}`);
    }
    if (!Number.isInteger(o.oovBuckets) || o.oovBuckets < 0) throw new RangeError(`vocabulary: oovBuckets must be a whole number >= 0, got ${o.oovBuckets}`);
    const special = new Set<string>(SPECIAL_TOKENS);
    const bucketName = new RegExp(`^${OOV_BUCKET_PREFIX}\\d+$`, "u");
    const kept = [...counts].filter(([tok, n]) => n >= o.minFreq && !special.has(tok) && !bucketName.test(tok));
    kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const buckets = Array.from({ length: o.oovBuckets }, (_, b) => OOV_BUCKET_PREFIX + b);
    const itos = [...SPECIAL_TOKENS, ...kept.slice(0, o.maxSize - SPECIAL_TOKENS.length).map(([tok]) => tok), ...buckets];
    return new Vocab(itos, o);
  }

  toJSON(): VocabFile {
    return {
      format: "bridge-vocab",
      version: 1,
      fingerprint: this.fingerprint,
      size: this.size,
      min_freq: this.options?.minFreq ?? null,
      max_size: this.options?.maxSize ?? null,
      ...(this.oovBuckets > 0 ? { oov_buckets: this.oovBuckets } : {}),
      itos: [...this.itos],
    };
  }

  async save(path: string): Promise<void> {
    await writeFileAtomic(path, `${JSON.stringify(this.toJSON())}\n`);
  }

  /** Loads a saved vocabulary; a file whose tokens do not hash to its recorded fingerprint is refused. */
  static async load(path: string): Promise<Vocab> {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(path, "utf8"));
    } catch (e) {
      throw new DataError(`${path}: cannot read the vocabulary (${(e as Error).message})`);
    }
    const f = (raw ?? {}) as Partial<VocabFile>; // null is valid JSON, not a vocabulary
    if (typeof raw !== "object" || f.format !== "bridge-vocab" || f.version !== 1 || !Array.isArray(f.itos) || !f.itos.every((t) => typeof t === "string")) {
      throw new DataError(`${path}: not a bridge vocabulary file (format "bridge-vocab", version 1, itos: string[])`);
    }
    const oovBuckets = f.oov_buckets ?? 0;
    if (!Number.isInteger(oovBuckets) || oovBuckets < 0)
      throw new DataError(`${path}: oov_buckets must be a whole number >= 0, got ${JSON.stringify(f.oov_buckets)}`);
    const options =
      typeof f.min_freq === "number" && typeof f.max_size === "number"
        ? { minFreq: f.min_freq, maxSize: f.max_size, oovBuckets }
        : oovBuckets > 0
          ? { ...DEFAULT_VOCAB_OPTIONS, oovBuckets }
          : null;
    let vocab: Vocab;
    try {
      vocab = new Vocab(f.itos, options);
    } catch (e) {
      throw new DataError(`${path}: ${(e as Error).message}`);
    }
    if (vocab.fingerprint !== f.fingerprint) {
      throw new DataError(`${path}: the tokens hash to ${vocab.fingerprint} but the file records ${String(f.fingerprint)}; the file was edited or damaged`);
    }
    return vocab;
  }
}

export function vocabFingerprint(itos: readonly string[]): string {
  return createHash("sha256").update(itos.join("\n"), "utf8").digest("hex");
}

/** Refuses a vocabulary that differs from the one a checkpoint was trained with. */
export function assertVocabMatches(vocab: Vocab, fingerprint: string, size: number): void {
  if (vocab.size !== size || vocab.fingerprint !== fingerprint) {
    throw new DataError(
      `vocabulary mismatch: the checkpoint was trained with ${size} tokens (fingerprint ${fingerprint.slice(0, 12)}…), ` +
        `this vocabulary has ${vocab.size} tokens (fingerprint ${vocab.fingerprint.slice(0, 12)}…). ` +
        `Token ids would mean different words; use the vocabulary saved with the run.`,
    );
  }
}

/** Token counts, for building a vocabulary from training text. */
export class TokenCounter {
  readonly counts = new Map<string, number>();
  add(tokens: readonly string[]): void {
    for (const t of tokens) this.counts.set(t, (this.counts.get(t) ?? 0) + 1);
  }
}
