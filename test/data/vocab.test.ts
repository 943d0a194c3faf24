import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SPECIAL_TOKENS } from "../../ts/data/tokenize.js";
import { assertVocabMatches, tokenHash, Vocab, vocabFingerprint } from "../../ts/data/vocab.js";
import { tempDir } from "./helpers.js";

const counts = new Map([
  ["the", 10],
  ["cat", 3],
  ["bat", 3],
  ["rare", 1],
  ["dog", 5],
  ["xxmaj", 7],
]);

test("special tokens first in fastai's order, then by count, ties in code-point order; min_freq and max_size", () => {
  const v = Vocab.fromCounts(counts, { minFreq: 2, maxSize: 100 });
  assert.equal(v.itos, [...SPECIAL_TOKENS, "the", "dog", "bat", "cat"]);
  assert.is(v.id("rare"), v.unkId);
  assert.is(v.unkId, 0);
  assert.is(v.padId, 1);
  const small = Vocab.fromCounts(counts, { minFreq: 1, maxSize: SPECIAL_TOKENS.length + 2 });
  assert.equal(small.itos.slice(SPECIAL_TOKENS.length), ["the", "dog"]);
  // Insertion order of the counts does not matter.
  const reversed = new Map([...counts].reverse());
  assert.equal(Vocab.fromCounts(reversed, { minFreq: 2 }).itos, v.itos);
});

test("out-of-vocabulary buckets: unknown words hash to rows after the words, not to xxunk", async () => {
  const v = Vocab.fromCounts(new Map([...counts, ["xxoov3", 9]]), { minFreq: 2, oovBuckets: 4 });
  // a literal bucket name in the text is not counted as a word (it would clash with the bucket's token)
  assert.equal(v.itos, [...SPECIAL_TOKENS, "the", "dog", "bat", "cat", "xxoov0", "xxoov1", "xxoov2", "xxoov3"]);
  assert.is(v.firstBucketId, SPECIAL_TOKENS.length + 4);
  assert.is(tokenHash("a"), 0xe40c292c); // FNV-1a 32-bit, the published test vector
  assert.is(v.id("rare"), v.firstBucketId + (tokenHash("rare") % 4));
  assert.ok(v.isBucket(v.id("rare")) && !v.isBucket(v.id("the")) && !v.has("rare"));
  // different unknown words spread over the buckets, the same word always lands in the same one
  const ids = new Set(["zebra", "quokka", "Pythagoras", "1987", "née"].map((w) => v.id(w)));
  assert.ok(ids.size >= 3, `5 words in ${ids.size} buckets`);
  assert.is(v.id("zebra"), v.id("zebra"));
  assert.is(Vocab.fromCounts(counts, { minFreq: 2 }).id("rare"), 0); // no buckets: xxunk
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, "vocab.json");
    await v.save(p);
    const back = await Vocab.load(p);
    assert.is(back.oovBuckets, 4);
    assert.is(back.id("rare"), v.id("rare"));
    assert.is(back.fingerprint, v.fingerprint);
    const raw = JSON.parse(readFileSync(p, "utf8"));
    writeFileSync(p, JSON.stringify({ ...raw, oov_buckets: 5 }));
    try {
      await Vocab.load(p);
      assert.unreachable("a file whose bucket count does not fit its tokens loaded");
    } catch (e) {
      assert.match((e as Error).message, /vocab\.json: vocabulary: 5 out-of-vocabulary buckets must end the tokens/);
    }
    writeFileSync(p, "null");
    await Vocab.load(p).then(
      () => assert.unreachable("a null vocabulary loaded"),
      (e: Error) => assert.match(e.message, "vocab.json: not a bridge vocabulary file"),
    );
  } finally {
    cleanup();
  }
});

test("save / load round trip is exact; fingerprint is sha256 of the tokens joined by newlines", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const v = Vocab.fromCounts(
      new Map([
        ["héllo", 5],
        ["😀", 4],
        ["東京", 3],
      ]),
      { minFreq: 1 },
    );
    const p = join(dir, "vocab.json");
    await v.save(p);
    const back = await Vocab.load(p);
    assert.equal(back.itos, v.itos);
    assert.is(back.fingerprint, v.fingerprint);
    assert.equal(back.options, v.options);
    assert.is(v.fingerprint, createHash("sha256").update(v.itos.join("\n"), "utf8").digest("hex"));
    assert.is(vocabFingerprint(v.itos), v.fingerprint);
  } finally {
    cleanup();
  }
});

test("a tampered vocabulary file is refused", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, "vocab.json");
    await Vocab.fromCounts(counts, { minFreq: 1 }).save(p);
    const f = JSON.parse(readFileSync(p, "utf8"));
    [f.itos[9], f.itos[10]] = [f.itos[10], f.itos[9]];
    writeFileSync(p, JSON.stringify(f));
    try {
      await Vocab.load(p);
      assert.unreachable("tampered file loaded");
    } catch (e) {
      assert.match((e as Error).message, /edited or damaged/);
    }
    writeFileSync(p, "{}");
    try {
      await Vocab.load(p);
      assert.unreachable("not a vocab file loaded");
    } catch (e) {
      assert.match((e as Error).message, /not a bridge vocabulary file/);
    }
  } finally {
    cleanup();
  }
});

test("assertVocabMatches refuses a different vocabulary or size with a clear message", () => {
  const v = Vocab.fromCounts(counts, { minFreq: 1 });
  assertVocabMatches(v, v.fingerprint, v.size);
  const other = Vocab.fromCounts(counts, { minFreq: 3 });
  assert.throws(() => assertVocabMatches(other, v.fingerprint, v.size), /vocabulary mismatch: the checkpoint was trained with 14 tokens/);
  assert.throws(() => assertVocabMatches(v, v.fingerprint, v.size + 1), /vocabulary mismatch/);
});

test("invalid vocabularies are refused", () => {
  assert.throws(() => new Vocab(["a", "b"]), /special token xxunk is missing/);
  assert.throws(() => new Vocab([...SPECIAL_TOKENS, "a", "a"]), /appears twice/);
  assert.throws(() => new Vocab([...SPECIAL_TOKENS, "a b"]), /whitespace/);
  assert.throws(() => Vocab.fromCounts(counts, { maxSize: 3 }), /maxSize/);
});

test.run();
