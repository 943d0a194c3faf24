/** The in-flight queue shared by the training loop, `bench train` and a run model's encode / predict batches. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Pipeline, withPipeline } from "../../ts/core/pipeline.js";
import { inParallel } from "../../ts/eval/runModel.js";
import { sleep } from "../helpers.js";

/** A promise settled from outside. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Runs `body` and returns the rejections left unhandled while it ran (Node reports them a tick later). */
async function unhandledDuring(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on("unhandledRejection", listener);
  try {
    await body();
    await sleep(20);
  } finally {
    process.off("unhandledRejection", listener);
  }
  return seen;
}

/** The error `p` rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => assert.unreachable("resolved") as never,
    (e: Error) => e,
  );
}

test("a depth that is not a positive integer is refused, naming it", () => {
  for (const depth of [0, -1, 1.5, NaN]) assert.throws(() => new Pipeline(depth), /pipeline depth must be a positive integer, got/);
});

test("add + waitForRoom keeps at most `depth` pieces of work running", async () => {
  for (const depth of [1, 2, 3]) {
    let running = 0;
    let most = 0;
    const work = async () => {
      running++;
      most = Math.max(most, running);
      await sleep(1);
      running--;
    };
    await withPipeline(depth, async (pipeline) => {
      for (let i = 0; i < 8; i++) {
        pipeline.add(work());
        await pipeline.waitForRoom();
        assert.ok(pipeline.size < depth, `after waitForRoom: ${pipeline.size} in flight at depth ${depth}`);
      }
    });
    assert.is(most, depth, `depth ${depth}`);
    assert.is(running, 0, "withPipeline returned with work still running");
  }
});

test("waitForRoom waits for the oldest work, even when a newer one finished first", async () => {
  const pipeline = new Pipeline(2);
  const oldest = deferred();
  let oldestDone = false;
  pipeline.add(oldest.promise.then(() => void (oldestDone = true)));
  pipeline.add(Promise.resolve()); // done at once
  const room = pipeline.waitForRoom().then(() => oldestDone);
  await sleep(5);
  assert.is(pipeline.size, 1, "the oldest is still awaited");
  oldest.resolve();
  assert.ok(await room, "waitForRoom returned before the oldest work finished");
  await pipeline.drain();
  assert.is(pipeline.size, 0);
});

test("a failure is thrown by the wait that reaches it, in the order the work was added, and never left unhandled", async () => {
  const unhandled = await unhandledDuring(async () => {
    const pipeline = new Pipeline(3);
    const first = deferred();
    pipeline.add(first.promise);
    pipeline.add(Promise.reject(new Error("second"))); // fails at once, while the first is still running
    await pipeline.waitForRoom(); // room left (2 < 3): nothing awaited, nothing thrown
    await sleep(5);
    first.reject(new Error("first"));
    assert.is((await rejection(pipeline.drain())).message, "first", "the oldest failure comes first");
    assert.is((await rejection(pipeline.drain())).message, "second");
    await pipeline.drain(); // empty now
  });
  assert.equal(unhandled, []);
});

test("at depth 1 the failure surfaces at the next waitForRoom", async () => {
  const pipeline = new Pipeline(1);
  pipeline.add(Promise.reject(new Error("step 1 failed")));
  assert.is((await rejection(pipeline.waitForRoom())).message, "step 1 failed");
});

test("withPipeline: a failing body or work waits for the work still in flight, then throws, leaving nothing unhandled", async () => {
  const unhandled = await unhandledDuring(async () => {
    const slow = deferred();
    let slowSettled = false;
    const run = withPipeline(2, async (pipeline) => {
      pipeline.add(slow.promise.finally(() => (slowSettled = true)));
      pipeline.add(Promise.reject(new Error("late failure"))); // settled by withPipeline, never awaited in order
      throw new Error("body failed");
    });
    let done = false;
    void run.catch(() => (done = true));
    await sleep(5);
    assert.not.ok(done, "withPipeline threw with work still in flight");
    slow.reject(new Error("slow failed"));
    assert.is((await rejection(run)).message, "body failed");
    assert.ok(slowSettled);
  });
  assert.equal(unhandled, []);
});

test("withPipeline drains: the first failure of the work is thrown after the body returns", async () => {
  const err = await rejection(
    withPipeline(4, async (pipeline) => {
      pipeline.add(sleep(2));
      pipeline.add(Promise.reject(new Error("batch 2 failed")));
      return "body's value";
    }),
  );
  assert.is(err.message, "batch 2 failed");
  assert.is(await withPipeline(2, async () => "body's value"), "body's value");
});

test("inParallel: every task once, at most `limit` at once, started in order", async () => {
  const started: number[] = [];
  let running = 0;
  let most = 0;
  await inParallel(7, 3, async (i) => {
    started.push(i);
    running++;
    most = Math.max(most, running);
    await sleep(1);
    running--;
  });
  assert.equal(started, [0, 1, 2, 3, 4, 5, 6]);
  assert.is(most, 3);
  await inParallel(0, 2, async () => assert.unreachable("a task of none"));
});

test("inParallel: a failing task stops new ones from starting and is thrown once the started ones settled", async () => {
  const started: number[] = [];
  let running = 0;
  const unhandled = await unhandledDuring(async () => {
    const err = await rejection(
      inParallel(10, 2, async (i) => {
        started.push(i);
        running++;
        try {
          await sleep(2);
          if (i === 0) throw new Error("batch 0 failed");
        } finally {
          running--;
        }
      }),
    );
    assert.is(err.message, "batch 0 failed");
    assert.is(running, 0, "a task was still running when inParallel threw");
    await sleep(30);
  });
  assert.equal(started, [0, 1], "tasks went on starting after the failure");
  assert.equal(unhandled, []);
});

test.run();
