/**
 * Groups of sentences with one meaning (Multi30K's captions): their batches (whole groups for supcon, one pair of
 * each group an epoch for contrastive; deterministic per seed and epoch), the run's data (held out by whole group),
 * the checks that tie an objective to a dataset kind, and a multi-task stage with groups tasks SIGKILLed, resumed
 * and evaluated.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { stringify } from "yaml";
import { train } from "../../ts/commands/train.js";
import { validateConfig } from "../../ts/config/load.js";
import { groupBatchPlan, groupPairs, groupsPerBatch, groupTensors, largestGroup, type NumericalisedGroups, selectGroups } from "../../ts/data/groups.js";
import { evaluateRun } from "../../ts/eval/evaluate.js";
import { describeTrainedOn } from "../../ts/eval/trainedOn.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { loadTrainingData } from "../../ts/train/data.js";
import { stageData } from "../../ts/train/stages.js";
import { killingBackend, refused, tempFolder, testWithData } from "../helpers.js";

/** Groups of the given sizes; sentence k of group g is the tokens [g, k] (so a row names its group). */
function groupsOf(sizes: number[]): NumericalisedGroups {
  const groupOffsets = new Int32Array(sizes.length + 1);
  const offsets: number[] = [0];
  const ids: number[] = [];
  sizes.forEach((n, g) => {
    for (let k = 0; k < n; k++) {
      ids.push(g, k);
      offsets.push(ids.length);
    }
    groupOffsets[g + 1] = groupOffsets[g] + n;
  });
  return { kind: "groups", size: sizes.length, sentences: { offsets: Int32Array.from(offsets), ids: Int32Array.from(ids) }, groupOffsets };
}

test("groupBatchPlan: whole groups, the same number a batch and of batches every epoch, every group once, seeded per epoch", () => {
  const g = groupsOf([5, 5, 3, 5, 2, 5, 4, 5, 5, 1]);
  assert.is(largestGroup(g), 5);
  assert.is(groupsPerBatch(g, 12), 2, "12 sentences hold two groups of up to 5 whatever the draw");
  const plan = groupBatchPlan(g, 2, { seed: 1, epoch: 0 });
  const seen = plan.flatMap((b) => [...b]).sort((a, b) => a - b);
  assert.equal(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const b of plan) assert.ok([...b].reduce((a, r) => a + g.groupOffsets[r + 1] - g.groupOffsets[r], 0) <= 12);
  assert.equal(groupBatchPlan(g, 2, { seed: 1, epoch: 0 }), plan);
  for (let epoch = 1; epoch < 6; epoch++) assert.is(groupBatchPlan(g, 2, { seed: 1, epoch }).length, plan.length, "the count never moves");
  assert.not.equal(groupBatchPlan(g, 2, { seed: 1, epoch: 1 }), plan);
  assert.equal(
    groupBatchPlan(g, 3, null).map((b) => [...b]),
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]],
  );
});

test("groupTensors: each sentence's group is its group's place in the batch; groupPairs: two sentences of one group", () => {
  const g = groupsOf([3, 2, 4]);
  const t = groupTensors(g, Int32Array.from([2, 0]), 0);
  assert.equal([...(t.group.data as Int32Array)], [0, 0, 0, 0, 1, 1, 1]);
  assert.equal(t.x.shape, [7, 2]);
  assert.equal(
    [...(t.x.data as Int32Array)].filter((_, i) => i % 2 === 0),
    [2, 2, 2, 2, 0, 0, 0],
    "first token: the group",
  );
  for (let epoch = 0; epoch < 20; epoch++) {
    const { anchor, positive } = groupPairs(g, 5, epoch);
    for (let k = 0; k < g.size; k++) {
      assert.ok(anchor[k] !== positive[k], "two different sentences");
      for (const r of [anchor[k], positive[k]]) assert.ok(r >= g.groupOffsets[k] && r < g.groupOffsets[k + 1], "both of group k");
    }
  }
  assert.not.equal(groupPairs(g, 5, 0), groupPairs(g, 5, 1), "drawn afresh each epoch");
  const cut = selectGroups(g, [2], 1);
  assert.equal([...cut.groupOffsets], [0, 4]);
  assert.equal([...cut.sentences.ids], [2, 2, 2, 2], "each sentence cut to maxLen");
});

test("config: supcon is a task objective (groups), not a stage's own", () => {
  refused({ stages: [{ objective: "supcon" }] }, "stages.0.objective", "supcon trains on groups of sentences, not on data.pairs");
  const ok = validateConfig({ stages: [{ tasks: [{ dataset: "multi30k", objective: "supcon", options: { temperature: 0.1 } }] }] });
  assert.is(ok.stages[0].tasks?.[0].objective, "supcon");
});

const tiny = (tasks: unknown[], extra: Record<string, unknown> = {}) => ({
  seed: 5,
  threads: 1,
  data: { pairs: "snli", maxTrainPairs: 400, maxValidPairs: 100 },
  vocab: { minFreq: 2, maxSize: 1500 },
  model: { preset: "tiny", head_hidden: 16, pool: "mean" },
  stages: [{ name: "mt", steps: 30, batchSize: 24, checkpointEvery: 12, evalEvery: 15, tasks, ...extra }],
});

testWithData(test, "multi30k as a task: held out by whole group, recorded as groups, and only with an objective that trains on groups", async (dataDir) => {
  const cfg = validateConfig(tiny([{ dataset: "multi30k", objective: "supcon" }]));
  const data = await loadTrainingData(cfg, { dataDir });
  const g = data.groups.get("multi30k");
  assert.ok(g, "the groups were loaded");
  const key = (s: NumericalisedGroups, k: number) =>
    [...s.sentences.ids.subarray(s.sentences.offsets[s.groupOffsets[k]], s.sentences.offsets[s.groupOffsets[k] + 1])].join(",");
  assert.ok(g.train.size > 20_000 && g.valid.size > 2_000, `${g.train.size} train, ${g.valid.size} valid groups`);
  // 27,072 groups in the shared copy, of which 2,606 hold an evaluation sentence up to case, spacing and punctuation
  // (2,587 an SNLI dev sentence: the copy was cleaned of exact matches only, and SNLI's text is tokenised)
  assert.is(g.train.size + g.valid.size, 27_072 - 2_606);
  const trainFirst = new Set(Array.from({ length: g.train.size }, (_, k) => key(g.train, k)));
  const shared = Array.from({ length: g.valid.size }, (_, k) => key(g.valid, k)).filter((k) => trainFirst.has(k));
  assert.ok(shared.length < 20, `held-out groups' first captions also open ${shared.length} training groups (identical captions only)`);
  assert.equal(data.plan.tasks, [{ split: "multi30k:train", rows: g.train.size, heldOut: g.valid.size, unit: "groups", evalOverlap: 2_606 }]);
  const small = validateConfig({
    ...tiny([{ dataset: "multi30k", objective: "supcon" }]),
    stages: [{ tasks: [{ dataset: "multi30k", objective: "supcon" }], batchSize: 8 }],
  });
  const smallData = await loadTrainingData(small, { dataDir });
  assert.throws(
    () => stageData(small.stages[0], 0, smallData, 5),
    /task multi30k-supcon \(supcon\): batchSize 8 holds fewer than two whole groups of up to 5 sentences; supcon needs other groups in the batch as negatives: batchSize 10 at least/,
  );
  for (const [tasks, message] of [
    [[{ dataset: "multi30k", objective: "siamese" }], /stages\[0\]\.tasks\[0\]\.dataset: multi30k:train is a groups dataset; siamese needs a pair dataset/],
    [
      [{ dataset: "sick:train", objective: "supcon" }],
      /stages\[0\]\.tasks\[0\]\.dataset: sick:train is a pairs dataset; supcon needs a groups dataset \(e\.g\. multi30k\)/,
    ],
    [[{ dataset: "snli", objective: "supcon" }], /snli is data\.pairs \(pairs\); supcon needs a groups dataset/],
  ] as const) {
    try {
      await loadTrainingData(validateConfig(tiny([...tasks])), { dataDir });
      assert.unreachable(`accepted ${JSON.stringify(tasks)}`);
    } catch (e) {
      assert.match((e as Error).message, message);
    }
  }
});

testWithData(test, "a stage with groups tasks SIGKILLed mid-stage and resumed ends exactly as the uninterrupted run", async (dataDir) => {
  const dir = tempFolder("bridge-groups-");
  try {
    const config = join(dir, "groups.yaml");
    const tasks = [
      { dataset: "multi30k", objective: "supcon" },
      { dataset: "multi30k", objective: "contrastive", name: "m30k-pairs", weight: 0.5 },
      { dataset: "snli", objective: "siamese" },
    ];
    writeFileSync(config, stringify(tiny(tasks, { options: { temperature: 0.1 } })));
    const opts = { config, quiet: true, dataDir, runsDir: dir };
    await train({ ...opts, run: "whole" });
    let err: Error | null = null;
    await train({ ...opts, run: "killed", connect: killingBackend(0, 17) }).catch((e: Error) => (err = e));
    assert.ok(err, "the first attempt should fail");
    await train({ run: "killed", resume: true, quiet: true, dataDir, runsDir: dir });
    const steps = (run: string) =>
      readFileSync(runPaths(run, dir).log, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; step: number; task?: string; loss: number })
        .filter((e) => e.type === "train")
        .map((e) => [e.step, e.task, e.loss]);
    const [k, w] = [steps("killed"), steps("whole")];
    const first = w.findIndex((x, i) => JSON.stringify(x) !== JSON.stringify(k[i]));
    assert.is(first, -1, `first differing step: ${JSON.stringify(w[first])} (whole) vs ${JSON.stringify(k[first])} (resumed)`);
    assert.equal(new Set(w.map((s) => s[1])), new Set(["multi30k-supcon", "m30k-pairs", "snli-siamese"]));
    const metrics = readManifest(runPaths("whole", dir)).stages[0].metrics;
    for (const m of ["val_accuracy/multi30k-supcon", "val_accuracy/m30k-pairs", "val_accuracy/snli-siamese"]) assert.ok(m in metrics, `${m} reported`);
    assert.equal(readManifest(runPaths("killed", dir)).stages[0].metrics, metrics);
    // and evaluated as any run: its trained-on line names the groups, its vectors separate like any
    const evaluation = await evaluateRun({ run: "whole", runsDir: dir, dataDir, device: "cpu", tasks: ["separation"], limit: 200, log: () => undefined });
    assert.ok(evaluation.metrics.separation && Number.isFinite(evaluation.metrics.separation.roc_auc));
    assert.match(describeTrainedOn(evaluation.metrics.trained_on ?? []), /multi30k:train \(groups, \d+ groups, \d+ groups held out\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
