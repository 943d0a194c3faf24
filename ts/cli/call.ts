/** `bridge call <op>`. */
import type { JsonObject } from "../backend/protocol.js";
import { defineCommand } from "./command.js";

export const callCommand = defineCommand({
  command: "call <op>",
  describe: "start a backend, send one request, print the reply",
  builder: (y) =>
    y.positional("op", { type: "string", demandOption: true }).options({
      args: { type: "string", default: "{}", describe: "the request's arguments as JSON" },
    }),
  handler: async (a) => {
    const { call } = await import("../commands/call.js");
    let args: unknown;
    try {
      args = JSON.parse(a.args);
    } catch (err) {
      throw new Error(`--args is not JSON: ${(err as Error).message}`);
    }
    if (typeof args !== "object" || args === null || Array.isArray(args)) throw new Error("--args must be a JSON object");
    return call({ op: a.op, args: args as JsonObject });
  },
});
