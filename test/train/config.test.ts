/** The config: presets validate, bad values are refused with field, value and what is allowed; --set; schedules. */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { applySet, ConfigError, loadConfig, validateConfig } from "../../ts/config/load.js";
import { OBJECTIVE_SPECS, OBJECTIVES, resolveOptions } from "../../ts/config/objectives.js";
import { LrSchema } from "../../ts/config/schema.js";
import { projectRoot } from "../../ts/paths.js";
import { alignToAccum } from "../../ts/train/loop.js";
import { scheduleAt, unfrozenGroups } from "../../ts/train/schedules.js";
import { refused, tempFolder } from "../helpers.js";

const minimal = () => ({ stages: [{ objective: "siamese" }] });

test("every preset in configs/ validates", () => {
  const files = readdirSync(join(projectRoot, "configs")).filter((f) => f.endsWith(".yaml"));
  for (const f of ["tiny.yaml", "default.yaml", "ulmfit-snli.yaml", "contrastive.yaml"]) assert.ok(files.includes(f), `configs/${f} missing`);
  for (const f of files) {
    const c = loadConfig({ file: join(projectRoot, "configs", f) });
    assert.ok(c.stages.length >= 1, f);
  }
});

test("defaults fill in", () => {
  const c = validateConfig(minimal());
  assert.is(c.seed, 42);
  assert.is(c.stages[0].batchSize, 64);
  assert.is(c.stages[0].lr.schedule, "one_cycle");
  assert.is(c.data.holdout, 0.1);
});

test("a bad enum names the field, the value and the choices", () => {
  refused(
    { stages: [{ objective: "siamese", lr: { schedule: "linear" } }] },
    "test.yaml",
    "stages.0.lr.schedule",
    '"linear"',
    '"one_cycle"',
    '"slanted_triangular"',
  );
  refused({ stages: [{ objective: "ranking" }] }, "stages.0.objective", '"ranking"', '"contrastive"');
});

test("out-of-range numbers and wrong types are refused", () => {
  refused({ stages: [{ objective: "lm", batchSize: 0 }] }, "stages.0.batchSize", "got 0", "greater than 0");
  refused({ stages: [{ objective: "lm", lr: { max: -1 } }] }, "stages.0.lr.max", "got -1");
  refused({ vocab: { oovBuckets: -5 }, stages: [{ objective: "lm" }] }, "vocab.oovBuckets", "got -5");
  refused({ vocab: { oovBuckets: 2.5 }, stages: [{ objective: "lm" }] }, "vocab.oovBuckets");
  refused({ stages: [{ objective: "lm", epochs: "two" }] }, "stages.0.epochs", '"two"', "expected number");
  refused({ model: { input_p: 1.5 }, stages: [{ objective: "lm" }] }, "model.input_p", "got 1.5");
});

test("unknown fields are refused with the allowed ones", () => {
  refused({ stages: [{ objective: "lm", learning_rate: 1 }] }, "stages.0", '"learning_rate"', "allowed:", "lr");
  refused({ ...minimal(), modle: {} }, '"modle"', "model");
});

test("missing or empty stages, duplicate names, bidirectional LM", () => {
  refused({}, "stages", "missing");
  refused({ stages: [] }, "at least one stage");
  refused({ stages: [{ objective: "lm" }, { objective: "lm" }] }, "stages.1.name", "distinct");
  refused({ model: { bidir: true }, stages: [{ objective: "lm" }] }, "bidirectional");
});

test("head_mix needs pool_layers mix in every stage and no projection; stepsPerRequest is a positive integer", () => {
  const stage = { objective: "siamese" };
  refused({ model: { head_mix: true }, stages: [stage] }, "model.head_mix", "needs pool_layers mix", "stage 1 pools top");
  refused({ model: { head_mix: true, pool_layers: "mix" }, stages: [stage, { ...stage, name: "b", poolLayers: "all" }] }, "stage 2 pools all");
  refused({ model: { head_mix: true, pool_layers: "mix", proj_dim: 8 }, stages: [stage] }, "cannot go with proj_dim");
  assert.is(validateConfig({ model: { head_mix: true, pool_layers: "mix" }, stages: [stage] }, "t.yaml").model.head_mix, true);
  refused({ stepsPerRequest: 0, stages: [stage] }, "stepsPerRequest");
  assert.is(validateConfig({ stages: [stage] }, "t.yaml").stepsPerRequest, undefined); // absent: the loop's default, no hash change
});

test("model.arch: absent from a resolved config that does not name it; a preset must be the arch's; sha_rnn is one-directional", () => {
  assert.not.ok(Object.hasOwn(validateConfig(minimal()).model, "arch"), "a default would change every existing config's hash");
  assert.not.ok(Object.hasOwn(validateConfig(minimal()).model, "mem_len"));
  const sha = validateConfig({ ...minimal(), model: { arch: "sha_rnn", mem_len: 40 } });
  assert.equal([sha.model.arch, sha.model.preset, sha.model.mem_len], ["sha_rnn", "cpu_small", 40]);
  assert.is(validateConfig({ ...minimal(), model: { arch: "sha_rnn", preset: "sha_rnn_paper" } }).model.preset, "sha_rnn_paper");
  refused({ ...minimal(), model: { arch: "sha_rnn", preset: "ulmfit" } }, "model.preset", "preset ulmfit is not one of arch sha_rnn's: sha_rnn_paper");
  refused({ ...minimal(), model: { preset: "sha_rnn_paper" } }, "model.preset", "arch awd_lstm's: ulmfit");
  refused({ ...minimal(), model: { arch: "sha_rnn", bidir: true } }, "model.bidir", "one-directional");
  refused({ ...minimal(), model: { arch: "gru" } }, "model.arch", '"sha_rnn"');
});

test("model.mem_len and sentence_attention: sha_rnn settings, refused for awd_lstm; absent unless given", () => {
  const sha = validateConfig({ ...minimal(), model: { arch: "sha_rnn", sentence_attention: "causal" } });
  assert.is(sha.model.sentence_attention, "causal");
  assert.not.ok(Object.hasOwn(validateConfig({ ...minimal(), model: { arch: "sha_rnn" } }).model, "sentence_attention"));
  refused({ ...minimal(), model: { mem_len: 40 } }, "model.mem_len", "a sha_rnn setting", "arch awd_lstm has none");
  refused({ ...minimal(), model: { arch: "awd_lstm", sentence_attention: "full" } }, "model.sentence_attention", "a sha_rnn setting");
  refused({ ...minimal(), model: { arch: "sha_rnn", sentence_attention: "bidir" } }, "model.sentence_attention", '"causal"');
});

test("sha_rnn: n_hid (its Boom width) a multiple of emb_sz, the preset's sizes filling in what is not given", () => {
  refused({ ...minimal(), model: { arch: "sha_rnn", n_hid: 500 } }, "model.n_hid", "a multiple of emb_sz (200, e.g. 800): got 500");
  refused({ ...minimal(), model: { arch: "sha_rnn", emb_sz: 300 } }, "model.n_hid", "a multiple of emb_sz (300, e.g. 1200): got 800");
  refused({ ...minimal(), model: { arch: "sha_rnn", emb_sz: 64, n_hid: 32 } }, "model.n_hid", "got 32");
  assert.is(validateConfig({ ...minimal(), model: { arch: "sha_rnn", emb_sz: 100 } }).model.emb_sz, 100);
  assert.is(validateConfig({ ...minimal(), model: { arch: "sha_rnn", preset: "tiny", n_hid: 48 } }).model.n_hid, 48);
  // the AWD-LSTM's n_hid is a layer width: any
  assert.is(validateConfig({ ...minimal(), model: { n_hid: 500 } }).model.n_hid, 500);
});

test("earlyStopping on a metric the stage never reports is refused, naming the stage and the metrics it has", () => {
  const stages = (metric: string) => [{ objective: "lm" }, { name: "nli", objective: "siamese", earlyStopping: { metric } }];
  refused({ stages: stages("val_perplexity") }, "stages.1.earlyStopping.metric", '"nli" (siamese)', "val_perplexity", "val_loss, val_accuracy");
  refused({ stages: [{ objective: "simcse", earlyStopping: { metric: "val_perplexity" } }] }, "stages.0.earlyStopping.metric", '"simcse"');
  assert.is(validateConfig({ stages: stages("val_accuracy") }).stages[1].earlyStopping?.metric, "val_accuracy");
  assert.is(validateConfig({ stages: [{ objective: "lm", earlyStopping: { metric: "val_perplexity" } }] }).stages[0].earlyStopping?.metric, "val_perplexity");
});

test("every objective is described once: the schema's objectives are OBJECTIVE_SPECS' keys", () => {
  assert.equal([...OBJECTIVES].sort(), Object.keys(OBJECTIVE_SPECS).sort());
  // a groups objective trains only as a task on a groups dataset (test/train/groups.test.ts)
  for (const objective of OBJECTIVES.filter((o) => OBJECTIVE_SPECS[o].data !== "groups"))
    assert.is(validateConfig({ stages: [{ objective }] }).stages[0].objective, objective);
  // in-batch negatives cannot be split across ranks
  assert.equal(OBJECTIVES.filter((o) => !OBJECTIVE_SPECS[o].shardable).sort(), ["contrastive", "cosent", "simcse", "supcon"]);
});

test("objective options: checked against what the stage's objectives declare, by path; a task's own win; defaults fill the rest", () => {
  const multi = (options: Record<string, unknown>, taskOptions?: Record<string, unknown>) => ({
    stages: [
      {
        options,
        tasks: [
          { dataset: "snli", objective: "contrastive", ...(taskOptions ? { options: taskOptions } : {}) },
          { dataset: "stsb:train", objective: "cosent" },
        ],
      },
    ],
  });
  const ok = validateConfig(multi({ temperature: 0.1, scale: 10 }, { temperature: 0.2 })).stages[0];
  assert.equal(resolveOptions("contrastive", ok.options, ok.tasks?.[0].options), { temperature: 0.2 });
  assert.equal(resolveOptions("cosent", ok.options, ok.tasks?.[1].options), { scale: 10 });
  assert.equal(resolveOptions("triplet", undefined), { margin: 0.5, distance: "cosine" });
  assert.throws(
    () => validateConfig(multi({ temprature: 0.1 })),
    /stages\.0\.options\.temprature: got 0\.1; contrastive \+ cosent take no option "temprature"; options: temperature \(contrastive\), scale \(cosent\)/,
  );
  assert.throws(
    () => validateConfig(multi({}, { scale: 3 })),
    /stages\.0\.tasks\.0\.options\.scale: got 3; contrastive takes no option "scale"; options: temperature \(contrastive\)/,
  );
  assert.throws(() => validateConfig(multi({ temperature: 0 })), /stages\.0\.options\.temperature: got 0; contrastive's temperature must be > 0, got 0/);
  assert.throws(
    () => validateConfig({ stages: [{ objective: "triplet", options: { distance: "manhattan" } }] }),
    /stages\.0\.options\.distance: got "manhattan"; triplet's distance must be one of cosine, euclidean, got "manhattan"/,
  );
  assert.throws(() => validateConfig({ stages: [{ objective: "lm", options: { alpha: -1 } }] }), /lm's alpha must be >= 0, got -1/);
  assert.throws(() => validateConfig({ stages: [{ objective: "siamese", options: { margin: 1 } }] }), /siamese takes no option "margin"; options: none/);
});

test("an older config's stage-level loss settings are read as its options (runs saved before options still load)", () => {
  const s = validateConfig({ stages: [{ objective: "triplet", margin: 1, distance: "euclidean", options: { margin: 1 } }] }).stages[0];
  assert.equal(s.options, { margin: 1, distance: "euclidean" });
  assert.not.ok("margin" in s);
  // older configs gave them on any stage and objectives without a use for them ignored them: still so
  assert.is(validateConfig({ stages: [{ objective: "siamese", temperature: 0.1 }] }).stages[0].options, undefined);
  const multi = validateConfig({ stages: [{ temperature: 0.1, alpha: 2, tasks: [{ dataset: "snli", objective: "contrastive" }] }] }).stages[0];
  assert.equal(multi.options, { temperature: 0.1 });
  // given both ways, differently: neither wins silently
  assert.throws(
    () => validateConfig({ stages: [{ objective: "contrastive", temperature: 0.1, options: { temperature: 0.05 } }] }),
    /stages\.0\.temperature: got 0\.1; 0\.1 here and 0\.05 in options\.temperature: give it once, as options\.temperature/,
  );
  assert.throws(() => validateConfig({ stages: [{ objective: "contrastive", temperature: 0.1, options: 5 }] }), /stages\.0\.options/);
  // ...but a config a user writes (loadConfig: a file and --set) gets no such pass: the key would do nothing
  assert.throws(
    () => loadConfig({ file: join(projectRoot, "configs", "tiny.yaml"), set: ["stages.siamese.margin=5", "stages.lm.temperature=9"] }),
    /tiny\.yaml with --set stages\.siamese\.margin=5 --set stages\.lm\.temperature=9: invalid config\n {2}stages\.0\.temperature: lm takes no option "temperature"\n {2}stages\.1\.margin: siamese takes no option "margin"/,
  );
  // a misspelt objective is named as such first, not as one that takes no such option
  assert.throws(
    () => loadConfig({ file: join(projectRoot, "configs", "tiny.yaml"), set: ["stages.siamese.objective=siamse", "stages.1.margin=1"] }),
    /stages\.1\.objective: got "siamse"; allowed: /,
  );
  // one a stage's objective does take is lifted into options as before
  const lifted = loadConfig({ file: join(projectRoot, "configs", "tiny.yaml"), set: ["stages.siamese.objective=contrastive", "stages.1.temperature=0.2"] });
  assert.equal(lifted.stages[1].options, { temperature: 0.2 });
});

test("--set parses values and indexes stages by position or name", () => {
  let raw: unknown = { stages: [{ objective: "lm" }, { name: "nli", objective: "siamese" }] };
  raw = applySet(raw, "stages.0.epochs=3");
  raw = applySet(raw, "stages.nli.lr.max=1e-3");
  raw = applySet(raw, "stages.siamese.gradualUnfreeze=true".replace("siamese", "nli"));
  raw = applySet(raw, "data.maxTrainPairs=null");
  raw = applySet(raw, "stages.0.lr.moms=[0.9, 0.8]");
  raw = applySet(raw, "seed=7");
  const c = validateConfig(raw);
  assert.is(c.stages[0].epochs, 3);
  assert.is(c.stages[1].lr.max, 0.001);
  assert.is(c.stages[1].gradualUnfreeze, true);
  assert.equal(c.stages[0].lr.moms, [0.9, 0.8]);
  assert.is(c.data.maxTrainPairs, null);
  assert.is(c.seed, 7);
  assert.throws(() => applySet(raw, "stages.nope.epochs=1"), /no list item named "nope"/);
  assert.throws(() => applySet(raw, "noequals"), /expected key=value/);
  // an unset shell variable (--set data.maxTrainPairs=$N) would lift the cap: refused, with the way to unset on purpose
  assert.throws(() => applySet(raw, "data.maxTrainPairs="), /data\.maxTrainPairs=: no value after "="; to unset a field, say so with data\.maxTrainPairs=null/);
  assert.throws(() => applySet(raw, "seed=  "), /no value after "="/);
});

test("loadConfig: a missing file and broken YAML are clear errors", () => {
  assert.throws(() => loadConfig({ file: "/nonexistent/x.yaml" }), /x\.yaml: cannot read the config/);
  assert.throws(() => loadConfig({ file: join(projectRoot, "configs", "tiny.yaml"), set: ["stages.0.objective=nope"] }), /stages\.0\.objective: got "nope"/);
});

test("schedules: one_cycle rises to max and falls, momentum opposite; slanted triangular; cosine; constant", () => {
  const total = 100;
  const oc = LrSchema.parse({ max: 1, schedule: "one_cycle" });
  const lrs = Array.from({ length: total }, (_, s) => scheduleAt(oc, s, total));
  assert.ok(Math.abs(lrs[0].lr - 1 / 25) < 1e-9);
  const peak = lrs.reduce((a, b, i) => (b.lr > lrs[a].lr ? i : a), 0);
  assert.ok(Math.abs(lrs[peak].lr - 1) < 1e-3 && peak > 20 && peak < 30, `peak at ${peak}`);
  assert.ok(lrs[total - 1].lr < 1e-4);
  assert.ok(lrs[peak].mom! < lrs[0].mom!);
  const st = LrSchema.parse({ max: 1, schedule: "slanted_triangular" });
  assert.ok(Math.abs(scheduleAt(st, 0, total).lr - 1 / 32) < 1e-9);
  assert.ok(scheduleAt(st, 10, total).lr > 0.95);
  assert.ok(Math.abs(scheduleAt(st, total - 1, total).lr - 1 / 32) < 1e-9);
  const cos = LrSchema.parse({ max: 1, schedule: "cosine", pctStart: 0 });
  assert.ok(Math.abs(scheduleAt(cos, 0, total).lr - 1) < 1e-9);
  assert.ok(scheduleAt(cos, total - 1, total).lr < 1e-3);
  assert.is(scheduleAt(LrSchema.parse({ max: 0.3, schedule: "constant" }), 57, total).lr, 0.3);
});

test("every number must be finite, named by its field path: --set, YAML .inf, 1e400", () => {
  const base = join(projectRoot, "configs", "tiny.yaml");
  assert.throws(() => loadConfig({ file: base, set: ["stages.0.lr.max=1e400"] }), /stages\.0\.lr\.max: got Infinity; every number must be finite/);
  assert.throws(() => loadConfig({ file: base, set: ["stages.0.lr={max: .inf}"] }), /stages\.0\.lr\.max: got Infinity/);
  // were saved as null and silently replaced by the defaults
  assert.throws(
    () => loadConfig({ file: base, set: ["stages.0.wd=.inf", "stages.0.clip=-.inf"] }),
    /stages\.0\.wd: got Infinity[\s\S]*stages\.0\.clip: got -Infinity/,
  );
  assert.throws(() => validateConfig({ stages: [{ objective: "siamese", temperature: Number.NaN }] }), /stages\.0\.temperature: got NaN/);
});

test("--set refuses __proto__ / constructor / prototype: nothing reaches Object.prototype", () => {
  const base = join(projectRoot, "configs", "tiny.yaml");
  for (const key of ["__proto__.polluted", "stages.0.__proto__.polluted", "constructor.prototype.polluted", "model.prototype"]) {
    assert.throws(() => loadConfig({ file: base, set: [`${key}=1`] }), /is not a config field/, key);
  }
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  // as a value, a YAML mapping with such a key is data, not a path: the schema names it as an unknown field
  assert.throws(
    () => loadConfig({ file: base, set: ["model={__proto__: {polluted: 1}}"] }),
    (e: unknown) => e instanceof ConfigError,
  );
  assert.is(({} as Record<string, unknown>).polluted, undefined);
});

test("extends: a config starts from another; mappings merge, lists replace, a mapping edits list items by name", () => {
  const dir = tempFolder("bridge-extends-");
  try {
    const base = join(dir, "base.yaml");
    writeFileSync(
      base,
      "seed: 7\nmodel: { preset: tiny, pool: mean }\nstages:\n  - { name: lm, objective: lm, epochs: 1 }\n  - { name: siamese, objective: siamese, epochs: 2, lr: { max: 0.002 } }\n",
    );
    mkdirSync(join(dir, "sub"));
    const child = join(dir, "sub", "child.yaml");
    writeFileSync(child, "extends: ../base.yaml\nmodel: { pool: max }\nstages: { siamese: { epochs: 5 } }\n");
    const c = loadConfig({ file: child });
    assert.is(c.seed, 7);
    assert.equal([c.model.preset, c.model.pool], ["tiny", "max"]);
    assert.equal(
      c.stages.map((st) => st.epochs),
      [1, 5],
    );
    assert.is(c.stages[1].lr.max, 0.002, "the stage's other fields stay");
    const replaced = join(dir, "replace.yaml");
    writeFileSync(replaced, "extends: base.yaml\nstages: [{ objective: contrastive }]\n");
    assert.equal(
      loadConfig({ file: replaced }).stages.map((st) => st.objective),
      ["contrastive"],
    );
    // --set applies after the chain
    assert.is(loadConfig({ file: child, set: ["stages.siamese.epochs=3"] }).stages[1].epochs, 3);
    const loop = join(dir, "loop.yaml");
    writeFileSync(loop, "extends: loop.yaml\n");
    assert.throws(() => loadConfig({ file: loop }), /extends loops back to itself/);
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "extends: base.yaml\nstages: { nosuch: { epochs: 1 } }\n");
    assert.throws(() => loadConfig({ file: bad }), /bad\.yaml \(extends base\.yaml\): stages\.nosuch: the base config has no list item of that name/);
    // a base that is no mapping of fields is named as such (was: ".seed: the base config has no list item")
    writeFileSync(join(dir, "list.yaml"), "- a\n- b\n");
    const onList = join(dir, "on-list.yaml");
    writeFileSync(onList, "extends: list.yaml\nseed: 3\n");
    assert.throws(
      () => loadConfig({ file: onList }),
      /on-list\.yaml: extends list\.yaml: .*list\.yaml is not a config \(its top level is a list, not fields\)/,
    );
    assert.throws(() => loadConfig({ file: join(dir, "list.yaml"), set: ["seed=3"] }), /--set seed=3: the config's top level is a list, not fields/);
    // an empty base (comments only) is no fields to start from, not an error
    writeFileSync(join(dir, "empty.yaml"), "# nothing yet\n");
    const onEmpty = join(dir, "on-empty.yaml");
    writeFileSync(onEmpty, "extends: empty.yaml\nseed: 3\nstages: [{ objective: siamese }]\n");
    assert.is(loadConfig({ file: onEmpty }).seed, 3);
    const missing = join(dir, "missing.yaml");
    writeFileSync(missing, "extends: nowhere.yaml\n");
    assert.throws(() => loadConfig({ file: missing }), /missing\.yaml: extends nowhere\.yaml: .*nowhere\.yaml: cannot read the config/);
    const twice = join(dir, "twice.yaml");
    writeFileSync(twice, "extends: base.yaml\nstages: { 1: { epochs: 3 }, siamese: { epochs: 4 } }\n");
    assert.throws(() => loadConfig({ file: twice }), /stages\.siamese and stages\.1 edit the same list item \(1\)/);
    // a bad field a base config holds: the error names the chain of files it came through, not the child alone
    writeFileSync(join(dir, "base-bad.yaml"), "extends: base.yaml\nstages: { siamese: { epochs: abc } }\n");
    const child2 = join(dir, "child2.yaml");
    writeFileSync(child2, "extends: base-bad.yaml\nseed: 3\n");
    assert.throws(
      () => loadConfig({ file: child2 }),
      (e: Error) =>
        e.message.includes(`${child2} (extends ${join(dir, "base-bad.yaml")}, which extends ${join(dir, "base.yaml")}): invalid config`) &&
        /epochs/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("best-cpu.yaml is default.yaml with twice the steps", () => {
  const best = loadConfig({ file: join(projectRoot, "configs", "best-cpu.yaml") });
  const def = loadConfig({ file: join(projectRoot, "configs", "default.yaml") });
  assert.is(best.stages[0].steps, 2 * def.stages[0].steps!);
  assert.equal({ ...best, stages: [{ ...best.stages[0], steps: def.stages[0].steps }] }, def);
});

test("gradual unfreezing: one more group every N steps, all when not gradual", () => {
  assert.equal(
    [0, 9, 10, 25, 1000].map((s) => unfrozenGroups(s, 10, 4, true)),
    [1, 1, 2, 3, 4],
  );
  assert.is(unfrozenGroups(0, 10, 4, false), 4);
});

test("checkpoint / eval / unfreeze intervals are rounded up to a multiple of accumSteps", () => {
  assert.is(alignToAccum(80, 1), 80);
  assert.is(alignToAccum(80, 4), 80);
  assert.is(alignToAccum(30, 4), 32);
  assert.is(alignToAccum(1, 3), 3);
});

test.run();
