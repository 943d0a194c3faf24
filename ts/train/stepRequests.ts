/**
 * Training steps gathered into `train_steps` requests of up to `size` steps each: one message (and one
 * reply) for several steps, so that a fast step (a GPU) does not pay the transport's per-message cost
 * every time. This side still chooses every step's batch, order and hyper-parameters; the backend runs
 * the steps of a request in order, exactly as it would run them one request each.
 *
 * Any other call the loop makes (set_trainable, flush, validation, a checkpoint) must come after the
 * steps before it: the loop calls `send()` first, which puts the gathered steps on the wire now.
 * Requests, not steps, fill the pipeline: `depth` requests in flight, up to depth x size steps. Results arrive a
 * request at a time, so the log's step times and the progress line move in bursts of up to `size` steps.
 */
import { type OpCaller, packStepTensors, type StepArgs, type TrainStepResult, unpackStepTensors } from "../backend/ops.js";
import type { Pipeline } from "../core/pipeline.js";
import type { Tensors } from "../core/tensor.js";

interface PendingStep {
  args: StepArgs;
  tensors: Tensors;
  done: (r: TrainStepResult, tensors: Tensors) => void;
}

export class StepRequests {
  private pending: PendingStep[] = [];

  constructor(
    private readonly backend: OpCaller,
    private readonly pipeline: Pipeline,
    readonly size: number,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`steps per request must be a positive integer, got ${size}`);
  }

  /** Gathers one step; `done` gets its result and returned tensors (return_logits), in step order. Sends the
   * request once it holds `size` steps, then waits for room in the pipeline. */
  async add(args: StepArgs, tensors: Tensors, done: (r: TrainStepResult, tensors: Tensors) => void): Promise<void> {
    this.pending.push({ args, tensors, done });
    if (this.pending.length >= this.size) {
      this.send();
      await this.pipeline.waitForRoom();
    }
  }

  /** Puts the gathered steps on the wire now (nothing when none is gathered). */
  send(): void {
    const steps = this.pending;
    if (steps.length === 0) return;
    this.pending = [];
    const call = this.backend.call("train_steps", { steps: steps.map((st) => st.args) }, packStepTensors(steps.map((st) => st.tensors)));
    this.pipeline.add(
      call.then((r) => {
        if (r.result.steps.length !== steps.length)
          throw new Error(`train_steps: the backend replied ${r.result.steps.length} results for ${steps.length} steps`);
        const tensors = unpackStepTensors(r.tensors, steps.length);
        // every step the backend ran is handed on, in order, even when one of them throws (a non-finite loss under
        // nonFinite: stop): the log then holds each step that changed the model; the first error is thrown after
        let failure: { error: unknown } | null = null;
        for (const [i, res] of r.result.steps.entries()) {
          try {
            steps[i].done(res, tensors[i]);
          } catch (error) {
            failure ??= { error };
          }
        }
        if (failure) throw failure.error;
      }),
    );
  }
}
