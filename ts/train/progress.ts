/**
 * What a run shows while it trains: on a terminal one status line redrawn in place (stage, epoch,
 * step, loss, accuracy, throughput, ETA); otherwise plain lines every few seconds; nothing with
 * --quiet. Notes (data choices, evaluations, checkpoints) always get a line of their own.
 */
import { appendFileSync } from "node:fs";

export interface ProgressState {
  stage: string;
  stageIndex: number;
  stages: number;
  epoch: number;
  step: number;
  total: number;
  loss: number | null;
  accuracy: number | null;
  /** Items per second and their unit ("pairs", "tokens"). */
  rate: number;
  unit: string;
  etaSec: number | null;
}

export class Progress {
  private lastPlain = 0;
  private lastDraw = 0;
  private drawn = false;
  private readonly tty: boolean;

  constructor(
    private readonly quiet: boolean,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 10_000,
  ) {
    this.tty = Boolean(out.isTTY) && !quiet;
  }

  update(p: ProgressState, force = false): void {
    if (this.quiet) return;
    const line =
      `[${p.stageIndex + 1}/${p.stages} ${p.stage}] epoch ${p.epoch + 1} step ${p.step}/${p.total}` +
      (p.loss === null ? "" : ` loss ${p.loss.toFixed(4)}`) +
      (p.accuracy === null ? "" : ` acc ${p.accuracy.toFixed(3)}`) +
      ` ${Math.round(p.rate)} ${p.unit}/s` +
      (p.etaSec === null ? "" : ` ETA ${formatDuration(p.etaSec)}`);
    const now = Date.now();
    if (this.tty) {
      if (!force && now - this.lastDraw < 100) return; // a redraw per 100 ms is plenty
      this.lastDraw = now;
      const width = this.width();
      this.out.write(`${`\r${bar(p.step / Math.max(1, p.total))} ${line}`.slice(0, width).padEnd(width)}\r`);
      this.drawn = true;
      return;
    }
    if (force || now - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = now;
      this.out.write(`${line}\n`);
    }
  }

  /** A line of its own (clears the status line first). */
  note(message: string): void {
    if (this.quiet) return;
    this.clear();
    this.out.write(`${message}\n`);
  }

  /** Usable columns (a terminal may report 0 columns: assume 120). */
  private width(): number {
    return Math.max(40, this.out.columns || 120) - 1;
  }

  clear(): void {
    if (this.drawn) {
      this.out.write(`\r${" ".repeat(this.width())}\r`);
      this.drawn = false;
    }
  }
}

function bar(frac: number, width = 20): string {
  const n = Math.max(0, Math.min(width, Math.round(frac * width)));
  return `[${"#".repeat(n)}${".".repeat(width - n)}]`;
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return "?";
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** log.jsonl: one JSON object a line, appended synchronously so a crash loses nothing written before it. */
export class RunLog {
  constructor(readonly path: string) {}
  write(entry: Record<string, unknown>): void {
    appendFileSync(this.path, `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  }
}
