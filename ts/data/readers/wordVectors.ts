/**
 * Pretrained word vectors (init.wordVectors): GloVe, word2vec and fastText text files (`word v1 ... vk` a line,
 * separated by spaces or tabs; word2vec's and fastText's first line `COUNT DIM` is skipped), or a JSON object
 * `{word: [v1, ..., vk]}`. Every vector must have the same k finite numbers; a bad one is named by file and line
 * (or word). Only the `wanted` words are kept, so a 400k-word GloVe file costs the memory of the vocabulary's rows.
 */
import { readFile } from "node:fs/promises";
import { DataError } from "../errors.js";
import { readLines } from "../lines.js";

export interface WordVectors {
  /** Numbers per vector. */
  dim: number;
  /** Vectors kept (the wanted words the file has), by word. */
  vectors: Map<string, Float32Array>;
  /** Words the file holds in all. */
  total: number;
}

function parseVector(values: readonly unknown[], where: () => string): Float32Array {
  const v = new Float32Array(values.length);
  values.forEach((x, i) => {
    const n = typeof x === "string" ? Number(x) : x;
    if (typeof n !== "number" || !Number.isFinite(n) || (typeof x === "string" && x.trim() === "")) {
      throw new DataError(`${where()}: component ${i + 1} is not a finite number (${JSON.stringify(x)})`);
    }
    v[i] = n;
  });
  return v;
}

export async function readWordVectors(path: string, wanted?: ReadonlySet<string>): Promise<WordVectors> {
  const vectors = new Map<string, Float32Array>();
  let dim = 0;
  let total = 0;
  const keep = (word: string, values: readonly unknown[], where: () => string) => {
    if (dim === 0) {
      if (values.length === 0) throw new DataError(`${where()}: a word with no numbers after it`);
      dim = values.length;
    } else if (values.length !== dim) {
      throw new DataError(`${where()}: ${values.length} numbers, the vectors before had ${dim}`);
    }
    total++;
    if (wanted === undefined || wanted.has(word)) vectors.set(word, parseVector(values, where));
  };
  if (path.endsWith(".json")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, "utf8"));
    } catch (err) {
      throw new DataError(`${path}: not JSON (${(err as Error).message})`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new DataError(`${path}: expected a JSON object {word: [numbers]}`);
    for (const [word, values] of Object.entries(parsed)) {
      const where = () => `${path}: word ${JSON.stringify(word)}`;
      if (!Array.isArray(values)) throw new DataError(`${where()}: expected an array of numbers`);
      keep(word, values, where);
    }
  } else {
    for await (const { text, no } of readLines(path)) {
      const parts = text.trim().split(/[ \t]+/);
      if (parts.length === 1 && parts[0] === "") continue;
      if (no === 1 && parts.length === 2 && /^\d+$/.test(parts[0]) && /^\d+$/.test(parts[1])) continue; // word2vec / fastText header
      keep(parts[0], parts.slice(1), () => `${path}:${no}`);
    }
  }
  if (total === 0) throw new DataError(`${path}: no word vectors in it`);
  return { dim, vectors, total };
}
