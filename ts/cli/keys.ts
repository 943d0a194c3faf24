/** `bridge keys`. */
import { defineCommand } from "./command.js";

export const keysCommand = defineCommand({
  command: "keys",
  describe: "generate CURVE keys for a tcp:// backend (mode 0600)",
  builder: (y) =>
    y.options({
      dir: { type: "string", default: "keys", describe: "folder for server.json and client.json" },
      force: { type: "boolean", default: false, describe: "replace existing keys (hosts holding the old ones are locked out)" },
    }),
  handler: async (a) => {
    const { keys } = await import("../commands/keys.js");
    return keys({ dir: a.dir, force: a.force });
  },
});
