/**
 * Training end to end with the real backend on the tiny preset: a run leaves its folder complete; a
 * run whose backend is SIGKILLed mid-epoch (once in the LM stage, once in the siamese stage) and
 * resumed with --resume ends with exactly the metrics (and stage summaries) of an uninterrupted run with the same seed;
 * steps sent one request each train exactly what steps sent several to a request (train_steps) train.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BackendError, startBackend } from "../../ts/backend/client.js";
import { type TrainOptions, train } from "../../ts/commands/train.js";
import type { Config } from "../../ts/config/schema.js";
import { Vocab } from "../../ts/data/vocab.js";
import { projectRoot } from "../../ts/paths.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { statePath } from "../../ts/train/checkpoints.js";
import type { TrainBackend } from "../../ts/train/context.js";
import { DEFAULT_STEPS_PER_REQUEST } from "../../ts/train/loop.js";
import { killingBackend, sharedDataDir, tempFolder, testWithData } from "../helpers.js";

const dataDir = sharedDataDir("train: resume");
const runsDir = tempFolder("bridge-train-");
// Checkpoints inside epochs: the LM stage has ~80 steps an epoch, the siamese stage 32.
const base: TrainOptions = {
  config: join(projectRoot, "configs", "tiny.yaml"),
  set: ["stages.lm.checkpointEvery=30", "stages.siamese.checkpointEvery=20"],
  quiet: true,
  dataDir: dataDir ?? undefined,
  runsDir,
};

const stageMetrics = (run: string) => readManifest(runPaths(run, runsDir)).stages.map((s) => s.metrics);
/** Each stage's summary in the log: [stage, train_loss (mean over all its steps), non-finite steps skipped]. */
const stageEnds = (run: string) =>
  readFileSync(runPaths(run, runsDir).log, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { type: string; stage_index: number; train_loss: number; non_finite_skipped: number })
    .filter((e) => e.type === "stage_end")
    .map((e) => [e.stage_index, e.train_loss, e.non_finite_skipped]);

test.after(() => rmSync(runsDir, { recursive: true, force: true }));

testWithData(test, "a tiny run leaves config, vocabulary, manifest, checkpoints and log", async (_dataDir) => {
  const r = await train({ ...base, run: "whole" });
  const p = runPaths("whole", runsDir);
  for (const f of [p.config, p.vocab, p.manifest, p.log]) assert.ok(existsSync(f), f);
  assert.equal(readdirSync(p.checkpoints).sort(), ["0-lm.pt", "1-siamese.pt"]);
  const m = readManifest(p);
  assert.is(m.finalCheckpoint, "checkpoints/1-siamese.pt");
  assert.ok(m.stages.every((s) => s.completed));
  assert.is(m.model.vocab_sz, m.vocab.size);
  // held out by premise group: about 10% of snli:dev's 9842 rows (whole groups, so a few over)
  if (m.data!.holdout) assert.ok(Math.abs(m.data!.holdout.validRows.length - Math.round(9842 * 0.1)) < 10, `${m.data!.holdout.validRows.length}`);
  assert.is(r.stages.length, 2);
  assert.ok(r.stages[0].metrics.val_perplexity > 1);
  const log = readFileSync(p.log, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { type: string });
  assert.ok(log.filter((e) => e.type === "train").length === r.stages[0].steps + r.stages[1].steps);
  assert.ok(log.some((e) => e.type === "eval"));
});

testWithData(test, "steps one request each train exactly what steps several to a request train", async () => {
  // the "whole" run sent DEFAULT_STEPS_PER_REQUEST steps a request (train_steps); this one sends each alone
  assert.ok(DEFAULT_STEPS_PER_REQUEST > 1);
  await train({ ...base, set: [...(base.set ?? []), "stepsPerRequest=1"], run: "one-per-request" });
  assert.equal(stageMetrics("one-per-request"), stageMetrics("whole"));
  assert.equal(stageEnds("one-per-request"), stageEnds("whole"));
});

testWithData(test, "SIGKILL mid-epoch, --resume: same final metrics as the uninterrupted run", async (dataDir) => {
  const name = "killed";
  // killed in the LM stage at step 45 (last checkpoint: step 30)
  let err: Error | null = null;
  await train({ ...base, run: name, connect: killingBackend(0, 45) }).catch((e: Error) => (err = e));
  assert.ok(err, "the first attempt should fail");
  const msg = (err as unknown as Error).message;
  assert.match(msg, /backend died during stage 1\/2 \(lm\)/);
  assert.match(msg, `npx bridge train --run ${name} --resume`);
  // resumed, then killed again in the siamese stage at its step 27 (of 32 an epoch; checkpoint at 20)
  err = null;
  await train({ run: name, resume: true, quiet: true, dataDir: dataDir, runsDir, connect: killingBackend(1, 27) }).catch((e: Error) => (err = e));
  assert.ok(err, "the second attempt should fail");
  assert.match((err as unknown as Error).message, /stage 2\/2 \(siamese\)/);
  await train({ run: name, resume: true, quiet: true, dataDir: dataDir, runsDir });
  assert.equal(stageMetrics(name), stageMetrics("whole"));
  // the stages' summaries cover every step, before the resume too
  assert.equal(stageEnds(name), stageEnds("whole"));
  const log = readFileSync(runPaths(name, runsDir).log, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { type: string; stage_index: number; step: number; from_step?: number });
  // resumed from the mid-epoch checkpoints, not from the stages' starts
  assert.equal(
    log.filter((e) => e.type === "resume").map((e) => [e.stage_index, e.from_step]),
    [
      [0, 30],
      [1, 20],
    ],
  );
  // the log reads as one run: each step once
  const steps = log.filter((e) => e.type === "train").map((e) => `${e.stage_index}:${e.step}`);
  assert.is(new Set(steps).size, steps.length);
});

testWithData(test, "accumSteps: checkpoints, evals and unfreezing on whole optimizer steps, the last micro-batches applied, resume exact", async (dataDir) => {
  // siamese: 64 micro-batches (2 epochs of 32) in steps of 3; checkpointEvery 20 -> 21, unfreezeEvery 10 -> 12,
  // evalEvery (an epoch, 32) -> 33; 64 = 21 * 3 + 1: the last micro-batch is applied alone at the stage's end
  const set = ["stages.lm.steps=8", "stages.siamese.accumSteps=3", "stages.siamese.checkpointEvery=20"];
  await train({ ...base, set, run: "accum" });
  type Rec = { type: string; stage_index: number; step: number; from_step?: number; micro_batches?: number; reason?: string };
  const read = (run: string) =>
    readFileSync(runPaths(run, runsDir).log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Rec)
      .filter((e) => e.stage_index === 1);
  const log = read("accum");
  assert.equal(
    log.filter((e) => e.type === "checkpoint").map((e) => e.step),
    [21, 42, 63, 64],
  );
  assert.equal(
    log.filter((e) => e.type === "eval").map((e) => e.step),
    [33, 64],
  );
  assert.equal(
    log.filter((e) => e.type === "flush").map((e) => [e.step, e.micro_batches, e.reason]),
    [[64, 1, "stage end"]],
  );
  // killed at siamese micro-batch 30 (checkpoint at 21), resumed: the same model as the uninterrupted run
  let err: Error | null = null;
  await train({ ...base, set, run: "accum-killed", connect: killingBackend(1, 30) }).catch((e: Error) => (err = e));
  assert.ok(err, "the first attempt should fail");
  await train({ run: "accum-killed", resume: true, quiet: true, dataDir, runsDir });
  assert.equal(stageMetrics("accum-killed"), stageMetrics("accum"));
  assert.equal(stageEnds("accum-killed"), stageEnds("accum"));
  assert.equal(
    read("accum-killed")
      .filter((e) => e.type === "resume")
      .map((e) => e.from_step),
    [21],
  );
});

/** The real backend, but its `failAt`-th save meets a full disk (the backend's NoSpace reply; py/tests/test_checkpoints.py checks it raises one). */
function fullDiskAt(failAt: number): (cfg: Config) => Promise<TrainBackend> {
  return async (cfg) => {
    const client = await startBackend(cfg.threads ? { env: { OMP_NUM_THREADS: String(cfg.threads) } } : {});
    let saves = 0;
    return {
      close: () => client.close(),
      call(op, args, tensors) {
        if (op === "save" && ++saves === failAt) {
          const path = String((args as { path: string }).path);
          const message = `no space left on ${dirname(path)} while writing ${basename(path)} (RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0)`;
          return Promise.reject(new BackendError("save", { code: "no_space", type: "NoSpace", message, traceback: "", fatal: false }));
        }
        return client.call(op, args, tensors);
      },
    } as TrainBackend;
  };
}

testWithData(
  test,
  "a full disk at a checkpoint: the error says so, names the last good checkpoint and the resume; resumed, the run ends as an uninterrupted one",
  async () => {
    const name = "disk-full";
    const err = await train({ ...base, run: name, connect: fullDiskAt(2) }).catch((e: Error) => e);
    assert.instance(err, Error);
    const msg = (err as Error).message;
    assert.match(msg, /stage 1\/2 \(lm\) at step 60: no space left on /, msg);
    assert.not.match(msg, /^save: NoSpace/, "the op's wire prefix is not the message");
    assert.match(msg, `the last good checkpoint is ${join(runPaths(name, runsDir).dir, "checkpoints")}`);
    assert.match(msg, `Free some space, then resume with: npx bridge train --run ${name} --resume`);
    await train({ run: name, resume: true, quiet: true, dataDir: dataDir!, runsDir });
    assert.equal(stageMetrics(name), stageMetrics("whole"));
  },
);

testWithData(
  test,
  "--resume past damage: a torn step checkpoint restarts its stage (same metrics), a lost vocab.json is written again, a torn config.json or a lost state.json is named",
  async (dataDir) => {
    const name = "torn";
    // killed in the siamese stage at its step 27 (checkpoint at 20)
    await train({ ...base, run: name, connect: killingBackend(1, 27) }).catch(() => {});
    const p = runPaths(name, runsDir);
    const state = JSON.parse(readFileSync(statePath(p), "utf8")) as { checkpoint: string };
    assert.match(state.checkpoint, "1-siamese-step20");
    const ckpt = join(p.dir, state.checkpoint);
    writeFileSync(ckpt, readFileSync(ckpt).subarray(0, 1000)); // a torn copy
    writeFileSync(p.vocab, "");
    // a copy with its config torn, and one without state.json: named, with the way out
    const tornConfig = join(runsDir, "torn-config");
    cpSync(p.dir, tornConfig, { recursive: true });
    writeFileSync(join(tornConfig, "config.json"), '{"seed":');
    const e1 = await train({ run: "torn-config", resume: true, quiet: true, dataDir, runsDir }).catch((e: Error) => e);
    assert.match((e1 as Error).message, `${join(tornConfig, "config.json")}: not valid JSON`);
    assert.match((e1 as Error).message, "restore it from a copy, or train the run again");
    const noState = join(runsDir, "no-state");
    cpSync(p.dir, noState, { recursive: true });
    rmSync(join(noState, "state.json"));
    const e2 = await train({ run: "no-state", resume: true, quiet: true, dataDir, runsDir }).catch((e: Error) => e);
    assert.match((e2 as Error).message, `no state.json, so no position to resume from; restore it from a copy, or delete the folder (${noState})`);
    await train({ run: name, resume: true, quiet: true, dataDir, runsDir });
    assert.equal(stageMetrics(name), stageMetrics("whole"), "the stage trained again from its start ends where the uninterrupted run does");
    assert.equal(stageEnds(name), stageEnds("whole"));
    assert.ok((await Vocab.load(p.vocab)).fingerprint === readManifest(p).vocab.fingerprint, "vocab.json written again");
    const log = readFileSync(p.log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; stage_index: number; step: number });
    assert.equal(
      log.filter((e) => e.type === "restart_stage").map((e) => e.stage_index),
      [1],
    );
    const steps = log.filter((e) => e.type === "train").map((e) => `${e.stage_index}:${e.step}`);
    assert.is(new Set(steps).size, steps.length, "the log reads as one run: each step once");
  },
);

testWithData(test, "--resume of a finished run does nothing; a fresh run refuses an existing folder", async (dataDir) => {
  const r = await train({ run: "whole", resume: true, quiet: true, dataDir, runsDir });
  assert.is(r.stages.length, 0);
  let err: Error | null = null;
  await train({ ...base, run: "whole" }).catch((e: Error) => (err = e));
  assert.match((err as unknown as Error).message, /already holds a run; continue it with --resume/);
});

test("a fresh run refuses a folder holding files a run writes, naming them and leaving them; a missing init.wordVectors fails before any folder", async () => {
  const empty = tempFolder("bridge-nodata-");
  const mine = join(runsDir, "my-notes");
  mkdirSync(mine, { recursive: true });
  writeFileSync(join(mine, "config.json"), "mine\n");
  const err = await train({ run: "my-notes", quiet: true, dataDir: empty, runsDir }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, `${mine} holds config.json but no run (no run.json); a run would overwrite them`);
  assert.is(readFileSync(join(mine, "config.json"), "utf8"), "mine\n");
  assert.equal(readdirSync(mine), ["config.json"], "no lock or run file left");
  const wv = await train({ ...base, run: "wv", dataDir: empty, set: ["init.wordVectors=nothere.txt"] }).catch((e: Error) => e);
  assert.match((wv as Error).message, "init.wordVectors nothere.txt: no such file");
  const folder = await train({ ...base, run: "wv", dataDir: empty, set: [`init.wordVectors=${empty}`] }).catch((e: Error) => e);
  assert.match((folder as Error).message, `init.wordVectors ${empty}: a folder`);
  assert.not.ok(existsSync(join(runsDir, "wv")), "a run folder was made for a run that could not start");
  rmSync(empty, { recursive: true, force: true });
});

testWithData(
  test,
  "a fresh run that failed before its first step leaves no folder; one killed before its first checkpoint is told that deleting it loses no training",
  async () => {
    const vectors = join(tempFolder("bridge-wv-"), "vectors.txt");
    writeFileSync(vectors, "the 0.1 0.2 0.3\ncat 0.4 0.5\n");
    const failed = await train({ ...base, run: "bad-init", set: [`init.wordVectors=${vectors}`] }).catch((e: Error) => e);
    assert.match((failed as Error).message, "2 numbers, the vectors before had 3");
    // nothing trained: the same command runs once the config is fixed
    assert.not.ok(existsSync(runPaths("bad-init", runsDir).dir), "a run folder was left by a run that trained nothing");
    // killed at step 10 of the LM stage, before its first checkpoint (step 30): the folder stays, with the way out
    const killed = await train({ ...base, run: "killed-early", connect: killingBackend(0, 10) }).catch((e: Error) => e);
    assert.match((killed as Error).message, "backend died during stage 1/2 (lm)");
    const again = await train({ ...base, run: "killed-early" }).catch((e: Error) => e);
    assert.match((again as Error).message, "already holds a run; it stopped before its first checkpoint, so deleting the folder loses no training");
  },
);

testWithData(
  test,
  "an edited state.json (or config.json) is named with what is wrong before anything trains: field types, a stage out of range or past an unfinished one, a batch past its epoch, a step past the stage's length",
  async () => {
    const edit = (name: string, change: (state: Record<string, unknown>, manifest: Record<string, unknown>) => void) => {
      const dir = runPaths(name, runsDir).dir;
      rmSync(dir, { recursive: true, force: true });
      cpSync(runPaths("whole", runsDir).dir, dir, { recursive: true });
      const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
      const manifest = JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
      change(state, manifest);
      writeFileSync(join(dir, "state.json"), JSON.stringify(state));
      writeFileSync(join(dir, "run.json"), JSON.stringify(manifest));
      return join(dir, "state.json");
    };
    const stopped = (s: Record<string, unknown>) => Object.assign(s, { stage: 1, done: false, checkpoint: "checkpoints/0-lm.pt" });
    const cases: [string, (s: Record<string, unknown>, m: Record<string, unknown>) => void, string][] = [
      ["epoch-string", (s) => Object.assign(stopped(s), { position: { ...(s.position as object), epoch: "3" } }), 'position.epoch: got "3"; expected number'],
      ["stage-99", (s) => Object.assign(stopped(s), { stage: 99 }), "stage 99, but the run has 2 stages"],
      ["stage-negative", (s) => Object.assign(stopped(s), { stage: -1 }), "stage: "],
      ["checkpoint-number", (s) => Object.assign(stopped(s), { checkpoint: 123 }), "checkpoint: got 123; expected string"],
      ["position-null", (s) => Object.assign(stopped(s), { position: null }), "position: got null; expected object"],
      [
        "stage-past-unfinished",
        (s, m) => {
          Object.assign(stopped(s), { stage: 2 });
          (m.stages as { completed: boolean }[])[1].completed = false;
        },
        "stage 2 is in progress, but stage 1 (siamese) before it never completed",
      ],
      ["batch-past-epoch", (s) => Object.assign(stopped(s), { position: { epoch: 0, batch: 9999, step: 1 } }), "position.batch 9999 is past epoch 0's"],
    ];
    for (const [name, change, message] of cases) {
      const file = edit(`edited-${name}`, change);
      const err = await train({ run: `edited-${name}`, resume: true, quiet: true, dataDir: dataDir!, runsDir }).catch((e: Error) => e);
      assert.instance(err, Error, name);
      assert.match((err as Error).message, file, name);
      assert.match((err as Error).message, message, name);
    }
    // a config.json edited to make the stage in progress shorter than the step it reached: named, not "completed"
    const shorter = edit("edited-shorter", (s) => Object.assign(stopped(s), { position: { epoch: 0, batch: 20, step: 20 } }));
    const cfgFile = join(dirname(shorter), "config.json");
    const cfg = JSON.parse(readFileSync(cfgFile, "utf8")) as { stages: { steps?: number }[] };
    cfg.stages[1].steps = 10;
    writeFileSync(cfgFile, JSON.stringify(cfg));
    const short = await train({ run: "edited-shorter", resume: true, quiet: true, dataDir: dataDir!, runsDir }).catch((e: Error) => e);
    assert.match((short as Error).message, `${shorter}: position.step 20 is past stage 2's 10 steps (${cfgFile})`);
    // run.json records the rows the run trained on: other data (another --data-dir, an edited file) is refused, named
    edit("other-data", (s, m) => {
      stopped(s);
      (m.data as { train: { rows: number } }).train.rows += 7;
      (m.data as { evaluationSplits?: string[] }).evaluationSplits = ["sick:trial"];
    });
    const err = await train({ run: "other-data", resume: true, quiet: true, dataDir: dataDir!, runsDir }).catch((e: Error) => e);
    assert.instance(err, Error);
    const rows = readManifest(runPaths("whole", runsDir)).data!.train;
    assert.match((err as Error).message, `the data differs from what this run trained on (${runPaths("other-data", runsDir).manifest}): `);
    assert.match((err as Error).message, `${rows.split} (training): ${rows.rows + 7} rows then, ${rows.rows} now`);
    // when the evaluation splits in the data dir changed too, that is named: it changes the rows without any training file changing
    assert.match((err as Error).message, "the evaluation splits whose sentences are kept out of training were sick:trial, now none read");
  },
);

test("without SNLI the error offers the download command", async () => {
  const empty = tempFolder("bridge-nodata-");
  let err: Error | null = null;
  await train({ run: "nodata", quiet: true, dataDir: empty, runsDir }).catch((e: Error) => (err = e));
  rmSync(empty, { recursive: true, force: true });
  assert.ok(err);
  assert.match((err as unknown as Error).message, /npx bridge data fetch snli/);
  // nothing of the run is left: no half-made folder, no lock
  assert.not.ok(existsSync(join(runsDir, "nodata")), "a failed fresh run left its folder");
});

test.run();
