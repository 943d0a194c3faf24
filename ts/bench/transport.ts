/**
 * `npx bridge bench transport`: the bridge's round trips against plain ZeroMQ round trips of
 * the same bytes, measured in the same run on the same machine.
 * - small: a typical training batch, int32 [64, 2, 32] (16 KiB) as an Arrow frame, through
 *   the full protocol (JSON header, dispatch, decode, re-encode); latency p50/p99.
 * - large: a 64 MiB float32 tensor (raw frame); throughput. Buffers are reused across
 *   iterations, as on a hot path.
 * ratio = ours / raw (latency: lower is better; throughput: higher is better). The two alternate
 * in blocks and each keeps its best block, so that load from elsewhere hits both alike.
 * The small profile also times plain ZeroMQ moving the protocol's own two frames (the request's JSON header and
 * the Arrow frame): what the message shape costs, apart from what bridge does with it.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Dealer } from "zeromq";
import { type BackendClient, startBackend } from "../backend/client.js";
import { encodeTensor } from "../backend/codec.js";
import { encodeRequestHeader } from "../backend/protocol.js";
import { type Tensor, tensor } from "../core/tensor.js";
import { backendEnv, backendPython } from "../paths.js";
import { CostTally, costSince, ownCost, pidCost } from "./processCost.js";

export interface TransportBenchOptions {
  smallIterations?: number;
  largeIterations?: number;
  largeBytes?: number;
  /** Rounds of alternating blocks of each side (default 5); the best block of each is kept, and each round is paired. */
  rounds?: number;
}

export interface TransportBenchResult {
  small: {
    bytes: number;
    iterations: number;
    rounds: number;
    p50_ms: number;
    p99_ms: number;
    raw_zmq_p50_ms: number;
    raw_zmq_p99_ms: number;
    ratio: number;
    /** The median over rounds of each round's own ours / raw p50 (rounds in round_ratios): the two sides of a round
     * ran seconds apart, where `ratio` pairs each side's best block, from whichever rounds they came. */
    paired_ratio: number;
    round_ratios: number[];
    /** CPU microseconds a small round trip cost each side, mean over every timed one: the client (this process)
     * and the peer (the backend; the bare echo for raw). Null off Linux. */
    profile: {
      client_us: number;
      peer_us: number | null;
      raw_client_us: number;
      raw_peer_us: number | null;
      /** Plain ZeroMQ round trips of the protocol's two frames (an echo request's header, the Arrow frame): p50. */
      raw_zmq_protocol_frames_p50_ms: number;
    };
  };
  large: { bytes: number; iterations: number; mb_per_s: number; raw_zmq_mb_per_s: number; ratio: number };
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function timeEach(n: number, warmup: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b);
}

/** A bare echo peer (py/bridge_backend/raw_echo.py) and a DEALER to it. */
async function withRawEcho<T>(fn: (roundTrip: (frames: Uint8Array[]) => Promise<Buffer>, pid: number | undefined) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "bridge-bench-"));
  const endpoint = `ipc://${join(dir, "raw.sock")}`;
  const child = spawn(backendPython(), ["-m", "bridge_backend.raw_echo", "--endpoint", endpoint], {
    stdio: ["pipe", "inherit", "inherit"],
    env: backendEnv(),
  });
  const sock = new Dealer({ linger: 0 });
  sock.connect(endpoint);
  try {
    return await fn(async (frames) => {
      await sock.send(frames);
      const [reply] = await sock.receive();
      return reply;
    }, child.pid);
  } finally {
    sock.close();
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

async function echo(backend: BackendClient, t: Tensor): Promise<Tensor> {
  return (await backend.call("echo", {}, { x: t })).tensors.x;
}

export async function benchTransport(opts: TransportBenchOptions = {}): Promise<TransportBenchResult> {
  const smallN = opts.smallIterations ?? 1500;
  const largeN = opts.largeIterations ?? 6;
  const largeBytes = opts.largeBytes ?? 64 * 1024 * 1024;

  const small = tensor(
    "int32",
    [64, 2, 32],
    Int32Array.from({ length: 64 * 2 * 32 }, (_, i) => i % 20000),
  );
  const large = tensor("float32", [largeBytes / 4], new Float32Array(largeBytes / 4).fill(1.5));
  const smallBytes = small.data.byteLength;
  const smallRaw = new Uint8Array(small.data.buffer);
  const smallArrow = encodeTensor("x", small);
  const protocolFrames = [encodeRequestHeader(1, "echo", {}, [smallArrow.meta]), smallArrow.frame];
  const largeRaw = new Uint8Array(large.data.buffer);

  // Both peers stay up; each round times a block of each small side (in turns, below), then the large ones, so that
  // whatever else the machine does hits all alike, and each side keeps its best block.
  const rounds = opts.rounds ?? 5;
  const backend = await startBackend();
  let raw: { smallTimes: number[]; largeTimes: number[] } | undefined;
  let ours: { smallTimes: number[]; largeTimes: number[] } | undefined;
  let rawProtocolFrames: number[] | undefined;
  const roundRatios: number[] = [];
  const best = (a: number[] | undefined, b: number[], q = 0.5) => (a === undefined || percentile(b, q) < percentile(a, q) ? b : a);
  // CPU time of both ends over the timed small round trips (warm-ups included: the same share on both sides)
  const cost = { client: new CostTally(), peer: new CostTally(), rawClient: new CostTally(), rawPeer: new CostTally() };
  const costOf = async (client: CostTally, peer: CostTally, pid: number | undefined, work: () => Promise<number[]>) => {
    const [c0, p0] = [ownCost(), pidCost(pid)];
    const times = await work();
    client.add(costSince(c0, ownCost()));
    peer.add(costSince(p0, pidCost(pid)));
    return times;
  };
  try {
    const back = await echo(backend, small);
    if (Buffer.compare(new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength), smallRaw) !== 0) {
      throw new Error("bench transport: the backend's echo changed the tensor's bytes");
    }
    await withRawEcho(async (roundTrip, rawPid) => {
      await roundTrip([new Uint8Array(1)]); // connected
      for (let r = 0; r < rounds; r++) {
        let rawSmall: number[] = [];
        let oursSmall: number[] = [];
        const smallBlocks = [
          async () => {
            rawSmall = await costOf(cost.rawClient, cost.rawPeer, rawPid, () => timeEach(smallN, 300, () => roundTrip([smallRaw])));
          },
          async () => {
            oursSmall = await costOf(cost.client, cost.peer, backend.process?.pid, () => timeEach(smallN, 300, () => echo(backend, small)));
          },
          async () => {
            rawProtocolFrames = best(rawProtocolFrames, await timeEach(smallN, 300, () => roundTrip(protocolFrames)));
          },
        ];
        // the small blocks take turns at going first, so that none always follows the large transfers or the same side
        for (let b = 0; b < smallBlocks.length; b++) await smallBlocks[(b + r) % smallBlocks.length]();
        const rawLarge = await timeEach(largeN, 2, () => roundTrip([largeRaw]));
        const oursLarge = await timeEach(largeN, 2, () => echo(backend, large));
        roundRatios.push(percentile(oursSmall, 0.5) / percentile(rawSmall, 0.5));
        raw = { smallTimes: best(raw?.smallTimes, rawSmall), largeTimes: best(raw?.largeTimes, rawLarge) };
        ours = { smallTimes: best(ours?.smallTimes, oursSmall), largeTimes: best(ours?.largeTimes, oursLarge) };
      }
    });
  } finally {
    await backend.close();
  }
  if (!raw || !ours) throw new Error("bench transport: no rounds ran");

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const mbPerS = (times: number[]) => largeBytes / 1e6 / (mean(times) / 1000);
  const p50 = percentile(ours.smallTimes, 0.5);
  const rawP50 = percentile(raw.smallTimes, 0.5);
  const pairedRatio = percentile(
    [...roundRatios].sort((a, b) => a - b),
    0.5,
  );
  const round = (x: number, d = 4) => Number(x.toFixed(d));
  const trips = rounds * (smallN + 300);
  const perTrip = (c: CostTally) => {
    const each = c.per(trips);
    return each && round(each.cpuMs * 1000, 1);
  };
  return {
    small: {
      bytes: smallBytes,
      iterations: smallN,
      rounds,
      p50_ms: round(p50),
      p99_ms: round(percentile(ours.smallTimes, 0.99)),
      raw_zmq_p50_ms: round(rawP50),
      raw_zmq_p99_ms: round(percentile(raw.smallTimes, 0.99)),
      ratio: round(p50 / rawP50, 3),
      paired_ratio: round(pairedRatio, 3),
      round_ratios: roundRatios.map((r) => round(r, 3)),
      profile: {
        client_us: perTrip(cost.client)!,
        peer_us: perTrip(cost.peer),
        raw_client_us: perTrip(cost.rawClient)!,
        raw_peer_us: perTrip(cost.rawPeer),
        raw_zmq_protocol_frames_p50_ms: round(percentile(rawProtocolFrames!, 0.5)),
      },
    },
    large: {
      bytes: largeBytes,
      iterations: largeN,
      mb_per_s: round(mbPerS(ours.largeTimes), 1),
      raw_zmq_mb_per_s: round(mbPerS(raw.largeTimes), 1),
      ratio: round(mbPerS(ours.largeTimes) / mbPerS(raw.largeTimes), 3),
    },
  };
}
