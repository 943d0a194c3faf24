/**
 * The pretrained-model cache with the real backend on a tiny corpus: `init: { from: pretrained:CONFIG }` builds the
 * LM into the cache once and later runs reuse it without training it again; a changed config builds a new entry;
 * an entry that cannot be read is named, set aside and built again; an interrupted build is finished.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { modelsCommand } from "../../ts/commands/models.js";
import { ensurePretrained, train } from "../../ts/commands/train.js";
import { projectRoot } from "../../ts/paths.js";
import { IMPORT_FILE } from "../../ts/run/importManifest.js";
import { readManifest, runPaths } from "../../ts/run/manifest.js";
import { ENTRY_FILE, listCache, modelCacheDir, pretrainedNameOf } from "../../ts/run/modelCache.js";
import { Progress } from "../../ts/train/progress.js";
import { tempFolder, testWithData } from "../helpers.js";

const tmp = tempFolder("bridge-cache-");
const saved = process.env.BRIDGE_CACHE_DIR;
process.env.BRIDGE_CACHE_DIR = join(tmp, "cache");
test.after(() => {
  if (saved === undefined) delete process.env.BRIDGE_CACHE_DIR;
  else process.env.BRIDGE_CACHE_DIR = saved;
  rmSync(tmp, { recursive: true, force: true });
});

/** A pretraining config of a few LM steps on the tiny preset. */
function pretrainConfig(name: string, steps: number): string {
  const path = join(tmp, `${name}.yaml`);
  writeFileSync(
    path,
    `extends: ${join(projectRoot, "configs", "tiny.yaml")}\nstages: [{ name: lm, objective: lm, steps: ${steps}, batchSize: 8, bptt: 12, checkpointEvery: 2 }]\n`,
  );
  return path;
}

/** A recipe that starts its siamese stage from `from`. */
function recipe(from: string): string {
  const path = join(tmp, "recipe.yaml");
  writeFileSync(
    path,
    `extends: ${join(projectRoot, "configs", "tiny.yaml")}\ninit: { from: "${from}" }\nstages: [{ objective: siamese, steps: 3, batchSize: 16 }]\n`,
  );
  return path;
}

const lmStarts = () =>
  listCache()
    .filter((e) => !e.problem)
    .map((e) => e.entry);

testWithData(test, "pretrained:CONFIG is built once into the cache, reused after, rebuilt when changed or unreadable", async (dataDir) => {
  const runsDir = join(tmp, "runs");
  const lmA = pretrainConfig("lm-a", 4);
  const notes: string[] = [];
  const progress = new Progress(true);
  progress.note = (l: string) => void notes.push(l);

  // first use: built, said so, listed
  await train({ config: recipe(`pretrained:${lmA}`), run: "r1", quiet: true, dataDir, runsDir });
  const [entry] = readdirSync(modelCacheDir());
  assert.match(entry, /^lm-a-[0-9a-f]{16}$/, readdirSync(modelCacheDir()).join(", "));
  const dir = join(modelCacheDir(), entry);
  const record = JSON.parse(readFileSync(join(dir, ENTRY_FILE), "utf8")) as { name: string; vocab: number; perplexity: number };
  assert.is(record.name, "lm-a");
  assert.ok(record.perplexity > 1 && record.vocab > 100);
  assert.equal(lmStarts(), [entry]);
  const listed: string[] = [];
  modelsCommand({ print: (l) => listed.push(l) });
  assert.match(listed.join("\n"), new RegExp(`${entry}\\s+lm-a\\s+[\\d.]+\\s+${record.vocab}\\s+.*ok`));
  const built = readFileSync(join(dir, "checkpoints", "0-lm.pt"));
  const r1 = readManifest(runPaths("r1", runsDir));
  assert.ok(r1.stages[0].completed);

  // later use: the same entry, nothing trained again
  assert.is(await ensurePretrained(`pretrained:${lmA}`, { dataDir, quiet: true }, progress), dir);
  assert.match(notes.join("\n"), /the cached model/);
  assert.ok(readFileSync(join(dir, "checkpoints", "0-lm.pt")).equals(built), "the cached LM was trained again");
  await train({ config: recipe(`pretrained:${lmA}`), run: "r2", quiet: true, dataDir, runsDir });
  assert.equal(readdirSync(modelCacheDir()), [entry]);

  // a changed config: a new entry beside the old
  const lmB = pretrainConfig("lm-a", 6); // same file name, other steps
  const dirB = await ensurePretrained(`pretrained:${lmB}`, { dataDir, quiet: true }, progress);
  assert.is.not(dirB, dir);
  assert.is(readdirSync(modelCacheDir()).length, 2);

  // a corrupt entry: named, set aside, built again (never loaded)
  writeFileSync(join(dirB, "checkpoints", "0-lm.pt"), "garbage");
  notes.length = 0;
  assert.is(await ensurePretrained(`pretrained:${lmB}`, { dataDir, quiet: true }, progress), dirB);
  assert.match(notes.join("\n"), /cannot be used \(.*0-lm\.pt: truncated \(7 bytes\)\); moved it to .*\.broken-/);
  assert.ok(readFileSync(join(dirB, "checkpoints", "0-lm.pt")).length > 1024);
  assert.ok(listCache().some((e) => e.entry.includes(".broken-") && e.problem !== null));

  // an interrupted build (no entry record yet, state not done): finished, not started over
  const lmC = pretrainConfig("lm-c", 6);
  const dirC = await ensurePretrained(`pretrained:${lmC}`, { dataDir, quiet: true }, progress);
  rmSync(join(dirC, ENTRY_FILE));
  const statePath = join(dirC, "state.json");
  const state = JSON.parse(readFileSync(statePath, "utf8")) as { done: boolean };
  assert.is(state.done, true);
  notes.length = 0;
  assert.is(await ensurePretrained(`pretrained:${lmC}`, { dataDir, quiet: true }, progress), dirC);
  assert.ok(existsSync(join(dirC, ENTRY_FILE)), "a finished build missing only its record gets it back, untrained");
});

testWithData(test, "`bridge train --config` of a pretraining config builds into the cache, and a recipe after it reuses the entry", async (dataDir) => {
  const runsDir = join(tmp, "runs-cache-cmd");
  const lmD = pretrainConfig("lm-d", 4);
  const built = await train({ config: lmD, cache: true, quiet: true, dataDir, runsDir });
  assert.match(built.run, /^lm-d-[0-9a-f]{16}$/);
  assert.is(built.dir, join(modelCacheDir(), built.run));
  assert.ok(existsSync(join(built.dir, ENTRY_FILE)) && built.stages.length === 1, "built and recorded");
  assert.not.ok(existsSync(runsDir), "it trained into runs/");
  const weights = readFileSync(join(built.dir, "checkpoints", "0-lm.pt"));
  // the same command again finds it built; a recipe starting from it trains only its own stage
  const again = await train({ config: lmD, cache: true, quiet: true, dataDir, runsDir });
  assert.equal([again.dir, again.stages.length], [built.dir, 0]);
  await train({ config: recipe(`pretrained:${lmD}`), run: "from-d", quiet: true, dataDir, runsDir });
  assert.ok(readFileSync(join(built.dir, "checkpoints", "0-lm.pt")).equals(weights), "the cached LM was trained again");
  assert.is(readManifest(runPaths("from-d", runsDir)).stages.length, 1);
  // the recipe found the entry the command built (the same key), not one of its own
  assert.equal(
    readdirSync(modelCacheDir()).filter((e) => e.startsWith("lm-d-")),
    [built.run],
  );
  const fromD = JSON.parse(readFileSync(runPaths("from-d", runsDir).config, "utf8")) as { init?: { from?: string } };
  assert.is(fromD.init?.from, built.dir);
  // --cache builds the config as it is: a run name or an override would make it another model
  const refused = await train({ config: lmD, cache: true, run: "x", quiet: true, dataDir, runsDir }).catch((e: Error) => e);
  assert.match((refused as Error).message, /--cache builds the config as it is into the model cache: drop --run \/ --set \/ --init/);
});

test("the project's pretraining configs are the cache's named models: configs/pretrain.yaml is pretrained:wiki-fwd", () => {
  assert.is(pretrainedNameOf(join(projectRoot, "configs", "pretrain.yaml")), "pretrained:wiki-fwd");
  assert.is(pretrainedNameOf(join(projectRoot, "configs", "pretrain-bwd.yaml")), "pretrained:wiki-bwd");
  assert.is(pretrainedNameOf(join(projectRoot, "configs", "tiny.yaml")), null);
});

test("an unknown pretrained name lists the known ones", async () => {
  const err = await ensurePretrained("pretrained:nope", { quiet: true }, new Progress(true)).catch((e: Error) => e);
  assert.match((err as Error).message, /unknown pretrained model; known: pretrained:wiki-fwd, pretrained:wiki-bwd, pretrained:wiki-fwd-sha/);
});

test("bridge models: entries of the wrong shape are listed with what is wrong; a cache that is a file is named", () => {
  const dir = join(tmp, "listing", "models");
  const entry = (name: string, record: string | null) => {
    mkdirSync(join(dir, name), { recursive: true });
    if (record !== null) writeFileSync(join(dir, name, ENTRY_FILE), record);
  };
  const good = {
    format: "bridge-model-cache",
    version: 1,
    name: "lm",
    config: "lm.yaml",
    key: "k",
    built: "2026-12-06T07:00:00Z",
    seconds: 60,
    vocab: 500,
    perplexity: 80,
  };
  entry("lm-null", "null");
  entry("lm-garbage", "{ not json");
  entry("lm-built-number", JSON.stringify({ ...good, built: 20261206 }));
  entry("lm-no-run", JSON.stringify(good));
  entry("lm-unfinished", null);
  // fastai's converted models: import.json and its checkpoint
  const fastai = (name: string, manifest: string, checkpoint: boolean) => {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, IMPORT_FILE), manifest);
    if (checkpoint) writeFileSync(join(dir, name, "model.pt"), "weights");
  };
  const imported = JSON.stringify({ format: "bridge-import", version: 1, source: "fastai", checkpoint: "model.pt", itos: ["xxunk"], config: {} });
  fastai("fastai-wt103-fwd", imported, true);
  fastai("fastai-wt103-bwd", "nonsense", true);
  fastai("fastai-other", imported, false);
  const listed = new Map(listCache(dir).map((e) => [e.entry, e]));
  assert.match(listed.get("lm-null")!.problem!, "entry.json: not a cache entry record ((top level): got null; expected object)");
  assert.match(listed.get("lm-garbage")!.problem!, "entry.json: unreadable");
  assert.match(listed.get("lm-built-number")!.problem!, "built: got 20261206; expected string");
  assert.is(listed.get("lm-built-number")!.built, null, "a wrong record's fields are not shown as if true");
  assert.match(listed.get("lm-no-run")!.problem!, "run.json: missing (the build did not finish, or the entry was damaged)");
  assert.is(listed.get("lm-no-run")!.built, good.built);
  assert.match(listed.get("lm-unfinished")!.problem!, "entry.json: missing (the build did not finish)");
  assert.is(listed.get("fastai-wt103-fwd")!.problem, null);
  assert.match(listed.get("fastai-wt103-bwd")!.problem!, `${join(dir, "fastai-wt103-bwd", IMPORT_FILE)}: unreadable`);
  assert.match(listed.get("fastai-other")!.problem!, "its checkpoint");
  // a cache folder that is a file, and a BRIDGE_CACHE_DIR that is a file: named, not listed as empty
  const file = join(tmp, "listing", "a-file");
  writeFileSync(file, "x");
  assert.throws(() => listCache(file), /the model cache .*a-file.* is a file, not a folder/);
  const saved = process.env.BRIDGE_CACHE_DIR;
  process.env.BRIDGE_CACHE_DIR = file;
  try {
    assert.throws(() => listCache(), /the model cache's folder .*a-file \(BRIDGE_CACHE_DIR\) is a file, not a folder/);
  } finally {
    process.env.BRIDGE_CACHE_DIR = saved;
  }
});

test.run();
