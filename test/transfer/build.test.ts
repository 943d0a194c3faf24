/**
 * init.build: a recipe whose pretrained LM (init.from, a run name) does not exist yet trains it first with the named
 * config, then starts from it; a second recipe reuses it without training it again (real backend, tiny sizes).
 */
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { stringify } from "yaml";
import { train } from "../../ts/commands/train.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { refused, tempFolder, testWithData } from "../helpers.js";

const data = { pairs: "snli", maxTrainPairs: 300, maxValidPairs: 60 };
const model = { preset: "tiny", head_hidden: 16 };

test("init.build needs init.from to be a run name", () => {
  refused({ init: { from: "fastai:wt103-fwd", build: "pretrain.yaml" }, stages: [{ objective: "lm" }] }, "init.from", "from must then be a run name");
});

testWithData(test, "init.build trains the pretrained LM once, on first use; the recipe starts from it; a second recipe reuses it", async (dataDir) => {
  const dir = tempFolder("bridge-init-build-");
  try {
    writeFileSync(
      join(dir, "lm.yaml"),
      stringify({ seed: 1, threads: 1, data, vocab: { minFreq: 1, maxSize: 3000 }, model, stages: [{ objective: "lm", steps: 6, batchSize: 8, bptt: 16 }] }),
    );
    writeFileSync(
      join(dir, "recipe.yaml"),
      stringify({
        seed: 2,
        threads: 1,
        data,
        vocab: { minFreq: 2, maxSize: 1000 },
        model,
        init: { from: "tiny-lm", build: "lm.yaml" },
        stages: [{ objective: "siamese", steps: 4, batchSize: 16 }],
      }),
    );
    const runsDir = join(dir, "runs");
    const opts = { config: join(dir, "recipe.yaml"), quiet: true, dataDir, runsDir };
    await train({ ...opts, run: "first" });
    const lm = runPaths("tiny-lm", runsDir);
    assert.ok(
      readManifest(lm).stages.every((s) => s.completed),
      "the pretrained LM was trained to the end",
    );
    const builtAt = statSync(lm.manifest).mtimeMs;
    const inits = (run: string) =>
      readFileSync(runPaths(run, runsDir).log, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; from?: string; copied?: number })
        .filter((e) => e.type === "init");
    const first = inits("first");
    assert.is(first.length, 1);
    assert.is(first[0].from, "tiny-lm");
    assert.ok((first[0].copied ?? 0) > 0, "embedding rows were copied from the built LM");
    await train({ ...opts, run: "second" });
    assert.is(statSync(lm.manifest).mtimeMs, builtAt, "the second recipe reused the LM, untouched");
    assert.is(inits("second").length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
