/**
 * CURVE keys for tcp:// backends (a remote GPU host). `npx bridge keys --dir DIR` writes
 * DIR/server.json (the backend's key pair and the client keys it admits; copy it to the GPU
 * host) and DIR/client.json (this side's key pair and the server's public key). Both are
 * written with mode 0600 in a 0700 directory; secrets never leave these files.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { curveKeyPair } from "zeromq";
import { writeFileAtomicSync } from "../core/atomic.js";

export interface CurveClientKeys {
  /** The server's public key (Z85). */
  serverPublic: string;
  public: string;
  secret: string;
}

export interface CurveServerFile {
  server: { public: string; secret: string };
  allowed_clients: string[];
}

export interface CurveClientFile {
  server_public: string;
  public: string;
  secret: string;
}

function writePrivate(path: string, value: unknown): void {
  writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
}

export interface GeneratedKeys {
  serverFile: string;
  clientFile: string;
}

export interface GenerateKeysOptions {
  /** Replace server.json / client.json if they exist (the old keys stop working). */
  force?: boolean;
}

/**
 * A fresh server key pair and one client key pair, written under `dir`. Refuses to replace
 * existing key files unless `force`: new keys lock out every host that holds the old ones.
 */
export function generateKeys(dir: string, opts: GenerateKeysOptions = {}): GeneratedKeys {
  if (dir === "") throw new Error("--dir: give a folder for server.json and client.json");
  const serverFile = join(dir, "server.json");
  const clientFile = join(dir, "client.json");
  const existing = [serverFile, clientFile].filter((f) => existsSync(f));
  if (existing.length > 0 && !opts.force) {
    throw new Error(
      `${existing.join(" and ")} already exist${existing.length === 1 ? "s" : ""}; new keys would lock out every host that uses the old ones. Pass --force to replace them`,
    );
  }
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`--dir ${dir}: a file, not a folder`);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // mkdir's mode is masked by the umask
  } // a folder that exists keeps its mode (it may be shared, /tmp say): the key files themselves are 0600
  const server = curveKeyPair();
  const client = curveKeyPair();
  writePrivate(serverFile, { server: { public: server.publicKey, secret: server.secretKey }, allowed_clients: [client.publicKey] } satisfies CurveServerFile);
  writePrivate(clientFile, { server_public: server.publicKey, public: client.publicKey, secret: client.secretKey } satisfies CurveClientFile);
  return { serverFile, clientFile };
}

const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

/** The first of `fields` of `value` that is not a 40-character Z85 key (undefined: all are); client.json and the
 * library's keys object name the same three keys differently. */
function badKeyField<F extends string>(value: unknown, fields: readonly F[]): F | undefined {
  const record = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  return fields.find((f) => {
    const v = record[f];
    return typeof v !== "string" || !Z85_KEY.test(v);
  });
}

/** Refuses a key file (client.json or server.json) that is missing, or that anyone but its owner can read or write. */
export function assertPrivateKeyFile(path: string, flag = "key file"): void {
  if (!existsSync(path)) throw new Error(`${flag} ${path}: no such file (\`npx bridge keys\` writes server.json and client.json)`);
  const st = statSync(path);
  if (!st.isFile()) throw new Error(`${flag} ${path}: not a file`);
  if ((st.mode & 0o077) !== 0) throw new Error(`${path}: holds a secret key but is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
}

/** Refuses client keys given as an object (the library's `keys`) whose fields are not Z85 keys, before a socket sees them. */
export function assertClientKeys(keys: unknown, where: string): asserts keys is CurveClientKeys {
  const field = badKeyField(keys, ["serverPublic", "public", "secret"]);
  if (field !== undefined) throw new TypeError(`${where}: ${field} must be a 40-character Z85 key (client.json's path, or { serverPublic, public, secret })`);
}

/** Reads client.json, refusing files that others can read and keys that are not Z85. */
export function loadClientKeys(path: string, flag = "key file"): CurveClientKeys {
  assertPrivateKeyFile(path, flag);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: not JSON (${(err as Error).message})`);
  }
  const field = badKeyField(raw, ["server_public", "public", "secret"]);
  if (field !== undefined) throw new Error(`${path}: ${field} must be a 40-character Z85 key`);
  const f = raw as CurveClientFile;
  return { serverPublic: f.server_public, public: f.public, secret: f.secret };
}
