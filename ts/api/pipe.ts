/**
 * The API over a pipe, for Python (notebooks/bridge_notebook.py's Encoder): one process, one open encoder,
 * requests served in order until stdin closes. The tokenizer lives on this side, so Python embeds through
 * here rather than loading the checkpoint itself: the same vectors as `bridge embed`, bit for bit.
 *
 *   node dist/ts/api/pipe.js RUN [--device D] [--max-len N]     RUN: a run folder, a name, or latest
 *
 * Rules (stdout carries nothing else; logs go to stderr):
 * - On start, one JSON line: {"run", "dir", "dim", "checkpoint"} when the run is open, else {"error"} and exit 1.
 * - A request is one JSON line: {"sentences": [str, ...], "batchSize"?: int, "normalize"?: bool}.
 * - Its reply is a JSON line {"rows", "dim", "truncated"} followed by rows * dim float32, little-endian,
 *   row-major (exactly rows * dim * 4 bytes); or a JSON line {"error": message} and nothing more.
 * - End of stdin closes the encoder (its backend stops) and the process exits 0.
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { type Encoder, openEncoder } from "./encoder.js";

interface Request {
  sentences: string[];
  batchSize?: number;
  normalize?: boolean;
}

function writeOut(data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(data, (e) => (e ? reject(e) : resolve())));
}

const line = (obj: object) => writeOut(`${JSON.stringify(obj)}\n`);

async function serve(enc: Encoder): Promise<void> {
  for await (const text of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (text.trim() === "") continue;
    let req: Request;
    try {
      req = JSON.parse(text) as Request;
      if (req === null || typeof req !== "object" || !Array.isArray(req.sentences)) throw new Error('a request is {"sentences": [...]}');
    } catch (e) {
      await line({ error: `bad request: ${(e as Error).message}` });
      continue;
    }
    try {
      const v = await enc.embed(req.sentences, { batchSize: req.batchSize, normalize: req.normalize });
      await line({ rows: v.rows, dim: v.dim, truncated: v.truncated });
      await writeOut(new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength));
    } catch (e) {
      await line({ error: (e as Error).message });
    }
  }
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { device: { type: "string" }, "max-len": { type: "string" } },
  });
  let enc: Encoder;
  try {
    if (positionals.length !== 1) throw new Error("usage: pipe.js RUN [--device D] [--max-len N]");
    const maxLen = values["max-len"] === undefined ? undefined : Number(values["max-len"]);
    enc = await openEncoder(positionals[0], { device: values.device, maxLen });
  } catch (e) {
    await line({ error: (e as Error).message });
    return 1;
  }
  try {
    await line({ run: enc.run, dir: enc.dir, dim: enc.dim, checkpoint: enc.checkpoint, unfinished: enc.unfinished });
    await serve(enc);
  } finally {
    await enc.close();
  }
  return 0;
}

process.exitCode = await main();
