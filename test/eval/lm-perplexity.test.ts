/**
 * Perplexity sums loss x count over eval_step replies; a non-finite loss arrives as null on the wire and must
 * stop the sum with an error naming the step, never count as a loss of 0 (which would flatter a diverged model).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { EvalStepResult } from "../../ts/backend/ops.js";
import { addNll, type NllSum } from "../../ts/eval/tasks/lm.js";

const step = (loss: number | null, count: number): EvalStepResult => ({ loss, count, correct: 0 });

test("addNll weighs each step's mean loss by its token count and skips empty steps", () => {
  const sum: NllSum = { nll: 0, tokens: 0 };
  [step(2, 10), step(0, 0), step(4, 30)].forEach((r, k) => addNll(sum, r, k, "here"));
  assert.equal(sum, { nll: 140, tokens: 40 });
  assert.is(Math.exp(sum.nll / sum.tokens), Math.exp(3.5));
});

test("a null (non-finite) loss is an error naming the step and where, not a loss of 0", () => {
  const sum: NllSum = { nll: 0, tokens: 0 };
  addNll(sum, step(3, 5), 0, "lm perplexity on wikitext-2:test (checkpoint c.pt)");
  assert.throws(
    () => addNll(sum, step(null, 7), 1, "lm perplexity on wikitext-2:test (checkpoint c.pt)"),
    (e: Error) => /^lm perplexity on wikitext-2:test \(checkpoint c\.pt\): eval_step 2 scored 7 tokens with a non-finite loss/.test(e.message),
  );
  assert.equal(sum, { nll: 15, tokens: 5 }, "the failed step must not be added");
});

test.run();
