/**
 * The lexical baseline: cosine of TF-IDF bags of words, no model at all. Each sentence is a
 * document; IDF comes from the sentences being scored (smoothed, as scikit-learn's default:
 * ln((1 + n) / (1 + df)) + 1), so a model's numbers can be read against "just word overlap".
 */

export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Cosine of the TF-IDF vectors of each pair (s1[i], s2[i]). */
export function tfidfCosines(s1: readonly string[], s2: readonly string[]): Float64Array {
  if (s1.length !== s2.length) throw new RangeError("tfidfCosines: the two sides differ in length");
  const docs = [...s1, ...s2].map(words);
  const df = new Map<string, number>();
  for (const d of docs) for (const w of new Set(d)) df.set(w, (df.get(w) ?? 0) + 1);
  const n = docs.length;
  const idf = (w: string) => Math.log((1 + n) / (1 + (df.get(w) ?? 0))) + 1;
  const vector = (d: string[]) => {
    const v = new Map<string, number>();
    for (const w of d) v.set(w, (v.get(w) ?? 0) + 1);
    for (const [w, tf] of v) v.set(w, tf * idf(w));
    return v;
  };
  const out = new Float64Array(s1.length);
  for (let i = 0; i < s1.length; i++) {
    const a = vector(docs[i]);
    const b = vector(docs[s1.length + i]);
    let dot = 0;
    for (const [w, x] of a) dot += x * (b.get(w) ?? 0);
    const norm = (v: Map<string, number>) => Math.sqrt([...v.values()].reduce((s, x) => s + x * x, 0));
    const na = norm(a);
    const nb = norm(b);
    out[i] = na === 0 || nb === 0 ? 0 : dot / (na * nb);
  }
  return out;
}
