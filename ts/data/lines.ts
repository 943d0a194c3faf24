/** Streaming line reading: UTF-8, BOM stripped, LF or CRLF, 1-based line numbers. */
import { createReadStream } from "node:fs";
import { StringDecoder } from "node:string_decoder";

export interface Line {
  /** Without its line ending. */
  text: string;
  /** 1-based. */
  no: number;
}

/** Yields each line of a file; a final line without a newline is yielded too. */
export async function* readLines(path: string): AsyncGenerator<Line> {
  const decoder = new StringDecoder("utf8");
  let carry = "";
  let no = 0;
  let first = true;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    let text = carry + decoder.write(chunk as Buffer);
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      yield { text: stripCr(text.slice(start, nl)), no: ++no };
      start = nl + 1;
    }
    carry = text.slice(start);
  }
  carry += decoder.end();
  if (first && carry.charCodeAt(0) === 0xfeff) carry = carry.slice(1);
  if (carry.length > 0) yield { text: stripCr(carry), no: ++no };
}

function stripCr(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}
