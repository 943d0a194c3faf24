/**
 * `npx bridge call OP [--args JSON]`: starts a backend, sends one request, prints the reply
 * (tensors summarised) and stops the backend. For poking at the backend by hand.
 */
import { startBackend } from "../backend/client.js";
import type { JsonObject } from "../backend/protocol.js";

export interface CallCommandOptions {
  op: string;
  args: JsonObject;
  print?: (line: string) => void;
}

export async function call(opts: CallCommandOptions): Promise<number> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const backend = await startBackend();
  try {
    const { result, tensors } = await backend.callUntyped(opts.op, opts.args); // any op, args as given: the backend checks them
    const summary = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, `${t.dtype}[${t.shape.join(", ")}]`]));
    print(JSON.stringify({ result, tensors: summary }, null, 2));
    return 0;
  } finally {
    await backend.close();
  }
}
