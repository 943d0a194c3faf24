/** `npx bridge embed`: one vector per input line (or JSONL field), in input order, into an Arrow file (through the API's Encoder). */
import type { EmbedFileOptions } from "../api/embedFile.js";

/** The options a user gives on the command line (the rest of EmbedFileOptions is for library use); no run: the latest. */
export type EmbedCommandOptions = Pick<
  EmbedFileOptions,
  "input" | "output" | "field" | "batchSize" | "maxLen" | "checkpoint" | "device" | "force" | "backend" | "keys"
> & {
  run?: string;
};

export async function embedCommand(opts: EmbedCommandOptions): Promise<number> {
  const { embedFile } = await import("../api/embedFile.js");
  const r = await embedFile({ ...opts, run: opts.run ?? "latest" });
  const cut =
    r.truncated > 0
      ? `; ${r.truncated} texts cut at ${r.maxLen} tokens (${opts.maxLen !== undefined ? "--max-len" : "the run's tokenizer.maxLen"}; ${r.truncatedTokens} tokens dropped)`
      : "";
  if (r.unfinished !== null) console.error(`note: ${r.unfinished}`);
  const blank = r.blank > 0 ? `; ${r.blank} of the texts ${r.blank === 1 ? "is" : "are"} empty (a row each, the empty sentence's vector)` : "";
  console.error(`wrote ${r.rows} vectors of ${r.dim} floats to ${r.output} in ${r.seconds.toFixed(1)} s${cut}${blank}`);
  return 0;
}
