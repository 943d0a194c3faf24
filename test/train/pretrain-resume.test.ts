/**
 * Pretraining survives being stopped: an LM-only run on WikiExtractor text (a tiny article tree, read through
 * `format: wikiextractor`) whose backend is SIGKILLed mid-stage resumes with --resume and ends with exactly the
 * weights of an uninterrupted run (the final checkpoints are the same bytes).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { train } from "../../ts/commands/train.js";
import { backendEnv, backendPython, projectRoot } from "../../ts/paths.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { killingBackend, tempFolder, testWithData } from "../helpers.js";

const tmp = tempFolder("bridge-pretrain-");
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** 40 articles over two wiki_NN files, as WikiExtractor writes them. */
function wikiTree(): string {
  const root = join(tmp, "wiki");
  mkdirSync(join(root, "AA"), { recursive: true });
  const words = "the river flows through a valley where farmers grow wheat and barley near old stone bridges".split(" ");
  for (const f of [0, 1]) {
    let text = "";
    for (let a = 0; a < 20; a++) {
      const id = f * 20 + a;
      const paragraphs = Array.from(
        { length: 4 },
        (_, p) => `${Array.from({ length: 25 }, (_, w) => words[(id * 7 + p * 3 + w * 5) % words.length]).join(" ")}.`,
      );
      text += `<doc id="${id}" url="https://en.wikipedia.org/wiki?curid=${id}" title="Article ${id}">\nArticle ${id}\n\n${paragraphs.join("\n")}\n</doc>\n`;
    }
    writeFileSync(join(root, "AA", `wiki_0${f}`), text);
  }
  return root;
}

/** Every tensor and value of two checkpoints equal (their zip bytes differ: torch names the archive's folder after the temp file). */
const SAME_CHECKPOINT = `
import sys, torch
a, b = (torch.load(p, weights_only=True) for p in sys.argv[1:3])
def same(x, y):
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y))
    if torch.is_tensor(x):
        return torch.is_tensor(y) and x.dtype == y.dtype and torch.equal(x, y)
    return x == y
print("same" if same(a, b) else "different")
`;
const sameCheckpoint = (a: string, b: string) =>
  spawnSync(backendPython(), ["-c", SAME_CHECKPOINT, a, b], { encoding: "utf8", env: backendEnv() }).stdout.trim();

testWithData(test, "a pretraining run killed mid-stage resumes to the same weights as an uninterrupted one", async (dataDir) => {
  const config = join(tmp, "pretrain-tiny.yaml");
  writeFileSync(
    config,
    [
      `extends: ${join(projectRoot, "configs", "tiny.yaml")}`,
      "data:",
      `  datasets: [{ name: tinywiki, format: wikiextractor, files: { train: ${wikiTree()} } }]`,
      "  lmText: [tinywiki]",
      "  lmHoldout: 0.1",
      "stages: [{ name: lm, objective: lm, steps: 30, batchSize: 8, bptt: 12, checkpointEvery: 7, evalEvery: 15 }]",
      "",
    ].join("\n"),
  );
  const runsDir = join(tmp, "runs");
  const base = { config, quiet: true, dataDir, runsDir };
  await train({ ...base, run: "whole" });
  const err = await train({ ...base, run: "killed", connect: killingBackend(0, 18) }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, /backend died during stage 1\/1 \(lm\)/);
  await train({ run: "killed", resume: true, quiet: true, dataDir, runsDir });
  const final = (run: string) => join(runPaths(run, runsDir).dir, readManifest(runPaths(run, runsDir)).finalCheckpoint!);
  assert.is(sameCheckpoint(final("killed"), final("whole")), "same", "the resumed run's weights differ from the uninterrupted run's");
  assert.equal(readManifest(runPaths("killed", runsDir)).stages[0].metrics, readManifest(runPaths("whole", runsDir)).stages[0].metrics);
  const log = readFileSync(runPaths("killed", runsDir).log, "utf8");
  assert.match(log, /"type":"resume"/);
});

test.run();
