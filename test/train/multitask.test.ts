/**
 * Multi-task stages: the step sampler (weights respected, deterministic per seed, each task's batches in order),
 * the config's validation of tasks, and the data a multi-task stage trains on (real SNLI, SICK and STS-B files).
 */

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { stringify } from "yaml";
import { startBackend } from "../../ts/backend/client.js";
import type { TrainStepsArgs } from "../../ts/backend/ops.js";
import type { JsonObject } from "../../ts/backend/protocol.js";
import { train } from "../../ts/commands/train.js";
import { loadConfig, validateConfig } from "../../ts/config/load.js";
import { type Config, stageMetrics, stageSpec } from "../../ts/config/schema.js";
import { evaluateRun, METRICS_FILE } from "../../ts/eval/evaluate.js";
import { RunModel } from "../../ts/eval/runModel.js";
import { isSupervised } from "../../ts/eval/trainedOn.js";
import { projectRoot } from "../../ts/paths.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import type { TrainBackend } from "../../ts/train/context.js";
import { idfWeights, loadTrainingData, trainingSentences } from "../../ts/train/data.js";
import { apportion, taskSchedule } from "../../ts/train/multitask.js";
import { stageData } from "../../ts/train/stages.js";
import { killingBackend, refused, tempFolder, testWithData } from "../helpers.js";

test("apportion: shares proportional to the weights, summing to the total, every task at least one", () => {
  assert.equal(apportion(10, [1, 1]), [5, 5]);
  assert.equal(apportion(9, [2, 1]), [6, 3]);
  assert.equal(
    apportion(10, [1, 1, 1]).reduce((a, b) => a + b),
    10,
  );
  assert.equal(apportion(3, [1000, 1, 1]), [1, 1, 1]);
  assert.equal(apportion(100, [3, 1]), [75, 25]);
});

test("taskSchedule: weights respected per epoch, deterministic per seed, each task's batches in order across epochs", () => {
  const counts = [40, 10]; // task 0 has 40 batches an epoch, task 1 ten
  const weights = [1, 1];
  const e0 = taskSchedule(counts, weights, 7, 0);
  assert.is(e0.length, 50);
  assert.is(e0.filter((d) => d.task === 0).length, 25);
  assert.is(e0.filter((d) => d.task === 1).length, 25);
  assert.equal(taskSchedule(counts, weights, 7, 0), e0, "same seed and epoch: the same order");
  assert.not.equal(taskSchedule(counts, weights, 8, 0), e0, "another seed: another order");
  // task 1 (10 batches, 25 draws an epoch) cycles through its own epochs: 0..9 of its epoch 0, 0..9 of 1, 0..4 of 2, ...
  const t1 = [0, 1, 2].flatMap((e) => taskSchedule(counts, weights, 7, e).filter((d) => d.task === 1));
  t1.forEach((d, k) => {
    assert.is(d.taskEpoch, Math.floor(k / 10));
    assert.is(d.batch, k % 10);
  });
  // tasks interleave (not all of one task first)
  const firstHalf = e0.slice(0, 25).filter((d) => d.task === 1).length;
  assert.ok(firstHalf > 5 && firstHalf < 20, `interleaved: ${firstHalf} of task 1 in the first half`);
});

test("config: a stage gives objective or tasks; task objectives train on pairs; task names distinct; metrics are the tasks'", () => {
  refused({ stages: [{ name: "x" }] }, "needs either objective", "got neither");
  refused({ stages: [{ objective: "siamese", tasks: [{ dataset: "snli", objective: "siamese" }] }] }, "not both");
  refused(
    { stages: [{ tasks: [{ dataset: "snli", objective: "lm" }] }] },
    "stages.0.tasks.0.objective",
    "a task trains on sentence pairs or groups; lm does not",
  );
  refused(
    {
      stages: [
        {
          tasks: [
            { dataset: "stsb:train", objective: "cosent" },
            { dataset: "stsb", objective: "cosent" },
          ],
        },
      ],
    },
    'named "stsb-cosent"',
  );
  refused(
    { stages: [{ tasks: [{ dataset: "snli", objective: "contrastive" }], earlyStopping: { metric: "val_perplexity" } }] },
    "never reports val_perplexity",
  );
  const c = validateConfig({
    stages: [
      {
        tasks: [
          { dataset: "snli", objective: "contrastive" },
          { dataset: "stsb:train", objective: "cosent", weight: 0.5 },
        ],
        earlyStopping: { metric: "val_spearman" },
      },
    ],
  });
  const s = c.stages[0];
  assert.is(s.tasks?.[1].weight, 0.5);
  assert.is(s.tasks?.[0].weight, 1);
  assert.equal(stageMetrics(s), ["val_loss", "val_accuracy", "val_spearman"]);
  assert.is(stageSpec(s).shardable, false);
  assert.is(stageSpec(s).headOnly, false);
  assert.is(stageSpec({ tasks: [{ dataset: "snli", objective: "siamese", weight: 1 }] }).headOnly, true);
  const mixed = {
    tasks: [
      { dataset: "snli", objective: "siamese" as const, weight: 1 },
      { dataset: "snli", objective: "contrastive" as const, weight: 1 },
    ],
  };
  assert.is(stageSpec(mixed).headOnly, false, "a stage with any headless task does not start its unfreezing from the head alone");
});

/** tiny.yaml with one multi-task stage of these tasks (batches of 32). */
function withTasks(tasks: Record<string, unknown>[]) {
  const cfg = loadConfig({ file: join(projectRoot, "configs", "tiny.yaml") });
  cfg.stages = [validateConfig({ stages: [{ name: "mt", batchSize: 32, tasks }] }).stages[0]];
  return cfg;
}

const multiTask = (dataDir: string) => {
  void dataDir;
  const cfg = withTasks([
    { dataset: "snli", objective: "contrastive", weight: 1 },
    { dataset: "sick:train", objective: "contrastive", weight: 0.5 },
    { dataset: "stsb:train", objective: "cosent", weight: 1 },
  ]);
  cfg.model.pool_weighting = "idf";
  return cfg;
};

testWithData(test, "multi-task data: each task's training split less a premise holdout, scores scaled to 0..1, steps drawn by weight", async (dataDir) => {
  const cfg = multiTask(dataDir);
  const data = await loadTrainingData(cfg, { dataDir });
  const sick = data.tasks.get("sick:train");
  const stsb = data.tasks.get("stsb:train");
  assert.ok(sick && stsb, "both task datasets loaded");
  assert.is(data.tasks.get("snli")?.train, data.pairs.train, "data.pairs's own task is the run's training pairs");
  assert.equal(data.plan.tasks.map((t) => t.split).sort(), ["sick:train", "stsb:train"]);
  for (const t of data.plan.tasks) assert.ok(t.heldOut > 0 && t.rows > t.heldOut * 5, `${t.split}: ${t.rows} train, ${t.heldOut} held out`);
  assert.is(stsb.train.size + stsb.valid.size, 5749);
  const scores = Array.from(stsb.train.scores);
  assert.is(Math.min(...scores), 0);
  assert.is(Math.max(...scores), 1);
  // no sentence pair is both trained on and held out
  const key = (p: typeof stsb.train, i: number) =>
    `${p.s1.ids.subarray(p.s1.offsets[i], p.s1.offsets[i + 1])}|${p.s2.ids.subarray(p.s2.offsets[i], p.s2.offsets[i + 1])}`;
  const trainKeys = new Set(Array.from({ length: stsb.train.size }, (_, i) => key(stsb.train, i)));
  const leaked = Array.from({ length: stsb.valid.size }, (_, i) => key(stsb.valid, i)).filter((k) => trainKeys.has(k)).length;
  assert.ok(leaked <= 2, `held-out STS-B pairs also in training: ${leaked}`); // STS-B repeats a few pairs verbatim
  // idf: xxbos is in every sentence (weight 1), rarer words weigh more
  assert.ok(data.idf, "idf computed for pool_weighting idf");
  assert.is(data.idf.length, data.vocab.size);
  const bos = data.vocab.id("xxbos");
  assert.ok(Math.abs(data.idf[bos] - 1) < 1e-6, `xxbos idf ${data.idf[bos]}`);
  assert.ok(data.idf[data.vocab.id("the")] < data.idf[data.vocab.id("guitar")]);
  assert.equal(idfWeights([data.pairs.train.s1, data.pairs.train.s2], data.vocab.size).length, data.vocab.size);
  // the stage: draws by weight (snli 1 : sick 0.5 : stsb 1), objectives and tensors per task
  const sd = stageData(cfg.stages[0], 0, data, cfg.seed);
  const epoch = sd.epoch(0);
  const by = new Map<string, number>();
  for (let b = 0; b < epoch.count; b++) {
    const batch = epoch.batch(b);
    by.set(batch.task!, (by.get(batch.task!) ?? 0) + 1);
    if (batch.objective === "cosent") {
      assert.ok(batch.tensors.scores && !batch.tensors.labels, "cosent batches carry scores, not labels");
    } else assert.ok(batch.tensors.labels && !batch.tensors.scores, "contrastive batches carry labels");
  }
  const total = epoch.count;
  assert.ok(Math.abs(by.get("sick-contrastive")! / total - 0.2) < 0.01, JSON.stringify([...by]));
  assert.ok(Math.abs(by.get("snli-contrastive")! / total - 0.4) < 0.01);
  assert.ok(Math.abs(by.get("stsb-cosent")! / total - 0.4) < 0.01);
  // deterministic: a second view of the same epoch gives byte-identical batches
  const again = stageData(cfg.stages[0], 0, data, cfg.seed).epoch(0);
  for (const b of [0, 7, total - 1]) assert.equal([...again.batch(b).tensors.premise.data], [...epoch.batch(b).tensors.premise.data]);
  const valid = sd.valid();
  assert.equal(
    valid.map((v) => v.name),
    ["snli-contrastive", "sick-contrastive", "stsb-cosent"],
  );
  assert.ok(
    valid[2].gold && valid[2].gold.flatMap((g) => Array.from(g)).length === stsb.valid.size,
    "every held-out STS-B pair validates, gold scores alongside",
  );
  // SIF's sentences: distinct training sentences, a bounded sample
  const sents = trainingSentences(data, 1000);
  assert.is(sents.offsets.length - 1, 1000);
});

testWithData(test, "steps are drawn by weight across the new kinds of task too: counterfactual pairs, MultiNLI and caption groups", async (dataDir) => {
  const cfg = withTasks([
    { dataset: "snli", objective: "siamese", weight: 2 },
    { dataset: "cad", objective: "contrastive", weight: 0.5 },
    { dataset: "multinli:dev_matched", objective: "siamese", weight: 0.5, name: "mnli" },
    { dataset: "multi30k", objective: "supcon", weight: 1 },
  ]);
  const data = await loadTrainingData(cfg, { dataDir });
  const epoch = stageData(cfg.stages[0], 0, data, cfg.seed).epoch(0);
  const by = new Map<string, number>();
  for (let b = 0; b < epoch.count; b++) {
    const batch = epoch.batch(b);
    by.set(batch.task!, (by.get(batch.task!) ?? 0) + 1);
    if (batch.objective === "supcon") assert.ok(batch.tensors.group && batch.tensors.x, "supcon batches are grouped sentences");
  }
  const share = (task: string) => by.get(task)! / epoch.count;
  for (const [task, weight] of [
    ["snli-siamese", 2],
    ["cad-contrastive", 0.5],
    ["mnli", 0.5],
    ["multi30k-supcon", 1],
  ] as const)
    assert.ok(Math.abs(share(task) - weight / 4) < 0.01, `${task}: ${share(task)} of the steps, weight ${weight} of 4 (${JSON.stringify([...by])})`);
});

testWithData(test, "a task whose dataset cannot feed its objective is a named error", async (dataDir) => {
  const cfg = loadConfig({ file: join(projectRoot, "configs", "tiny.yaml") });
  cfg.stages = validateConfig({ stages: [{ name: "mt", tasks: [{ dataset: "stsb:train", objective: "contrastive" }] }] }).stages;
  const data = await loadTrainingData(cfg, { dataDir });
  try {
    stageData(cfg.stages[0], 0, data, cfg.seed);
    assert.unreachable("stsb under contrastive was accepted");
  } catch (e) {
    assert.match((e as Error).message, /task stsb-contrastive \(contrastive\): none of its training pairs has an NLI label/);
  }
  cfg.stages = validateConfig({ stages: [{ name: "mt", tasks: [{ dataset: "snli:dev", objective: "siamese" }] }] }).stages;
  try {
    await loadTrainingData(cfg, { dataDir });
    assert.unreachable("training on the validation split was accepted");
  } catch (e) {
    assert.match((e as Error).message, /stages\[0\]\.tasks\[0\]\.dataset: snli:dev is data\.pairs's validation split/);
  }
});

testWithData(test, "a multi-task stage SIGKILLed mid-stage and resumed ends exactly as the uninterrupted run (idf, SIF, projection too)", async (dataDir) => {
  const dir = tempFolder("bridge-multitask-");
  try {
    const config = join(dir, "mt.yaml");
    writeFileSync(
      config,
      stringify({
        seed: 3,
        threads: 1,
        data: { pairs: "snli", maxTrainPairs: 600, maxValidPairs: 100 },
        vocab: { minFreq: 2, maxSize: 1500, oovBuckets: 64 },
        model: { preset: "tiny", head_hidden: 16, pool: "mean", pool_layers: "all", pool_emb: true, pool_weighting: "idf", sif: true, proj_dim: 20 },
        stages: [
          { objective: "lm", steps: 10, batchSize: 16, bptt: 20 },
          {
            name: "mt",
            steps: 40,
            batchSize: 32,
            checkpointEvery: 15,
            evalEvery: 20,
            tasks: [
              { dataset: "snli", objective: "contrastive" },
              { dataset: "sick:train", objective: "cosent", weight: 0.5 },
              { dataset: "snli", objective: "siamese" },
            ],
          },
        ],
      }),
    );
    const opts = { config, quiet: true, dataDir, runsDir: dir };
    await train({ ...opts, run: "whole" });
    let err: Error | null = null;
    await train({ ...opts, run: "killed", connect: killingBackend(1, 22) }).catch((e: Error) => (err = e));
    assert.ok(err, "the first attempt should fail");
    await train({ run: "killed", resume: true, quiet: true, dataDir, runsDir: dir });
    const metrics = (run: string) => readManifest(runPaths(run, dir)).stages.map((s) => s.metrics);
    const log = (run: string) =>
      readFileSync(runPaths(run, dir).log, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; stage_index: number; step: number; task?: string; loss: number; from_step?: number });
    assert.equal(
      log("killed")
        .filter((e) => e.type === "resume")
        .map((e) => [e.stage_index, e.from_step]),
      [[1, 15]],
    );
    // the same task at every step, with the same loss, as the uninterrupted run
    const steps = (run: string) =>
      log(run)
        .filter((e) => e.type === "train" && e.stage_index === 1)
        .map((e) => [e.step, e.task, e.loss]);
    const [k, w] = [steps("killed"), steps("whole")];
    const first = w.findIndex((x, i) => JSON.stringify(x) !== JSON.stringify(k[i]));
    assert.is(first, -1, `first differing step: ${JSON.stringify(w[first])} (whole) vs ${JSON.stringify(k[first])} (resumed)`);
    assert.equal(new Set(steps("whole").map((s) => s[1])), new Set(["snli-contrastive", "sick-cosent", "snli-siamese"]));
    assert.ok(
      log("whole").some((e) => e.type === "sif"),
      "SIF fitted at the stage's end",
    );
    assert.equal(metrics("killed"), metrics("whole"));

    // the run's vocabulary keeps its out-of-vocabulary buckets: two unseen words get different vectors, the same
    // unseen word the same one (with xxunk they would be one token)
    const model = await RunModel.open({ run: "whole", runsDir: dir });
    try {
      assert.is(model.vocab.oovBuckets, 64);
      const rows = model.numericalise(["a zyzzyva sleeps .", "a quokkas sleeps .", "a zyzzyva sleeps ."]);
      const ids = (i: number) => [...rows.ids.subarray(rows.offsets[i], rows.offsets[i + 1])];
      assert.ok(ids(0).some((id) => model.vocab.isBucket(id)) && ids(0).join() !== ids(1).join(), `ids ${ids(0)} / ${ids(1)}`);
      const { vectors, dim } = await model.encode(rows);
      const gap = (i: number, j: number) => Math.max(...Array.from({ length: dim }, (_, k) => Math.abs(vectors[i * dim + k] - vectors[j * dim + k])));
      assert.ok(gap(0, 2) < 1e-5, `the same sentence: vectors ${gap(0, 2)} apart`);
      assert.ok(gap(0, 1) > 1e-3, `two unseen words: vectors only ${gap(0, 1)} apart`);
    } finally {
      await model.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

testWithData(test, "gradual unfreezing and discriminative rates in a stage mixing head and headless tasks: every task trains from step 1", async (dataDir) => {
  // With the classifier head alone unfrozen first (ULMFiT's order), a contrastive step would reach no trainable
  // weight: the stage starts from the head and the top encoder layer instead.
  const dir = tempFolder("bridge-unfreeze-");
  try {
    const config = join(dir, "ulmfit.yaml");
    writeFileSync(
      config,
      stringify({
        seed: 4,
        threads: 1,
        data: { pairs: "snli", maxTrainPairs: 300, maxValidPairs: 60 },
        vocab: { minFreq: 2, maxSize: 1000 },
        model: { preset: "tiny", head_hidden: 16 },
        stages: [
          {
            name: "mt",
            steps: 16,
            batchSize: 32,
            lr: { max: 0.005, schedule: "slanted_triangular", lrDiv: 2.6 },
            gradualUnfreeze: true,
            unfreezeEvery: 4,
            tasks: [
              { dataset: "snli", objective: "siamese" },
              { dataset: "snli", objective: "contrastive" },
            ],
          },
        ],
      }),
    );
    // What the loop asks of the backend: each unfreezing (after how many steps, and the groups then trainable), and
    // the groups' learning rates once a step's hparams are set (read back by repeating them: the same values).
    const unfreezings: { afterSteps: number; trainable: string[]; groups: string[] }[] = [];
    const lrReadings: Record<string, number>[] = [];
    const sentHparams: JsonObject[] = [];
    let stepsSent = 0;
    const recording = async (cfg: Config): Promise<TrainBackend> => {
      const client = await startBackend({ env: { OMP_NUM_THREADS: String(cfg.threads) } });
      return {
        close: () => client.close(),
        async call(op, args, tensors) {
          const sentBefore = stepsSent;
          const hps = op === "train_steps" ? (args as TrainStepsArgs).steps.flatMap((st) => (st.hparams ? [st.hparams as JsonObject] : [])) : [];
          if (op === "train_steps") stepsSent += (args as TrainStepsArgs).steps.length;
          sentHparams.push(...hps);
          const reply = await client.call(op, args, tensors);
          if (op === "set_trainable") {
            const r = reply.result as { trainable_groups: string[]; groups: string[] };
            unfreezings.push({ afterSteps: sentBefore, trainable: r.trainable_groups, groups: r.groups });
          }
          if (hps.length > 0) lrReadings.push((await client.call("set_hparams", hps[hps.length - 1])).result.lrs);
          return reply;
        },
      };
    };
    await train({ config, run: "ulmfit", quiet: true, dataDir, runsDir: dir, connect: recording });
    // gradual unfreezing: the head and the top encoder layer first, then one more group every 4 steps until all train
    const groups = unfreezings[0].groups;
    assert.equal(
      unfreezings.map((u) => [u.afterSteps, u.trainable.length]),
      Array.from({ length: groups.length - 1 }, (_, k) => [4 * k, 2 + k]),
      JSON.stringify(unfreezings),
    );
    assert.equal(unfreezings[0].trainable, groups.slice(-2), "the top groups unfreeze first");
    // discriminative rates: every step's hparams carry lr_div, and the backend's groups sit lr / 2.6 apart going down
    assert.ok(sentHparams.length > 1 && sentHparams.every((h) => h.lr_div === 2.6), JSON.stringify(sentHparams));
    for (const lrs of lrReadings) {
      const byGroup = groups.map((g) => lrs[g]);
      for (let k = 1; k < byGroup.length; k++) assert.ok(Math.abs(byGroup[k] / byGroup[k - 1] - 2.6) < 1e-9, JSON.stringify(lrs));
    }
    const steps = readFileSync(runPaths("ulmfit", dir).log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; step: number; task?: string; loss: number | null; finite: boolean })
      .filter((e) => e.type === "train");
    assert.is(steps.length, 16);
    assert.ok(
      steps.every((e) => e.finite && Number.isFinite(e.loss)),
      JSON.stringify(steps.map((e) => [e.step, e.task, e.loss])),
    );
    const firstPhase = new Set(steps.filter((e) => e.step <= 4).map((e) => e.task));
    assert.equal(firstPhase, new Set(["snli-siamese", "snli-contrastive"]), "both tasks trained before the first unfreezing");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

testWithData(test, "a stage of `steps: N` trains exactly as `epochs: E` when N is E epochs of the data (configs/default.yaml's steps)", async (dataDir) => {
  const dir = tempFolder("bridge-steps-");
  try {
    const write = (name: string, length: { epochs: number } | { steps: number }) => {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(
        file,
        stringify({
          seed: 5,
          threads: 1,
          data: { pairs: "snli", maxTrainPairs: 300, maxValidPairs: 60 },
          vocab: { minFreq: 2, maxSize: 1000, oovBuckets: 16 },
          model: { preset: "tiny", head_hidden: 16, pool: "mean", pool_layers: "all", pool_emb: true, pool_weighting: "idf" },
          stages: [
            {
              name: "mt",
              ...length,
              batchSize: 32,
              tasks: [
                { dataset: "snli", objective: "contrastive" },
                { dataset: "stsb:train", objective: "cosent", weight: 0.5 },
                { dataset: "snli", objective: "siamese", weight: 2 },
              ],
            },
          ],
        }),
      );
      return file;
    };
    await train({ config: write("epochs", { epochs: 2 }), run: "epochs", quiet: true, dataDir, runsDir: dir });
    const events = (run: string) =>
      readFileSync(runPaths(run, dir).log, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const start = events("epochs").find((e) => e.type === "stage_start")!;
    assert.is(start.total_steps, 2 * (start.steps_per_epoch as number));
    await train({ config: write("steps", { steps: start.total_steps as number }), run: "steps", quiet: true, dataDir, runsDir: dir });
    // every training step, evaluation and the final metrics alike (wall-clock fields aside)
    const trace = (run: string) =>
      events(run)
        .filter((e) => e.type === "train" || e.type === "eval" || e.type === "stage_end")
        .map(({ time: _t, seconds: _s, ...rest }) => rest);
    assert.ok(trace("epochs").length > 10);
    assert.equal(trace("steps"), trace("epochs"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

testWithData(test, "a run trained on MultiNLI dev and cad as tasks: metrics.json marks them trained on, SNLI supervised, XNLI held out", async (dataDir) => {
  const dir = tempFolder("bridge-mnli-eval-");
  try {
    const config = join(dir, "mnli.yaml");
    writeFileSync(
      config,
      stringify({
        seed: 6,
        threads: 1,
        data: { pairs: "snli", maxTrainPairs: 200, maxValidPairs: 50, subsample: { "multinli:dev_matched": 0.05, cad: 0.05 } },
        vocab: { minFreq: 2, maxSize: 1000 },
        model: { preset: "tiny", head_hidden: 16 },
        stages: [
          {
            name: "mt",
            steps: 6,
            batchSize: 16,
            tasks: [
              { dataset: "snli", objective: "siamese" },
              { dataset: "multinli:dev_matched", objective: "siamese", name: "mnli-siamese" },
              { dataset: "cad", objective: "contrastive" },
            ],
          },
        ],
      }),
    );
    await train({ config, run: "mnli", quiet: true, dataDir, runsDir: dir });
    const evaluation = await evaluateRun({ run: "mnli", runsDir: dir, dataDir, device: "cpu", tasks: ["snli"], limit: 100, log: () => undefined });
    // the file as written, not the in-memory result
    const metrics = JSON.parse(readFileSync(join(runPaths("mnli", dir).eval, METRICS_FILE), "utf8")) as typeof evaluation.metrics;
    const trained = metrics.trained_on ?? [];
    const mnli = trained.find((t) => t.split === "multinli:dev_matched");
    assert.ok(mnli && mnli.use === "pairs" && (mnli.rows ?? 0) > 0 && (mnli.heldOut ?? 0) > 0, JSON.stringify(trained));
    assert.ok(
      trained.some((t) => t.split === "cad:train"),
      JSON.stringify(trained),
    );
    // MultiNLI dev is training data now: either of its splits counts as trained on wherever it is evaluated
    for (const split of ["multinli:dev_matched", "multinli:dev_mismatched", "cad:train"]) assert.ok(isSupervised(trained, split), split);
    assert.is(metrics.snli?.supervised, true, "SNLI accuracy is on held-out rows of a split the run trained on");
    assert.is(metrics.xnli?.supervised, false, "XNLI is the out-of-domain check");
    assert.ok(Number.isFinite(metrics.xnli?.accuracy), "XNLI was evaluated");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

testWithData(
  test,
  "a bad row in a task's dataset (cad, multi30k) follows --on-bad-row: training's data load stops at file:line, or skips it",
  async (dataDir) => {
    // a data folder of real rows: SNLI dev's first 300, cad's first 40, Multi30K's first 30 groups, one broken row in each task file
    const dir = tempFolder("bridge-task-bad-row-");
    try {
      const head = (path: string, n: number) => readFileSync(join(dataDir, path), "utf8").split("\n").slice(0, n);
      const put = (path: string, lines: string[]) => {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), `${lines.join("\n")}\n`);
      };
      put("snli_1.0/snli_1.0_dev.jsonl", head("snli_1.0/snli_1.0_dev.jsonl", 300));
      const cad = head("cad/NLI/all_combined/train.tsv", 41);
      cad.splice(21, 0, "a premise with no hypothesis and no label");
      put("cad/NLI/all_combined/train.tsv", cad);
      const captions = head("multi30k/captions.train.tsv", 31);
      captions.splice(11, 0, "9999\tone caption alone");
      put("multi30k/captions.train.tsv", captions);
      const cfg = validateConfig({
        seed: 1,
        data: { pairs: "snli", maxValidPairs: 30 },
        model: { preset: "tiny" },
        stages: [
          {
            steps: 4,
            batchSize: 16,
            tasks: [
              { dataset: "snli", objective: "siamese" },
              { dataset: "cad", objective: "contrastive" },
              { dataset: "multi30k", objective: "supcon" },
            ],
          },
        ],
      });
      const refused = await loadTrainingData(cfg, { dataDir: dir }).catch((e: Error) => e);
      assert.instance(refused, Error);
      assert.match((refused as Error).message, `${join(dir, "cad", "NLI", "all_combined", "train.tsv")}:22`);
      const fixedCad = loadTrainingData(cfg, { dataDir: dir, onBadRow: "skip" });
      const data = await fixedCad;
      const rowsOf = (split: string) => data.plan.tasks.find((t) => t.split === split);
      const cadRows = rowsOf("cad:train");
      const groups = rowsOf("multi30k:train");
      assert.ok(cadRows && groups, JSON.stringify(data.plan.tasks));
      // every good row is there (the broken ones skipped), whatever evaluation sentences left out
      assert.is(cadRows.rows + cadRows.heldOut + (cadRows.evalOverlap ?? 0), 40 - cad.slice(1).filter((l) => l.endsWith("\t-")).length);
      assert.is(groups.rows + groups.heldOut + (groups.evalOverlap ?? 0), 30);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
