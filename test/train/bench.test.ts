/** `bench train` (not timed here): the bridge and the native loop train the same model on the same batches. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { benchTrain } from "../../ts/bench/train.js";
import { sharedDataDir } from "../helpers.js";

const dataDir = sharedDataDir("bench train");

test("bridge and native loops give identical per-step losses on the tiny preset", async () => {
  if (!dataDir) return;
  const r = await benchTrain({ dataDir, steps: 5, warmup: 2, rounds: 1 });
  assert.is(r.max_loss_difference, 0);
  assert.is(r.timed_steps, 5);
  for (const k of ["bridge_pairs_per_s", "native_pairs_per_s", "ratio"] as const) assert.ok(r[k] > 0, k);
});

test.run();
