/**
 * Streaming line reading: UTF-8, BOM stripped, LF or CRLF, 1-based line numbers. A line that is
 * not valid UTF-8 is a bad row (the policy of `opts` decides: stop, or skip and count it); it is
 * never decoded into U+FFFD replacement characters that would then train as text.
 */
import { createReadStream } from "node:fs";
import { badRow, DataError, emptyReadStats } from "./errors.js";
import type { ReadOptions } from "./records.js";

export interface Line {
  /** Without its line ending. */
  text: string;
  /** 1-based. */
  no: number;
}

const NEWLINE = 0x0a;

/** The file's bytes; a path that cannot be read (a folder, say) is named, where node's own error ("EISDIR: illegal
 * operation on a directory, read") names no path. Errors of the caller's loop body pass through untouched. */
async function* chunks(path: string): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  const iterator = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw unreadable(path, err);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    stream.destroy(); // a reader that stops early (the first bad row) closes the file
  }
}

function unreadable(path: string, err: unknown): unknown {
  const why: Record<string, string> = { EISDIR: "a folder, not a file", ENOENT: "no such file", EACCES: "permission denied" };
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && code in why ? new DataError(`${path}: ${why[code]}`) : err;
}

/**
 * Yields each line of a file; a final line without a newline is yielded too. Lines are split on
 * bytes (0x0A never occurs inside a multi-byte UTF-8 sequence), then decoded strictly.
 */
export async function* readLines(path: string, opts: ReadOptions = {}): AsyncGenerator<Line> {
  const policy = opts.onBadRow ?? "error";
  const stats = opts.stats ?? emptyReadStats();
  let pending: Buffer[] = []; // bytes after the last newline seen
  let no = 0;
  // A block is the bytes between two line breaks (or the file's ends): it holds (its newlines + 1) lines.
  const decodeBlock = function* (block: Buffer): Generator<Line> {
    // Fast path: the whole block decodes; slow path (only for a block with a bad byte): line by line.
    const text = strictDecode(block);
    if (text !== null) {
      for (const line of text.split("\n")) yield { text: clean(line, ++no), no };
      return;
    }
    for (let start = 0; ; ) {
      const nl = block.indexOf(NEWLINE, start);
      const bytes = block.subarray(start, nl < 0 ? block.length : nl);
      const line = strictDecode(bytes);
      no++;
      if (line === null) badRow(policy, stats, path, no, invalidUtf8Reason(bytes));
      else yield { text: clean(line, no), no };
      if (nl < 0) break;
      start = nl + 1;
    }
  };
  for await (const chunk of chunks(path)) {
    const buf = chunk as Buffer;
    const last = buf.lastIndexOf(NEWLINE);
    if (last < 0) {
      pending.push(buf);
      continue;
    }
    // Complete lines: the pending bytes, and this chunk up to its last newline (excluded).
    yield* decodeBlock(Buffer.concat([...pending, buf.subarray(0, last)]));
    pending = [buf.subarray(last + 1)];
  }
  const rest = Buffer.concat(pending);
  if (rest.length > 0) yield* decodeBlock(rest);
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function strictDecode(bytes: Uint8Array): string | null {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

/** CR of a CRLF ending removed; the BOM removed from line 1. */
function clean(s: string, no: number): string {
  const t = no === 1 && s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  return t.endsWith("\r") ? t.slice(0, -1) : t;
}

/** "invalid UTF-8 at byte 7 (0xff)": where the first bad sequence starts, 1-based within the line. */
export function invalidUtf8Reason(bytes: Uint8Array): string {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const need = b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    let ok = need >= 0 && i + need < bytes.length;
    for (let k = 1; ok && k <= need; k++) ok = (bytes[i + k] & 0xc0) === 0x80;
    // Overlong, surrogate and beyond-U+10FFFF forms: the second byte's range is narrower.
    if (ok && need >= 2) {
      const c = bytes[i + 1];
      ok = !((b === 0xe0 && c < 0xa0) || (b === 0xed && c > 0x9f) || (b === 0xf0 && c < 0x90) || (b === 0xf4 && c > 0x8f));
    }
    if (!ok) return `invalid UTF-8 at byte ${i + 1} (0x${b.toString(16).padStart(2, "0")})`;
    i += need + 1;
  }
  return "invalid UTF-8";
}
