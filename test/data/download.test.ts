import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { fetchSource, type FetchSource } from "../../ts/data/download.js";
import { makeTarGz, makeZip, tempDir } from "./helpers.js";

const zip = makeZip({
  "snli_1.0/snli_1.0_train.jsonl": '{"gold_label":"neutral","sentence1":"a","sentence2":"b"}\n',
  "snli_1.0/snli_1.0_dev.jsonl": "dev\n",
  "__MACOSX/snli_1.0/._snli_1.0_dev.jsonl": "junk",
  "snli_1.0/README.txt": "readme",
});
const tgz = makeTarGz({ "stsbenchmark/sts-train.csv": "train\n", "stsbenchmark/sts-dev.csv": "dev\n" });
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Behaviour {
  /** Per request number (0-based): what to do. */
  plan: ("ok" | "500" | "404" | "truncate")[];
}

/** A loopback server: /snli.zip and /sts.tar.gz, misbehaving as planned; counts requests. */
async function serve(b: Behaviour): Promise<{ url: string; server: Server; hits: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    const what = b.plan[Math.min(n, b.plan.length - 1)];
    n++;
    const body = req.url === "/sts.tar.gz" ? tgz : zip;
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

function snliSource(url: string, sha256: string | null): FetchSource {
  return {
    name: "snli",
    dir: "snli_1.0",
    archives: [{ url: `${url}/snli.zip`, sha256, format: "zip", stripPrefix: "snli_1.0/" }],
    expect: ["snli_1.0_train.jsonl", "snli_1.0_dev.jsonl"],
    licence: "test",
  };
}

const fast = { attempts: 3, retryDelayMs: 5 };

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
      archives: [{ url: `${url}/sts.tar.gz`, sha256: sha(tgz), format: "tar.gz", stripPrefix: "stsbenchmark/" }],
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

test("unknown checksum: extracted, but reported as unverified", async () => {
  const { url, server } = await serve({ plan: ["ok"] });
  const { dir, cleanup } = tempDir();
  try {
    const logs: string[] = [];
    const r = await fetchSource(snliSource(url, null), { dataDir: dir, log: (l) => logs.push(l), ...fast });
    assert.equal(r.unverified, [`${url}/snli.zip`]);
    assert.ok(logs.some((l) => /could not be verified/.test(l)));
  } finally {
    server.close();
    cleanup();
  }
});

test("wrong checksum: refused, nothing written, no retry", async () => {
  const { url, server, hits } = await serve({ plan: ["ok"] });
  const { dir, cleanup } = tempDir();
  try {
    try {
      await fetchSource(snliSource(url, "0".repeat(64)), { dataDir: dir, ...fast });
      assert.unreachable("accepted a wrong checksum");
    } catch (e) {
      assert.match((e as Error).message, /checksum mismatch .* expected sha256 0000/);
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
      assert.match((e as Error).message, /outside the target folder/);
    }
    assertClean(dir, []);
    const partial: FetchSource = { ...snliSource(url, null), archives: [{ url: `${url}/x.zip`, sha256: null, format: "zip", stripPrefix: "nothing/" }] };
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

test.run();
