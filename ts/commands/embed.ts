/** `npx bridge embed`: one vector per input line (or JSONL field), in input order, into an Arrow file. */
import type { EmbedOptions } from "../eval/embed.js";

/** The options a user gives on the command line (the rest of EmbedOptions is for library use). */
export type EmbedCommandOptions = Pick<EmbedOptions, "run" | "input" | "output" | "field" | "batchSize" | "maxLen" | "checkpoint" | "device">;

export async function embedCommand(opts: EmbedCommandOptions): Promise<number> {
  const { embedFile } = await import("../eval/embed.js");
  const r = await embedFile(opts);
  const cut = r.truncated > 0 ? `; ${r.truncated} texts cut at --max-len ${opts.maxLen} (${r.truncatedTokens} tokens dropped)` : "";
  console.error(`wrote ${r.rows} vectors of ${r.dim} floats to ${r.output} in ${r.seconds.toFixed(1)} s${cut}`);
  return 0;
}
