/**
 * `bridge embed`: one vector per input line in input order, the same vector whatever the batch
 * size or chunking (the backend masks padding), JSONL fields, explicit truncation, and the CLI.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Table, tableFromIPC } from "apache-arrow";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { embedFile } from "../../ts/api/embedFile.js";
import { bridgeBin, tempFolder, testWithData } from "../helpers.js";
import { EMBED_SENTENCES as SENTENCES, sharedRun } from "./fixtures.js";

/**
 * Batched float32 matrix products round differently for different batch shapes (BLAS blocking):
 * "identical" means equal to float32 rounding noise (seen: up to 6e-8), far below any real effect
 * of padding or batch-mates (those show up at 1e-2 and more).
 */
const TOLERANCE = 1e-6;

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = a.length === b.length ? 0 : Number.POSITIVE_INFINITY;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function vectors(t: Table): Float32Array[] {
  const col = t.getChild("vector")!;
  return Array.from({ length: t.numRows }, (_, i) => Float32Array.from(col.get(i) as ArrayLike<number>));
}

{
  testWithData(test, "one vector per line, in input order, identical whatever the batch size", async (dataDir) => {
    const { root, name } = await sharedRun(dataDir);
    const input = join(root, "sentences.txt");
    writeFileSync(input, `${SENTENCES.join("\n")}\n`);
    const outs: Table[] = [];
    for (const [batchSize, chunkRows] of [
      [1, 100],
      [4, 3],
      [128, 8192],
    ]) {
      const output = join(root, `emb-${batchSize}.arrow`);
      const r = await embedFile({ run: name, runsDir: root, input, output, batchSize, chunkRows, device: "cpu" });
      assert.is(r.rows, SENTENCES.length);
      outs.push(tableFromIPC(readFileSync(output)));
    }
    const [one] = outs;
    assert.equal(
      Array.from({ length: one.numRows }, (_, i) => one.getChild("line")!.get(i)),
      SENTENCES.map((_, i) => i + 1),
    );
    assert.equal(
      Array.from({ length: one.numRows }, (_, i) => one.getChild("text")!.get(i)),
      SENTENCES,
    );
    const ref = vectors(one);
    for (const t of outs.slice(1)) {
      vectors(t).forEach((v, i) => assert.ok(maxDiff(v, ref[i]) <= TOLERANCE, `line ${i + 1}: vectors differ by ${maxDiff(v, ref[i])} between batch sizes`));
    }
    // the same sentence gets the same vector wherever it stands (lines 2 and 6)
    assert.ok(maxDiff(ref[1], ref[5]) <= TOLERANCE);
    assert.ok(maxDiff(ref[0], ref[1]) > 0.01, "different sentences, different vectors");
  });

  testWithData(test, "JSONL --field, --max-len truncation counted", async (dataDir) => {
    const { root, name } = await sharedRun(dataDir);
    const input = join(root, "sentences.jsonl");
    writeFileSync(input, `${SENTENCES.map((s, i) => JSON.stringify({ id: i, sentence: s })).join("\n")}\n`);
    const output = join(root, "emb-jsonl.arrow");
    const r = await embedFile({ run: name, runsDir: root, input, output, field: "sentence", maxLen: 6, device: "cpu" });
    assert.is(r.rows, SENTENCES.length);
    assert.ok(r.truncated >= 4, `${r.truncated} texts cut at 6 tokens`);
    assert.is(r.maxLen, 6, "the cut is reported (was: 'cut at --max-len undefined' without the flag)");
    assert.ok(r.truncatedTokens > r.truncated);
    await embedFile({ run: name, runsDir: root, input, output: join(root, "bad.arrow"), field: "missing", device: "cpu" }).then(
      () => assert.unreachable("a missing field must fail"),
      (e: Error) => assert.match(e.message, 'no field "missing"'),
    );
    await embedFile({ run: name, runsDir: root, input, output: join(root, "bad.arrow"), field: "id", device: "cpu" }).then(
      () => assert.unreachable("a number field must fail"),
      (e: Error) => assert.match(e.message, `${input}:1: field "id" holds a number, not a text`),
    );
  });

  testWithData(test, "--output that is the input, or inside a run folder, is refused before anything is written", async (dataDir) => {
    const { root, name } = await sharedRun(dataDir);
    const input = join(root, "keep.txt");
    writeFileSync(input, "A dog runs .\n");
    const link = join(root, "keep-link.txt");
    rmSync(link, { force: true });
    symlinkSync(input, link);
    for (const output of [input, link, join(root, ".", "keep.txt")]) {
      await embedFile({ run: name, runsDir: root, input, output, device: "cpu" }).then(
        () => assert.unreachable(`--output ${output} was accepted`),
        (e: Error) => assert.match(e.message, "is the input file"),
      );
    }
    assert.is(readFileSync(input, "utf8"), "A dog runs .\n");
    const ckptDir = join(root, name, "checkpoints");
    const ckpt = join(ckptDir, readdirSync(ckptDir)[0]);
    const before = readFileSync(ckpt);
    await embedFile({ run: name, runsDir: root, input, output: ckpt, device: "cpu" }).then(
      () => assert.unreachable("a run's checkpoint was accepted as --output"),
      (e: Error) => assert.match(e.message, `lies inside the run folder ${join(root, name)}`),
    );
    assert.ok(readFileSync(ckpt).equals(before), "the checkpoint changed");
    // --force writes inside a run folder on purpose (never over the input)
    const inside = join(root, name, "vectors-forced.arrow");
    const r = await embedFile({ run: name, runsDir: root, input, output: inside, device: "cpu", force: true });
    assert.is(r.rows, 1);
    rmSync(inside);
  });

  testWithData(test, "--output: a device or a file that is not Arrow is refused; a link's target is written, the link kept", async (dataDir) => {
    const { root, name } = await sharedRun(dataDir);
    const input = join(root, "devices.txt");
    writeFileSync(input, "A dog runs .\n");
    await embedFile({ run: name, runsDir: root, input, output: "/dev/null", device: "cpu" }).then(
      () => assert.unreachable("/dev/null was accepted as --output"),
      (e: Error) => assert.match(e.message, "--output /dev/null: is not a regular file (a device)"),
    );
    assert.ok(statSync("/dev/null").isCharacterDevice());
    const precious = join(root, "precious.txt");
    writeFileSync(precious, "precious\n");
    await embedFile({ run: name, runsDir: root, input, output: precious, device: "cpu" }).then(
      () => assert.unreachable("a text file was overwritten"),
      (e: Error) => assert.match(e.message, `--output ${precious}: exists and is not an Arrow file`),
    );
    assert.is(readFileSync(precious, "utf8"), "precious\n");
    // an Arrow file (a re-run's own output) is replaced; through a link, its target is, and the link stays one
    const target = join(root, "target.arrow");
    await embedFile({ run: name, runsDir: root, input, output: target, device: "cpu" });
    const link = join(root, "link.arrow");
    rmSync(link, { force: true });
    symlinkSync(target, link);
    writeFileSync(input, "A dog runs .\nA cat sleeps .\n");
    assert.is((await embedFile({ run: name, runsDir: root, input, output: link, device: "cpu" })).rows, 2);
    assert.ok(lstatSync(link).isSymbolicLink(), "the link was replaced by a file");
    assert.is(tableFromIPC(readFileSync(target)).numRows, 2);
    // --force replaces a file that is not Arrow, on purpose
    assert.is((await embedFile({ run: name, runsDir: root, input, output: precious, device: "cpu", force: true })).rows, 2);
  });

  testWithData(test, "a missing --input is a clear error naming the file, not a bare ENOENT", async (dataDir) => {
    const { root, name } = await sharedRun(dataDir);
    const missing = join(root, "no-such-input.txt");
    await embedFile({ run: name, runsDir: root, input: missing, output: join(root, "never.arrow"), device: "cpu" }).then(
      () => assert.unreachable("a missing input must fail"),
      (e: Error) => {
        assert.match(e.message, `--input ${missing}: no such file`);
        assert.not.match(e.message, "ENOENT");
      },
    );
    assert.not.ok(existsSync(join(root, "never.arrow")));
    // an empty input, a folder as --output, a batch size of 0: refused before the run is even looked up
    const empty = join(root, "empty.txt");
    writeFileSync(empty, "");
    const text = join(root, "one.txt");
    writeFileSync(text, "A dog runs .\n");
    for (const [opts, message] of [
      [{ input: empty, output: join(root, "never.arrow") }, `--input ${empty}: no texts to embed (the file is empty)`],
      [{ input: text, output: root }, `--output ${root}: is a folder; give a file path, e.g. ${join(root, "vectors.arrow")}`],
      [{ input: text, output: join(root, "never.arrow"), batchSize: 0 }, "--batch-size 0: a whole number of texts a batch, 1 or more"],
      [{ input: text, output: join(root, "never.arrow"), maxLen: 0 }, "--max-len 0: a whole number of tokens a text, 2 or more"],
      [{ input: text, output: join(text, "out.arrow") }, `--output ${join(text, "out.arrow")}: ${text} is a file, not a folder`],
    ] as const) {
      await embedFile({ run: "no-such-run", runsDir: root, device: "cpu", ...opts }).then(
        () => assert.unreachable(`accepted ${JSON.stringify(opts)}`),
        (e: Error) => assert.match(e.message, message),
      );
    }
    assert.not.ok(existsSync(join(root, "never.arrow")));
  });

  testWithData(test, "the CLI without --run embeds with the latest run", async (dataDir) => {
    const { dir } = await sharedRun(dataDir);
    const only = tempFolder("bridge-embed-latest-");
    try {
      cpSync(dir, join(only, "solo"), { recursive: true });
      const input = join(only, "in.txt");
      writeFileSync(input, "A dog runs .\n");
      const output = join(only, "out.arrow");
      await promisify(execFile)(process.execPath, [bridgeBin, "embed", "--input", input, "--output", output], {
        env: { ...process.env, BRIDGE_RUNS_DIR: only },
      });
      const t = tableFromIPC(readFileSync(output));
      assert.is(t.numRows, 1);
      assert.is(t.schema.metadata.get("bridge.run"), "solo");
    } finally {
      rmSync(only, { recursive: true, force: true });
    }
  });

  testWithData(test, "the CLI: npx bridge embed --run NAME --input FILE --output FILE.arrow", async (dataDir) => {
    const { root, name } = await sharedRun(dataDir);
    const input = join(root, "cli.txt");
    writeFileSync(input, "A dog runs .\n\nA cat sleeps .\n   \n");
    const output = join(root, "cli.arrow");
    const { stderr } = await promisify(execFile)(process.execPath, [bridgeBin, "embed", "--run", name, "--input", input, "--output", output], {
      env: { ...process.env, BRIDGE_RUNS_DIR: root },
    });
    assert.match(stderr, "wrote 4 vectors");
    assert.match(stderr, "2 of the texts are empty (a row each, the empty sentence's vector)");
    assert.is(tableFromIPC(readFileSync(output)).numRows, 4);
  });
}

test.run();
