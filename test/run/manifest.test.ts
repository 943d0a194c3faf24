/** Finding a run: by name, or the latest (runs/latest, else the newest manifest), with clear errors. */
import { lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readManifest, resolveRunName, runPaths, writeLatestLink } from "../../ts/run/manifest.js";
import { readState } from "../../ts/train/checkpoints.js";
import { tempFolder } from "../helpers.js";

const roots: string[] = [];
function runsDir(): string {
  const d = tempFolder("bridge-runs-");
  roots.push(d);
  return d;
}

/** A run folder with a manifest created at `created`. */
function fakeRun(root: string, name: string, created: string): void {
  mkdirSync(join(root, name), { recursive: true });
  writeFileSync(join(root, name, "run.json"), JSON.stringify({ version: 1, name, created }));
}

test.after(() => roots.forEach((d) => rmSync(d, { recursive: true, force: true })));

test("no runs: a clear error saying how to make one", () => {
  const root = runsDir();
  assert.throws(
    () => resolveRunName(undefined, root),
    (e: Error) => e.message.includes(`no runs in ${root}`) && e.message.includes("npx bridge train"),
  );
  assert.throws(() => resolveRunName(undefined, join(root, "missing")), /no runs in/);
});

test("a named run resolves to itself; an unknown one lists the runs there", () => {
  const root = runsDir();
  fakeRun(root, "alpha", "2024-01-01T00:00:00.000Z");
  fakeRun(root, "beta", "2024-02-01T00:00:00.000Z");
  mkdirSync(join(root, "not-a-run")); // no run.json
  assert.is(resolveRunName("alpha", root), "alpha");
  assert.throws(
    () => resolveRunName("default", root),
    (e: Error) => e.message.includes('no run named "default"') && e.message.includes("runs there: alpha, beta") && !e.message.includes("not-a-run"),
  );
  assert.throws(() => resolveRunName("../x", root), /letters, digits/);
});

test("without a name: runs/latest when it points at a run, else the newest manifest", () => {
  const root = runsDir();
  fakeRun(root, "older", "2024-01-01T00:00:00.000Z");
  fakeRun(root, "newer", "2024-03-01T00:00:00.000Z");
  fakeRun(root, "middle", "2024-02-01T00:00:00.000Z");
  assert.is(resolveRunName(undefined, root), "newer");
  writeLatestLink("older", root);
  assert.is(resolveRunName(undefined, root), "older");
  assert.is(resolveRunName("latest", root), "older");
  // the link is relative, and refreshing it leaves no temp files
  assert.is(readlinkSync(join(root, "latest")), "older");
  writeLatestLink("middle", root);
  assert.is(readlinkSync(join(root, "latest")), "middle");
  assert.ok(lstatSync(join(root, "latest")).isSymbolicLink());
  assert.equal(readdirSync(root).sort(), ["latest", "middle", "newer", "older"]);
  // a link to a run that was deleted falls back to the newest manifest
  rmSync(join(root, "middle"), { recursive: true });
  assert.is(resolveRunName(undefined, root), "newer");
});

test("a truncated state.json is named, with where the checkpoints are", () => {
  const root = runsDir();
  fakeRun(root, "torn", "2026-01-01T00:00:00Z");
  const paths = runPaths("torn", root);
  writeFileSync(join(paths.dir, "state.json"), '{"version": 1, "stage": 0, "posit');
  assert.throws(
    () => readState(paths),
    (e: Error) => e.message.startsWith(`${join(paths.dir, "state.json")}: not valid JSON`) && e.message.includes(join(paths.dir, "checkpoints")),
  );
  writeFileSync(join(paths.dir, "state.json"), "null");
  assert.throws(() => readState(paths), /state\.json: not a run state/);
});

test("a run.json of the wrong shape is named with the field, not met later as a TypeError; a checkpoint outside the run is refused", () => {
  const root = runsDir();
  const good = {
    version: 1,
    name: "r",
    created: "2026-12-06T00:00:00Z",
    seed: 1,
    model: {},
    tokenizer: {},
    vocab: { size: 3, fingerprint: "f" },
    stages: [],
    finalCheckpoint: null,
  };
  for (const [name, manifest, message] of [
    ["null", null, "manifest version missing"],
    ["stages-object", { ...good, stages: { a: 1 } }, 'stages: got {"a":1}; expected array'],
    ["final-number", { ...good, finalCheckpoint: 5 }, "finalCheckpoint: got 5; expected string"],
    [
      "final-outside",
      { ...good, finalCheckpoint: "../other/checkpoints/0-lm.pt" },
      'finalCheckpoint: got "../other/checkpoints/0-lm.pt"; a path inside the run folder',
    ],
    ["no-vocab", { ...good, vocab: undefined }, "vocab: missing; expected object"],
  ] as const) {
    mkdirSync(join(root, name), { recursive: true });
    writeFileSync(join(root, name, "run.json"), JSON.stringify(manifest));
    assert.throws(
      () => readManifest(runPaths(name, root)),
      (e: Error) => e.message.startsWith(join(root, name, "run.json")) && e.message.includes(message),
      name,
    );
  }
  mkdirSync(join(root, "fine"), { recursive: true });
  writeFileSync(join(root, "fine", "run.json"), JSON.stringify({ ...good, finalCheckpoint: "checkpoints/1-siamese.pt", extra: "kept" }));
  assert.is((readManifest(runPaths("fine", root)) as unknown as { extra: string }).extra, "kept");
});

test.run();
