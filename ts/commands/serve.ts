/**
 * `npx bridge serve --endpoint tcp://0.0.0.0:5555 --keys server.json`: runs a backend in the
 * foreground for clients on other machines. tcp:// requires CURVE keys: the backend admits only
 * the client keys listed in server.json, and logs each client it refuses (address and key, or why
 * its handshake failed) on stderr. Ends on Ctrl-C.
 *
 * Trust model (README, "What a served backend trusts"): an admitted client may train, save and load, so file paths in its
 * requests are confined to --root (default: the folder serve runs in); each client connection has a session of
 * its own, so no model state passes from one client to the next; server.json must be private to its owner.
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { assertPrivateKeyFile } from "../backend/keys.js";
import { backendEnv, backendPython } from "../paths.js";

export interface ServeOptions {
  endpoint: string;
  keys?: string;
  device?: string;
  /** Folder that clients' file paths (checkpoints, imports) must stay inside; default: the current folder. */
  root?: string;
}

export async function serve(opts: ServeOptions): Promise<number> {
  if (opts.endpoint.startsWith("tcp://") && !opts.keys) {
    throw new Error("bridge serve: a tcp:// endpoint needs --keys server.json (make them with `npx bridge keys --dir DIR`)");
  }
  if (opts.keys) assertPrivateKeyFile(opts.keys);
  const args = ["-m", "bridge_backend", "--endpoint", opts.endpoint, "--watch-stdin", "--root", resolve(opts.root ?? ".")];
  if (opts.keys) args.push("--curve-keys", opts.keys);
  if (opts.device) args.push("--device", opts.device);
  const child = spawn(backendPython(), args, {
    stdio: ["pipe", "inherit", "inherit"],
    env: backendEnv(),
  });
  return new Promise((resolve) => {
    child.on("exit", (code) => resolve(code ?? 1));
    child.on("error", (err) => {
      console.error(`bridge serve: ${err.message}`);
      resolve(1);
    });
  });
}
