/** `npx bridge models [--json]`: the pretrained-model cache (ts/run/modelCache.ts): each entry, its size, vocabulary, perplexity and when it was built. */
import { listCache, modelCacheDir, PRETRAINED, PRETRAINED_PREFIX } from "../run/modelCache.js";
import { formatTable } from "../ui/table.js";

export function modelsCommand(opts: { json?: boolean; print?: (line: string) => void }): number {
  const print = opts.print ?? ((line: string) => console.log(line));
  const entries = listCache();
  if (opts.json) {
    print(JSON.stringify({ dir: modelCacheDir(), entries }, null, 2));
    return 0;
  }
  print(`pretrained-model cache: ${modelCacheDir()}`);
  if (entries.length === 0) print("(empty)");
  else {
    print(
      formatTable(
        ["entry", "name", "size MB", "vocab", "val ppl", "built", "state"],
        entries.map((e) => [e.entry, e.name, e.sizeMb.toFixed(1), e.vocab, e.perplexity, e.built?.slice(0, 16).replace("T", " ") ?? null, e.problem ?? "ok"]),
      ),
    );
  }
  print(
    `\nBuilt on first use by a recipe's init: { from: ${PRETRAINED_PREFIX}NAME }, NAME one of: ${Object.entries(PRETRAINED)
      .map(([n, p]) => `${n} (${p.about}; ${p.config})`)
      .join(", ")}`,
  );
  return 0;
}
