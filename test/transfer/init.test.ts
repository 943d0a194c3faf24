/**
 * Transfer learning from TypeScript: `bridge data fetch wt103-fwd` against a local HTTP server serving a
 * small archive in fastai's real layout (wt103-fwd/lstm_fwd.pth + itos_wt103.pkl), then `init: fastai:wt103-fwd`
 * through the real backend (conversion, vocabulary matching, counts, a named size mismatch), and the
 * backward LM's reversed streams.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BackendError, startBackend } from "../../ts/backend/client.js";
import { importCommand } from "../../ts/commands/import.js";
import { reverseRows } from "../../ts/data/backwards.js";
import { MODEL_DOWNLOADS } from "../../ts/data/datasets.js";
import { fetchSource } from "../../ts/data/download.js";
import { SPECIAL_TOKENS } from "../../ts/data/tokenize.js";
import { Vocab } from "../../ts/data/vocab.js";
import { backendEnv, backendPython } from "../../ts/paths.js";
import { IMPORT_FILE } from "../../ts/run/importManifest.js";
import { modelCacheDir } from "../../ts/run/modelCache.js";
import { applyInit, resolveInitSource, vocabMap, withInit } from "../../ts/train/init.js";
import { makeTarGz, tempDir } from "../data/helpers.js";

const EMB = 8;
const HID = 12;
const OLD_WORDS = ["the", "cat", "sat", "on", "mat"];

/** A fastai-format LM (random weights: emb EMB, LSTMs EMB -> HID -> EMB, tied decoder) and its pickled itos, made by torch. */
function fastaiFiles(dir: string): { pth: Buffer; pkl: Buffer } {
  const script = `
import pickle, sys, torch
g = torch.Generator().manual_seed(0)
itos = ${JSON.stringify([...SPECIAL_TOKENS, ...OLD_WORDS])}
V, E, H = len(itos), ${EMB}, ${HID}
emb = torch.randn(V, E, generator=g)
sd = {"0.encoder.weight": emb, "0.encoder_dp.emb.weight": emb.clone(), "1.decoder.weight": emb.clone(), "1.decoder.bias": torch.randn(V, generator=g)}
for i, (n_in, n_out) in enumerate([(E, H), (H, E)]):
    sd[f"0.rnns.{i}.weight_hh_l0_raw"] = torch.randn(4 * n_out, n_out, generator=g)
    sd[f"0.rnns.{i}.module.weight_ih_l0"] = torch.randn(4 * n_out, n_in, generator=g)
    sd[f"0.rnns.{i}.module.bias_ih_l0"] = torch.randn(4 * n_out, generator=g)
    sd[f"0.rnns.{i}.module.bias_hh_l0"] = torch.randn(4 * n_out, generator=g)
torch.save(sd, sys.argv[1] + "/lstm_fwd.pth")
open(sys.argv[1] + "/itos_wt103.pkl", "wb").write(pickle.dumps(itos))
`;
  const r = spawnSync(backendPython(), ["-c", script, dir], { env: backendEnv(), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`making the fastai files failed: ${r.stderr}`);
  return { pth: readFileSync(join(dir, "lstm_fwd.pth")), pkl: readFileSync(join(dir, "itos_wt103.pkl")) };
}

test("bridge import writes into a new folder or over an earlier import, never into a folder of other files", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const mine = join(dir, "mine");
    mkdirSync(mine);
    writeFileSync(join(mine, "model.pt"), "my own weights");
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    for (const [out, message] of [
      [mine, `--out ${mine}: holds files that are not an import (model.pt); give a new or empty folder`],
      [file, `--out ${file}: a file; give a folder`],
    ]) {
      const e = await importCommand({ format: "fastai", weights: "w.pth", vocab: "v.pkl", out }).catch((err: Error) => err);
      assert.match((e as Error).message, message);
    }
    assert.is(readFileSync(join(mine, "model.pt"), "utf8"), "my own weights");
  } finally {
    cleanup();
  }
});

test("vocabMap: the source's id of each word, -1 for new ones", () => {
  const vocab = new Vocab([...SPECIAL_TOKENS, "cat", "dog", "the"]);
  const map = vocabMap([...SPECIAL_TOKENS, ...OLD_WORDS], vocab);
  const n = SPECIAL_TOKENS.length;
  assert.equal([...map], [...SPECIAL_TOKENS.map((_, i) => i), n + 1, -1, n]);
  // out-of-vocabulary buckets the source lacks keep the new model's own random rows (-2), so they stay apart
  const withBuckets = Vocab.fromCounts(
    new Map([
      ["cat", 1],
      ["dog", 1],
    ]),
    { minFreq: 1, oovBuckets: 2 },
  );
  assert.equal([...vocabMap([...SPECIAL_TOKENS, ...OLD_WORDS], withBuckets)].slice(n), [n + 1, -1, -2, -2]);
  // a source with the same buckets passes them on; one with another count (xxoovK: hash mod N is K) does not
  const m = OLD_WORDS.length;
  assert.equal([...vocabMap([...SPECIAL_TOKENS, ...OLD_WORDS, "xxoov0", "xxoov1"], withBuckets)].slice(n + 2), [n + m, n + m + 1]);
  assert.equal([...vocabMap([...SPECIAL_TOKENS, ...OLD_WORDS, "xxoov0", "xxoov1", "xxoov2"], withBuckets)].slice(n + 2), [-2, -2]);
});

test("reverseRows: each text back to front, offsets kept (a backward LM's stream)", () => {
  const r = reverseRows({ offsets: Int32Array.from([0, 3, 3, 5]), ids: Int32Array.from([2, 10, 11, 2, 12]) });
  assert.equal([...r.ids], [11, 10, 2, 12, 2]);
  assert.equal([...r.offsets], [0, 3, 3, 5]);
});

test("fetch wt103-fwd from a local server, then init: fastai:wt103-fwd converts it once and matches the vocabulary", async () => {
  const { dir, cleanup } = tempDir();
  const files = fastaiFiles(dir);
  const archive = makeTarGz({ "wt103-fwd/lstm_fwd.pth": files.pth, "wt103-fwd/itos_wt103.pkl": files.pkl });
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-length": String(archive.length) });
    res.end(archive);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/wt103-fwd.tgz`;
  const backend = await startBackend({ device: "cpu" });
  const savedCache = process.env.BRIDGE_CACHE_DIR;
  process.env.BRIDGE_CACHE_DIR = join(dir, "cache"); // the model cache of this test, not the user's
  try {
    const source = MODEL_DOWNLOADS["wt103-fwd"];
    assert.is(source.archives[0].url, "https://s3.amazonaws.com/fast-ai-modelzoo/wt103-fwd.tgz");
    const dataDir = join(dir, "data");
    const fetched = await fetchSource(
      { name: "wt103-fwd", ...source, archives: [{ ...source.archives[0], url }] },
      { dataDir, attempts: 1, checksumStore: join(dir, "checksums.json") },
    );
    assert.equal([...fetched.files].sort(), ["itos_wt103.pkl", "lstm_fwd.pth"]);

    const runsDir = join(dir, "runs");
    const vocab = new Vocab([...SPECIAL_TOKENS, "cat", "dog", "the", "zebra"]);
    const build = { preset: "tiny", vocab_sz: vocab.size, emb_sz: EMB, n_hid: HID, n_layers: 2, seed: 0, head_hidden: 8 };
    const notes: string[] = [];
    const events: Record<string, unknown>[] = [];
    // a fresh run's first stage, starting from fastai's forward model
    const fromFastai = (note: (l: string) => void, record: (e: Record<string, unknown>) => void) =>
      withInit(backend, { init: { from: "fastai:wt103-fwd" }, seed: 0, firstStageFresh: true, vocab, runsDir, dataDir, note, record });
    const wrapped = fromFastai(
      (l) => notes.push(l),
      (e) => events.push(e),
    );
    await wrapped.call("build", build);
    assert.is(events.length, 1, "init ran right after the first build");
    assert.is(events[0].copied, SPECIAL_TOKENS.length + 2); // the specials, cat, the
    assert.is(events[0].new, 2); // dog, zebra
    assert.ok(existsSync(join(modelCacheDir(), "fastai-wt103-fwd", IMPORT_FILE)), "converted once into the model cache");
    assert.match(notes.join("\n"), /11 of 13 embedding rows copied, 2 new/);
    await wrapped.call("build", build); // a later stage's build: no second init
    assert.is(events.length, 1);
    // a converted model whose import.json was cut short is converted again from the fetched files, not loaded
    const converted = join(modelCacheDir(), "fastai-wt103-fwd", IMPORT_FILE);
    writeFileSync(converted, '{"format": "bridge-imp');
    const againNotes: string[] = [];
    const again = fromFastai(
      (l) => againNotes.push(l),
      () => {},
    );
    await again.call("build", build);
    assert.match(againNotes.join("\n"), `converting fastai wt103-fwd from `);
    assert.match(againNotes.join("\n"), `again (the converted one cannot be used: ${converted}: unreadable`);
    assert.match(readFileSync(converted, "utf8"), '"format":"bridge-import"');

    // a vocabulary with out-of-vocabulary buckets the source lacks: they keep random rows and are counted apart
    const bucketed = Vocab.fromCounts(
      new Map([
        ["cat", 1],
        ["dog", 1],
      ]),
      { minFreq: 1, oovBuckets: 3 },
    );
    const bucketNotes: string[] = [];
    const bucketEvents: Record<string, unknown>[] = [];
    const withBuckets = withInit(backend, {
      init: { from: "fastai:wt103-fwd" },
      seed: 0,
      firstStageFresh: true,
      vocab: bucketed,
      runsDir,
      dataDir,
      note: (l) => bucketNotes.push(l),
      record: (e) => bucketEvents.push(e),
    });
    await withBuckets.call("build", { ...build, vocab_sz: bucketed.size });
    assert.equal([bucketEvents[0].copied, bucketEvents[0].new, bucketEvents[0].buckets], [SPECIAL_TOKENS.length + 1, 1, 3]); // cat; dog; xxoov0-2
    assert.match(bucketNotes.join("\n"), `1 new words (the mean row), 3 out-of-vocabulary buckets (their own random rows)`);

    // a model of another size: the backend names what differs
    await backend.call("build", { ...build, emb_sz: EMB * 2 });
    const cached = await resolveInitSource("fastai:wt103-fwd", backend, { runsDir, dataDir });
    const err = await applyInit(backend, cached, vocab).catch((e: unknown) => e);
    assert.instance(err, BackendError);
    assert.is((err as BackendError).code, "init_mismatch");
    assert.match((err as BackendError).message, /emb_sz 8 vs 16/);
  } finally {
    if (savedCache === undefined) delete process.env.BRIDGE_CACHE_DIR;
    else process.env.BRIDGE_CACHE_DIR = savedCache;
    await backend.close();
    server.close();
    cleanup();
  }
});

test("init: a source that is not there names the fetch command", async () => {
  const { dir, cleanup } = tempDir();
  const backend = await startBackend({ device: "cpu" });
  try {
    const err = await resolveInitSource("fastai:wt103-bwd", backend, { runsDir: join(dir, "runs"), dataDir: dir }).catch((e: unknown) => e);
    assert.match(String(err), /npx bridge data fetch wt103-bwd/);
    const other = await resolveInitSource("no-such-run", backend, { runsDir: join(dir, "runs"), dataDir: dir }).catch((e: unknown) => e);
    assert.match(String(other), /not a run in .*runs, a checkpoint file, an import folder or fastai:wt103-fwd\|fastai:wt103-bwd/);
  } finally {
    await backend.close();
    cleanup();
  }
});

test.run();
