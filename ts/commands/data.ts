/** `bridge data inspect NAME:SPLIT` and `bridge data fetch NAME`. */
import type { Writable } from "node:stream";
import { resolveDataDir } from "../data/datasets.js";
import { type FetchResult, fetchDataset } from "../data/download.js";
import type { BadRowPolicy } from "../data/errors.js";
import { formatInspectReport, type InspectReport, inspectSplit } from "../data/inspect.js";

export interface DataInspectOptions {
  /** NAME:SPLIT, e.g. snli:dev. */
  name: string;
  dataDir?: string;
  json?: boolean;
  onBadRow?: BadRowPolicy;
  /** Vocabulary file for the OOV rate (default: built from the dataset's training split). */
  vocab?: string;
  minFreq?: number;
  maxLen?: number;
  /** Where the report goes (default stdout). */
  out?: Writable;
  /** A status line of what is being read and how far (default: when stderr is a terminal). */
  progress?: boolean;
  /** Where that line goes (default stderr). */
  progressOut?: Writable;
}

export async function dataInspect(opts: DataInspectOptions): Promise<InspectReport> {
  for (const [flag, value] of [
    ["--min-freq", opts.minFreq],
    ["--max-len", opts.maxLen],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new Error(`${flag} ${value}: a whole number, 1 or more`);
  }
  if (/:$/.test(opts.name)) throw new Error(`${opts.name}: no split after the colon; give NAME or NAME:SPLIT`);
  if (opts.vocab !== undefined && opts.minFreq !== undefined)
    throw new Error(`--min-freq shapes a vocabulary built from the split; --vocab ${opts.vocab} gives one already built: drop one of them`);
  const status = opts.progressOut ?? process.stderr;
  let shown = "";
  let drawn = 0;
  let width = 0;
  // a large corpus (Wikipedia) takes two long reads: the vocabulary's, then the split's; a line a phase at least
  const onProgress =
    (opts.progress ?? process.stderr.isTTY === true)
      ? (what: string, rows: number) => {
          const now = Date.now();
          if (what === shown && now - drawn < 200) return;
          const line = `${opts.name}: ${what}, ${rows.toLocaleString("en-US")} ${rows === 1 ? "row" : "rows"}`;
          status.write(`\r${line.padEnd(width)}`); // spaces over the rest of a longer line before
          [shown, drawn, width] = [what, now, line.length];
        }
      : undefined;
  let report: InspectReport;
  try {
    report = await inspectSplit({
      name: opts.name,
      dataDir: opts.dataDir,
      onBadRow: opts.onBadRow,
      vocabPath: opts.vocab,
      vocabOptions: opts.minFreq === undefined ? {} : { minFreq: opts.minFreq },
      tokenizer: opts.maxLen === undefined ? {} : { maxLen: opts.maxLen },
      onProgress,
    });
  } catch (e) {
    // the data layer speaks of the config's field; here the cut was --max-len's
    if (opts.maxLen !== undefined && e instanceof Error) e.message = e.message.replaceAll("tokenizer.maxLen", "--max-len");
    throw e;
  } finally {
    if (shown) status.write("\n");
  }
  const out = opts.out ?? process.stdout;
  out.write(opts.json ? `${JSON.stringify(report)}\n` : `${formatInspectReport(report)}\n`);
  return report;
}

export interface DataFetchOptions {
  /** A dataset or model with a download (fetchableDatasets(): snli, multinli, ..., cad, multi30k, wt103-fwd, wt103-bwd). */
  name: string;
  dataDir?: string;
  /** Fetch again even when the files are there. */
  force?: boolean;
  /** Progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

export async function dataFetch(opts: DataFetchOptions): Promise<FetchResult> {
  return fetchDataset({
    name: opts.name,
    dataDir: resolveDataDir(opts.dataDir),
    force: opts.force ?? false,
    progress: opts.progress ?? process.stderr.isTTY === true,
    log: (line) => process.stderr.write(`${line}\n`),
  });
}
