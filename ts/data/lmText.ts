/**
 * Extra language-model text (data.lmText: Wikipedia, WikiText, Brown, ...) read as a stream: one pass
 * tokenizes each text once, sends it to training or validation by a seeded hash of the whole text
 * (an article is held out whole), counts the training tokens for the vocabulary and keeps the text
 * only as provisional token ids. Once the vocabulary exists, finish() maps those ids to it. So the
 * texts are never held as strings: memory is the corpus's ids (4 bytes a token, which training needs
 * anyway) plus one entry per distinct token and a digest per text for removing repeats.
 */
import { createHash } from "node:crypto";
import { IntBuffer, type Ragged } from "./numericalised.js";
import type { Tokenizer } from "./tokenize.js";
import type { TokenCounter, Vocab } from "./vocab.js";

/** What one corpus contributed. */
export interface LmCorpusCounts {
  train: number;
  valid: number;
  /** Repeated texts, kept once. */
  duplicates: number;
  /** Training texts that are validation sentences of the run (never trained on). */
  dropped: number;
  /** Training tokens (xxbos included). */
  trainTokens: number;
}

/** Rows of provisional ids: ids index `LmTextCollector`'s token list until finish() maps them. */
class ProvisionalRows {
  readonly offsets = new IntBuffer();
  readonly ids = new IntBuffer();
  constructor() {
    this.offsets.push(0);
  }
  toRagged(map: Int32Array): Ragged {
    const ids = this.ids.data.slice(0, this.ids.length);
    for (let i = 0; i < ids.length; i++) ids[i] = map[ids[i]];
    return { offsets: this.offsets.data.slice(0, this.offsets.length), ids };
  }
}

export class LmTextCollector {
  private readonly tokenIds = new Map<string, number>();
  private readonly tokens: string[] = [];
  private readonly rows = { train: new ProvisionalRows(), valid: new ProvisionalRows() };

  /**
   * @param tokenizer LM text is a stream cut into bptt windows: pass an uncapped tokenizer.
   * @param counter the vocabulary's counts: training texts add to them.
   */
  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly counter: TokenCounter,
  ) {}

  /**
   * Reads one corpus. Each distinct non-blank text goes to validation when `heldOut(text)`, else to
   * training unless `exclude(text)` (the run's validation sentences, evaluation sentences never train).
   */
  async addCorpus(texts: AsyncIterable<string>, heldOut: (text: string) => boolean, exclude: (text: string) => boolean): Promise<LmCorpusCounts> {
    const c: LmCorpusCounts = { train: 0, valid: 0, duplicates: 0, dropped: 0, trainTokens: 0 };
    const seen = new Set<string>(); // digests, not texts
    for await (const text of texts) {
      if (text.trim() === "") continue;
      const key = createHash("sha1").update(text).digest("base64");
      if (seen.has(key)) {
        c.duplicates++;
        continue;
      }
      seen.add(key);
      if (heldOut(text)) {
        this.add(this.tokenizer.tokenize(text), this.rows.valid);
        c.valid++;
      } else if (exclude(text)) {
        c.dropped++;
      } else {
        const tokens = this.tokenizer.tokenize(text);
        this.counter.add(tokens);
        this.add(tokens, this.rows.train);
        c.train++;
        c.trainTokens += tokens.length;
      }
    }
    return c;
  }

  /** The training and validation rows in `vocab`'s ids, in reading order. */
  finish(vocab: Vocab): { train: Ragged; valid: Ragged } {
    const map = Int32Array.from(this.tokens, (t) => vocab.id(t));
    return { train: this.rows.train.toRagged(map), valid: this.rows.valid.toRagged(map) };
  }

  private add(tokens: readonly string[], rows: ProvisionalRows): void {
    for (const t of tokens) {
      let id = this.tokenIds.get(t);
      if (id === undefined) {
        id = this.tokens.length;
        this.tokenIds.set(t, id);
        this.tokens.push(t);
      }
      rows.ids.push(id);
    }
    rows.offsets.push(rows.ids.length);
  }
}

/** Rows of `a` then rows of `b`, as one Ragged. */
export function concatRagged(a: Ragged, b: Ragged): Ragged {
  const na = a.offsets.length - 1;
  const nb = b.offsets.length - 1;
  const la = a.offsets[na];
  const offsets = new Int32Array(na + nb + 1);
  offsets.set(a.offsets.subarray(0, na + 1));
  for (let i = 1; i <= nb; i++) offsets[na + i] = la + b.offsets[i] - b.offsets[0];
  const ids = new Int32Array(la + b.offsets[nb] - b.offsets[0]);
  ids.set(a.ids.subarray(0, la));
  ids.set(b.ids.subarray(b.offsets[0], b.offsets[nb]), la);
  return { offsets, ids };
}
