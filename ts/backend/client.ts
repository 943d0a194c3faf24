/**
 * The client: one DEALER socket to one backend, any number of calls in flight, replies matched
 * by id, events pushed by the backend delivered to listeners.
 *
 * - `startBackend()` spawns a backend (process.ts) and connects over ipc://.
 * - `connectBackend(endpoint, {curve})` connects to a backend someone else started (tcp:// needs
 *   CURVE keys; see keys.ts).
 * - Every pending call fails at once, with the tail of the backend's stderr, when a backend we
 *   own exits; at once too when a remote backend refuses our CURVE keys (CurveRefusedError), and when
 *   a remote backend we shook hands with goes away: its connection closes, or ZeroMQ's heartbeats
 *   go unanswered for REMOTE_HEARTBEAT.timeoutMs (a reply in flight then can never arrive).
 * - `close()` must be called when done: the open socket keeps Node's event loop alive.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { Dealer } from "zeromq";
import type { Tensors } from "../core/tensor.js";
import { decodeTensor, encodeTensor } from "./codec.js";
import { assertClientKeys, type CurveClientKeys } from "./keys.js";
import type { HelloResult, OpArgs, OpCaller, OpName, OpReply, WireArgs } from "./ops.js";
import { BackendProcess, type SpawnOptions } from "./process.js";
import { decodeHeader, type ErrorBody, encodeRequestHeader, type JsonObject, PROTOCOL_VERSION, ProtocolError, type TensorMeta } from "./protocol.js";

/** A reply of any op: `OpReply` is the typed one. */
export interface CallResult<R = JsonObject> {
  result: R;
  tensors: Tensors;
}

export interface CallOptions {
  /** Reject if no reply within this many ms (default: no limit for local backends). */
  timeoutMs?: number;
}

/** An error raised by the backend while serving a request. */
export class BackendError extends Error {
  override name = "BackendError";
  readonly code: string;
  readonly pythonType: string;
  readonly traceback: string;
  readonly fatal: boolean;
  readonly op: string;
  /** The backend's message alone (no op, type or traceback). */
  readonly detail: string;

  constructor(op: string, body: ErrorBody) {
    super(`${op}: ${body.type}: ${body.message}${body.traceback ? `\n--- Python traceback ---\n${body.traceback.trimEnd()}` : ""}`);
    this.op = op;
    this.code = body.code;
    this.pythonType = body.type;
    this.traceback = body.traceback;
    this.fatal = body.fatal;
    this.detail = body.message;
  }
}

/** The backend process ended (or could not start) while calls were pending. */
export class BackendDiedError extends Error {
  override name = "BackendDiedError";
  constructor(
    message: string,
    readonly stderrTail: string,
  ) {
    super(stderrTail ? `${message}\n--- backend stderr (last lines) ---\n${stderrTail}` : message);
  }
}

export class BackendTimeoutError extends Error {
  override name = "BackendTimeoutError";
}

/** A tcp:// backend refused this client's CURVE handshake (wrong client key or wrong server key). */
export class CurveRefusedError extends Error {
  override name = "CurveRefusedError";
}

interface Pending {
  op: string;
  resolve: (r: CallResult) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

export interface BackendEvents {
  /** Any event the backend pushes: name and data. */
  event: [name: string, data: JsonObject];
}

export interface ConnectOptions {
  /** Required for tcp:// endpoints. */
  curve?: CurveClientKeys;
  /** How long the handshake may take (torch's import is slow on a cold start). */
  helloTimeoutMs?: number;
  /** Where backend log events go; default: warnings and errors to stderr. */
  onLog?: (level: string, message: string) => void;
}

export interface StartOptions extends SpawnOptions, Omit<ConnectOptions, "curve"> {}

export type { HelloResult } from "./ops.js";

const MAX_MESSAGE_BYTES = 4 * 1024 ** 3;

/** ZMTP heartbeats to a remote backend: answered by its ZeroMQ I/O thread, so a long op does not miss them. */
export const REMOTE_HEARTBEAT = { intervalMs: 1000, timeoutMs: 10_000 } as const;

export class BackendClient extends EventEmitter<BackendEvents> implements OpCaller {
  readonly endpoint: string;
  readonly process: BackendProcess | null;
  hello: HelloResult | null = null;
  private readonly socket: Dealer;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private sendChain: Promise<void> = Promise.resolve();
  private closed = false;
  private deadError: Error | null = null;

  private constructor(endpoint: string, proc: BackendProcess | null, opts: ConnectOptions) {
    super();
    this.endpoint = endpoint;
    this.process = proc;
    if (endpoint.startsWith("tcp://") && !opts.curve) {
      throw new Error(`bridge: ${endpoint}: tcp:// needs CURVE keys (generate them with \`npx bridge keys\`)`);
    }
    // before the socket: zeromq refuses bad keys half way through making it, which can crash the process at exit
    if (opts.curve) assertClientKeys(opts.curve, `bridge: ${endpoint}: the client keys`);
    this.socket = new Dealer({
      // this client's own id, kept across reconnects: a served backend keeps one session (model state) per id
      routingId: randomUUID(),
      linger: 0,
      sendHighWaterMark: 1000,
      receiveHighWaterMark: 1000,
      maxMessageSize: MAX_MESSAGE_BYTES,
      ...(proc === null ? { heartbeatInterval: REMOTE_HEARTBEAT.intervalMs, heartbeatTimeout: REMOTE_HEARTBEAT.timeoutMs } : {}),
      ...(opts.curve ? { curveServerKey: opts.curve.serverPublic, curvePublicKey: opts.curve.public, curveSecretKey: opts.curve.secret } : {}),
    });
    if (opts.curve) this.watchCurveRefusals(opts.curve);
    if (proc === null) this.watchDisconnect();
    try {
      this.socket.connect(endpoint);
    } catch (err) {
      // a socket left open keeps the process alive after the error
      this.socket.close();
      throw new Error(`bridge: cannot connect to ${endpoint} (${(err as Error).message}); expected tcp://HOST:PORT or ipc://PATH`);
    }
    const onLog = opts.onLog ?? defaultLog;
    this.on("event", (name, data) => {
      if (name === "log") onLog(String(data.level ?? "info"), String(data.message ?? ""));
    });
    void this.receiveLoop();
    proc?.exited.then((info) => {
      const how = info.signal ? `was killed by ${info.signal}` : `exited with code ${info.code}`;
      this.fail(new BackendDiedError(`bridge: the backend (pid ${proc.pid}) ${how}`, proc.stderrTail()));
    });
  }

  /**
   * A refused CURVE handshake shows only in the socket's monitor events (ZeroMQ then retries, or
   * waits, silently): turn it into an error for every pending call at once, rather than a timeout.
   * A refused client key fails the client at any time; any other handshake failure only before
   * the first reply, since a backend that admitted us before may just be restarting.
   */
  private watchCurveRefusals(curve: CurveClientKeys): void {
    const events = this.socket.events;
    events.on("handshake:error:auth", (e) => {
      this.fail(
        new CurveRefusedError(
          `bridge: the backend at ${this.endpoint} refused this client's CURVE key ${curve.public} (ZAP status ${e.error.status}): ` +
            "it is not in the server's allowed_clients; use the client.json that `bridge keys` wrote with the server's server.json",
        ),
      );
    });
    const beforeHello = (detail: string) => {
      if (this.hello !== null) return;
      this.fail(
        new CurveRefusedError(
          `bridge: the CURVE handshake with ${this.endpoint} failed (${detail}): the server_public key in the client keys ` +
            `(${curve.serverPublic}) is not this backend's, or it does not use CURVE`,
        ),
      );
    };
    events.on("handshake:error:protocol", (e) => beforeHello(`${e.error.code}: ${e.error.message}`));
    events.on("handshake:error:other", (e) => beforeHello(e.error.message));
  }

  /**
   * A remote backend that goes away (stopped, restarted, or unreachable past the heartbeat timeout) fails every
   * call at once: ZeroMQ reconnects by itself, but a reply due on the lost connection is dropped by the backend,
   * and a restarted one holds no model. Before the handshake, connect()'s own timeout says it.
   */
  private watchDisconnect(): void {
    this.socket.events.on("disconnect", () => {
      if (this.hello === null || this.closed) return;
      this.fail(
        new BackendDiedError(
          `bridge: the backend at ${this.endpoint} went away (it closed the connection, or did not answer ZeroMQ's heartbeats ` +
            `for ${REMOTE_HEARTBEAT.timeoutMs / 1000} s); its calls in flight cannot be answered, and a restarted backend holds no model: ` +
            "start `bridge serve` there again if it stopped, then connect again",
          "",
        ),
      );
    });
  }

  /** Connects to an already running backend and shakes hands. */
  static async connect(endpoint: string, opts: ConnectOptions = {}): Promise<BackendClient> {
    const client = new BackendClient(endpoint, null, opts);
    try {
      await client.handshake(opts.helloTimeoutMs ?? 15_000);
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  /** Spawns a backend of our own and shakes hands. */
  static async start(opts: StartOptions = {}): Promise<BackendClient> {
    const proc = new BackendProcess(opts);
    let client: BackendClient;
    try {
      client = new BackendClient(proc.endpoint, proc, opts);
    } catch (err) {
      await proc.stop(); // else it would live on, bound and waiting, until this process exits
      throw err;
    }
    try {
      await client.handshake(opts.helloTimeoutMs ?? 120_000);
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  private async handshake(timeoutMs: number): Promise<void> {
    try {
      const { result } = await this.call("hello", { protocol: PROTOCOL_VERSION }, {}, { timeoutMs });
      this.hello = result;
    } catch (err) {
      if (err instanceof BackendTimeoutError) {
        throw new BackendTimeoutError(
          `bridge: no handshake from the backend at ${this.endpoint} within ${timeoutMs} ms ` +
            (this.endpoint.startsWith("tcp://") ? "(is it running, and do the CURVE keys match?)" : "(is it starting?)"),
        );
      }
      throw err;
    }
  }

  /** Sends one request of the op catalogue (ops.ts); resolves with the reply's typed result and tensors. */
  call<K extends OpName>(op: K, args?: OpArgs<K>, tensors?: Tensors, opts?: CallOptions): Promise<OpReply<K>>;
  // the implementation's signature is untyped: the reply is the backend's, whose shape the catalogue states
  call(op: string, args: object = {}, tensors: Tensors = {}, opts: CallOptions = {}): Promise<CallResult<unknown>> {
    // every catalogue args type is a JSON object (ops.ts); the backend checks each argument it reads
    return this.callUntyped(op, args as WireArgs, tensors, opts);
  }

  /**
   * Sends any op by name, its result untyped: for `bridge call OP` (any op, args from the command line) and protocol
   * tests that send what the catalogue refuses. Everything else uses `call`.
   */
  callUntyped(op: string, args: WireArgs = {}, tensors: Tensors = {}, opts: CallOptions = {}): Promise<CallResult> {
    if (this.deadError) return Promise.reject(this.deadError);
    if (this.closed) return Promise.reject(new Error(`bridge: ${op}: the client is closed`));
    const id = this.nextId++;
    const metas: TensorMeta[] = [];
    const frames: Uint8Array[] = [];
    for (const [name, t] of Object.entries(tensors)) {
      const enc = encodeTensor(name, t);
      metas.push(enc.meta);
      frames.push(enc.frame);
    }
    const header = encodeRequestHeader(id, op, args as JsonObject, metas);
    return new Promise<CallResult>((resolve, reject) => {
      const pending: Pending = { op, resolve, reject };
      if (opts.timeoutMs !== undefined) {
        pending.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new BackendTimeoutError(`bridge: ${op}: no reply within ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
      }
      this.pending.set(id, pending);
      // zeromq allows one send at a time per socket: chain them
      this.sendChain = this.sendChain.then(() =>
        this.socket.send([header, ...frames]).catch((err: Error) => this.settle(id, null, new Error(`bridge: ${op}: send failed: ${err.message}`))),
      );
    });
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  private settle(id: number, result: CallResult | null, error: Error | null): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if (error) p.reject(error);
    else p.resolve(result!);
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        this.dispatch(frames);
      }
    } catch (err) {
      if (!this.closed) this.fail(new Error(`bridge: receiving from ${this.endpoint} failed: ${(err as Error).message}`));
    }
  }

  private dispatch(frames: Buffer[]): void {
    let header: ReturnType<typeof decodeHeader>;
    try {
      header = decodeHeader(frames[0]);
    } catch (err) {
      this.emit("event", "log", { level: "error", message: `dropped a message from the backend: ${(err as Error).message}` });
      return;
    }
    if ("event" in header) {
      this.emit("event", header.event, header.data);
      return;
    }
    if (!header.ok && header.id === null) {
      // an error about a request too broken to carry an id: nobody to hand it to but the log
      this.emit("event", "log", { level: "error", message: `backend: ${header.error.code}: ${header.error.message}` });
      return;
    }
    const p = this.pending.get(header.id!);
    if (!p) return; // timed out earlier
    if (!header.ok) {
      const err = new BackendError(p.op, header.error);
      this.settle(header.id!, null, err);
      if (err.fatal) this.fail(err);
      return;
    }
    if (frames.length - 1 !== header.tensors.length) {
      this.settle(header.id, null, new ProtocolError(`${p.op}: reply lists ${header.tensors.length} tensors but has ${frames.length - 1} frames`));
      return;
    }
    try {
      const tensors: Tensors = {};
      header.tensors.forEach((meta, i) => {
        tensors[meta.name] = decodeTensor(meta, frames[i + 1]);
      });
      this.settle(header.id, { result: header.result, tensors }, null);
    } catch (err) {
      this.settle(header.id, null, err as Error);
    }
  }

  /** Rejects every pending call and every later one with `err`. */
  private fail(err: Error): void {
    if (this.deadError) return;
    this.deadError = err;
    for (const id of [...this.pending.keys()]) this.settle(id, null, err);
  }

  /**
   * Ends the session: asks a backend we own to shut down (killing it if it does not within
   * `graceMs`), then closes the socket. Pending calls are rejected.
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.closed) return;
    if (this.process?.alive && !this.deadError) {
      await this.call("shutdown", {}, {}, { timeoutMs: graceMs }).catch(() => {});
    }
    this.closed = true;
    this.fail(new Error("bridge: the client was closed"));
    this.socket.close();
    if (this.process) await this.process.stop(graceMs);
  }
}

function defaultLog(level: string, message: string): void {
  if (level === "warning" || level === "error") process.stderr.write(`backend ${level}: ${message}\n`);
}

export const startBackend = BackendClient.start;
export const connectBackend = BackendClient.connect;
