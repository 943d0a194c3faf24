import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Checksum, DATASETS, type DownloadSource, parseSplitRef } from "../../ts/data/datasets.js";
import { type FetchSource, fetchSource } from "../../ts/data/download.js";
import { emptyReadStats } from "../../ts/data/errors.js";
import { makeTarGz, makeZip, tempDir } from "./helpers.js";

const zip = makeZip({
  "snli_1.0/snli_1.0_train.jsonl": '{"gold_label":"neutral","sentence1":"a","sentence2":"b"}\n',
  "snli_1.0/snli_1.0_dev.jsonl": "dev\n",
  "__MACOSX/snli_1.0/._snli_1.0_dev.jsonl": "junk",
  "snli_1.0/README.txt": "readme",
});
/** Another file in the same layout: what a server handing out a changed or tampered archive sends. */
const otherZip = makeZip({ "snli_1.0/snli_1.0_train.jsonl": "tampered\n", "snli_1.0/snli_1.0_dev.jsonl": "dev?\n" });
const tgz = makeTarGz({ "stsbenchmark/sts-train.csv": "train\n", "stsbenchmark/sts-dev.csv": "dev\n" });
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Behaviour {
  /** Per request number (0-based): what to do. */
  plan: ("ok" | "500" | "404" | "truncate" | "other")[];
}

/** A loopback server: /snli.zip and /sts.tar.gz, misbehaving as planned; counts requests. */
async function serve(b: Behaviour): Promise<{ url: string; server: Server; hits: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    const what = b.plan[Math.min(n, b.plan.length - 1)];
    n++;
    const body = req.url === "/sts.tar.gz" ? tgz : what === "other" ? otherZip : zip;
    if (what === "500") return void res.writeHead(503).end("busy");
    if (what === "404") return void res.writeHead(404).end("gone");
    res.writeHead(200, { "content-length": String(body.length) });
    if (what === "truncate") {
      res.write(body.subarray(0, body.length >> 1));
      res.socket?.destroy();
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, hits: () => n };
}

/** The snli download from `url`, with a published sha256 (or none: verified on first use). */
function snliSource(url: string, sha256: string | null, algorithm: Checksum["algorithm"] = "sha256"): FetchSource {
  return {
    name: "snli",
    dir: "snli_1.0",
    archives: [{ url: `${url}/snli.zip`, checksum: sha256 === null ? null : { algorithm, hex: sha256 }, format: "zip", stripPrefix: "snli_1.0/" }],
    expect: ["snli_1.0_train.jsonl", "snli_1.0_dev.jsonl"],
    licence: "test",
  };
}

/** Fast retries, and first-use checksums in a store of the test's own (never the user's cache). */
const stores = tempDir();
let storeCount = 0;
const fast = {
  attempts: 3,
  retryDelayMs: 5,
  get checksumStore() {
    return join(stores.dir, `checksums-${storeCount}.json`);
  },
};
/** A fresh first-use record for the next fetches. */
const freshStore = () => void storeCount++;
test.after(() => stores.cleanup());

/** Only the finished folder (or nothing) may be in the data dir: no temp folders or files. */
function assertClean(dataDir: string, expected: string[]): void {
  assert.equal(existsSync(dataDir) ? readdirSync(dataDir).sort() : [], expected);
}

test("good zip: verified, extracted into the official layout, junk skipped", async () => {
  const { url, server } = await serve({ plan: ["ok"] });
  const { dir, cleanup } = tempDir();
  try {
    const logs: string[] = [];
    const r = await fetchSource(snliSource(url, sha(zip)), { dataDir: dir, log: (l) => logs.push(l), ...fast });
    assert.is(r.fetched, true);
    assert.equal(r.files, ["README.txt", "snli_1.0_dev.jsonl", "snli_1.0_train.jsonl"]);
    assert.equal(r.unverified, []);
    assert.is(readFileSync(join(dir, "snli_1.0", "snli_1.0_dev.jsonl"), "utf8"), "dev\n");
    assertClean(dir, ["snli_1.0"]);
    const again = await fetchSource(snliSource(url, sha(zip)), { dataDir: dir, ...fast });
    assert.is(again.fetched, false);
  } finally {
    server.close();
    cleanup();
  }
});

test("tar.gz archive extracts too", async () => {
  const { url, server } = await serve({ plan: ["ok"] });
  const { dir, cleanup } = tempDir();
  try {
    const src: FetchSource = {
      name: "stsb",
      dir: "stsbenchmark",
      archives: [{ url: `${url}/sts.tar.gz`, checksum: { algorithm: "sha256", hex: sha(tgz) }, format: "tar.gz", stripPrefix: "stsbenchmark/" }],
      expect: ["sts-train.csv", "sts-dev.csv"],
      licence: "test",
    };
    await fetchSource(src, { dataDir: dir, ...fast });
    assert.is(readFileSync(join(dir, "stsbenchmark", "sts-train.csv"), "utf8"), "train\n");
  } finally {
    server.close();
    cleanup();
  }
});

test("no published checksum: the first download's sha256 is recorded; a later download of other bytes is refused", async () => {
  freshStore();
  const { url, server } = await serve({ plan: ["ok", "ok", "other"] });
  const { dir, cleanup } = tempDir();
  try {
    const logs: string[] = [];
    const first = await fetchSource(snliSource(url, null), { dataDir: dir, log: (l) => logs.push(l), ...fast });
    assert.equal(first.unverified, [`${url}/snli.zip`]);
    assert.equal(first.verified, { [`${url}/snli.zip`]: "first download: sha256 recorded" });
    assert.ok(logs.some((l) => l.includes(`its sha256 ${sha(zip)} is recorded`)));
    assert.equal(JSON.parse(readFileSync(fast.checksumStore, "utf8")), { [`${url}/snli.zip`]: sha(zip) });
    const second = await fetchSource(snliSource(url, null), { dataDir: dir, force: true, ...fast });
    assert.equal(second.verified, { [`${url}/snli.zip`]: "sha256 recorded at its first download" });
    assert.equal(second.unverified, []);
    // the server now hands out another file under the same URL
    const err = await fetchSource(snliSource(url, null), { dataDir: dir, force: true, ...fast }).catch((e: Error) => e);
    assert.instance(err, Error);
    assert.match(
      (err as Error).message,
      `checksum mismatch for ${url}/snli.zip: expected sha256 (recorded at its first download, in ${fast.checksumStore}) ${sha(zip)}, got ${sha(otherZip)}`,
    );
    assert.is(readFileSync(join(dir, "snli_1.0", "snli_1.0_dev.jsonl"), "utf8"), "dev\n", "the good copy stays");
  } finally {
    server.close();
    cleanup();
  }
});

test("a published SHA-1 is checked: the right file passes, a wrong file is refused and nothing is written", async () => {
  const sha1 = createHash("sha1").update(zip).digest("hex");
  const { url, server } = await serve({ plan: ["ok", "other"] });
  const { dir, cleanup } = tempDir();
  try {
    const r = await fetchSource(snliSource(url, sha1, "sha1"), { dataDir: dir, ...fast });
    assert.equal(r.verified, { [`${url}/snli.zip`]: "published sha1" });
    const other = tempDir();
    try {
      const err = await fetchSource(snliSource(url, sha1, "sha1"), { dataDir: other.dir, ...fast }).catch((e: Error) => e);
      assert.match((err as Error).message, `expected sha1 (published) ${sha1}`);
      assertClean(other.dir, []);
    } finally {
      other.cleanup();
    }
  } finally {
    server.close();
    cleanup();
  }
});

test("a corrupt first-use record is named, not overwritten", async () => {
  freshStore();
  writeFileSync(fast.checksumStore, "{not json");
  const { url, server } = await serve({ plan: ["ok"] });
  const { dir, cleanup } = tempDir();
  try {
    const err = await fetchSource(snliSource(url, null), { dataDir: dir, ...fast }).catch((e: Error) => e);
    assert.match((err as Error).message, `${fast.checksumStore}: not a checksum record`);
    assert.is(readFileSync(fast.checksumStore, "utf8"), "{not json");
    assertClean(dir, []);
  } finally {
    freshStore();
    server.close();
    cleanup();
  }
});

test("the published checksums given for SNLI and WikiText are SHA-1s of the official archives", () => {
  assert.equal(DATASETS.snli.download!.archives[0].checksum, { algorithm: "sha1", hex: "9fcde07509c7e87ec61c640c1b2753d9041758e4" });
  assert.equal(DATASETS["wikitext-2"].download!.archives[0].checksum, { algorithm: "sha1", hex: "3c914d17d80b1459be871a5039ac23e752a53cbe" });
  assert.equal(DATASETS["wikitext-103"].download!.archives[0].checksum, { algorithm: "sha1", hex: "0aec09a7537b58d4bb65362fee27650eeaba625a" });
});

test("wrong checksum: refused, nothing written, no retry", async () => {
  const { url, server, hits } = await serve({ plan: ["ok"] });
  const { dir, cleanup } = tempDir();
  try {
    try {
      await fetchSource(snliSource(url, "0".repeat(64)), { dataDir: dir, ...fast });
      assert.unreachable("accepted a wrong checksum");
    } catch (e) {
      assert.match((e as Error).message, /checksum mismatch .* expected sha256 \(published\) 0000/);
    }
    assert.is(hits(), 1);
    assertClean(dir, []);
  } finally {
    server.close();
    cleanup();
  }
});

test("truncated download: retried, and when it keeps failing nothing is left", async () => {
  const { url, server, hits } = await serve({ plan: ["truncate"] });
  const { dir, cleanup } = tempDir();
  try {
    try {
      await fetchSource(snliSource(url, sha(zip)), { dataDir: dir, ...fast });
      assert.unreachable("accepted a truncated archive");
    } catch (e) {
      assert.match((e as Error).message, /failed after 3 attempts/);
    }
    assert.is(hits(), 3);
    assertClean(dir, []);
  } finally {
    server.close();
    cleanup();
  }
});

test("server errors then success: retried until it works", async () => {
  const { url, server, hits } = await serve({ plan: ["500", "truncate", "ok"] });
  const { dir, cleanup } = tempDir();
  try {
    const logs: string[] = [];
    const r = await fetchSource(snliSource(url, sha(zip)), { dataDir: dir, log: (l) => logs.push(l), ...fast });
    assert.is(r.fetched, true);
    assert.is(hits(), 3);
    assert.ok(logs.some((l) => /attempt 1 failed \(HTTP 503/.test(l)));
    assertClean(dir, ["snli_1.0"]);
  } finally {
    server.close();
    cleanup();
  }
});

test("404 fails at once; a failed --force keeps the earlier copy", async () => {
  const good = await serve({ plan: ["ok"] });
  const { dir, cleanup } = tempDir();
  try {
    await fetchSource(snliSource(good.url, sha(zip)), { dataDir: dir, ...fast });
    good.server.close();
    const bad = await serve({ plan: ["404"] });
    try {
      await fetchSource(snliSource(bad.url, sha(zip)), { dataDir: dir, force: true, ...fast });
      assert.unreachable("404 accepted");
    } catch (e) {
      assert.match((e as Error).message, /HTTP 404/);
    }
    assert.is(bad.hits(), 1);
    bad.server.close();
    assertClean(dir, ["snli_1.0"]);
    assert.is(readFileSync(join(dir, "snli_1.0", "snli_1.0_dev.jsonl"), "utf8"), "dev\n");
  } finally {
    cleanup();
  }
});

test("archives missing expected files or escaping the folder are refused", async () => {
  const { dir, cleanup } = tempDir();
  const evil = makeZip({ "snli_1.0/../../escape.txt": "x", "snli_1.0/snli_1.0_train.jsonl": "t" });
  const server = createServer((_req, res) => res.writeHead(200, { "content-length": String(evil.length) }).end(evil));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    try {
      await fetchSource(snliSource(url, null), { dataDir: dir, ...fast });
      assert.unreachable("escaping archive accepted");
    } catch (e) {
      assert.match((e as Error).message, /outside the target folder/, (e as Error).message);
    }
    assertClean(dir, []);
    const partial: FetchSource = { ...snliSource(url, null), archives: [{ url: `${url}/x.zip`, checksum: null, format: "zip", stripPrefix: "nothing/" }] };
    try {
      await fetchSource(partial, { dataDir: dir, ...fast });
      assert.unreachable("incomplete archive accepted");
    } catch (e) {
      assert.match((e as Error).message, /lacked snli_1\.0_train\.jsonl, snli_1\.0_dev\.jsonl/);
    }
    assertClean(dir, []);
  } finally {
    server.close();
    cleanup();
  }
});

/**
 * A loopback server standing in for raw.githubusercontent.com (the only mock here): each path gets its body, any
 * other path a 404. Returns the URLs it was asked for.
 */
async function serveFiles(files: Record<string, Buffer>): Promise<{ url: string; server: Server; asked: string[] }> {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(req.url ?? "");
    const body = Object.hasOwn(files, req.url ?? "") ? files[req.url ?? ""] : undefined;
    if (body === undefined) return void res.writeHead(404).end("not here");
    res.writeHead(200, { "content-length": String(body.length) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, asked };
}

/** A built-in dataset's download with every URL moved to the local server (same paths). */
function servedFrom(name: string, url: string): FetchSource {
  const download: DownloadSource = DATASETS[name].download!;
  return { name, ...download, archives: download.archives.map((a) => ({ ...a, url: `${url}${new URL(a.url).pathname}` })) };
}

const CAD_PATH = "/acmi-lab/counterfactually-augmented-data/master/NLI";

test("cad: the two raw TSVs (plain files) land in the official layout, verified on first use, and read", async () => {
  freshStore();
  const combined = Buffer.from('sentence1\tsentence2\tgold_label\n"A ""Sale"" sign."\tA sign.\tentailment\nA dog.\tA cat.\tcontradiction\n');
  const original = Buffer.from("sentence1\tsentence2\tgold_label\nA dog.\tA cat.\tcontradiction\n");
  const files = { [`${CAD_PATH}/all_combined/train.tsv`]: combined, [`${CAD_PATH}/original/train.tsv`]: original };
  const { url, server, asked } = await serveFiles(files);
  const { dir, cleanup } = tempDir();
  try {
    const r = await fetchSource(servedFrom("cad", url), { dataDir: dir, ...fast });
    assert.equal(asked.sort(), Object.keys(files).sort());
    assert.equal(r.files, ["NLI/all_combined/train.tsv", "NLI/original/train.tsv"]);
    assert.equal(Object.values(r.verified), ["first download: sha256 recorded", "first download: sha256 recorded"]);
    assert.equal(readFileSync(join(dir, "cad/NLI/all_combined/train.tsv")), combined, "saved byte for byte");
    assertClean(dir, ["cad"]);
    const ref = parseSplitRef("cad:train", dir);
    const stats = emptyReadStats();
    const pairs = [];
    if (ref.dataset.kind === "pairs") for await (const p of ref.dataset.read(ref.path!, { stats })) pairs.push(p.s1);
    assert.equal(pairs, ['A "Sale" sign.', "A dog."]);
    assert.is(parseSplitRef("cad:original", dir).path, join(dir, "cad/NLI/original/train.tsv"));
    // the same URLs handing out other bytes later: refused against the recorded sha256, the good copy kept
    files[`${CAD_PATH}/original/train.tsv`] = Buffer.from("sentence1\tsentence2\tgold_label\n");
    const err = await fetchSource(servedFrom("cad", url), { dataDir: dir, force: true, ...fast }).catch((e: Error) => e);
    assert.match((err as Error).message, `checksum mismatch for ${url}${CAD_PATH}/original/train.tsv`);
    assert.equal(readFileSync(join(dir, "cad/NLI/original/train.tsv")), original);
    assertClean(dir, ["cad"]);
  } finally {
    freshStore();
    server.close();
    cleanup();
  }
});

const M30K_PATH = "/multi30k/dataset/master/data/task2";

/** Multi30K task 2's train release, small: the image list and five gzipped caption files (line i: image i). */
function multi30kRelease(captions: string[][], images = ["1000092795.jpg", "10002456.jpg"]): Record<string, Buffer> {
  const files: Record<string, Buffer> = { [`${M30K_PATH}/image_splits/train_images.txt`]: Buffer.from(`${images.join("\n")}\n`) };
  captions.forEach((lines, k) => {
    files[`${M30K_PATH}/raw/train.${k + 1}.en.gz`] = gzipSync(`${lines.join("\n")}\n`);
  });
  return files;
}

test("multi30k: the image list and five gzipped caption files are assembled into captions.train.tsv, which reads as groups", async () => {
  freshStore();
  const captions = [1, 2, 3, 4, 5].map((k) => [`Two men talk ${k}.`, k === 3 ? 'A "quoted"\tword.' : `A dog runs ${k}.`]);
  const { url, server } = await serveFiles(multi30kRelease(captions));
  const { dir, cleanup } = tempDir();
  try {
    const logs: string[] = [];
    const r = await fetchSource(servedFrom("multi30k", url), { dataDir: dir, log: (l) => logs.push(l), ...fast });
    assert.equal(r.files, ["captions.train.tsv"], "the release's own files are not kept");
    assert.is(Object.keys(r.verified).length, 6);
    assert.ok(logs.includes("multi30k: assembling captions.train.tsv"));
    const tsv = readFileSync(join(dir, "multi30k/captions.train.tsv"), "utf8").split("\n");
    assert.is(tsv[0], "image\tcaption1\tcaption2\tcaption3\tcaption4\tcaption5");
    assert.is(tsv[1], "1000092795.jpg\tTwo men talk 1.\tTwo men talk 2.\tTwo men talk 3.\tTwo men talk 4.\tTwo men talk 5.");
    assert.is(tsv.length, 4); // header, two images, the final newline
    const ref = parseSplitRef("multi30k", dir);
    const groups = [];
    if (ref.dataset.kind === "groups") for await (const g of ref.dataset.read(ref.path!, {})) groups.push(g);
    assert.equal(
      groups.map((g) => g.id),
      ["1000092795.jpg", "10002456.jpg"],
    );
    assert.is(groups[1].sentences[2], 'A "quoted" word.', "a tab inside a caption cannot split its column");
    assertClean(dir, ["multi30k"]);
  } finally {
    freshStore();
    server.close();
    cleanup();
  }
});

test("multi30k: caption files of unequal length, or a damaged gzip, are refused and nothing is written", async () => {
  const full = [1, 2, 3, 4, 5].map((k) => [`A ${k}.`, `B ${k}.`]);
  const short = full.map((lines, k) => (k === 3 ? lines.slice(0, 1) : lines));
  for (const [files, message] of [
    [
      multi30kRelease(short),
      "multi30k: cannot assemble captions.train.tsv from the download: the files disagree in length (lines: train_images.txt 2, train.1.en 2, train.2.en 2, train.3.en 2, train.4.en 1, train.5.en 2)",
    ],
    [
      { ...multi30kRelease(full), [`${M30K_PATH}/raw/train.2.en.gz`]: gzipSync("A 2.\nB 2.\n").subarray(0, 12) },
      "/raw/train.2.en.gz: not a complete gzip file",
    ],
    [multi30kRelease(full, ["1000092795.jpg", " "]), "train_images.txt:2: empty image name"],
  ] as const) {
    freshStore();
    const { url, server } = await serveFiles(files);
    const { dir, cleanup } = tempDir();
    try {
      const err = await fetchSource(servedFrom("multi30k", url), { dataDir: dir, ...fast }).catch((e: Error) => e);
      assert.instance(err, Error);
      assert.match((err as Error).message, message);
      assertClean(dir, []);
    } finally {
      server.close();
      cleanup();
    }
  }
  freshStore();
});

test.run();
