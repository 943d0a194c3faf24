/** `bridge serve`. */
import { defineCommand } from "./command.js";
import { deviceOption } from "./options.js";

export const serveCommand = defineCommand({
  command: "serve",
  describe: "run a backend in the foreground for remote clients (tcp:// needs --keys)",
  builder: (y) =>
    y.options({
      endpoint: { type: "string", demandOption: true, describe: "tcp://0.0.0.0:5555 or ipc:///path" },
      // the server's key file, not the client's of options.ts remoteBackendOptions
      keys: { type: "string", describe: "server.json from `bridge keys` (private to its owner: chmod 600)" },
      ...deviceOption,
      root: { type: "string", describe: "clients' file paths (checkpoints, imports) must lie inside this folder (default: the current folder)" },
    }),
  handler: async (a) => {
    const { serve } = await import("../commands/serve.js");
    return serve({ endpoint: a.endpoint, keys: a.keys, device: a.device, root: a.root });
  },
});
