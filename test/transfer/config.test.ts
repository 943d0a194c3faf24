/** The transfer-learning config: init, backwards, softmax; configs/pretrain*.yaml validate and differ only in direction. */
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfig, validateConfig } from "../../ts/config/load.js";
import { projectRoot } from "../../ts/paths.js";
import { PRETRAINED } from "../../ts/run/modelCache.js";

const stages = [{ objective: "lm" }];

test("pretrain.yaml and pretrain-bwd.yaml: an adaptive-softmax LM over general English, forward and backward", () => {
  const fwd = loadConfig({ file: join(projectRoot, "configs", "pretrain.yaml") });
  const bwd = loadConfig({ file: join(projectRoot, "configs", "pretrain-bwd.yaml") });
  assert.is(fwd.model.softmax, "adaptive");
  assert.equal(fwd.data.lmText, ["wikipedia:excellent", "wikipedia:general", "wikitext-2:valid", "brown", "sotu"]);
  assert.is(fwd.model.backwards, undefined);
  assert.is(bwd.model.backwards, true);
  const { backwards: _direction, ...sameModel } = bwd.model;
  assert.equal({ ...bwd, model: sameModel }, fwd);
});

test("pretrain-sha.yaml: pretrain.yaml's LM with model.arch sha_rnn, nothing else changed", () => {
  const fwd = loadConfig({ file: join(projectRoot, "configs", "pretrain.yaml") });
  const sha = loadConfig({ file: join(projectRoot, "configs", "pretrain-sha.yaml") });
  assert.is(sha.model.arch, "sha_rnn");
  assert.equal({ ...sha, model: { ...sha.model, arch: undefined } }, { ...fwd, model: { ...fwd.model, arch: undefined } });
  assert.is(PRETRAINED["wiki-fwd-sha"].config, "configs/pretrain-sha.yaml");
});

test("init defaults to none and takes { from }", () => {
  assert.is(validateConfig({ stages }).init, null);
  assert.equal(validateConfig({ stages, init: { from: "fastai:wt103-fwd" } }).init, { from: "fastai:wt103-fwd" });
  assert.throws(() => validateConfig({ stages, init: { form: "x" } }), /init/);
});

test("bad model settings are refused with their path", () => {
  assert.throws(
    () => validateConfig({ stages: [{ objective: "siamese" }], model: { bidir: true, backwards: true } }),
    /model\.backwards.*bidir encoder already reads both ways/s,
  );
  assert.throws(() => validateConfig({ stages, model: { softmax: "adaptive", cutoffs: [500, 200] } }), /model\.cutoffs.*must increase, got \[500, 200\]/s);
  assert.throws(() => validateConfig({ stages, model: { cutoffs: [10, 20] } }), /model\.cutoffs.*adaptive softmax only; softmax is full \(the default\)/s);
  assert.throws(() => validateConfig({ stages, device: "tpu" }), /device.*a torch device bridge runs on: cpu, cuda, cuda:N or mps/s);
  assert.is(validateConfig({ stages, device: "cuda:1" }).device, "cuda:1");
  assert.throws(
    () => validateConfig({ stages: [{ objective: "lm", steps: 5, pool: "mean" }] }),
    /stages\.0\.pool.*a language-model stage makes no sentence vectors: pool applies to sentence stages only/s,
  );
  assert.throws(() => validateConfig({ stages, model: { softmax: "hierarchical" } }), /model\.softmax/);
});

test.run();
