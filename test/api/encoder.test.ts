/**
 * The library API (ts/api): a tiny trained run opened once, a real backend over real ZeroMQ. Vectors equal
 * `bridge embed`'s to the bit, overlapping calls keep their own order, a closed encoder and a missing run
 * are clear errors, a backend killed mid-call fails that call (and the encoder), and a fresh open works.
 */
import { execFile } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { tableFromIPC } from "apache-arrow";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  BackendDiedError,
  CorpusIndex,
  cosineSimilarity,
  type Encoder,
  EncoderClosedError,
  type Matrix,
  openEncoder,
  semanticSearch,
} from "../../ts/api/index.js";
import { RunModel } from "../../ts/eval/runModel.js";
import type { RunManifest } from "../../ts/run/manifest.js";
import { makeFixtureRun, EMBED_SENTENCES as SENTENCES } from "../eval/fixtures.js";
import { bridgeBin, tempFolder, testWithData, waitFor } from "../helpers.js";

let fixture: Promise<{ root: string; name: string }> | null = null;
/** One tiny run (makeFixtureRun: a few LM and siamese steps, seconds) for every test of this file. */
function run(dataDir: string) {
  fixture ??= (async () => {
    const root = tempFolder("bridge-api-");
    await makeFixtureRun({ root, name: "api", dataDir, pairs: 300, lmSteps: 4, siameseSteps: 4 });
    return { root, name: "api" };
  })();
  return fixture;
}

async function rejects(p: Promise<unknown>, ...fragments: string[]): Promise<Error> {
  const e = await p.then(
    () => null,
    (err: Error) => err,
  );
  assert.ok(e, "expected a rejection");
  for (const f of fragments) assert.ok(e!.message.includes(f), `"${f}" not in:\n${e!.message}`);
  return e!;
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("hex");

testWithData(test, "embed gives bridge embed's vectors to the bit, in input order, with texts and an Arrow table on request", async (dataDir) => {
  const { root, name } = await run(dataDir);
  const input = join(root, "in.txt");
  writeFileSync(input, `${SENTENCES.join("\n")}\n`);
  const output = join(root, "cli.arrow");
  await promisify(execFile)(process.execPath, [bridgeBin, "embed", "--run", name, "--input", input, "--output", output, "--device", "cpu"], {
    env: { ...process.env, BRIDGE_RUNS_DIR: root },
  });
  const file = tableFromIPC(readFileSync(output));
  const col = file.getChild("vector")!;
  await using enc = await openEncoder(name, { runsDir: root, device: "cpu" });
  const v = await enc.embed(SENTENCES);
  assert.is(v.rows, SENTENCES.length);
  assert.is(v.dim, enc.dim);
  assert.is(v.data.length, v.rows * v.dim);
  assert.ok(v.data.byteOffset === 0 && v.data.buffer.byteLength === v.data.byteLength, "the vectors own their whole buffer");
  for (let i = 0; i < v.rows; i++) assert.is(bits(v.row(i)), bits(Float32Array.from(col.get(i) as ArrayLike<number>)), `row ${i}`);
  assert.is(bits(v.row(1)), bits(v.row(5)), "the same sentence, the same vector");
  const t = v.toArrow();
  assert.equal(Array.from(t.getChild("text")!), SENTENCES);
  assert.is(bits(Float32Array.from(t.getChild("vector")!.get(3) as ArrayLike<number>)), bits(v.row(3)));
  const unit = await enc.embed(SENTENCES, { normalize: true });
  for (let i = 0; i < unit.rows; i++) {
    const n = Math.hypot(...unit.row(i));
    assert.ok(Math.abs(n - 1) < 1e-5, `row ${i} has norm ${n}`);
  }
  // a run folder (runs/NAME or a link to it) opens as well as a name
  await using byFolder = await openEncoder(join(root, name), { device: "cpu" });
  assert.is(bits((await byFolder.embed(SENTENCES)).data), bits(v.data));
});

testWithData(test, "many overlapping calls each get their own rows in their own order", async (dataDir) => {
  const { root, name } = await run(dataDir);
  await using enc = await openEncoder(name, { runsDir: root, device: "cpu" });
  // 24 different lists: rotations and reversals of the sentences, some repeated, different sizes and batch sizes
  const lists = Array.from({ length: 24 }, (_, k) => {
    const rot = [...SENTENCES.slice(k % SENTENCES.length), ...SENTENCES.slice(0, k % SENTENCES.length)];
    const l = k % 2 ? rot.reverse() : rot;
    return l.concat(l.slice(0, k % 5)).map((s, i) => (i % 3 === k % 3 ? `${s} ${k}` : s));
  });
  const batch = (k: number) => 1 + (k % 4);
  const expected: string[] = [];
  for (const [k, l] of lists.entries()) expected.push(bits((await enc.embed(l, { batchSize: batch(k) })).data));
  const got = await Promise.all(lists.map((l, k) => enc.embed(l, { batchSize: batch(k) })));
  got.forEach((v, k) => {
    assert.equal(v.texts, lists[k]);
    assert.is(bits(v.data), expected[k], `call ${k}`);
  });
});

testWithData(test, "an encode job that fails half way names the problem and leaves the model as it was", async (dataDir) => {
  const { root, name } = await run(dataDir);
  const model = await RunModel.open({ run: name, runsDir: root, device: "cpu" });
  try {
    const rows = model.numericalise(SENTENCES);
    const before = await model.encode(rows, { batchSize: 2, batchesPerRequest: 1 });
    // the shortest sentence's last id past the vocabulary: its batch is the last one sent, after the others were encoded
    const bad = { offsets: rows.offsets, ids: rows.ids.slice() };
    const lengths = Array.from({ length: SENTENCES.length }, (_, i) => rows.offsets[i + 1] - rows.offsets[i]);
    const shortest = lengths.indexOf(Math.min(...lengths));
    bad.ids[rows.offsets[shortest + 1] - 1] = model.vocab.size + 5;
    await rejects(model.encode(bad, { batchSize: 2, batchesPerRequest: 1 }), "encode", "holds ids outside");
    const after = await model.encode(rows, { batchSize: 2, batchesPerRequest: 1 });
    assert.is(bits(after.vectors), bits(before.vectors));
    assert.is(after.vectors.length, SENTENCES.length * after.dim);
  } finally {
    await model.close();
  }
});

testWithData(test, "a closed encoder refuses calls with a clear error; close waits for calls in flight", async (dataDir) => {
  const { root, name } = await run(dataDir);
  const enc = await openEncoder(name, { runsDir: root, device: "cpu" });
  const inFlight = enc.embed(SENTENCES);
  const closed = enc.close();
  const v = await inFlight;
  assert.is(v.rows, SENTENCES.length, "a call made before close() completes");
  await closed;
  const e = await rejects(enc.embed(["x"]), "embed", "closed", `run ${name}`, "openEncoder");
  assert.instance(e, EncoderClosedError);
  await rejects(enc.search(["x"], ["y"]), "search", "closed");
  await enc.close(); // twice is harmless
});

testWithData(test, "a missing run, a folder without a run, and bad arguments are named in the error", async (dataDir) => {
  const { root, name } = await run(dataDir);
  await rejects(openEncoder("no-such-run", { runsDir: root }), 'openEncoder("no-such-run")', root, `runs there: ${name}`);
  // the command line names its flag, not the library call behind it
  const input = join(root, "in.txt");
  writeFileSync(input, "a sentence\n");
  for (const args of [
    ["embed", "--run", "no-such-run", "--input", input, "--output", join(root, "out.arrow")],
    ["search", "--run", "no-such-run", "--corpus", input, "--query", "x"],
  ]) {
    const e = await rejects(
      promisify(execFile)(process.execPath, [bridgeBin, ...args], { env: { ...process.env, BRIDGE_RUNS_DIR: root } }),
      "--run no-such-run: no run named",
    );
    assert.not.match(e.message, "openEncoder");
  }
  await rejects(openEncoder(root), root, "no run.json");
  await rejects(openEncoder("x", { runsDir: join(root, "nowhere") }), '"x"', "no runs there");
  await using enc = await openEncoder(name, { runsDir: root, device: "cpu" });
  await rejects(enc.embed(["fine", 3 as unknown as string]), "embed: sentences[1]", "number");
  await rejects(enc.embed("one string" as unknown as string[]), "array of strings");
  await rejects(enc.embed(["a"], { batchSize: 0 }), "batchSize");
  await rejects(enc.search(["a"], ["b"], { topK: 0 }), "topK");
  await rejects(enc.search({ data: new Float32Array(3), rows: 1, dim: 3 }, ["b"]), "3-d", `${enc.dim}-d`);
  // what is neither sentences nor vectors is named, not met deep inside
  await rejects(enc.search(undefined as unknown as string[], ["b"]), "search: queries: expected an array of strings or a Matrix, got undefined");
  await rejects(enc.index("a b c" as unknown as string[]), "index: corpus: expected an array of strings or a Matrix, got a string");
  await rejects(enc.similarity(null as unknown as string[], ["b"]), "similarity: a", "got null");
  await rejects(enc.embed(["a"], { normalize: "no" as unknown as boolean }), "normalize must be true or false, got a string");
  await rejects(enc.embed(["a"], 5 as unknown as object), "embed: options must be an object, got a number");
  assert.is((await enc.embed(["a"], null as unknown as object)).rows, 1, "null options are the defaults, as omitted ones");
  assert.is((await enc.search(["a"], ["b", "c"], null as unknown as object))[0].length, 2);
  // a bad topK is refused before the corpus is embedded: no encode call reaches the backend
  const corpus = Array.from({ length: 3000 }, (_, i) => `sentence ${i}`);
  const t0 = performance.now();
  await rejects(enc.search(["q"], corpus, { topK: -1 }), "topK must be a whole number >= 1, got -1");
  assert.ok(performance.now() - t0 < 500, `refused after ${performance.now() - t0} ms: was the corpus embedded first?`);
  // the result keeps the texts it was made from, whatever the caller does with its array later
  const texts = ["first", "second"];
  const e = await enc.embed(texts);
  texts[0] = "changed";
  assert.equal(e.texts, ["first", "second"]);
  // a checkpoint that is not there is named the way the API takes it, not as the command line's flag
  const missing = await rejects(openEncoder(name, { runsDir: root, checkpoint: "nope.pt" }), "openEncoder's checkpoint nope.pt: no such file");
  assert.not.match(missing.message, "--checkpoint");
});

testWithData(test, "a run still training opens at its last completed stage's checkpoint, and says so (API, embed, search)", async (dataDir) => {
  const { root, name } = await run(dataDir);
  const finished = await openEncoder(name, { runsDir: root, device: "cpu" });
  assert.is(finished.unfinished, null);
  await finished.close();
  // what run.json says while the last stage trains: finalCheckpoint is the stage before's
  const training = join(root, "still-training");
  cpSync(join(root, name), training, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(training, "run.json"), "utf8")) as RunManifest;
  manifest.stages[manifest.stages.length - 1].completed = false;
  manifest.finalCheckpoint = manifest.stages[0].checkpoint;
  writeFileSync(join(training, "run.json"), JSON.stringify(manifest));
  const last = manifest.stages[manifest.stages.length - 1];
  const note = `run still-training has not finished training (stage ${manifest.stages.length}/${manifest.stages.length}, ${last.name}, not completed): using ${manifest.stages[0].checkpoint}, the last completed stage's checkpoint`;
  await using enc = await openEncoder("still-training", { runsDir: root, device: "cpu" });
  assert.is(enc.unfinished, note);
  assert.is(enc.checkpoint, manifest.stages[0].checkpoint);
  // a checkpoint asked for by name is what the caller meant: no note
  await using chosen = await openEncoder("still-training", { runsDir: root, device: "cpu", checkpoint: manifest.stages[0].checkpoint! });
  assert.is(chosen.unfinished, null);
  // --checkpoint as run.json names it (relative to the run folder), or as a shell names it (relative to the working
  // folder); one that is neither is named before any backend starts
  const fromHere = ["embed", "--run", "still-training", "--input", join(root, "one.txt"), "--output", join(root, "here.arrow")];
  writeFileSync(join(root, "one.txt"), "a dog runs .\n");
  const cwd = { cwd: root, env: { ...process.env, BRIDGE_RUNS_DIR: root } };
  await promisify(execFile)(process.execPath, [bridgeBin, ...fromHere, "--checkpoint", join("still-training", manifest.stages[0].checkpoint!)], cwd);
  assert.is(
    tableFromIPC(readFileSync(join(root, "here.arrow"))).schema.metadata.get("bridge.checkpoint"),
    manifest.stages[0].checkpoint, // recorded as run.json names it, however it was typed
  );
  const missing = await rejects(
    promisify(execFile)(process.execPath, [bridgeBin, ...fromHere, "--checkpoint", "nope.pt"], cwd),
    "--checkpoint nope.pt: no such file, in the run folder",
  );
  assert.not.match(missing.message, "load:");
  const input = join(root, "one.txt");
  writeFileSync(input, "a dog runs .\n");
  const env = { env: { ...process.env, BRIDGE_RUNS_DIR: root } };
  for (const args of [
    ["embed", "--run", "still-training", "--input", input, "--output", join(root, "still.arrow")],
    ["search", "--run", "still-training", "--corpus", input, "--query", "a dog"],
  ]) {
    const { stderr } = await promisify(execFile)(process.execPath, [bridgeBin, ...args], env);
    assert.match(stderr, `note: ${note}`);
  }
});

testWithData(test, "a backend killed mid-call fails that call and the encoder; the next open works", async (dataDir) => {
  const { root, name } = await run(dataDir);
  const enc = await openEncoder(name, { runsDir: root, device: "cpu" });
  const reference = await enc.embed(SENTENCES);
  const many = Array.from({ length: 20_000 }, (_, i) => `${SENTENCES[i % SENTENCES.length]} ${i}`);
  let progressed = false;
  const call = enc.embed(many, { batchSize: 16, onProgress: () => (progressed = true) });
  assert.ok(await waitFor(() => progressed, 60_000), "the call started");
  process.kill(enc.backendPid!, "SIGKILL");
  const e = await rejects(call, "SIGKILL");
  assert.instance(e, BackendDiedError);
  await rejects(enc.embed(["after"]), "died earlier", "open the run again");
  await enc.close();
  await using again = await openEncoder(name, { runsDir: root, device: "cpu" });
  assert.is(bits((await again.embed(SENTENCES)).data), bits(reference.data));
});

/** Float64 brute force: every cosine, sorted by score then id. */
function bruteForce(q: Matrix, c: Matrix, k: number) {
  const norm = (m: Matrix, i: number) => Math.sqrt(m.data.subarray(i * m.dim, (i + 1) * m.dim).reduce((s, x) => s + x * x, 0));
  return Array.from({ length: q.rows }, (_, i) => {
    const scores = Array.from({ length: c.rows }, (_, r) => {
      let s = 0;
      for (let j = 0; j < q.dim; j++) s += q.data[i * q.dim + j] * c.data[r * c.dim + j];
      const n = norm(q, i) * norm(c, r);
      return { corpusId: r, score: n === 0 ? 0 : s / n };
    });
    return scores.sort((a, b) => b.score - a.score || a.corpusId - b.corpusId).slice(0, k);
  });
}

function random(rows: number, dim: number, seed: number): Matrix {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return { data: Float32Array.from({ length: rows * dim }, rnd), rows, dim };
}

test("search equals a brute-force reference (dims not a multiple of 8, duplicates, a zero vector, topK past the corpus)", () => {
  for (const dim of [1, 7, 8, 33]) {
    const corpus = random(500, dim, dim);
    corpus.data.copyWithin(10 * dim, 20 * dim, 21 * dim); // row 10 = row 20: a tie, broken by the lower id
    corpus.data.fill(0, 30 * dim, 31 * dim); // a zero vector scores 0
    const queries = random(13, dim, 100 + dim);
    queries.data.set(corpus.data.subarray(20 * dim, 21 * dim), 0); // query 0 is corpus row 20
    const index = CorpusIndex.of(corpus);
    for (const k of [1, 5, 600]) {
      const got = index.search(queries, { topK: k });
      const want = bruteForce(queries, corpus, k);
      assert.equal(got.length, queries.rows);
      got.forEach((hits, i) => {
        assert.is(hits.length, Math.min(k, corpus.rows));
        hits.forEach((h, r) => assert.ok(Math.abs(h.score - want[i][r].score) < 1e-5, `dim ${dim} query ${i} rank ${r}: ${h.score} vs ${want[i][r].score}`));
        // ids agree wherever the reference's scores are not within rounding of a neighbour's
        hits.forEach((h, r) => {
          const near = (j: number) => j >= 0 && j < want[i].length && Math.abs(want[i][j].score - want[i][r].score) < 1e-5;
          if (!near(r - 1) && !near(r + 1)) assert.is(h.corpusId, want[i][r].corpusId, `dim ${dim} query ${i} rank ${r}`);
        });
      });
      assert.equal(semanticSearch(queries, corpus, { topK: k }), got, "a Matrix corpus gives what its index gives");
    }
    if (dim === 1) continue; // in one dimension every positive vector has cosine 1 with the query
    const top = index.search(queries, { topK: 2 })[0];
    assert.equal(
      top.map((h) => h.corpusId),
      [10, 20],
      `dim ${dim}: the query's own vector, twice, lower id first`,
    );
  }
});

test("a NaN or infinite vector ranks after every real match (as the notebook's semantic_search), wherever it sits", () => {
  const query: Matrix = { data: Float32Array.of(1, 0), rows: 1, dim: 2 };
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
    for (const at of [0, 1, 2]) {
      const data = new Float32Array(6);
      const rows = [
        [0, 1],
        [1, 0],
        [0.6, 0.8],
      ];
      rows[at] = [bad, 0];
      rows.forEach((r, i) => data.set(r, 2 * i));
      const hits = semanticSearch(query, { data, rows: 3, dim: 2 }, { topK: 3 });
      assert.is(hits[0].length, 3);
      assert.ok(Number.isNaN(hits[0][2].score), `${bad} at row ${at}: last, with its NaN score`);
      assert.is(hits[0][2].corpusId, at);
      const good = hits[0].slice(0, 2).map((h) => h.corpusId);
      assert.equal(
        good,
        [0, 1, 2].filter((i) => i !== at).sort((i, j) => data[2 * j] - data[2 * i]),
        `${bad} at row ${at}`,
      );
      assert.is(
        semanticSearch(query, { data, rows: 3, dim: 2 }, { topK: 1 })[0][0].score,
        Math.max(...[0, 1, 2].filter((i) => i !== at).map((i) => data[2 * i])),
      );
    }
  }
  // a bad Matrix is named before any work: the first argument too
  assert.throws(() => cosineSimilarity(undefined as unknown as Matrix, query), /similarity: a: not a Matrix/);
  assert.throws(() => cosineSimilarity({ data: new Float32Array(2), rows: -1, dim: 2 }, query), /similarity: a: rows and dim must be whole numbers/);
});

test("cosineSimilarity is every pair's cosine", () => {
  const a = random(4, 9, 1);
  const b = random(6, 9, 2);
  const s = cosineSimilarity(a, b);
  assert.is(s.rows, 4);
  assert.is(s.dim, 6);
  const want = bruteForce(a, b, 6);
  for (let i = 0; i < 4; i++) for (const h of want[i]) assert.ok(Math.abs(s.data[i * 6 + h.corpusId] - h.score) < 1e-6);
});

testWithData(test, "search over sentences: an index made once equals embedding then searching, and similarity agrees", async (dataDir) => {
  const { root, name } = await run(dataDir);
  let enc: Encoder;
  {
    await using e = await openEncoder(name, { runsDir: root, device: "cpu" });
    enc = e;
    const corpus = SENTENCES;
    const queries = ["A dog runs .", "Someone plays music .", "A cafe ."];
    const index = await e.index(corpus);
    const viaIndex = await e.search(queries, index, { topK: 3 });
    const viaTexts = await e.search(queries, corpus, { topK: 3 });
    const vq = await e.embed(queries);
    const vc = await e.embed(corpus);
    assert.equal(viaIndex, viaTexts);
    assert.equal(viaIndex, semanticSearch(vq, vc, { topK: 3 }));
    const sim = await e.similarity(queries, vc);
    viaIndex.forEach((hits, i) => hits.forEach((h) => assert.ok(Math.abs(sim.data[i * corpus.length + h.corpusId] - h.score) < 1e-6)));
  }
  await rejects(enc.embed(["x"]), "closed"); // `await using` closed it at the block's end
});

testWithData(test, "bridge search prints the API's hits, as text and as JSON; bad arguments are named", async (dataDir) => {
  const { root, name } = await run(dataDir);
  const corpus = join(root, "corpus.txt");
  writeFileSync(corpus, `${SENTENCES.join("\n")}\n`); // line 3 is empty: skipped, the others keep their line numbers
  const bridge = (...args: string[]) =>
    promisify(execFile)(process.execPath, [bridgeBin, "search", "--run", name, "--corpus", corpus, "--device", "cpu", ...args], {
      env: { ...process.env, BRIDGE_RUNS_DIR: root },
    });
  const queries = ["A dog runs .", "Someone plays music ."];
  const { stdout } = await bridge("--query", queries[0], "--query", queries[1], "--top-k", "3", "--json");
  const out = JSON.parse(stdout) as { run: string; results: { query: string; hits: { line: number; text: string; score: number }[] }[] };
  assert.is(out.run, name);
  const kept = SENTENCES.map((text, i) => ({ text, line: i + 1 })).filter((s) => s.text !== "");
  await using enc = await openEncoder(name, { runsDir: root, device: "cpu" });
  const want = await enc.search(
    queries,
    kept.map((k) => k.text),
    { topK: 3 },
  );
  assert.equal(
    out.results.map((r) => r.query),
    queries,
  );
  out.results.forEach((r, i) => {
    assert.equal(
      r.hits.map((h) => h.line),
      want[i].map((h) => kept[h.corpusId].line),
    );
    r.hits.forEach((h, j) => {
      assert.is(h.text, SENTENCES[h.line - 1]);
      assert.ok(Math.abs(h.score - want[i][j].score) < 1e-6);
    });
  });
  const queryFile = join(root, "queries.txt");
  writeFileSync(queryFile, `${queries[0]}\n`);
  const text = (await bridge("--queries", queryFile, "--top-k", "1")).stdout;
  const top = out.results[0].hits[0];
  assert.is(text.trim(), `query: ${queries[0]}\n  ${top.score.toFixed(4)}  ${corpus}:${top.line}  ${top.text}`);
  for (const [args, fragment] of [
    [["--query", "x", "--queries", queryFile], "mutually exclusive"],
    [[], "--query TEXT"],
    [["--query", "x", "--top-k", "0"], "--top-k 0"],
    [["--query", "x", "--batch-size", "-3"], "--batch-size -3: give a whole number >= 1"],
    [["--query", "x", "--query", " "], "--query number 2 is empty"],
  ] as const)
    await rejects(bridge(...args), fragment);
  await rejects(
    promisify(execFile)(process.execPath, [bridgeBin, "search", "--run", name, "--corpus", join(root, "none.txt"), "--query", "x"], {
      env: { ...process.env, BRIDGE_RUNS_DIR: root },
    }),
    "--corpus",
    "none.txt: no such file",
  );
});

test.run();
