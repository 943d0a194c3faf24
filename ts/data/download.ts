/**
 * `bridge data fetch`: download each archive (or plain file) of a dataset to a temp name, verify it
 * (against its published SHA-1 or SHA-256; where none is published, against the sha256 recorded at
 * its first download, in the user cache's checksums.json), extract or save it into a staging folder,
 * assemble the layout's files where the dataset says how, check the expected files are there, and
 * only then rename the staging folder into the data dir. Any failure removes the temp folder: nothing half-written
 * is left, and an earlier good copy stays as it was until the new one is complete.
 */
import { createHash } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { writeFileAtomic } from "../core/atomic.js";
import { unpack } from "./archive.js";
import {
  type ArchiveSource,
  DATASETS,
  type DownloadSource,
  defaultDataDir,
  fetchableDatasets,
  MODEL_DOWNLOADS,
  type SplitRef,
  splitExists,
} from "./datasets.js";
import { DataError } from "./errors.js";

/** A dataset's download, with the name it is fetched under. */
export type FetchSource = DownloadSource & { name: string };

export interface FetchOptions {
  dataDir: string;
  force?: boolean;
  /** Draw a progress bar on stderr. */
  progress?: boolean;
  /** Messages for the user (one line each). */
  log?: (line: string) => void;
  /** Attempts per archive for transient failures (network errors, 5xx, truncated bodies). Default 4. */
  attempts?: number;
  /** First retry delay in ms, doubled each time. Default 2000. */
  retryDelayMs?: number;
  /** The sha256 of archives without a published checksum, recorded at first download (default: checksumStorePath()). */
  checksumStore?: string;
}

/** Where first-use checksums are kept: beside the default data dir, in the user cache (~/.cache/bridge/checksums.json). */
export function checksumStorePath(): string {
  return join(dirname(defaultDataDir()), "checksums.json");
}

/** How an archive was verified. */
export type Verification = "published sha1" | "published sha256" | "sha256 recorded at its first download" | "first download: sha256 recorded";

export interface FetchResult {
  name: string;
  dir: string;
  /** False when the files were already there and force was not given. */
  fetched: boolean;
  files: string[];
  /** Archives checked against nothing yet: no published checksum and this was their first download (their sha256 is now recorded). */
  unverified: string[];
  /** How each archive downloaded now was verified, by URL. */
  verified: Record<string, Verification>;
}

export async function fetchDataset(opts: FetchOptions & { name: string }): Promise<FetchResult> {
  const download = Object.hasOwn(DATASETS, opts.name)
    ? DATASETS[opts.name].download
    : Object.hasOwn(MODEL_DOWNLOADS, opts.name)
      ? MODEL_DOWNLOADS[opts.name]
      : undefined;
  if (download === undefined) {
    throw new DataError(`no download for ${JSON.stringify(opts.name)}; fetchable: ${fetchableDatasets().join(", ")}`);
  }
  return fetchSource({ name: opts.name, ...download }, opts);
}

export interface EnsureSplitOptions extends Pick<FetchOptions, "progress" | "log" | "attempts" | "retryDelayMs"> {
  /**
   * Whether a missing split's dataset is downloaded (as fastai's untar_data does on first use):
   * true: into whichever data dir; false: never (offline); undefined: only into the default user
   * cache, never into a folder the user named (--data-dir / BRIDGE_DATA_DIR), which is theirs.
   */
  download?: boolean;
}

/**
 * Makes a split available: true when its file is there, after downloading its dataset where
 * `opts.download` allows and the dataset has a download; false when it is missing and was not
 * downloaded (the caller decides whether that is an error). A failed download is an error.
 */
export async function ensureSplit(ref: SplitRef, opts: EnsureSplitOptions = {}): Promise<boolean> {
  if (splitExists(ref)) return true;
  const download = ref.dataset.download;
  const allowed = opts.download ?? ref.dataDir === defaultDataDir();
  if (download === undefined || !allowed) return false;
  const log = opts.log ?? (() => undefined);
  log(`${ref.id}: not in ${ref.dataDir}; downloading ${ref.dataset.name} (first use; --no-download to refuse)`);
  try {
    await fetchSource({ name: ref.dataset.name, ...download }, { ...opts, dataDir: ref.dataDir, force: true });
  } catch (e) {
    throw new DataError(
      `${ref.id}: not in ${ref.dataDir}, and downloading ${ref.dataset.name} failed: ${(e as Error).message} ` +
        `(point --data-dir / BRIDGE_DATA_DIR at a folder that has it, or pass --no-download to work offline)`,
    );
  }
  if (!splitExists(ref)) throw new DataError(`${ref.id}: downloaded ${ref.dataset.name}, but ${ref.path} is still missing`);
  return true;
}

export async function fetchSource(source: FetchSource, opts: FetchOptions): Promise<FetchResult> {
  const log = opts.log ?? (() => undefined);
  const target = join(opts.dataDir, source.dir);
  if (!opts.force && source.expect.every((f) => existsSync(join(target, f)))) {
    log(`${source.name}: already in ${target} (use --force to fetch again)`);
    return { name: source.name, dir: target, fetched: false, files: source.expect, unverified: [], verified: {} };
  }
  await mkdir(opts.dataDir, { recursive: true });
  const work = await mkdtemp(join(opts.dataDir, `.fetch-${source.name}-`));
  const staging = join(work, "out");
  const unverified: string[] = [];
  const verified: Record<string, Verification> = {};
  try {
    for (const [i, a] of source.archives.entries()) {
      const archive = join(work, `archive-${i}.${a.format}`);
      log(`${source.name}: downloading ${a.url}`);
      const digests = await downloadWithRetries(a, archive, opts, log);
      const how = await verifyArchive(source.name, a, digests, opts.checksumStore ?? checksumStorePath());
      verified[a.url] = how;
      if (how === "first download: sha256 recorded") {
        unverified.push(a.url);
        log(`${source.name}: no published checksum for ${a.url}; its sha256 ${digests.sha256} is recorded, and later downloads must match it`);
      }
      await unpack(archive, a, staging);
      await rm(archive, { force: true });
    }
    if (source.assemble !== undefined) await assemble(source, staging, log);
    const files = await filesUnder(staging);
    const missing = source.expect.filter((f) => !existsSync(join(staging, f)));
    if (missing.length > 0) throw new DataError(`${source.name}: the archive(s) lacked ${missing.join(", ")}; nothing was written`);
    if (existsSync(target)) await rename(target, join(work, "previous"));
    await rename(staging, target);
    log(`${source.name}: ${files.length} file(s) in ${target} (licence: ${source.licence})`);
    return { name: source.name, dir: target, fetched: true, files, unverified, verified };
  } catch (e) {
    // A failed swap must not lose the earlier copy.
    if (!existsSync(target) && existsSync(join(work, "previous"))) await rename(join(work, "previous"), target);
    throw e;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Runs the source's assembly in the staging folder; its failure names the dataset, and nothing is written. */
async function assemble(source: FetchSource, staging: string, log: (line: string) => void): Promise<void> {
  log(`${source.name}: assembling ${source.expect.join(", ")}`);
  try {
    await source.assemble!(staging);
  } catch (e) {
    throw new DataError(`${source.name}: cannot assemble ${source.expect.join(", ")} from the download: ${(e as Error).message}; nothing was written`);
  }
}

/** The regular files under dir, relative to it, sorted ([] when dir was never created: nothing extracted). */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/**
 * Checks an archive's digests against its published checksum, else against the sha256 recorded at its first
 * download (recording it now if this is the first). A mismatch is a DataError: nothing is written.
 */
async function verifyArchive(name: string, a: ArchiveSource, digests: Digests, storePath: string): Promise<Verification> {
  const mismatch = (what: string, expected: string, got: string) =>
    new DataError(`${name}: checksum mismatch for ${a.url}: expected ${what} ${expected}, got ${got}; nothing was written`);
  if (a.checksum !== null) {
    const got = digests[a.checksum.algorithm];
    if (got !== a.checksum.hex.toLowerCase()) throw mismatch(`${a.checksum.algorithm} (published)`, a.checksum.hex, got);
    return a.checksum.algorithm === "sha1" ? "published sha1" : "published sha256";
  }
  const store = await readChecksumStore(storePath);
  const recorded = store[a.url];
  if (recorded !== undefined) {
    if (recorded !== digests.sha256) throw mismatch(`sha256 (recorded at its first download, in ${storePath})`, recorded, digests.sha256);
    return "sha256 recorded at its first download";
  }
  await mkdir(dirname(storePath), { recursive: true });
  await writeFileAtomic(storePath, `${JSON.stringify({ ...store, [a.url]: digests.sha256 }, null, 2)}\n`);
  return "first download: sha256 recorded";
}

async function readChecksumStore(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (
      parsed !== null &&
      typeof parsed === "object" &&
      !Array.isArray(parsed) &&
      Object.values(parsed).every((v) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v))
    ) {
      return parsed as Record<string, string>;
    }
  } catch {
    // named below
  }
  throw new DataError(
    `${path}: not a checksum record (a JSON object of URL -> sha256); fix or delete it (it holds the first-download checksums of unpublished archives)`,
  );
}

interface Digests {
  sha1: string;
  sha256: string;
}

/** Thrown for failures worth another attempt. */
class TransientError extends Error {}

async function downloadWithRetries(a: ArchiveSource, dest: string, opts: FetchOptions, log: (line: string) => void): Promise<Digests> {
  const attempts = opts.attempts ?? 4;
  let delay = opts.retryDelayMs ?? 2000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await downloadOnce(a.url, dest, opts.progress ?? false);
    } catch (e) {
      if (!(e instanceof TransientError)) throw e;
      if (attempt >= attempts) throw new DataError(`download of ${a.url} failed after ${attempts} attempts: ${e.message}`);
      log(`  attempt ${attempt} failed (${e.message}); retrying in ${(delay / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}

/** Streams the body to dest, hashing as it goes; returns its digests. */
async function downloadOnce(url: string, dest: string, progress: boolean): Promise<Digests> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: "follow" });
  } catch (e) {
    throw new TransientError(`cannot connect (${causeOf(e)})`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    const msg = `HTTP ${res.status} ${res.statusText}`;
    if (res.status >= 500 || res.status === 429 || res.status === 408) throw new TransientError(msg);
    throw new DataError(`download of ${url} failed: ${msg}`);
  }
  if (res.body === null) throw new TransientError("empty response");
  const header = res.headers.get("content-length");
  const total = header === null ? null : Number(header);
  const hash = createHash("sha256");
  const hash1 = createHash("sha1");
  const bar = progress ? new ProgressBar(total) : null;
  let bytes = 0;
  const body = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
  body.on("data", (chunk: Buffer) => {
    hash.update(chunk);
    hash1.update(chunk);
    bytes += chunk.length;
    bar?.update(bytes);
  });
  try {
    await pipeline(body, createWriteStream(dest));
  } catch (e) {
    throw new TransientError(`connection lost after ${bytes} bytes${total === null ? "" : ` of ${total}`} (${causeOf(e)})`);
  } finally {
    bar?.done();
  }
  if (total !== null && bytes !== total) throw new TransientError(`truncated: got ${bytes} of ${total} bytes`);
  return { sha1: hash1.digest("hex"), sha256: hash.digest("hex") };
}

function causeOf(e: unknown): string {
  const err = e as { message?: string; cause?: { message?: string; code?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
}

/** A one-line bar on stderr, redrawn at most 10 times a second. */
class ProgressBar {
  private last = 0;
  private readonly start = Date.now();
  constructor(private readonly total: number | null) {}
  update(bytes: number): void {
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    const rate = bytes / 1e6 / Math.max(0.001, (now - this.start) / 1000);
    const width = 30;
    const text =
      this.total && this.total > 0
        ? `[${"#".repeat(Math.round((bytes / this.total) * width)).padEnd(width, ".")}] ${Math.floor((bytes / this.total) * 100)}% ${mb(bytes)}/${mb(this.total)} MB`
        : `${mb(bytes)} MB`;
    process.stderr.write(`\r  ${text} ${rate.toFixed(1)} MB/s   `);
  }
  done(): void {
    process.stderr.write("\n");
  }
}
