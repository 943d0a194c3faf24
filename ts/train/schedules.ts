/**
 * Learning-rate and momentum schedules: pure functions of (step, total steps), computed here and
 * sent to the backend with every step, so a resumed run gets exactly the rates it would have had.
 *
 * - one_cycle (Smith 2018, fastai's fit_one_cycle): cosine from max/divFactor up to max over
 *   pctStart of the steps, then cosine down to max/(divFactor*finalDiv); momentum the other way.
 * - slanted_triangular (Howard & Ruder 2018, eq. 3): linear up over cutFrac, linear down, lowest max/ratio.
 * - cosine: linear warm-up over pctStart, then cosine down to max/finalDiv.
 * - constant: max throughout.
 */
import type { LrConfig } from "../config/schema.js";

export interface StepHparams {
  lr: number;
  /** Momentum (Adam's beta1) when the schedule cycles it, else undefined. */
  mom?: number;
}

const cosAnneal = (start: number, end: number, pct: number) => end + ((start - end) / 2) * (1 + Math.cos(Math.PI * pct));

export function scheduleAt(c: LrConfig, step: number, total: number): StepHparams {
  const p = total <= 1 ? 0 : Math.min(1, Math.max(0, step / (total - 1)));
  const [hi, lo] = c.moms ?? [NaN, NaN];
  const withMom = (lr: number, mom: number): StepHparams => (c.moms ? { lr, mom } : { lr });
  switch (c.schedule) {
    case "constant":
      return { lr: c.max };
    case "one_cycle": {
      const start = c.max / c.divFactor;
      const end = start / c.finalDiv;
      if (p < c.pctStart) {
        const q = p / c.pctStart;
        return withMom(cosAnneal(start, c.max, q), cosAnneal(hi, lo, q));
      }
      const q = c.pctStart >= 1 ? 1 : (p - c.pctStart) / (1 - c.pctStart);
      return withMom(cosAnneal(c.max, end, q), cosAnneal(lo, hi, q));
    }
    case "slanted_triangular": {
      const up = p < c.cutFrac;
      const q = up ? p / c.cutFrac : 1 - (p - c.cutFrac) / (1 - c.cutFrac);
      return withMom((c.max * (1 + q * (c.ratio - 1))) / c.ratio, hi - (hi - lo) * q);
    }
    case "cosine": {
      if (p < c.pctStart) return { lr: c.max * ((step + 1) / Math.max(1, Math.ceil(c.pctStart * total))) };
      const q = c.pctStart >= 1 ? 1 : (p - c.pctStart) / (1 - c.pctStart);
      return { lr: cosAnneal(c.max, c.max / c.finalDiv, q) };
    }
  }
}

/** Gradual unfreezing: how many groups (from the top) train at `step`; all when not gradual. */
export function unfrozenGroups(step: number, every: number, nGroups: number, gradual: boolean): number {
  if (!gradual) return nGroups;
  return Math.min(nGroups, 1 + Math.floor(step / every));
}
