/**
 * `npx bridge doctor`: what the backend's Python environment holds (read through pythonia,
 * which suits one-off introspection), then a real ZeroMQ round trip with the backend. Prints a
 * table; returns 1 with advice when something is wrong. pythonia is used here only: it is far
 * too slow for tensors and dies on a NaN, so it never touches the training path.
 */
import { existsSync } from "node:fs";
import { startBackend } from "../backend/client.js";
import { tensor } from "../core/tensor.js";
import { backendPython } from "../paths.js";
import { type Cell, formatTable } from "../ui/table.js";

export interface DoctorOptions {
  /** Skip the pythonia part (for environments where it cannot run). */
  skipPythonia?: boolean;
  /** Where output goes (default: stdout). */
  print?: (line: string) => void;
}

interface Check {
  what: string;
  value: string;
  ok: boolean;
  advice?: string;
}

const PY_PACKAGES: Array<[module: string, label: string, advice: string]> = [
  ["torch", "torch", "run `npm install` (builds .venv from requirements.txt)"],
  ["zmq", "pyzmq", "run `npm install`"],
  ["pyarrow", "pyarrow", "run `npm install`"],
  ["numpy", "numpy", "run `npm install`"],
  ["orjson", "orjson", "run `npm install`"],
];

/** Imports each package through pythonia and reads its version and torch's CUDA facts. */
async function inspectWithPythonia(python: string): Promise<Check[]> {
  process.env.PYTHON_BIN = python;
  const { python: py } = (await import("pythonia")) as unknown as { python: PythoniaImport };
  const checks: Check[] = [];
  try {
    const sys = await py("sys");
    const version = String(await sys.version).split(" ")[0];
    checks.push({ what: "python", value: `${version} (${python})`, ok: true });
    for (const [module, label, advice] of PY_PACKAGES) {
      try {
        const mod = await py(module);
        checks.push({ what: label, value: String(await mod.__version__).replace(/^'(.*)'$/, "$1"), ok: true });
        if (module === "torch") {
          const cuda = await mod.cuda;
          const available = Boolean(await cuda.is_available());
          const count = available ? Number(await cuda.device_count()) : 0;
          const names: string[] = [];
          for (let i = 0; i < count; i++) names.push(String(await cuda.get_device_name(i)));
          checks.push({ what: "cuda", value: available ? `${count} device(s): ${names.join(", ")}` : "no GPU: the backend runs on the CPU", ok: true });
        }
      } catch (err) {
        checks.push({ what: label, value: `missing (${firstLine(err)})`, ok: false, advice });
      }
    }
  } finally {
    py.exit();
  }
  return checks;
}

interface PythoniaImport {
  (module: string): Promise<PyProxy>;
  exit(): void;
}
// pythonia's proxies: every attribute is awaitable and callable, which TypeScript cannot
// type; confined to this file.
// biome-ignore lint/suspicious/noExplicitAny: pythonia's proxies cannot be typed (see above)
type PyProxy = any;

function firstLine(err: unknown): string {
  return (
    String(err instanceof Error ? err.message : err)
      .split("\n")
      .find((l) => l.trim()) ?? "error"
  );
}

/**
 * A failed start in one line: what happened (the message's first line) and, from the backend's stderr, the line
 * that says why: a Python traceback's last line (the exception), which its first lines would cut off.
 */
export function failureGist(message: string): string {
  const lines = message.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("--- "));
  const [head, ...rest] = lines;
  if (head === undefined) return "error";
  const traceback = rest.findIndex((l) => l.startsWith("Traceback"));
  const why = traceback >= 0 ? rest.slice(traceback + 1).filter((l) => !/^\s/.test(l)) : rest.slice(-2);
  return [head, ...why].join(" | ");
}

/** Starts the real backend, shakes hands, times pings and checks an echo of a tensor. */
async function roundTrip(): Promise<Check[]> {
  const checks: Check[] = [];
  const t0 = performance.now();
  const backend = await startBackend();
  try {
    const start = performance.now() - t0;
    checks.push({
      what: "backend",
      value: `protocol ${backend.hello!.protocol}, pid ${backend.hello!.pid}, device ${backend.hello!.device}, started in ${start.toFixed(0)} ms`,
      ok: true,
    });
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      await backend.call("ping");
      times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    checks.push({ what: "zeromq round trip", value: `p50 ${times[25].toFixed(3)} ms over 50 pings`, ok: true });
    const sent = tensor(
      "int32",
      [64, 2, 32],
      Int32Array.from({ length: 64 * 2 * 32 }, (_, i) => i),
    );
    const { tensors } = await backend.call("echo", {}, { x: sent });
    const back = tensors.x;
    const same = back.dtype === "int32" && back.shape.join() === "64,2,32" && back.data.every((v, i) => v === sent.data[i]);
    checks.push({
      what: "arrow echo",
      value: same ? "int32 [64, 2, 32] came back intact" : "the echoed tensor differs",
      ok: same,
      advice: same ? undefined : "protocol bug: report it with `npx bridge doctor` output",
    });
    const { result } = await backend.call("introspect");
    checks.push({ what: "backend torch", value: `${result.torch} on ${result.device}, ${result.threads} threads`, ok: true });
  } finally {
    await backend.close();
  }
  return checks;
}

export async function doctor(opts: DoctorOptions = {}): Promise<number> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const python = backendPython();
  const checks: Check[] = [{ what: "node", value: process.version, ok: true }];
  if (!existsSync(python)) {
    checks.push({ what: "python", value: `${python} not found`, ok: false, advice: "run `npm install` (it builds .venv), or set BRIDGE_PYTHON" });
  } else {
    if (!opts.skipPythonia) {
      try {
        checks.push(...(await inspectWithPythonia(python)));
      } catch (err) {
        checks.push({ what: "pythonia", value: `failed: ${firstLine(err)}`, ok: false, advice: `check that the interpreter runs: ${python}` });
      }
    }
    if (checks.every((c) => c.ok)) {
      try {
        checks.push(...(await roundTrip()));
      } catch (err) {
        checks.push({
          what: "backend",
          value: `failed: ${failureGist(String((err as Error).message))}`,
          ok: false,
          advice: "run `npm install`; if it persists, run the backend by hand: .venv/bin/python -m bridge_backend --endpoint ipc:///tmp/b.sock",
        });
      }
    }
  }
  const rows: Cell[][] = checks.map((c) => [c.ok ? "ok" : "FAIL", c.what, c.value]);
  print(formatTable(["", "check", "value"], rows));
  const failed = checks.filter((c) => !c.ok);
  for (const c of failed) print(`\n${c.what}: ${c.advice ?? "see above"}`);
  print(failed.length ? `\ndoctor: ${failed.length} problem(s)` : "\ndoctor: all good");
  return failed.length ? 1 : 0;
}
