/**
 * A bounded queue of work in flight, oldest first: the training loop's steps and validation batches,
 * `bench train`'s steps, the encode / predict batches of a run model. The caller starts a piece of
 * work, adds it, and waits for room, so at most `depth` pieces are in flight at once and this side
 * prepares the next one (collates a batch) while the backend computes.
 *
 * A rejection is marked handled when its work is added (no unhandledRejection while it waits its
 * turn) and is thrown by the `waitForRoom` or `drain` that reaches it, in the order the work was
 * added. `settle` waits for whatever is still in flight without throwing: in a `finally`, so that no
 * call is left running once an error propagates. `withPipeline` does all of this around a body.
 */
export class Pipeline {
  private readonly inflight: Promise<unknown>[] = [];

  constructor(readonly depth: number) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`pipeline depth must be a positive integer, got ${depth}`);
  }

  /** Pieces of work added and not yet waited for. */
  get size(): number {
    return this.inflight.length;
  }

  /** Puts already started work in the queue; its failure surfaces at the wait that reaches it. */
  add(work: Promise<unknown>): void {
    work.catch(() => {}); // handled now; still thrown where the queue awaits it
    this.inflight.push(work);
  }

  /** Waits for the oldest work until fewer than `depth` pieces are in flight (room for the next one). */
  async waitForRoom(): Promise<void> {
    while (this.inflight.length >= this.depth) await this.inflight.shift();
  }

  /** Waits for all the work in flight, oldest first; throws the first failure it reaches (the rest stay for `settle`). */
  async drain(): Promise<void> {
    while (this.inflight.length > 0) await this.inflight.shift();
  }

  /** Waits for all the work in flight and throws nothing: the cleanup before an error propagates. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inflight.splice(0));
  }
}

/**
 * Runs `body` with a pipeline of the given depth, then drains it; whatever happens, nothing is left
 * in flight when this returns or throws.
 */
export async function withPipeline<T>(depth: number, body: (pipeline: Pipeline) => Promise<T>): Promise<T> {
  const pipeline = new Pipeline(depth);
  try {
    const out = await body(pipeline);
    await pipeline.drain();
    return out;
  } finally {
    await pipeline.settle();
  }
}
