/**
 * Which sentence pairs a run trained on, by content: so that an evaluation on a set that shares pairs with a
 * training split (STS-B was assembled from STS 2012-2017: a third to a half of STS12-14's pairs are in STS-B
 * train) is marked as partly supervised, with the figure on the pairs the run never saw beside the pooled one.
 *
 * The pairs are those of the run's sentence-stage splits (run.json's data plan) less the rows held out to
 * validate, recomputed as training made them (ts/data/holdout.ts). A data.maxTrainPairs subsample counts whole:
 * the set can only over-count what the run saw, never miss a pair it trained on.
 */

import { parseSplitRef, splitExists } from "../data/datasets.js";
import { emptyReadStats } from "../data/errors.js";
import { HOLDOUT_SEED, type HoldoutBy, pairHoldout } from "../data/holdout.js";
import type { RunManifest } from "../run/manifest.js";

/** A pair as a key: case and spacing folded, the two sentences in either order. */
export function pairKey(s1: string, s2: string): string {
  const norm = (s: string) => s.toLowerCase().replace(/\s+/g, " ").trim();
  const [a, b] = [norm(s1), norm(s2)].sort();
  return `${a}\t${b}`;
}

export interface TrainedPairs {
  keys: ReadonlySet<string>;
  /** Training splits whose pairs could not be read (not in the data dir): overlap with them is not counted. */
  unread: string[];
}

/**
 * The keys of every pair the run's sentence stages trained on. `holdout` is config.json's data.holdout (the share
 * each task split holds out); the main split's held-out rows come from run.json itself.
 */
export async function trainedPairs(manifest: RunManifest, holdout: number, dataDir: string | undefined): Promise<TrainedPairs> {
  const keys = new Set<string>();
  const unread: string[] = [];
  if (manifest.data === undefined || !manifest.stages.some((s) => s.objective !== "lm")) return { keys, unread };
  const main = manifest.data.train.split;
  const splits: { split: string; heldOut: (rows: { s1: string; s2: string }[], by: HoldoutBy) => ReadonlySet<number> }[] = [
    {
      split: main,
      heldOut: () => new Set(manifest.data!.holdout && manifest.data!.holdout.split === main ? manifest.data!.holdout.validRows : []),
    },
    // groups train no labelled pairs: nothing of theirs can be a "seen" evaluation pair
    ...(manifest.data.tasks ?? [])
      .filter((t) => t.unit !== "groups")
      .map((t) => ({
        split: t.split,
        heldOut: (rows: { s1: string; s2: string }[], by: HoldoutBy) => new Set(t.heldOut > 0 ? pairHoldout(rows, by, holdout, HOLDOUT_SEED).validRows : []),
      })),
  ];
  for (const { split, heldOut } of splits) {
    let ref: ReturnType<typeof parseSplitRef>;
    try {
      ref = parseSplitRef(split, dataDir);
    } catch {
      unread.push(split);
      continue;
    }
    if (ref.dataset.kind !== "pairs" || !splitExists(ref)) {
      unread.push(split);
      continue;
    }
    const rows: { s1: string; s2: string }[] = [];
    for await (const r of ref.dataset.read(ref.path!, { onBadRow: "skip", stats: emptyReadStats() })) rows.push(r);
    const held = heldOut(rows, ref.dataset.holdoutBy ?? "premise");
    rows.forEach((r, i) => {
      if (!held.has(i)) keys.add(pairKey(r.s1, r.s2));
    });
  }
  return { keys, unread };
}
