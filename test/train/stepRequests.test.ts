/**
 * StepRequests, the training loop's gathering of steps into train_steps requests, against a recording stand-in
 * for the backend (the real backend runs train_steps in test/train/resume.test.ts and py/tests/test_model_ops.py):
 * what goes out when, tensor names both ways, results handed on in order, a failing step's neighbours kept.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type OpCaller, type OpName, type OpReply, packStepTensors, type TrainStepResult, unpackStepTensors } from "../../ts/backend/ops.js";
import { Pipeline } from "../../ts/core/pipeline.js";
import { type Tensors, tensor } from "../../ts/core/tensor.js";
import { StepRequests } from "../../ts/train/stepRequests.js";

const result = (loss: number): TrainStepResult => ({ loss, count: 1, correct: 0, finite: true, stepped: true, step: 1 });
const batch = (v: number): Tensors => ({ x: tensor("int32", [1, 2], Int32Array.from([v, v])) });

/** Records every call; train_steps replies a result per step whose loss is the step's x[0], and echoes x back. */
function recorder(): { backend: OpCaller; calls: { op: string; args: unknown; tensors: Tensors }[] } {
  const calls: { op: string; args: unknown; tensors: Tensors }[] = [];
  const backend: OpCaller = {
    call<K extends OpName>(op: K, args?: unknown, tensors: Tensors = {}): Promise<OpReply<K>> {
      calls.push({ op, args, tensors });
      const steps = (args as { steps: unknown[] }).steps;
      const per = unpackStepTensors(tensors, steps.length);
      const reply = { result: { steps: per.map((t) => result(t.x.data[0] as number)) }, tensors: packStepTensors(per.map((t) => ({ echo: t.x }))) };
      return Promise.resolve(reply as unknown as OpReply<K>);
    },
  };
  return { backend, calls };
}

test("steps go out `size` to a request, named i/<name>; send() puts out a partial request; results come back in order", async () => {
  const { backend, calls } = recorder();
  const pipeline = new Pipeline(2);
  const requests = new StepRequests(backend, pipeline, 3);
  const seen: [number | null, number][] = [];
  for (let v = 1; v <= 5; v++) await requests.add({ objective: "siamese" }, batch(v), (r, t) => seen.push([r.loss, t.echo.data[0] as number]));
  assert.is(calls.length, 1, "the first three steps went as one request, the next two wait");
  assert.equal(Object.keys(calls[0].tensors), ["0/x", "1/x", "2/x"]);
  requests.send();
  requests.send(); // nothing gathered: no call
  await pipeline.drain();
  assert.is(calls.length, 2);
  assert.equal((calls[1].args as { steps: unknown[] }).steps.length, 2);
  assert.equal(seen, [
    [1, 1],
    [2, 2],
    [3, 3],
    [4, 4],
    [5, 5],
  ]);
});

test("a step whose result throws: the other steps of its request are still handed on, then the error surfaces", async () => {
  const { backend } = recorder();
  const pipeline = new Pipeline(1);
  const requests = new StepRequests(backend, pipeline, 3);
  const seen: number[] = [];
  const done = (r: TrainStepResult) => {
    seen.push(r.loss!);
    if (r.loss === 2) throw new Error("non-finite at step 2");
  };
  await requests.add({ objective: "siamese" }, batch(1), done);
  await requests.add({ objective: "siamese" }, batch(2), done);
  await requests.add({ objective: "siamese" }, batch(3), done).then(
    () => assert.unreachable("the request's failure reaches the caller waiting for room"),
    (e: Error) => assert.match(e.message, "non-finite at step 2"),
  );
  assert.equal(seen, [1, 2, 3]);
});

test("step tensor names: plain decimal step numbers only, both ways", () => {
  const packed = packStepTensors([batch(1), batch(2)]);
  assert.equal(Object.keys(packed), ["0/x", "1/x"]);
  assert.equal(
    unpackStepTensors(packed, 2).map((t) => t.x.data[0]),
    [1, 2],
  );
  assert.equal(Object.keys(unpackStepTensors({ "0/a/b": batch(1).x }, 1)[0]), ["a/b"], "only the first separator cuts");
  for (const bad of ["x", "2/x", "-1/x", "01/x", " 1/x", "1.0/x", "0x1/x", "1e0/x", "/x"])
    assert.throws(() => unpackStepTensors({ [bad]: batch(1).x }, 2), /not a step's tensor/, bad);
  assert.throws(() => new StepRequests(recorder().backend, new Pipeline(1), 0), /positive integer/);
});

test.run();
