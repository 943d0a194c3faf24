/** `npx bridge keys --dir DIR`: CURVE keys for a tcp:// backend (see backend/keys.ts). */
import { generateKeys } from "../backend/keys.js";

export interface KeysOptions {
  dir: string;
  /** Replace existing key files. */
  force?: boolean;
  print?: (line: string) => void;
}

export async function keys(opts: KeysOptions): Promise<number> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const { serverFile, clientFile } = generateKeys(opts.dir, { force: opts.force });
  print(`wrote ${serverFile} (mode 0600): copy it to the GPU host and run \`npx bridge serve --endpoint tcp://0.0.0.0:5555 --keys ${serverFile}\``);
  print(`wrote ${clientFile} (mode 0600): this side's key; pass it as --keys with --backend tcp://HOST:5555`);
  return 0;
}
