/**
 * The counts `npm test` (test/run.js) reads from uvu's and pytest's output. Skipped tests are
 * counted on their own, never as passed: a skipped test proved nothing.
 */

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC
const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** uvu's summary. Its Total holds the tests that ran (skipped ones are not in it); uvu stops counting
 * at a file that crashes, so a failing exit status is at least one failure. */
export function uvuCounts(output: string, status: number): Counts {
  const out = strip(output);
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(out)?.[1] ?? 0);
  const passed = field("Passed");
  return { passed, failed: Math.max(field("Total") - passed, status === 0 ? 0 : 1), skipped: field("Skipped") };
}

/** pytest -q's closing line ("3 failed, 40 passed, 2 skipped, 1 error in 9.1s"). A failing exit
 * status with no failure counted (a collection crash) is one failure. */
export function pytestCounts(output: string, status: number): Counts {
  const summary =
    strip(output)
      .split("\n")
      .filter((l) => /\d+ (passed|failed|errors?|skipped)\b/.test(l))
      .pop() ?? "";
  const count = (word: string) => Number(new RegExp(`(\\d+) ${word}\\b`).exec(summary)?.[1] ?? 0);
  const failed = count("failed") + count("errors?");
  return { passed: count("passed"), failed: failed === 0 && status !== 0 ? 1 : failed, skipped: count("skipped") };
}
