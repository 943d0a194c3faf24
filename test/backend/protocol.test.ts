/**
 * The NaN policy of the wire protocol: non-finite floats cross as JSON null in both directions, and
 * strings are never reinterpreted. The headers decoded here are written by the backend's own
 * encode_header, so both halves of the protocol are held to the same rule.
 */
import { spawnSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeHeader, encodeRequestHeader } from "../../ts/backend/protocol.js";
import { backendEnv, backendPython } from "../../ts/paths.js";

/** Frame 0 as the backend writes it for `header` (a Python literal). */
function pythonFrame(header: string): Uint8Array {
  const code = `import sys\nfrom bridge_backend.protocol import encode_header\nsys.stdout.buffer.write(encode_header(${header}))`;
  const r = spawnSync(backendPython(), ["-c", code], { env: backendEnv() });
  assert.is(r.status, 0, r.stderr.toString());
  return r.stdout;
}

test("a log message saying NaN arrives unchanged; a NaN float arrives as null", () => {
  const frame = pythonFrame(
    `{"event": "log", "data": {"level": "warning", "message": "NaN", "note": "loss NaN, lr Infinity", "loss": float("nan"), "xs": [float("inf"), -float("inf"), 0.5]}}`,
  );
  const h = decodeHeader(frame);
  assert.ok("event" in h);
  assert.equal(h.data, { level: "warning", message: "NaN", note: "loss NaN, lr Infinity", loss: null, xs: [null, null, 0.5] });
});

test('a reply\'s non-finite result is null; the string "Infinity" stays a string', () => {
  const h = decodeHeader(pythonFrame(`{"id": 7, "ok": True, "result": {"loss": float("nan"), "grad_norm": float("inf"), "label": "Infinity"}, "tensors": []}`));
  assert.ok("ok" in h && h.ok);
  assert.equal(h.result, { loss: null, grad_norm: null, label: "Infinity" });
});

test("requests send non-finite numbers as null, which the backend accepts", () => {
  const frame = encodeRequestHeader(1, "set_hparams", { lr: NaN, wd: Infinity, name: "NaN" }, []);
  assert.equal(JSON.parse(new TextDecoder().decode(frame)).args, { lr: null, wd: null, name: "NaN" });
  const code = `import sys\nfrom bridge_backend.protocol import parse_header, parse_request\nprint(parse_request(parse_header(sys.stdin.buffer.read()), 0).args)`;
  const r = spawnSync(backendPython(), ["-c", code], { env: backendEnv(), input: frame, encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), "{'lr': None, 'wd': None, 'name': 'NaN'}");
});

test.run();
