/**
 * A run's life as users start it, with the real CLI and backend on the tiny preset: one training per
 * run folder at a time (two started at once: one trains, the other is refused; --resume of a run still
 * training is refused and leaves its log alone), runs/latest names the run just started, --nproc is
 * refused for in-batch-negative stages before anything starts, and --on-bad-row reaches the data loaders.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generateKeys } from "../../ts/backend/keys.js";
import { resumeCommandOf, train } from "../../ts/commands/train.js";
import { projectRoot } from "../../ts/paths.js";
import { resolveRunName, runPaths } from "../../ts/run/manifest.js";
import { bridgeBin, tempFolder, testWithData, waitFor } from "../helpers.js";

const tmp = tempFolder("bridge-lifecycle-");
const tiny = join(projectRoot, "configs", "tiny.yaml");

interface CliRun {
  exited: Promise<number | null>;
  output(): string;
}

function cli(args: string[], env: NodeJS.ProcessEnv): CliRun {
  const child = spawn(process.execPath, [bridgeBin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  return { exited: new Promise((r) => child.on("exit", (code) => r(code))), output: () => out };
}

type LogLine = { type: string; stage_index?: number; step?: number };
const readLog = (path: string): LogLine[] =>
  existsSync(path)
    ? readFileSync(path, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as LogLine)
    : [];

test.after(() => rmSync(tmp, { recursive: true, force: true }));

testWithData(test, "two trainings of one run started at once: one trains, the other is refused; --resume meanwhile is refused too", async (dataDir) => {
  const runsDir = join(tmp, "runs-twice");
  const args = ["train", "--config", tiny, "--run", "twice", "--data-dir", dataDir, "--quiet"];
  const env = { BRIDGE_RUNS_DIR: runsDir };
  const runs = [cli(args, env), cli(args, env)];
  const paths = runPaths("twice", runsDir);
  const locked = /is locked: pid \d+ is running `npx bridge train --run twice` there since \d{4}-/;

  // while the winner trains: a resume of the run must neither truncate its log nor start
  assert.ok(await waitFor(() => readLog(paths.log).some((e) => e.type === "train"), 300_000), "the run started training");
  const before = readLog(paths.log).length;
  let err: Error | null = null;
  await train({ run: "twice", resume: true, quiet: true, dataDir, runsDir }).catch((e: Error) => (err = e));
  assert.ok(err, "--resume of a run in training was allowed");
  assert.match((err as unknown as Error).message, locked);
  assert.ok(readLog(paths.log).length >= before, "the live log was truncated");

  const codes = await Promise.all(runs.map((r) => r.exited));
  assert.equal([...codes].sort(), [0, 1], runs.map((r) => r.output()).join("\n---\n"));
  assert.match(runs[codes.indexOf(1)].output(), locked);
  // the log holds one run: one start, one end, every step once
  const log = readLog(paths.log);
  assert.is(log.filter((e) => e.type === "run_start").length, 1);
  assert.is(log.filter((e) => e.type === "run_end").length, 1);
  assert.is(log.filter((e) => e.type === "resume").length, 0);
  const steps = log.filter((e) => e.type === "train").map((e) => `${e.stage_index}:${e.step}`);
  assert.is(new Set(steps).size, steps.length);
  assert.not.ok(existsSync(join(paths.dir, ".lock")), "the lock outlived the run");
  // the README's next command finds it: runs/latest is a relative link to it
  assert.is(readlinkSync(join(runsDir, "latest")), "twice");
  assert.is(resolveRunName(undefined, runsDir), "twice");
});

test("--hosts with two endpoints counts as two ranks: an in-batch-negative stage is refused before any host is reached", async () => {
  let connected = false;
  const err = await train({
    config: join(projectRoot, "configs", "contrastive.yaml"),
    run: "hosts",
    hosts: ["tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556"],
    keys: "client.json",
    quiet: true,
    runsDir: join(tmp, "runs-hosts"),
    connect: async () => {
      connected = true;
      throw new Error("a backend was asked for");
    },
  }).then(
    () => null,
    (e: Error) => e,
  );
  assert.ok(err, "--hosts with a contrastive stage was accepted");
  assert.match(err.message, "2 data-parallel ranks: stage 2/2 (contrastive) trains contrastive");
  assert.not.ok(connected, "a host was contacted");
});

test("the resume command repeats the data dir and the backends a run was started with", () => {
  assert.is(resumeCommandOf("r", {}), "npx bridge train --run r --resume");
  assert.is(
    resumeCommandOf("r", { dataDir: "/d", hosts: ["tcp://a:1", "tcp://b:2"], master: "a:29500", keys: "k.json" }),
    "npx bridge train --run r --resume --data-dir /d --hosts tcp://a:1,tcp://b:2 --master a:29500 --keys k.json",
  );
  assert.is(resumeCommandOf("r", { nproc: 2 }), "npx bridge train --run r --resume --nproc 2");
});

test("--nproc 2 with an in-batch-negative stage is refused, naming the stage, before a backend starts or a folder is made", async () => {
  const runsDir = join(tmp, "runs-nproc");
  for (const [config, set, stage] of [
    [join(projectRoot, "configs", "contrastive.yaml"), [], "stage 2/2 (contrastive) trains contrastive"],
    [tiny, ["stages.siamese.objective=simcse", "stages.1.name=sentences"], "stage 2/2 (sentences) trains simcse"],
    [join(projectRoot, "configs", "default.yaml"), [], "stage 1/1 (sentence) trains contrastive + cosent + siamese + supcon"],
  ] as const) {
    let connected = false;
    let err: Error | null = null;
    await train({
      config,
      set: [...set],
      run: "np",
      nproc: 2,
      quiet: true,
      runsDir,
      connect: async () => {
        connected = true;
        throw new Error("a backend was asked for");
      },
    }).catch((e: Error) => (err = e));
    assert.ok(err, "--nproc 2 was accepted");
    assert.match((err as unknown as Error).message, `2 data-parallel ranks: ${stage}`);
    assert.match((err as unknown as Error).message, "--nproc 1");
    assert.not.ok(connected, "a backend was asked for");
    assert.not.ok(existsSync(join(runsDir, "np")), "a run folder was made");
  }
});

test("a train that fails in set-up (--init no-such-run) makes no run folder and leaves runs/latest where it was", async () => {
  const runsDir = join(tmp, "runs-init");
  mkdirSync(join(runsDir, "good"), { recursive: true });
  symlinkSync("good", join(runsDir, "latest"));
  let connected = false;
  const err = await train({
    config: tiny,
    run: "x",
    init: "no-such-run",
    quiet: true,
    runsDir,
    connect: async () => {
      connected = true;
      throw new Error("no backend in this test");
    },
  }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, /init\.from "no-such-run": not a run in/);
  assert.not.ok(connected, "a backend was asked for");
  assert.not.ok(existsSync(join(runsDir, "x")), "runs/x was made");
  assert.is(readlinkSync(join(runsDir, "latest")), "good");
});

testWithData(test, "a backend that cannot be reached: one 'bridge:' prefix, status 1, and no run folder left", async (dataDir) => {
  const runsDir = join(tmp, "runs-nokeys");
  const run = cli(["train", "--config", tiny, "--data-dir", dataDir, "--run", "x", "--backend", "tcp://127.0.0.1:9", "--quiet"], { BRIDGE_RUNS_DIR: runsDir });
  assert.is(await run.exited, 1, run.output());
  assert.match(run.output(), /^bridge: tcp:\/\/127\.0\.0\.1:9: tcp:\/\/ needs CURVE keys/m);
  assert.not.match(run.output(), "bridge: bridge:");
  assert.not.ok(existsSync(join(runsDir, "x")), "runs/x was left behind");
});

test("--run latest is reserved for the link", async () => {
  let err: Error | null = null;
  await train({ config: tiny, run: "latest", quiet: true, runsDir: join(tmp, "runs-reserved") }).catch((e: Error) => (err = e));
  assert.match((err as unknown as Error).message, /--run latest: reserved/);
});

testWithData(test, "--on-bad-row: a malformed row stops training by default, naming file and line; skip goes past it", async (dataDir) => {
  // 400 real SNLI dev rows with one broken line (line 201)
  const badData = join(tmp, "bad-data");
  mkdirSync(join(badData, "snli_1.0"), { recursive: true });
  const rows = readFileSync(join(dataDir, "snli_1.0", "snli_1.0_dev.jsonl"), "utf8")
    .split("\n")
    .slice(0, 400);
  rows.splice(200, 0, '{"gold_label": "entailment", "sentence1": ');
  const file = join(badData, "snli_1.0", "snli_1.0_dev.jsonl");
  writeFileSync(file, `${rows.join("\n")}\n`);
  const env = { BRIDGE_RUNS_DIR: join(tmp, "runs-bad"), BRIDGE_CACHE_DIR: join(tmp, "cache") };
  const base = ["train", "--config", tiny, "--data-dir", badData, "--quiet"];

  const strict = cli([...base, "--run", "strict"], env);
  assert.is(await strict.exited, 1, strict.output());
  assert.match(strict.output(), `${file}:201: not valid JSON`);
  assert.not.ok(existsSync(join(tmp, "runs-bad", "strict")), "the failed run left its folder");

  // With skip the data loads; a backend address that cannot be connected to is then refused where the backend
  // would start, which shows that the run got past its data without training it.
  const { clientFile } = generateKeys(join(tmp, "keys"));
  const lenient = cli([...base, "--run", "lenient", "--on-bad-row", "skip", "--backend", "tcp://no-port", "--keys", clientFile], env);
  assert.is(await lenient.exited, 1, lenient.output());
  assert.not.match(lenient.output(), "not valid JSON");
  assert.match(lenient.output(), "cannot connect to tcp://no-port");

  const wrong = cli([...base, "--run", "wrong", "--on-bad-row", "ignore"], env);
  assert.is(await wrong.exited, 1);
  assert.match(wrong.output(), /Invalid values:[\s\S]*on-bad-row[\s\S]*"error", "skip"/);
});

test("train's backend flags are checked before any data is read: a missing key file, --keys alone, --nproc, --master, a word for a number, an empty value", async () => {
  const env = { BRIDGE_RUNS_DIR: join(tmp, "runs-flags"), BRIDGE_DATA_DIR: join(tmp, "no-data-here") };
  const base = ["train", "--config", tiny, "--quiet"];
  for (const [args, message] of [
    [["--backend", "tcp://127.0.0.1:5555", "--keys", join(tmp, "missing.json")], `--keys ${join(tmp, "missing.json")}: no such file`],
    [["--keys", join(tmp, "missing.json")], "--keys goes with --backend"],
    [["--nproc", "0"], "--nproc 0: a whole number of data-parallel ranks, 1 or more"],
    [["--nproc", "1.5"], "--nproc 1.5: a whole number"],
    [["--master", "host:1"], "--master goes with --hosts"],
    [["--data-dir", "a", "--data-dir", "b"], "--data-dir was given 2 times; it takes one value"],
    [["--nproc", "abc"], "--nproc takes a number"],
    [["--nproc="], "--nproc takes a number; it was given none"],
    [["--nproc", ""], "--nproc takes a number; it was given none"],
    [["--data-dir", ""], "--data-dir takes a value; it was given none"],
    [["--data-dir="], "--data-dir takes a value; it was given none"],
    [["--run"], "--run takes a value; it was given none"],
    [["--backend", "foo://x"], "--backend foo://x: expected tcp://HOST:PORT"],
  ] as const) {
    const run = cli([...base, ...args], env);
    assert.is(await run.exited, 1, run.output());
    assert.match(run.output(), message);
    // refused before the data: the missing data folder is never mentioned
    assert.not.match(run.output(), "no-data-here");
  }
});

test.run();
