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
 * - The ops the backend marks `@op(name, every_rank=True)` (build, load, init_from, set_hparams, ...: they keep the
 *   ranks identical) go to every rank: DistributedBackend asks rank 0's `describe` which those are when it starts.
 * - Every other op (save, eval_step, inference) goes to rank 0 only (its weights are everyone's).
 *
 * `bridge train --hosts tcp://h1:5555,tcp://h2:5555 --keys client.json [--master HOST:PORT]` (connectHosts):
 * the ranks are `bridge serve` backends on other machines, one rank per endpoint (a host with several GPUs
 * serves one endpoint per GPU), rank 0 the first. Rank 0's backend hosts the rendezvous at --master (default:
 * the first endpoint's host, port 29500), which every host must reach, as they must reach each other for
 * gloo / NCCL. This trainer stays the only feeder, so no host runs anything but `bridge serve`. Each host is
 * watched over a second connection: the moment one goes away (its connection closes, or its ZMTP heartbeats
 * stop) every call fails with a BackendDiedError naming it, and the run can be resumed from its last checkpoint.
 * Checkpoints are written by rank 0's host and loaded by every host at the run folder's path, so that folder
 * must be on a filesystem the hosts share.
 */
import { createServer } from "node:net";
import { Dealer } from "zeromq";
import { BackendClient, BackendDiedError, type CallResult, REMOTE_HEARTBEAT, startBackend } from "../backend/client.js";
import type { CurveClientKeys } from "../backend/keys.js";
import {
  type DescribeResult,
  type InitDistributedArgs,
  type OpArgs,
  type OpName,
  type OpReply,
  packStepTensors,
  type StepArgs,
  type TrainStepResult,
  type TrainStepsArgs,
  type TypedBackend,
  unpackStepTensors,
  type WireArgs,
} from "../backend/ops.js";
import { ARRAY_TYPE, numel, type Tensor, type Tensors, type TypedArrayFor, tensor } from "../core/tensor.js";

/**
 * The ops that go to every rank, as the backend's `describe` marks them. init_distributed is among them, though
 * DistributedBackend sends it itself (to each rank with its rank number).
 */
export function everyRankOps(described: Pick<DescribeResult, "ops">): ReadonlySet<string> {
  return new Set(described.ops.filter((o) => o.every_rank).map((o) => o.name));
}

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
export function mergeStepResults(results: TrainStepResult[]): TrainStepResult {
  const count = results.reduce((a, r) => a + r.count, 0);
  // null (a non-finite or empty shard) on any rank makes the merged value null too
  const weighted = (key: "loss" | "reg"): number | null => {
    let sum = 0;
    for (const r of results) {
      const v = r[key];
      if (typeof v !== "number") return null;
      sum += v * r.count;
    }
    return sum / Math.max(1, count);
  };
  const merged: TrainStepResult = { ...results[0], count, loss: weighted("loss") };
  if (results.every((r) => typeof r.correct === "number")) merged.correct = results.reduce((a, r) => a + r.correct, 0);
  if (typeof results[0].reg === "number") merged.reg = weighted("reg");
  merged.finite = results.every((r) => r.finite !== false);
  return merged;
}

/**
 * Where --nproc's n ranks run: device `cuda` puts rank r on GPU r; `cuda:K` puts every rank on GPU K and
 * joins them with gloo, because NCCL refuses two ranks on one GPU ("duplicate GPU"); gloo reduces through host
 * memory, slower but correct. Otherwise (cpu, or the backend's own choice) every rank gets `device` as it is.
 */
export function rankPlacement(n: number, device: string | undefined): { devices: (string | undefined)[]; backend?: "gloo" } {
  if (device === "cuda" && n > 1) return { devices: Array.from({ length: n }, (_, r) => `cuda:${r}`) };
  const pinned = device !== undefined && /^cuda:\d+$/.test(device) && n > 1;
  return { devices: Array<string | undefined>(n).fill(device), ...(pinned ? { backend: "gloo" as const } : {}) };
}

/** torch's customary rendezvous port, the default of --master. */
export const DEFAULT_MASTER_PORT = 29500;

export interface MasterAddress {
  host: string;
  port: number;
}

/**
 * The rendezvous of a --hosts run: --master HOST:PORT, or the first endpoint's host with port 29500 (its
 * backend, rank 0, listens there). An ipc:// first endpoint is on this machine: 127.0.0.1.
 */
export function masterAddress(master: string | undefined, firstEndpoint: string): MasterAddress {
  if (master !== undefined) {
    const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(master.trim());
    const port = m ? Number(m[3]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) throw new RangeError(`--master must be HOST:PORT (port 1-65535), got "${master}"`);
    return { host: m[1] ?? m[2], port };
  }
  if (firstEndpoint.startsWith("ipc://")) return { host: "127.0.0.1", port: DEFAULT_MASTER_PORT };
  const m = /^tcp:\/\/(?:\[([^\]]+)\]|([^:/]+)):\d+$/.exec(firstEndpoint);
  if (!m) throw new RangeError(`--hosts: "${firstEndpoint}" is not tcp://HOST:PORT`);
  const host = m[1] ?? m[2];
  if (host === "*" || host === "0.0.0.0" || host === "::") {
    throw new RangeError(`--hosts: ${firstEndpoint} names no host the others can reach; give --master HOST:PORT`);
  }
  return { host, port: DEFAULT_MASTER_PORT };
}

/** How long a failed step waits for a host watch to say which host went away (the other ranks' errors come first). */
const LOSS_GRACE_MS = 3000;

/** Watches one served backend over a connection of its own; `lost` rejects when that connection goes away. */
class HostWatch {
  readonly lost: Promise<never>;
  private readonly socket: Dealer;

  constructor(endpoint: string, rank: number, worldSize: number, curve: CurveClientKeys | undefined) {
    this.socket = new Dealer({
      linger: 0,
      // ZMTP heartbeats: a host that vanishes without closing its connections (power, network) counts as lost too
      heartbeatInterval: REMOTE_HEARTBEAT.intervalMs,
      heartbeatTimeout: REMOTE_HEARTBEAT.timeoutMs,
      ...(curve ? { curveServerKey: curve.serverPublic, curvePublicKey: curve.public, curveSecretKey: curve.secret } : {}),
    });
    this.lost = new Promise<never>((_, reject) => {
      this.socket.events.on("disconnect", () =>
        reject(
          new BackendDiedError(
            `bridge: host ${endpoint} (rank ${rank} of ${worldSize}) went away: its backend closed the connection. ` +
              "Restart `bridge serve` there, then resume with the same --hosts, --keys and --master",
            "",
          ),
        ),
      );
    });
    this.lost.catch(() => {}); // handled where it is raced
    this.socket.connect(endpoint);
  }

  close(): void {
    this.socket.close();
  }
}

export interface ConnectHostsOptions {
  /** Client keys for tcp:// endpoints (one client.json whose server.json every host serves with). */
  curve?: CurveClientKeys;
  /** --master HOST:PORT (see masterAddress). */
  master?: string;
}

export class DistributedBackend implements TypedBackend {
  /**
   * `everyRank`: the ops sent to every rank (everyRankOps of rank 0's describe); `watches[r]`: the watch of rank r's
   * host (--hosts), none for ranks this process started.
   */
  private constructor(
    readonly ranks: BackendClient[],
    readonly everyRank: ReadonlySet<string>,
    private readonly watches: (HostWatch | null)[] = [],
  ) {}

  /** Which ops go to every rank, from rank 0's backend (all ranks run the same code: hello checked the protocol). */
  private static async everyRankOf(rank0: BackendClient): Promise<ReadonlySet<string>> {
    return everyRankOps((await rank0.call("describe")).result);
  }

  /** Joins the backends served at `hosts` (rank r at hosts[r]) into one process group. */
  static async connectHosts(hosts: string[], opts: ConnectHostsOptions = {}): Promise<DistributedBackend> {
    if (hosts.length < 2) throw new RangeError(`--hosts needs at least 2 endpoints, one rank each (got ${hosts.length}); for one remote backend use --backend`);
    const repeated = hosts.find((h, i) => hosts.indexOf(h) !== i);
    if (repeated) throw new RangeError(`--hosts lists ${repeated} twice; each endpoint is one rank`);
    const master = masterAddress(opts.master, hosts[0]);
    const ranks: BackendClient[] = [];
    const watches: HostWatch[] = [];
    let everyRank: ReadonlySet<string> = new Set();
    const group = () => new DistributedBackend(ranks, everyRank, watches);
    try {
      for (const [r, endpoint] of hosts.entries()) {
        ranks.push(
          await BackendClient.connect(endpoint, opts.curve ? { curve: opts.curve } : {}).catch((err: Error) => {
            throw new Error(`--hosts: rank ${r} at ${endpoint}: ${err.message}`);
          }),
        );
        watches.push(new HostWatch(endpoint, r, hosts.length, opts.curve));
      }
      // gloo ranks and NCCL ranks cannot join one group: refuse before init_distributed would hang
      const devices = ranks.map((c) => (String(c.hello?.device ?? "").startsWith("cuda") ? "cuda" : "cpu"));
      if (new Set(devices).size > 1) {
        throw new Error(
          `--hosts: the backends mix devices (${hosts.map((h, r) => `${h}: ${devices[r]}`).join(", ")}); serve all on cuda or all on cpu (--device)`,
        );
      }
      everyRank = await DistributedBackend.everyRankOf(ranks[0]);
      await group().initDistributed({ world_size: hosts.length, master_addr: master.host, master_port: master.port });
    } catch (err) {
      await group().close();
      throw err;
    }
    return group();
  }

  /** Starts n ranks (gloo on CPU, NCCL on GPUs) and joins them into one process group. */
  static async start(n: number, device?: string): Promise<DistributedBackend> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--nproc must be a positive integer, got ${n}`);
    const ranks: BackendClient[] = [];
    const plan = rankPlacement(n, device);
    let everyRank: ReadonlySet<string>;
    try {
      for (let r = 0; r < n; r++) {
        // One intra-op thread each when several ranks share the CPU cores.
        const env = device?.startsWith("cuda") ? {} : { OMP_NUM_THREADS: "1" };
        ranks.push(await startBackend({ ...(plan.devices[r] ? { device: plan.devices[r] } : {}), env }));
      }
      everyRank = await DistributedBackend.everyRankOf(ranks[0]);
      await new DistributedBackend(ranks, everyRank).initDistributed({
        world_size: n,
        master_addr: "127.0.0.1",
        master_port: await freePort(),
        ...(plan.backend ? { backend: plan.backend } : {}),
      });
    } catch (err) {
      await Promise.all(ranks.map((c) => c.close()));
      throw err;
    }
    return new DistributedBackend(ranks, everyRank);
  }

  /** train_step (and each step of train_steps) is sharded over the ranks, an every-rank op (describe) goes to each, any other op to rank 0. */
  call<K extends OpName>(op: K, args?: OpArgs<K>, tensors?: Tensors): Promise<OpReply<K>>;
  // the implementation's signature is untyped: the reply is the backend's, whose shape the catalogue states
  async call(op: string, args: object = {}, tensors: Tensors = {}): Promise<CallResult<unknown>> {
    if (op === "train_step") {
      const shards = shardRows(tensors, this.ranks.length);
      const replies = await this.allRanks((c, r) => c.call("train_step", args as StepArgs, shards[r]));
      return { result: mergeStepResults(replies.map((x) => x.result)), tensors: {} };
    }
    if (op === "train_steps") {
      // each step's batch sharded as train_step's, the ranks' shards of every step in one request each
      const steps = (args as TrainStepsArgs).steps;
      const perStep = unpackStepTensors(tensors, steps.length).map((t) => shardRows(t, this.ranks.length));
      const replies = await this.allRanks((c, r) => c.call("train_steps", { steps }, packStepTensors(perStep.map((shards) => shards[r]))));
      return { result: { steps: steps.map((_, i) => mergeStepResults(replies.map((x) => x.result.steps[i]))) }, tensors: {} };
    }
    if (this.everyRank.has(op)) return (await this.allRanks((c) => c.callUntyped(op, args as WireArgs, tensors)))[0];
    return this.onRank(0, this.ranks[0].callUntyped(op, args as WireArgs, tensors));
  }

  /** Joins every rank into the process group, each told its rank number. */
  private initDistributed(args: Omit<InitDistributedArgs, "rank">): Promise<unknown> {
    return this.allRanks((c, rank) => c.call("init_distributed", { ...args, rank }));
  }

  /** `p`, a call to rank r, failing the moment rank r's host is known to be gone. */
  private onRank<T>(r: number, p: Promise<T>): Promise<T> {
    const watch = this.watches[r];
    return watch ? Promise.race([p, watch.lost]) : p;
  }

  /**
   * One call per rank, all of them awaited. When a host has gone, the surviving ranks' collectives may fail
   * first (gloo: "connection reset by peer"); the error then names the lost host, if a watch says so shortly.
   */
  private async allRanks<T>(send: (c: BackendClient, rank: number) => Promise<T>): Promise<T[]> {
    try {
      return await Promise.all(this.ranks.map((c, r) => this.onRank(r, send(c, r))));
    } catch (err) {
      const watched = this.watches.filter((w): w is HostWatch => w !== null);
      // a rank's own client fails too when its host goes (its disconnect watch): the host watch names the rank
      if (watched.length === 0) throw err;
      let timer: NodeJS.Timeout | undefined;
      const lost = await Promise.race([
        ...watched.map((w) => w.lost.catch((e: Error) => e)),
        new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), LOSS_GRACE_MS))),
      ]);
      clearTimeout(timer);
      if (lost instanceof BackendDiedError)
        throw new BackendDiedError(`${lost.message}\n(the first error from the other ranks: ${(err as Error).message.split("\n")[0]})`, "");
      throw err;
    }
  }

  async close(): Promise<void> {
    for (const w of this.watches) w?.close();
    await Promise.all(this.ranks.map((c) => c.close()));
  }
}
