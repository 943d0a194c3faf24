/**
 * `bridge train --nproc N`: data-parallel training over N backend processes, one per rank, each with
 * its own ZeroMQ endpoint, joined into one torch.distributed group (gloo on CPU, NCCL on GPU; see
 * py/bridge_backend/distributed.py). To the training loop it is one backend:
 *
 * - train_step: every tensor of the global batch is cut by rows into N contiguous shards, one per
 *   rank; the ranks average their gradients (equal weight per rank). For per-row-mean losses (siamese,
 *   lm) N equal shards of B/N rows therefore step like one batch of B rows, up to float error (the
 *   2-rank test checks this). Not for contrastive/SimCSE losses: each rank's in-batch negatives are
 *   only its own B/N rows, so N ranks of B/N rows are not one batch of B rows; and with unequal
 *   shards (B not a multiple of N) the equal per-rank weighting differs slightly from a per-row mean.
 *   The replies are merged (loss weighted by count, counts and correct summed).
 * - build, load, set_hparams, set_trainable, reset_state, flush: sent to every rank (they stay identical).
 * - save, eval_step and inference: rank 0 only (its weights are everyone's).
 */
import { createServer } from "node:net";
import { startBackend, type BackendClient, type Tensors } from "../backend/client.js";
import type { JsonObject, JsonValue } from "../backend/protocol.js";
import { ARRAY_TYPE, numel, tensor, type Tensor, type TypedArrayFor } from "../core/tensor.js";
import type { TrainBackend } from "./loop.js";

const EVERY_RANK = new Set(["build", "load", "set_hparams", "set_trainable", "reset_state", "flush"]);

/** A free TCP port on localhost for the process group's rendezvous. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Rows [start, end) of a tensor (a view, no copy). */
export function sliceRows(t: Tensor, start: number, end: number): Tensor {
  const rowSize = numel(t.shape.slice(1));
  const Ctor = ARRAY_TYPE[t.dtype];
  const data = new Ctor(t.data.buffer, t.data.byteOffset + start * rowSize * Ctor.BYTES_PER_ELEMENT, (end - start) * rowSize) as TypedArrayFor[typeof t.dtype];
  return tensor(t.dtype, [end - start, ...t.shape.slice(1)], data);
}

/** Cuts every tensor's rows into n contiguous shards (sizes differing by at most one). */
export function shardRows(tensors: Tensors, n: number): Tensors[] {
  const rows = Object.values(tensors)[0]?.shape[0] ?? 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (t.shape[0] !== rows) throw new RangeError(`shardRows: tensor ${name} has ${t.shape[0]} rows, the others ${rows}`);
  }
  if (rows < n) throw new RangeError(`a batch of ${rows} rows cannot feed ${n} ranks; use a batch size of at least ${n}`);
  return Array.from({ length: n }, (_, r) => {
    const start = Math.floor((r * rows) / n);
    const end = Math.floor(((r + 1) * rows) / n);
    return Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, sliceRows(t, start, end)]));
  });
}

/** Merges the ranks' train_step replies into the reply of one global step. */
export function mergeStepResults(results: JsonObject[]): JsonObject {
  const count = results.reduce((a, r) => a + Number(r.count ?? 0), 0);
  const weighted = (key: string) => {
    if (results.some((r) => typeof r[key] !== "number")) return null;
    return results.reduce((a, r) => a + (r[key] as number) * Number(r.count ?? 0), 0) / Math.max(1, count);
  };
  const merged: JsonObject = { ...results[0], count, loss: weighted("loss") };
  if (results.every((r) => typeof r.correct === "number")) merged.correct = results.reduce((a, r) => a + (r.correct as number), 0);
  if (typeof results[0].reg === "number") merged.reg = weighted("reg");
  merged.finite = results.every((r) => r.finite !== false);
  return merged;
}

export class DistributedBackend implements TrainBackend {
  private constructor(readonly ranks: BackendClient[]) {}

  /** Starts n ranks (gloo on CPU) and joins them into one process group. */
  static async start(n: number, device?: string): Promise<DistributedBackend> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--nproc must be a positive integer, got ${n}`);
    const ranks: BackendClient[] = [];
    try {
      for (let r = 0; r < n; r++) {
        // One intra-op thread each when several ranks share the CPU cores.
        const env = device?.startsWith("cuda") ? {} : { OMP_NUM_THREADS: "1" };
        ranks.push(await startBackend({ ...(device ? { device: device.startsWith("cuda") && n > 1 ? `cuda:${r}` : device } : {}), env }));
      }
      const port = await freePort();
      await Promise.all(ranks.map((c, rank) => c.call("init_distributed", { rank, world_size: n, master_addr: "127.0.0.1", master_port: port })));
    } catch (err) {
      await Promise.all(ranks.map((c) => c.close()));
      throw err;
    }
    return new DistributedBackend(ranks);
  }

  async call(op: string, args: Record<string, JsonValue | undefined> = {}, tensors: Tensors = {}): Promise<{ result: JsonObject; tensors: Tensors }> {
    if (op === "train_step") {
      const shards = shardRows(tensors, this.ranks.length);
      const replies = await Promise.all(this.ranks.map((c, r) => c.call(op, args, shards[r])));
      return { result: mergeStepResults(replies.map((x) => x.result)), tensors: {} };
    }
    if (EVERY_RANK.has(op)) {
      const replies = await Promise.all(this.ranks.map((c) => c.call(op, args, tensors)));
      return replies[0];
    }
    return this.ranks[0].call(op, args, tensors);
  }

  async close(): Promise<void> {
    await Promise.all(this.ranks.map((c) => c.close()));
  }
}
