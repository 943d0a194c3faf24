/**
 * An import folder (`bridge import`, or fastai's converted models in the model cache): a checkpoint and import.json,
 * which says where the weights came from and holds their vocabulary.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { JsonObject } from "../backend/protocol.js";

export const IMPORT_FILE = "import.json";
export const IMPORT_CHECKPOINT = "model.pt";

/** What `bridge import` writes beside the converted checkpoint: where it came from and its vocabulary. */
export interface ImportManifest {
  format: "bridge-import";
  version: 1;
  source: "fastai";
  weights: string;
  vocab: string;
  direction: "forward" | "backward";
  checkpoint: string;
  /** vocab_sz, emb_sz, n_hid, n_layers, tie_weights, out_bias, backwards. */
  config: JsonObject;
  /** The source's tokens by id, as given (they need not form a bridge vocabulary). */
  itos: string[];
}

/** The import.json of `dir`; else an error naming the file and what is wrong with it. */
export function readImport(dir: string): ImportManifest {
  const path = join(dir, IMPORT_FILE);
  let m: Partial<ImportManifest> | null;
  try {
    m = JSON.parse(readFileSync(path, "utf8")) as Partial<ImportManifest> | null;
  } catch (e) {
    throw new Error(`${path}: unreadable (${(e as Error).message})`);
  }
  if (m === null || typeof m !== "object" || m.format !== "bridge-import" || m.version !== 1 || !Array.isArray(m.itos) || typeof m.checkpoint !== "string") {
    throw new Error(`${path}: not a bridge import manifest (format "bridge-import", version 1, itos, checkpoint)`);
  }
  if (!existsSync(join(dir, m.checkpoint))) throw new Error(`${path}: its checkpoint ${join(dir, m.checkpoint)} is missing`);
  return m as ImportManifest;
}

/** Why an import folder cannot be used, or null when it can. */
export function importProblem(dir: string): string | null {
  try {
    readImport(dir);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
