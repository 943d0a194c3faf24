/**
 * Seeded randomness for data order. Every epoch's order is a pure function of (seed, epoch), so a
 * run resumed mid-epoch replays the same batches without replaying the epochs before it.
 */

export type Rng = () => number;

/** mulberry32: small, fast, good enough for shuffling; returns floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes 32-bit words into one (splitmix-style finaliser), so nearby seeds give unrelated streams. */
export function mixSeed(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** The generator for one purpose (`stream`) in one epoch. */
export function epochRng(seed: number, epoch: number, stream = 0): Rng {
  return mulberry32(mixSeed(seed, epoch, stream));
}

/** Fisher-Yates, in place. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(a: T, rng: Rng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** A normal deviate (Box-Muller). */
export function normal(rng: Rng, mean: number, sd: number): number {
  const u = 1 - rng();
  const v = rng();
  return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
