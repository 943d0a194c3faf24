/**
 * `npx bridge import fastai --weights FILE.pth --vocab FILE.pkl --out DIR [--backwards]`: converts a fastai
 * AWD-LSTM language model (e.g. `bridge data fetch wt103-fwd`'s lstm_fwd.pth + itos_wt103.pkl) into DIR:
 * model.pt (a bridge checkpoint) and import.json (its source, sizes and vocabulary). A recipe then starts
 * from it with `init: { from: DIR }` (or `--init DIR`). The weights load as weights only and the vocabulary
 * with an unpickler that admits lists of strings only (py/bridge_backend/fastai_import.py).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { startBackend } from "../backend/client.js";
import { IMPORT_FILE, type ImportManifest } from "../run/importManifest.js";
import { importFastai } from "../train/init.js";

export const IMPORT_FORMATS = ["fastai"] as const;

export interface ImportOptions {
  format: (typeof IMPORT_FORMATS)[number];
  weights: string;
  vocab: string;
  out: string;
  /** The model reads right to left (fastai's wt103-bwd). */
  backwards?: boolean;
  print?: (line: string) => void;
}

export async function importCommand(opts: ImportOptions): Promise<ImportManifest> {
  const print = opts.print ?? ((line: string) => console.log(line));
  // an earlier import is replaced; a folder of anything else is not written into
  if (existsSync(opts.out) && !existsSync(join(opts.out, IMPORT_FILE))) {
    if (!statSync(opts.out).isDirectory()) throw new Error(`--out ${opts.out}: a file; give a folder for model.pt and ${IMPORT_FILE}`);
    const others = readdirSync(opts.out);
    if (others.length > 0)
      throw new Error(
        `--out ${opts.out}: holds files that are not an import (${others.slice(0, 3).join(", ")}${others.length > 3 ? ", ..." : ""}); give a new or empty folder`,
      );
  }
  const backend = await startBackend({ device: "cpu" });
  try {
    const m = await importFastai(backend, { weights: opts.weights, vocab: opts.vocab, out: opts.out, backwards: opts.backwards ?? false });
    const c = m.config;
    print(
      `imported ${m.direction} fastai LM: ${m.itos.length} words, emb_sz ${c.emb_sz}, n_hid ${c.n_hid}, ${c.n_layers} layers` +
        `${c.tie_weights ? ", tied decoder" : ""} -> ${opts.out} (use it with init: { from: ${opts.out} })`,
    );
    return m;
  } finally {
    await backend.close();
  }
}
