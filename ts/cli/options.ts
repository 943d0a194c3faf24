/**
 * Options several commands share, each declared once (name, type, default, help text): a command spreads
 * them into its `.options({...})` where they belong in its help.
 */
import type { Options } from "yargs";
import type { BadRowPolicy } from "../data/errors.js";

/** Every command that reads or writes datasets resolves the folder alike (data/datasets.ts resolveDataDir). */
export const dataDirOption = {
  "data-dir": { type: "string", describe: "folder in the official layouts (default: $BRIDGE_DATA_DIR, else ~/.cache/bridge/data)" },
} as const satisfies Record<string, Options>;

export const onBadRowOption = {
  "on-bad-row": {
    choices: ["error", "skip"] as const satisfies readonly BadRowPolicy[],
    default: "error" as const,
    describe: "a malformed dataset row: stop with an error naming it, or skip and count it",
  },
} as const satisfies Record<string, Options>;

export const deviceOption = {
  device: { type: "string", describe: "torch device (default: cuda if available, else cpu)" },
} as const satisfies Record<string, Options>;

export const jsonOption = {
  json: { type: "boolean", default: false, describe: "print one JSON object" },
} as const satisfies Record<string, Options>;

/** A client's backend elsewhere (`bridge serve`); serve's own --keys is the server's key file. */
export const remoteBackendOptions = {
  backend: { type: "string", describe: "use a running backend (`bridge serve`): tcp://HOST:PORT (needs --keys)" },
  keys: { type: "string", describe: "client.json from `bridge keys`, for --backend tcp://" },
} as const satisfies Record<string, Options>;

/** --run: each command says which run it means (a new run's name, or an existing one to read). */
export function runOption(describe: string): { run: { type: "string"; describe: string } } {
  return { run: { type: "string", describe } };
}
