/**
 * model.dual_lm (ULMFiT's forward + backward LMs as one sentence encoder): the config's rules, then the whole path
 * through the real `train` and `embed`: a tiny forward LM run and a tiny backward LM run (a few steps each, on
 * different amounts of text so their vocabularies differ), a siamese run with init: { from: FWD, backward: BWD }
 * (each source's vocabulary matched on its own), its vectors from `embed`, and a forward LM given as `backward`
 * refused by name.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { embedFile } from "../../ts/api/embedFile.js";
import { train } from "../../ts/commands/train.js";
import { validateConfig } from "../../ts/config/load.js";
import { Vocab } from "../../ts/data/vocab.js";
import { runPaths } from "../../ts/run/manifest.js";
import { tempDir } from "../data/helpers.js";
import { testWithData } from "../helpers.js";

const siamese = [{ objective: "siamese" }];

test("config: dual_lm refuses an lm stage, bidir / backwards, and init.backward needs dual_lm", () => {
  const ok = validateConfig({ stages: siamese, model: { dual_lm: true }, init: { from: "fwd", backward: "bwd" } });
  assert.equal(ok.init, { from: "fwd", backward: "bwd" });
  assert.throws(
    () => validateConfig({ stages: [{ objective: "lm" }], model: { dual_lm: true } }),
    /stages\.0\.objective.*dual_lm model trains sentence objectives only.*init: \{ from: FORWARD_RUN, backward: BACKWARD_RUN \}/s,
  );
  assert.throws(() => validateConfig({ stages: siamese, model: { dual_lm: true, bidir: true } }), /model\.bidir.*drop bidir/s);
  assert.throws(() => validateConfig({ stages: siamese, model: { dual_lm: true, backwards: true } }), /model\.backwards.*drop backwards/s);
  assert.throws(() => validateConfig({ stages: siamese, init: { from: "fwd", backward: "bwd" } }), /init\.backward.*set model\.dual_lm: true/s);
});

/** A tiny run's config: a few steps of `objective` on the first SNLI dev pairs. */
function tinyConfig(objective: "lm" | "siamese", pairs: number, model: Record<string, unknown>, init?: Record<string, string>): Record<string, unknown> {
  return {
    seed: 1,
    threads: 1,
    data: { pairs: "snli", maxTrainPairs: pairs, maxValidPairs: 40 },
    vocab: { minFreq: 2, maxSize: 2000 },
    model: { preset: "tiny", head_hidden: 16, ...model },
    ...(init ? { init } : {}),
    stages: [{ objective, steps: 4, batchSize: 16, bptt: 20, lr: { max: 0.01, schedule: "constant" } }],
  };
}

interface InitEvent {
  type: string;
  from: string;
  new: number;
  copied: number;
  loaded: number;
  source: { direction: string };
  backward?: { from: string; new: number; copied: number; loaded: number; source: { direction: string } };
}

/** Words of `vocab` the source run's vocabulary lacks: the rows init starts from the mean. */
async function newWords(vocab: Vocab, sourceRunDir: string): Promise<number> {
  const known = new Set((await Vocab.load(join(sourceRunDir, "vocab.json"))).itos);
  return vocab.itos.filter((t) => !known.has(t)).length;
}

testWithData(test, "a forward and a backward LM run start a dual_lm siamese run, whose vectors embed gives", async (dataDir) => {
  const { dir, cleanup } = tempDir();
  try {
    const runsDir = join(dir, "runs");
    const run = async (name: string, cfg: Record<string, unknown>) => {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(cfg));
      return train({ config: file, run: name, runsDir, dataDir, quiet: true });
    };
    const fwd = await run("fwd", tinyConfig("lm", 300, {}));
    const bwd = await run("bwd", tinyConfig("lm", 150, { backwards: true }));
    const both = { from: join(runsDir, "fwd"), backward: join(runsDir, "bwd") };
    const dual = await run("dual", tinyConfig("siamese", 400, { dual_lm: true }, both));
    assert.is(dual.stages.length, 1);

    const paths = runPaths("dual", runsDir);
    const vocab = await Vocab.load(paths.vocab);
    const events = readFileSync(paths.log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as InitEvent);
    const init = events.find((e) => e.type === "init");
    assert.ok(init?.backward, "the init event names both sources");
    assert.is(init.source.direction, "forward");
    assert.is(init.backward.source.direction, "backward");
    // each source's vocabulary matched on its own: its unknown words start from its mean row
    assert.is(init.new, await newWords(vocab, fwd.dir));
    assert.is(init.backward.new, await newWords(vocab, bwd.dir));
    assert.ok(init.backward.new > init.new, `the backward LM saw less text: ${init.backward.new} vs ${init.new} new words`);
    assert.is(init.copied + init.new, vocab.size);
    assert.ok(init.loaded > 0 && init.loaded === init.backward.loaded, "every encoder tensor of both halves");

    const input = join(dir, "sentences.txt");
    writeFileSync(input, "A man plays a guitar.\nSomeone is making music.\n");
    const output = join(dir, "vectors.arrow");
    const r = await embedFile({ run: "dual", runsDir, input, output, device: "cpu" });
    const perEncoder = 3 * 16; // concat pooling ([last, max, mean]) over the tiny preset's 16-d top layer
    assert.is(r.rows, 2);
    assert.is(r.dim, 2 * perEncoder, "forward and backward vectors side by side");
    const col = tableFromIPC(readFileSync(output)).getChild("vector")!;
    const vecs = [0, 1].map((i) => Float32Array.from(col.get(i) as ArrayLike<number>));
    for (const v of vecs) {
      assert.is(v.length, 2 * perEncoder);
      assert.ok(v.every(Number.isFinite));
      const [f, b] = [v.subarray(0, perEncoder), v.subarray(perEncoder)];
      assert.ok(
        f.some((x, i) => Math.abs(x - b[i]) > 1e-3),
        "the two encoders give different halves",
      );
    }
    assert.ok(
      vecs[0].some((x, i) => Math.abs(x - vecs[1][i]) > 1e-3),
      "two sentences, two vectors",
    );

    // a forward LM given as the backward one is refused by name, before any training
    const wrong = await run("wrong", tinyConfig("siamese", 400, { dual_lm: true }, { from: both.from, backward: both.from })).catch((e: unknown) => e);
    assert.instance(wrong, Error);
    assert.match(String((wrong as Error).message), /init\.backward \(the backward LM\).*direction forward vs backward/);
  } finally {
    cleanup();
  }
});

test.run();
