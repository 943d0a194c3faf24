/** Integration: the real Python backend over real ZeroMQ sockets. */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Dealer } from "zeromq";
import { BackendClient, BackendDiedError, BackendError, CurveRefusedError, startBackend } from "../../ts/backend/client.js";
import { type CurveClientKeys, generateKeys, loadClientKeys } from "../../ts/backend/keys.js";
import { decodeHeader, encodeRequestHeader, PROTOCOL_VERSION } from "../../ts/backend/protocol.js";
import { tensor } from "../../ts/core/tensor.js";
import { backendPython, pythonSourceDir } from "../../ts/paths.js";
import { pidAlive, tempFolder, waitFor } from "../helpers.js";

let backend: BackendClient;

test.before(async () => {
  backend = await startBackend();
});
test.after(async () => {
  await backend.close();
});

test("handshake reports the protocol, pid and device", () => {
  assert.is(backend.hello!.protocol, PROTOCOL_VERSION);
  assert.ok(pidAlive(backend.hello!.pid));
  assert.is(backend.hello!.pid, backend.process!.pid);
});

test("echo returns every dtype, empty dimensions and a raw 8 MiB tensor intact", async () => {
  const sent = {
    f32: tensor("float32", [2, 3], new Float32Array([1.5, -2, 3, 4, 5, Math.PI])),
    f64: tensor("float64", [1], new Float64Array([1e-300])),
    f16: tensor("float16", [2], new Uint16Array([0x3c00, 0xc000])),
    bf16: tensor("bfloat16", [2], new Uint16Array([0x3f80, 0x4049])),
    i8: tensor("int8", [2], new Int8Array([-128, 127])),
    i16: tensor("int16", [1], new Int16Array([-30000])),
    i32: tensor(
      "int32",
      [64, 2, 32],
      Int32Array.from({ length: 4096 }, (_, i) => i - 2048),
    ),
    i64: tensor("int64", [3], new BigInt64Array([2n ** 62n, -1n, 0n])),
    u8: tensor("uint8", [2], new Uint8Array([0, 255])),
    b: tensor("bool", [3], new Uint8Array([1, 0, 1])),
    empty: tensor("float32", [0, 7], new Float32Array(0)),
    scalar: tensor("int64", [], new BigInt64Array([42n])),
    big: tensor(
      "float32",
      [2048, 1024],
      Float32Array.from({ length: 2048 * 1024 }, (_, i) => i * 0.5),
    ),
  };
  const { result, tensors } = await backend.call("echo", { tag: "x" }, sent);
  assert.equal(result.args, { tag: "x" });
  for (const [name, t] of Object.entries(sent)) {
    const back = tensors[name];
    assert.ok(back, name);
    assert.is(back.dtype, t.dtype, name);
    assert.equal([...back.shape], [...t.shape], name);
    assert.equal(Array.from(back.data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), name);
  }
});

test("many calls in flight at once get their own replies", async () => {
  const calls = Array.from({ length: 64 }, (_, i) =>
    backend.call(
      "echo",
      { i },
      {
        x: tensor(
          "int32",
          [i + 1],
          Int32Array.from({ length: i + 1 }, () => i),
        ),
      },
    ),
  );
  const replies = await Promise.all(calls);
  replies.forEach((r, i) => {
    assert.is(r.result.args.i, i);
    assert.is(r.tensors.x.data.length, i + 1);
    assert.ok((r.tensors.x.data as Int32Array).every((v) => v === i));
  });
});

test("events pushed by the backend reach listeners before the reply", async () => {
  const seen: string[] = [];
  const listener = (name: string, data: Record<string, unknown>) => {
    if (name === "log") seen.push(String(data.message));
  };
  backend.on("event", listener);
  await backend.call("emit", { count: 3 });
  backend.off("event", listener);
  assert.equal(seen, ["event 0", "event 1", "event 2"]);
});

test("a Python exception arrives as a BackendError with type, message and traceback; serving goes on", async () => {
  try {
    await backend.call("raise", { type: "ZeroDivisionError", message: "no dividing" });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, BackendError);
    const e = err as BackendError;
    assert.is(e.pythonType, "ZeroDivisionError");
    assert.is(e.code, "op_failed");
    assert.match(e.message, "no dividing");
    assert.match(e.traceback, "Traceback (most recent call last)");
    assert.match(e.traceback, "system.py");
    assert.not.ok(e.fatal);
  }
  assert.equal((await backend.call("ping")).result, { pong: true });
});

test("unknown ops, bad args, and tensors that disagree with their metadata get error replies", async () => {
  const codeOf = async (p: Promise<unknown>) =>
    p.then(
      () => "ok",
      (e: BackendError) => e.code,
    );
  assert.is(await codeOf(backend.callUntyped("no_such_op")), "unknown_op");
  assert.is(await codeOf(backend.callUntyped("sleep", { seconds: "soon" })), "bad_args");
  assert.is(await codeOf(backend.call("sleep", { seconds: 1000 })), "bad_args");

  // hand-made frames: the header says 4 int32 values, the raw frame holds 3
  const raw = new Dealer({ linger: 0 });
  raw.connect(backend.endpoint);
  const ask = async (frames: Uint8Array[]) => {
    await raw.send(frames);
    const [header] = await raw.receive();
    return decodeHeader(header);
  };
  const short = await ask([encodeRequestHeader(1, "echo", {}, [{ name: "x", dtype: "int32", shape: [4], encoding: "raw" }]), new Uint8Array(12)]);
  assert.ok("ok" in short && !short.ok && short.error.code === "bad_tensor");
  const missing = await ask([encodeRequestHeader(2, "echo", {}, [{ name: "x", dtype: "int32", shape: [1], encoding: "raw" }])]);
  assert.ok("ok" in missing && !missing.ok && missing.error.code === "bad_message" && /1 tensors but 0 frames/.test(missing.error.message));
  const dtype = await ask([
    new TextEncoder().encode(JSON.stringify({ v: 1, id: 3, op: "echo", tensors: [{ name: "x", dtype: "complex64", shape: [1] }] })),
    new Uint8Array(8),
  ]);
  assert.ok("ok" in dtype && !dtype.ok && /unknown dtype/.test(dtype.error.message));
  raw.close();
  assert.equal((await backend.call("ping")).result, { pong: true });
});

test("fuzz: thousands of random and truncated messages each get an error reply; the backend still serves", async () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const good = [encodeRequestHeader(7, "echo", {}, [{ name: "x", dtype: "float32", shape: [8], encoding: "arrow" }]), new Uint8Array(0)];
  const raw = new Dealer({ linger: 0, receiveHighWaterMark: 10000, sendHighWaterMark: 10000 });
  raw.connect(backend.endpoint);
  const N = 3000;
  for (let i = 0; i < N; i++) {
    const kind = i % 4;
    let frames: Uint8Array[];
    if (kind === 0) {
      frames = [Uint8Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256))];
    } else if (kind === 1) {
      const h = good[0];
      frames = [h.subarray(0, Math.floor(rand() * h.length))];
    } else if (kind === 2) {
      // a valid header with a random or truncated Arrow body
      frames = [good[0], Uint8Array.from({ length: Math.floor(rand() * 400) }, () => Math.floor(rand() * 256))];
    } else {
      const json = JSON.stringify({
        v: 1,
        id: i,
        op: ["echo", "ping", "sleep", "hello", ""][i % 5],
        args: rand() < 0.5 ? [] : { seconds: -1, protocol: "x" },
        tensors: rand() < 0.5 ? {} : [{ name: "", dtype: "int32", shape: [-1] }],
      });
      frames = [new TextEncoder().encode(json)];
    }
    await raw.send(frames.length ? frames : [new Uint8Array(0)]);
  }
  let replies = 0;
  let errors = 0;
  while (replies < N) {
    const [h] = await raw.receive();
    const header = decodeHeader(h);
    replies++;
    if ("ok" in header && !header.ok) errors++;
  }
  raw.close();
  assert.is(replies, N);
  assert.ok(errors >= N * 0.95, `${errors} of ${N} were errors`);
  assert.equal((await backend.call("ping")).result, { pong: true });
  const { tensors } = await backend.call("echo", {}, { x: tensor("int32", [2], new Int32Array([5, 6])) });
  assert.equal(Array.from(tensors.x.data as Int32Array), [5, 6]);
});

test("the ipc endpoint lives in a private (0700) directory that is removed on close", async () => {
  const b = await startBackend();
  const dir = dirname(b.endpoint.replace("ipc://", ""));
  assert.is(statSync(dir).mode & 0o777, 0o700);
  const pid = b.process!.pid;
  await b.close();
  assert.not.ok(pidAlive(pid), "backend process is gone after close");
  let exists = true;
  try {
    statSync(dir);
  } catch {
    exists = false;
  }
  assert.not.ok(exists, "ipc directory removed");
});

test("SIGKILL of the backend rejects every pending call within 2 s, with the stderr tail", async () => {
  const b = await startBackend();
  const pending = [b.call("sleep", { seconds: 30 }), b.call("ping"), b.call("echo", {}, { x: tensor("int32", [1], new Int32Array([1])) })];
  const settled = Promise.allSettled(pending);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  process.kill(b.process!.pid, "SIGKILL");
  const outcomes = await settled;
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 2000, `rejected after ${elapsed} ms`);
  for (const o of outcomes) {
    assert.is(o.status, "rejected");
    const e = (o as PromiseRejectedResult).reason as BackendDiedError;
    assert.instance(e, BackendDiedError);
    assert.match(e.message, "killed by SIGKILL");
    assert.match(e.message, "serving on ipc://"); // the stderr tail
  }
  // later calls fail at once too
  await b.call("ping").then(
    () => assert.unreachable(),
    (e: Error) => assert.instance(e, BackendDiedError),
  );
  await b.close();
});

test("a backend that cannot start fails the start with its error output", async () => {
  const t0 = Date.now();
  try {
    await startBackend({ python: "/nonexistent/python3" });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, BackendDiedError);
    assert.match((err as Error).message, "/nonexistent/python3");
  }
  assert.ok(Date.now() - t0 < 5000);
  try {
    await startBackend({ env: { PYTHONPATH: "/nowhere" }, python: backendPython(), device: "no-such-device" });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, BackendDiedError);
    assert.match((err as Error).message, "exited with code");
    assert.match((err as Error).message, "device"); // the Python error is in the stderr tail
  }
});

test("a temp folder too long for a socket's name is refused before a backend starts, naming TMPDIR; nothing is left in it", async () => {
  const tmp = tempFolder("bridge-long-tmp-");
  const long = join(tmp, "x".repeat(120));
  mkdirSync(long);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = long;
  try {
    await startBackend();
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /socket path .* bytes, over the 107/);
    assert.match((err as Error).message, "set TMPDIR to a shorter folder");
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  }
  assert.equal(readdirSync(long), []);
  rmSync(tmp, { recursive: true, force: true });
});

test("a device torch cannot name, or a GPU this machine lacks, fails the start in one line, without a traceback", async () => {
  const cases: [string, string][] = [["bogus", "bridge_backend: device 'bogus': not a torch device (cpu, cuda, cuda:N, mps, ...)"]];
  if (!backend.hello!.device.startsWith("cuda")) cases.push(["cuda", "bridge_backend: device 'cuda': this torch ("]);
  for (const [device, message] of cases) {
    const err = await startBackend({ device }).then(
      () => null,
      (e: Error) => e,
    );
    assert.instance(err, BackendDiedError);
    assert.match(err!.message, "exited with code 2");
    assert.match(err!.message, message);
    assert.not.match(err!.message, "Traceback");
  }
});

test("client keys of the wrong shape are refused before a socket is made", async () => {
  for (const curve of [{}, { serverPublic: "x", public: "y", secret: "z" }, null]) {
    const err = await BackendClient.connect("tcp://127.0.0.1:1", { curve: curve as unknown as CurveClientKeys }).catch((e: Error) => e);
    assert.instance(err, Error);
    assert.match((err as Error).message, curve === null ? "tcp:// needs CURVE keys" : "the client keys: serverPublic must be a 40-character Z85 key");
  }
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

test("tcp:// needs CURVE keys: the right client key is admitted; a wrong client or server key is refused at once, and logged", async () => {
  const dir = tempFolder("bridge-keys-");
  const other = tempFolder("bridge-keys-");
  const { serverFile, clientFile } = generateKeys(dir);
  const stranger = generateKeys(other).clientFile;
  assert.is(statSync(serverFile).mode & 0o777, 0o600);
  assert.is(statSync(clientFile).mode & 0o777, 0o600);
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const server = spawn(backendPython(), ["-m", "bridge_backend", "--endpoint", endpoint, "--curve-keys", serverFile, "--watch-stdin"], {
    stdio: ["pipe", "ignore", "pipe"],
    env: { ...process.env, PYTHONPATH: pythonSourceDir },
  });
  let serverLog = "";
  server.stderr.on("data", (c: Buffer) => (serverLog += c.toString()));
  try {
    await BackendClient.connect(endpoint).then(
      () => assert.unreachable(),
      (e: Error) => assert.match(e.message, "CURVE"),
    );
    const good = await BackendClient.connect(endpoint, { curve: loadClientKeys(clientFile), helloTimeoutMs: 30_000 });
    assert.equal((await good.call("ping")).result, { pong: true });
    await good.close();
    // the stranger knows the server's public key (it is in its own file) but is not admitted:
    // refused at once (not after the hello timeout), naming CURVE and its key
    const strangerKeys = { ...loadClientKeys(stranger), serverPublic: loadClientKeys(clientFile).serverPublic };
    let t0 = Date.now();
    await BackendClient.connect(endpoint, { curve: strangerKeys, helloTimeoutMs: 15_000 }).then(
      () => assert.unreachable("a client with an unknown key was admitted"),
      (e: Error) => {
        assert.instance(e, CurveRefusedError);
        assert.match(e.message, "refused this client's CURVE key");
        assert.match(e.message, strangerKeys.public);
      },
    );
    assert.ok(Date.now() - t0 < 2000, `refusal took ${Date.now() - t0} ms`);
    // a client holding a wrong server public key fails its handshake: also at once, and named
    const wrongServer = { ...loadClientKeys(clientFile), serverPublic: loadClientKeys(stranger).serverPublic };
    t0 = Date.now();
    await BackendClient.connect(endpoint, { curve: wrongServer, helloTimeoutMs: 15_000 }).then(
      () => assert.unreachable("a client with the wrong server key got a reply"),
      (e: Error) => {
        assert.instance(e, CurveRefusedError);
        assert.match(e.message, "CURVE handshake");
        assert.match(e.message, wrongServer.serverPublic);
      },
    );
    assert.ok(Date.now() - t0 < 2000, `handshake failure took ${Date.now() - t0} ms`);
    // the backend (what `bridge serve` shows) logs each refusal: the address and key, or the reason
    assert.ok(await waitFor(() => /CURVE handshake does not decrypt/.test(serverLog), 2000), serverLog);
    assert.match(serverLog, `refused a client from 127.0.0.1 on ${endpoint}: its CURVE public key ${strangerKeys.public} is not in allowed_clients`);
  } finally {
    server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
  // the backend itself refuses tcp:// without keys
  const refused = spawn(backendPython(), ["-m", "bridge_backend", "--endpoint", "tcp://127.0.0.1:1"], { env: { ...process.env, PYTHONPATH: pythonSourceDir } });
  let stderr = "";
  refused.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => refused.on("exit", r));
  assert.is.not(code, 0);
  assert.match(stderr, "CURVE");
});

test("a served backend that cannot start says why in one line: unreadable keys, a missing --root, a taken or invalid address", async () => {
  const dir = tempFolder("bridge-serve-");
  const { serverFile } = generateKeys(dir);
  const badKeys = join(dir, "bad.json");
  writeFileSync(badKeys, "{bad");
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
  const port = (taken.address() as { port: number }).port;
  try {
    const cases: [string[], string][] = [
      [["--endpoint", `tcp://127.0.0.1:${port}`, "--curve-keys", badKeys], `bridge_backend: ${badKeys}: cannot read the keys (`],
      [["--endpoint", "tcp://127.0.0.1:1", "--curve-keys", serverFile, "--root", join(dir, "nowhere")], `--root ${join(dir, "nowhere")}: no such folder`],
      [["--endpoint", `tcp://127.0.0.1:${port}`, "--curve-keys", serverFile], `cannot serve on tcp://127.0.0.1:${port}: Address already in use`],
      [["--endpoint", "tcp://127.0.0.1:notaport", "--curve-keys", serverFile], "cannot serve on tcp://127.0.0.1:notaport: Invalid argument"],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(backendPython(), ["-m", "bridge_backend", ...args], { env: { ...process.env, PYTHONPATH: pythonSourceDir }, encoding: "utf8" });
      assert.is(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.not.match(r.stderr, "Traceback");
    }
  } finally {
    taken.close();
  }
});

test("close() leaves no backend process behind", async () => {
  const b = await startBackend();
  const pid = b.process!.pid;
  await b.close();
  assert.ok(await waitFor(() => !pidAlive(pid), 3000));
});

test.run();
