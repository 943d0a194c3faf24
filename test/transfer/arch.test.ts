/**
 * init refuses a source of another model.arch before anything is built: a finished run (its run.json), a pretrained:NAME
 * (its pretraining config), an init.build run not built yet (its build config), naming both archs. No backend starts.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { train } from "../../ts/commands/train.js";
import { archOf } from "../../ts/config/schema.js";
import { projectRoot } from "../../ts/paths.js";
import { MANIFEST_VERSION } from "../../ts/run/manifest.js";
import { assertInitArch, sourceArch } from "../../ts/train/init.js";
import { tempFolder } from "../helpers.js";

const runsDir = tempFolder("bridge-arch-");
const tiny = join(projectRoot, "configs", "tiny.yaml");

/** A finished run's folder as init reads it: run.json (model build args, final checkpoint); no weights. */
function fakeRun(name: string, model: Record<string, unknown>): void {
  mkdirSync(join(runsDir, name, "checkpoints"), { recursive: true });
  const manifest = {
    version: MANIFEST_VERSION,
    name,
    created: "2026-01-01T00:00:00Z",
    seed: 1,
    model,
    tokenizer: {},
    vocab: { size: 0, fingerprint: "" },
    stages: [],
    finalCheckpoint: "checkpoints/final.pt",
  };
  writeFileSync(join(runsDir, name, "run.json"), JSON.stringify(manifest));
}

async function refusal(opts: Parameters<typeof train>[0]): Promise<Error> {
  const err = await train({ quiet: true, runsDir, ...opts }).then(
    () => null,
    (e: Error) => e,
  );
  assert.ok(err, "the run started");
  return err as Error;
}

test.after(() => rmSync(runsDir, { recursive: true, force: true }));

test("archOf: absent is awd_lstm; an unknown arch is named", () => {
  assert.is(archOf({}), "awd_lstm");
  assert.is(archOf(undefined), "awd_lstm");
  assert.is(archOf({ arch: "sha_rnn" }), "sha_rnn");
  assert.throws(() => archOf({ arch: "gru" }), /model\.arch "gru": not one of awd_lstm, sha_rnn/);
});

test("a finished run's arch is read from its run.json; a run of another arch is refused naming both", async () => {
  fakeRun("sha-lm", { preset: "tiny", arch: "sha_rnn", vocab_sz: 100 });
  fakeRun("awd-lm", { preset: "tiny", vocab_sz: 100 });
  assert.equal(sourceArch("sha-lm", { runsDir }), { arch: "sha_rnn", where: join(runsDir, "sha-lm", "run.json") });
  assert.is(sourceArch("awd-lm", { runsDir })?.arch, "awd_lstm");
  assert.not.throws(() => assertInitArch({ arch: "sha_rnn" }, "sha-lm", sourceArch("sha-lm", { runsDir })));
  assert.throws(() => assertInitArch({}, "sha-lm", sourceArch("sha-lm", { runsDir })), /arch sha_rnn vs awd_lstm .*absent: awd_lstm/);

  const err = await refusal({ config: tiny, run: "awd-from-sha", init: "sha-lm" });
  assert.match(err.message, "init.from sha-lm: arch sha_rnn vs awd_lstm");
  assert.match(err.message, join(runsDir, "sha-lm", "run.json"));
  assert.not.ok(existsSync(join(runsDir, "awd-from-sha")), "the refused run left a folder");
  const back = await refusal({ config: tiny, run: "sha-from-awd", init: "awd-lm", set: ["model.arch=sha_rnn"] });
  assert.match(back.message, "init.from awd-lm: arch awd_lstm vs sha_rnn");
});

test("a file that is not a checkpoint is named as such before anything is built (was: 'no vocabulary for this checkpoint')", async () => {
  const text = join(runsDir, "notes.txt");
  writeFileSync(text, "not weights\n");
  const err = await refusal({ config: tiny, run: "from-text", init: text });
  assert.match(err.message, `init.from ${text}: ${text} is not a checkpoint (not a torch archive)`);
  assert.not.ok(existsSync(join(runsDir, "from-text")), "the refused run left a folder");
});

test("pretrained:NAME is compared by its pretraining config, before anything is built", async () => {
  const err = await refusal({ config: tiny, run: "awd-from-wiki-sha", init: "pretrained:wiki-fwd-sha" });
  assert.match(err.message, "init.from pretrained:wiki-fwd-sha: arch sha_rnn vs awd_lstm");
  assert.match(err.message, join("configs", "pretrain-sha.yaml"));
  const back = await refusal({ config: tiny, run: "sha-from-wiki", init: "pretrained:wiki-fwd", set: ["model.arch=sha_rnn"] });
  assert.match(back.message, "init.from pretrained:wiki-fwd: arch awd_lstm vs sha_rnn");
  assert.not.ok(existsSync(join(runsDir, "awd-from-wiki-sha")) || existsSync(join(runsDir, "sha-from-wiki")));
});

test("fastai's weights (AWD-LSTMs) into a SHA-RNN are refused before anything is fetched or built", async () => {
  const cacheDir = tempFolder("bridge-arch-cache-");
  const before = process.env.BRIDGE_CACHE_DIR;
  process.env.BRIDGE_CACHE_DIR = cacheDir; // an empty cache: a download would be the next step
  try {
    const err = await refusal({ config: tiny, run: "sha-from-fastai", init: "fastai:wt103-fwd", set: ["model.arch=sha_rnn"] });
    assert.match(err.message, "init.from fastai:wt103-fwd: arch awd_lstm vs sha_rnn");
    assert.match(err.message, "fastai:wt103-fwd (an AWD-LSTM)");
    assert.not.ok(existsSync(join(runsDir, "sha-from-fastai")), "the refused run left a folder");
  } finally {
    if (before === undefined) delete process.env.BRIDGE_CACHE_DIR;
    else process.env.BRIDGE_CACHE_DIR = before;
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("init.build's run not built yet is compared by its build config", async () => {
  const dir = tempFolder("bridge-arch-cfg-");
  try {
    writeFileSync(join(dir, "lm.yaml"), `extends: ${tiny}\nmodel: { arch: sha_rnn }\n`);
    writeFileSync(join(dir, "recipe.yaml"), `extends: ${tiny}\ninit: { from: built-sha, build: lm.yaml }\n`);
    const err = await refusal({ config: join(dir, "recipe.yaml"), run: "awd-from-built" });
    assert.match(err.message, "init.from built-sha: arch sha_rnn vs awd_lstm");
    assert.match(err.message, join(dir, "lm.yaml"));
    assert.not.ok(existsSync(join(runsDir, "built-sha")), "the init.build run was started");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
