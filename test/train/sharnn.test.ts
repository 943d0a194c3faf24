/**
 * model.arch sha_rnn end to end with the real backend, kept to seconds: a tiny SHA-RNN trains an LM stage and a
 * sentence stage, evaluates and embeds like any run; starting an AWD-LSTM run from it is refused naming both archs.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { openEncoder } from "../../ts/api/index.js";
import { type TrainOptions, train } from "../../ts/commands/train.js";
import { evaluateRun } from "../../ts/eval/evaluate.js";
import { projectRoot } from "../../ts/paths.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { tempFolder, testWithData } from "../helpers.js";

const runsDir = tempFolder("bridge-sharnn-");
const base = (dataDir: string): TrainOptions => ({
  config: join(projectRoot, "configs", "tiny.yaml"),
  set: ["stages.lm.steps=12", "stages.siamese.steps=12", "data.maxTrainPairs=300", "data.maxValidPairs=64"],
  quiet: true,
  dataDir,
  runsDir,
});

test.after(() => rmSync(runsDir, { recursive: true, force: true }));

testWithData(test, "a tiny SHA-RNN run: LM then siamese, eval and embed; an AWD-LSTM run refuses it as init, naming both archs", async (dataDir) => {
  const opts = base(dataDir);
  const r = await train({ ...opts, run: "sha", set: [...(opts.set ?? []), "model.arch=sha_rnn", "model.mem_len=16"] });
  const m = readManifest(runPaths("sha", runsDir));
  assert.is(m.model.arch, "sha_rnn");
  assert.is(m.model.mem_len, 16);
  assert.ok(r.stages[0].metrics.val_perplexity > 1 && Number.isFinite(r.stages[0].metrics.val_perplexity));
  assert.ok(Number.isFinite(r.stages[1].metrics.val_loss));

  const { metrics } = await evaluateRun({ run: "sha", runsDir, dataDir, tasks: ["separation"], limit: 50, log: () => undefined });
  assert.ok(metrics.separation);

  await using enc = await openEncoder("sha", { runsDir, device: "cpu" });
  const v = await enc.embed(["A man plays a guitar.", "Someone is making music."]);
  assert.is(v.rows, 2);
  assert.ok(v.dim > 0 && Array.from(v.data).every(Number.isFinite));

  let err: Error | null = null;
  await train({ ...opts, run: "awd-from-sha", init: "sha" }).catch((e: Error) => (err = e));
  assert.ok(err, "an AWD-LSTM started from a SHA-RNN");
  assert.match((err as unknown as Error).message, "arch sha_rnn vs awd_lstm");
});

test.run();
