/**
 * Wire protocol v1 between this client and the Python backend (py/bridge_backend/protocol.py
 * states the same rules; change both together and bump PROTOCOL_VERSION).
 *
 * - Every message is a multipart ZeroMQ message. Frame 0 is a UTF-8 JSON header; frames 1..n
 *   carry the tensors that header.tensors lists, one frame each, in order.
 * - The client sends requests on a DEALER socket; the backend (ROUTER) answers each request
 *   exactly once, with a reply or an error, matched by id. Several requests may be in flight.
 * - The backend may push events (log lines, warnings) at any time; they carry no id.
 * - Tensor frames are Arrow IPC streams with one record batch of one non-null column (the
 *   tensor flattened in C order; bool travels as uint8 and bfloat16 as uint16), or raw
 *   little-endian bytes for large tensors. See codec.ts.
 * - The first request is `hello` with {protocol: 1}; a mismatch is a fatal error.
 * - Non-finite floats (NaN, Infinity: a diverged loss) cross as JSON null, in both directions:
 *   JSON has no NaN (JSON.stringify writes null for them; the backend does the same). Strings are
 *   never reinterpreted: a log message saying "NaN" arrives as written.
 * - Headers are decoded strictly: anything else is a protocol error, never a guess.
 */
import { type DType, isDType } from "../core/tensor.js";

export const PROTOCOL_VERSION = 1;

export type Encoding = "arrow" | "raw";
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface TensorMeta {
  name: string;
  dtype: DType;
  shape: number[];
  encoding: Encoding;
}

export interface RequestHeader {
  v: number;
  id: number;
  op: string;
  args: JsonObject;
  tensors: TensorMeta[];
}

export interface ReplyHeader {
  v: number;
  id: number;
  ok: true;
  result: JsonObject;
  tensors: TensorMeta[];
}

export interface ErrorBody {
  /** bad_message | bad_tensor | bad_args | unknown_op | op_failed | protocol_version | bad_checkpoint | no_space (a full disk) */
  code: string;
  /** The Python exception's type name. */
  type: string;
  message: string;
  traceback: string;
  /** The backend will not serve further requests. */
  fatal: boolean;
}

export interface ErrorHeader {
  v: number;
  id: number | null;
  ok: false;
  error: ErrorBody;
}

export interface EventHeader {
  v: number;
  event: string;
  data: JsonObject;
}

export type IncomingHeader = ReplyHeader | ErrorHeader | EventHeader;

export class ProtocolError extends Error {
  override name = "ProtocolError";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function decodeMeta(raw: unknown, i: number): TensorMeta {
  if (!isObject(raw)) throw new ProtocolError(`tensors[${i}] is not an object`);
  const { name, dtype, shape, encoding } = raw;
  if (typeof name !== "string") throw new ProtocolError(`tensors[${i}].name must be a string`);
  if (!isDType(dtype)) throw new ProtocolError(`tensors[${i}] (${name}): unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ProtocolError(`tensors[${i}] (${name}): bad shape ${JSON.stringify(shape)}`);
  }
  if (encoding !== "arrow" && encoding !== "raw") throw new ProtocolError(`tensors[${i}] (${name}): bad encoding ${JSON.stringify(encoding)}`);
  return { name, dtype, shape: shape as number[], encoding };
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Parses and checks a header frame from the backend. */
export function decodeHeader(frame: Uint8Array): IncomingHeader {
  let text: string;
  let raw: unknown;
  try {
    text = decoder.decode(frame);
    raw = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError(`header is not UTF-8 JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw new ProtocolError("header is not a JSON object");
  if (raw.v !== PROTOCOL_VERSION) throw new ProtocolError(`backend speaks protocol ${String(raw.v)}, this client ${PROTOCOL_VERSION}`);
  if (typeof raw.event === "string") {
    return { v: PROTOCOL_VERSION, event: raw.event, data: isObject(raw.data) ? (raw.data as JsonObject) : {} };
  }
  if (raw.ok === true) {
    if (!Number.isInteger(raw.id)) throw new ProtocolError("reply without an integer id");
    if (!Array.isArray(raw.tensors)) throw new ProtocolError("reply.tensors must be a list");
    return {
      v: PROTOCOL_VERSION,
      id: raw.id as number,
      ok: true,
      result: isObject(raw.result) ? (raw.result as JsonObject) : {},
      tensors: raw.tensors.map(decodeMeta),
    };
  }
  if (raw.ok === false && isObject(raw.error)) {
    const e = raw.error;
    return {
      v: PROTOCOL_VERSION,
      id: Number.isInteger(raw.id) ? (raw.id as number) : null,
      ok: false,
      error: {
        code: String(e.code ?? "unknown"),
        type: String(e.type ?? "Error"),
        message: String(e.message ?? ""),
        traceback: String(e.traceback ?? ""),
        fatal: e.fatal === true,
      },
    };
  }
  throw new ProtocolError(`header is neither a reply, an error nor an event: ${text.slice(0, 200)}`);
}

const encoder = new TextEncoder();

export function encodeRequestHeader(id: number, op: string, args: JsonObject, tensors: TensorMeta[]): Uint8Array {
  const header: RequestHeader = { v: PROTOCOL_VERSION, id, op, args, tensors };
  return encoder.encode(JSON.stringify(header));
}
