/**
 * The training data plan: the seeded holdout keeps whole premise groups out of training, extra LM
 * text may not be a validation or test split, and resume's log truncation is exact and atomic.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ConfigError, loadConfig } from "../../ts/config/load.js";
import { parseSplitRef } from "../../ts/data/datasets.js";
import { truncateLog } from "../../ts/train/checkpoints.js";
import { HOLDOUT_SEED, loadTrainingData, premiseHoldout } from "../../ts/train/data.js";
import { projectRoot } from "../../ts/paths.js";
import { sharedDataDir } from "../helpers.js";

const tiny = loadConfig({ file: join(projectRoot, "configs", "tiny.yaml") });

function checkHoldout(premises: string[], fraction: number) {
  const a = premiseHoldout(premises, fraction, HOLDOUT_SEED);
  const b = premiseHoldout(premises, fraction, HOLDOUT_SEED);
  assert.equal(Array.from(a.validRows), Array.from(b.validRows), "same seed, same split");
  assert.is(a.validRows.length + a.trainRows.length, premises.length);
  const trained = new Set(Array.from(a.trainRows, (i) => premises[i]));
  for (const i of a.validRows) assert.not.ok(trained.has(premises[i]), `held-out premise ${premises[i]} also trains`);
  return a;
}

test("premiseHoldout: whole premise groups, about the fraction, deterministic", () => {
  const premises = Array.from({ length: 3000 }, (_, i) => `premise ${Math.floor(i / 3) % 700}`); // groups of 3 and 6
  const a = checkHoldout(premises, 0.1);
  assert.ok(a.validRows.length >= 300 && a.validRows.length < 306, `${a.validRows.length}`);
  const c = premiseHoldout(premises, 0.1, HOLDOUT_SEED + 1);
  assert.not.equal(Array.from(c.validRows), Array.from(a.validRows), "another seed, another split");
});

test("premiseHoldout on SNLI dev: no held-out premise among the training rows", async () => {
  const dataDir = sharedDataDir("train: data holdout");
  if (!dataDir) return;
  const ref = parseSplitRef("snli:dev", dataDir);
  const premises: string[] = [];
  if (ref.dataset.kind !== "pairs") throw new Error("snli is a pair dataset");
  for await (const r of ref.dataset.read(ref.path!, { onBadRow: "error" })) premises.push(r.s1);
  const a = checkHoldout(premises, 0.1);
  assert.ok(Math.abs(a.validRows.length - Math.round(0.1 * premises.length)) < 10, `${a.validRows.length}`);
});

test("data.lmText may not be the validation split or a dev/test split of the pairs", async () => {
  for (const ref of ["snli:dev", "snli:validation", "snli:test"]) {
    const cfg = { ...tiny, data: { ...tiny.data, lmText: ["wikitext-2:train", ref] } };
    const err = await loadTrainingData(cfg, { dataDir: mkdtempSync(join(tmpdir(), "bridge-nodata-")) }).then(
      () => null,
      (e: Error) => e,
    );
    assert.instance(err, ConfigError, ref);
    assert.match(err!.message, "data.lmText[1]");
    assert.match(err!.message, ref);
  }
});

test("truncateLog: drops what follows the checkpoint and a restarting stage's stage_start, atomically", () => {
  const dir = mkdtempSync(join(tmpdir(), "bridge-log-"));
  const path = join(dir, "log.jsonl");
  const lines = [
    { type: "run_start" },
    { type: "stage_start", stage_index: 0 },
    { type: "train", stage_index: 0, step: 1 },
    { type: "stage_end", stage_index: 0, step: 1 },
    { type: "stage_start", stage_index: 1 },
    ...[1, 2, 3, 4].map((step) => ({ type: "train", stage_index: 1, step })),
  ];
  const write = () => writeFileSync(path, lines.map((l) => JSON.stringify(l) + "\n").join("") + '{"type":"tr');
  const read = () => readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; stage_index?: number; step?: number });
  write();
  truncateLog(path, 1, 2); // resuming stage 1 from its step-2 checkpoint: stage_start stays
  assert.equal(read(), lines.slice(0, 7));
  write();
  truncateLog(path, 1, 0); // stage 1 starts over: its stage_start is written again, so it goes
  assert.equal(read(), lines.slice(0, 4));
  assert.equal(readdirSync(dir), ["log.jsonl"], "no temp file left");
  rmSync(dir, { recursive: true, force: true });
});

test.run();
