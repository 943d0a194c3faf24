/**
 * init.wordVectors: reading GloVe / word2vec / JSON vector files (bad rows named), the config's rules, and the
 * rows the real backend fills after the first build (exact word, else lowercased; specials and buckets left out).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startBackend } from "../../ts/backend/client.js";
import { validateConfig } from "../../ts/config/load.js";
import { DataError } from "../../ts/data/errors.js";
import { readWordVectors } from "../../ts/data/readers/wordVectors.js";
import { SPECIAL_TOKENS } from "../../ts/data/tokenize.js";
import { Vocab } from "../../ts/data/vocab.js";
import { withInit } from "../../ts/train/init.js";
import { tempDir, writeText } from "../data/helpers.js";
import { refused } from "../helpers.js";

test("readWordVectors: GloVe text, word2vec's header line, JSON; only the wanted words kept", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const glove = writeText(dir, "g.txt", "the 0.1 0.2 -0.3\ncat 1 2 3\n\ndog\t4\t5\t6\n");
    const all = await readWordVectors(glove);
    assert.is(all.dim, 3);
    assert.is(all.total, 3);
    assert.equal([...all.vectors.get("dog")!], [4, 5, 6]);
    assert.ok(Math.abs(all.vectors.get("the")![2] + 0.3) < 1e-6);
    const some = await readWordVectors(glove, new Set(["cat", "zebra"]));
    assert.equal([...some.vectors.keys()], ["cat"]);
    assert.is(some.total, 3, "every word counted, the unwanted ones not kept");

    const w2v = await readWordVectors(writeText(dir, "w.vec", "2 2\nred 1 0\nblue 0 1\n"));
    assert.is(w2v.dim, 2);
    assert.equal([...w2v.vectors.keys()], ["red", "blue"]);

    const json = await readWordVectors(writeText(dir, "v.json", JSON.stringify({ a: [1, 2], b: [3, 4] })));
    assert.equal([...json.vectors.get("b")!], [3, 4]);
  } finally {
    cleanup();
  }
});

test("readWordVectors: a bad row or file is named", async () => {
  const { dir, cleanup } = tempDir();
  const fails = async (name: string, text: string, ...fragments: string[]) => {
    const err = await readWordVectors(writeText(dir, name, text)).catch((e: unknown) => e);
    assert.instance(err, DataError, `${name} was read`);
    for (const f of fragments) assert.ok((err as Error).message.includes(f), `"${f}" not in: ${(err as Error).message}`);
  };
  try {
    await fails("short.txt", "a 1 2 3\nb 1 2\n", "short.txt:2", "2 numbers, the vectors before had 3");
    await fails("nan.txt", "a 1 2\nb 1 x\n", "nan.txt:2", 'component 2 is not a finite number ("x")');
    await fails("bare.txt", "a\n", "bare.txt:1", "no numbers");
    await fails("empty.txt", "\n\n", "empty.txt: no word vectors");
    await fails("bad.json", "{", "bad.json: not JSON");
    await fails("list.json", "[1, 2]", "expected a JSON object");
    await fails("mixed.json", JSON.stringify({ a: [1, 2], b: [1] }), 'word "b"', "1 numbers, the vectors before had 2");
    await fails("str.json", JSON.stringify({ a: "1 2" }), 'word "a": expected an array');
  } finally {
    cleanup();
  }
});

test("config: init.wordVectors alone, not with init.from; init needs one of them", () => {
  const stages = [{ objective: "siamese" }];
  assert.is(validateConfig({ init: { wordVectors: "glove/g.json" }, stages }).init?.wordVectors, "glove/g.json");
  refused({ init: { wordVectors: "g.json", from: "lm" }, stages }, "init.wordVectors", "init.from brings its own embedding");
  refused({ init: {}, stages }, "init needs from (pretrained weights) or wordVectors");
  refused({ init: { wordVectors: "g.json", build: "pretrain.yaml" }, stages }, "init.backward and init.build go with init.from");
});

test("withInit wordVectors: the real backend fills the known words' rows after the first build, once", async () => {
  const { dir, cleanup } = tempDir();
  const backend = await startBackend({ device: "cpu" });
  try {
    // "Paris" is found lowercased; "zebra" is not in the file; the specials and the buckets never take a vector
    writeText(dir, "vectors.json", JSON.stringify({ the: [1, 0, 0, 0], cat: [0, 1, 0, 0], paris: [0, 0, 1, 0], xxunk: [0, 0, 0, 1] }));
    const vocab = new Vocab([...SPECIAL_TOKENS, "the", "cat", "Paris", "zebra", "xxoov0", "xxoov1"], { minFreq: 1, maxSize: 100, oovBuckets: 2 });
    const notes: string[] = [];
    const events: Record<string, unknown>[] = [];
    const ctx = {
      init: { wordVectors: "vectors.json" },
      seed: 3,
      firstStageFresh: true,
      vocab,
      runsDir: dir,
      dataDir: dir,
      note: (l: string) => notes.push(l),
      record: (e: Record<string, unknown>) => events.push(e),
    };
    const wrapped = withInit(backend, ctx);
    const build = { preset: "tiny", vocab_sz: vocab.size, emb_sz: 8, seed: 0, head_hidden: 8 };
    await wrapped.call("build", build);
    assert.is(events.length, 1, "init ran right after the first build");
    assert.is(events[0].copied, 3); // the, cat, Paris
    assert.is(events[0].dim, 4);
    assert.is(events[0].emb_sz, 8);
    assert.match(notes.join("\n"), /3 of 15 embedding rows \(4-d vectors into the 8-d embedding; 4 words in the file\)/);
    await wrapped.call("build", build); // a later stage's build: no second init
    assert.is(events.length, 1);

    // wider vectors than the embedding: the backend names the sizes
    writeText(dir, "wide.json", JSON.stringify({ the: Array.from({ length: 9 }, () => 1) }));
    const err = await withInit(backend, { ...ctx, init: { wordVectors: "wide.json" } })
      .call("build", build)
      .catch((e: unknown) => e);
    assert.match(String(err), /init\.wordVectors .*wide\.json: word vectors of 9 dimensions do not fit the model's 8-wide embedding/);
    assert.not.match(String(err), "init_word_vectors", "named as the config names it, not by the backend op");

    // a file that knows none of the words is a mistake, not a silent no-op
    writeText(dir, "other.json", JSON.stringify({ chat: [1, 0, 0, 0], chien: [0, 1, 0, 0] }));
    const none = await withInit(backend, { ...ctx, init: { wordVectors: "other.json" } })
      .call("build", build)
      .catch((e: unknown) => e);
    assert.match(String(none), /none of the run's 15 words has a vector among its 2/);

    // a missing file is named before any build
    assert.throws(() => withInit(backend, { ...ctx, init: { wordVectors: "nope.txt" } }), /init.wordVectors nope.txt: no such file .*read from the data dir/);
  } finally {
    await backend.close();
    cleanup();
  }
});

test.run();
