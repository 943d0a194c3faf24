/**
 * Where `bridge data fetch` gets each dataset: the official URLs, the archives' sha256 where a
 * published or verified one is known (null: none known here; the download is then reported as
 * unverified, and the zip CRCs are still checked), and how members map into the official layout.
 */

export type ArchiveFormat = "zip" | "tar.gz";

export interface ArchiveSource {
  url: string;
  /** Lower-case hex sha256 of the archive, or null when none is known. */
  sha256: string | null;
  format: ArchiveFormat;
  /** Only members under this prefix are extracted, with the prefix removed ("" = all). */
  stripPrefix: string;
}

export interface FetchSource {
  name: string;
  /** Folder created under the data dir (the official layout's top folder). */
  dir: string;
  archives: ArchiveSource[];
  /** Files (relative to dir) that must be there afterwards. */
  expect: string[];
  licence: string;
}

export const FETCH_SOURCES: Record<string, FetchSource> = {
  snli: {
    name: "snli",
    dir: "snli_1.0",
    archives: [{ url: "https://nlp.stanford.edu/projects/snli/snli_1.0.zip", sha256: null, format: "zip", stripPrefix: "snli_1.0/" }],
    expect: ["snli_1.0_train.jsonl", "snli_1.0_dev.jsonl", "snli_1.0_test.jsonl"],
    licence: "CC BY-SA 4.0",
  },
  multinli: {
    name: "multinli",
    dir: "multinli_1.0",
    archives: [{ url: "https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip", sha256: null, format: "zip", stripPrefix: "multinli_1.0/" }],
    expect: ["multinli_1.0_train.jsonl", "multinli_1.0_dev_matched.jsonl", "multinli_1.0_dev_mismatched.jsonl"],
    licence: "mostly OANC / CC BY-SA 3.0 (see the corpus paper)",
  },
  sick: {
    name: "sick",
    dir: "sick",
    archives: ["sick_train", "sick_trial", "sick_test_annotated"].map((a) => ({
      url: `https://alt.qcri.org/semeval2014/task1/data/uploads/${a}.zip`,
      sha256: null,
      format: "zip" as const,
      stripPrefix: "",
    })),
    expect: ["SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"],
    licence: "CC BY-NC-SA 3.0 (research use only)",
  },
  stsb: {
    name: "stsb",
    dir: "stsbenchmark",
    archives: [{ url: "https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz", sha256: null, format: "tar.gz", stripPrefix: "stsbenchmark/" }],
    expect: ["sts-train.csv", "sts-dev.csv", "sts-test.csv"],
    licence: "see stsbenchmark/LICENSE.txt (per-source licences)",
  },
  "wikitext-2": {
    name: "wikitext-2",
    dir: "wikitext-2",
    archives: [{ url: "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip", sha256: null, format: "zip", stripPrefix: "wikitext-2/" }],
    expect: ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"],
    licence: "CC BY-SA 3.0",
  },
  "wikitext-103": {
    name: "wikitext-103",
    dir: "wikitext-103",
    archives: [{ url: "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip", sha256: null, format: "zip", stripPrefix: "wikitext-103/" }],
    expect: ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"],
    licence: "CC BY-SA 3.0",
  },
};
