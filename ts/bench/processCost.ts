/**
 * What a benchmark pass cost each process: CPU time and minor page faults (first touches of fresh memory, which a
 * process boundary multiplies: each side allocates the buffers the other's data lands in). Read for this process
 * from Node, for another one from /proc (Linux only; null elsewhere).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface ProcessCost {
  cpuMs: number;
  minorFaults: number;
}

export function ownCost(): ProcessCost {
  const cpu = process.cpuUsage();
  return { cpuMs: (cpu.user + cpu.system) / 1000, minorFaults: process.resourceUsage().minorPageFault };
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // Linux's USER_HZ everywhere in practice
    }
  }
  return ticksPerSecond;
}

/** Process `pid`'s cost so far, from /proc/PID/stat (fields after the command: minflt 10th, utime 14th, stime 15th). */
export function pidCost(pid: number | null | undefined): ProcessCost | null {
  if (pid === null || pid === undefined || pid <= 0) return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // the command may hold spaces and parentheses
  const [minflt, utime, stime] = [fields[7], fields[11], fields[12]].map(Number);
  if (![minflt, utime, stime].every(Number.isFinite)) return null;
  return { cpuMs: ((utime + stime) * 1000) / clockTicks(), minorFaults: minflt };
}

/** b - a; null where either is. */
export function costSince(a: ProcessCost | null, b: ProcessCost | null): ProcessCost | null {
  return a && b ? { cpuMs: b.cpuMs - a.cpuMs, minorFaults: b.minorFaults - a.minorFaults } : null;
}

/** Costs summed over a bench's passes; unknown (null) once any pass's is (a peer off Linux). */
export class CostTally {
  private sum: ProcessCost | null = { cpuMs: 0, minorFaults: 0 };

  add(c: ProcessCost | null): void {
    this.sum = this.sum && c ? { cpuMs: this.sum.cpuMs + c.cpuMs, minorFaults: this.sum.minorFaults + c.minorFaults } : null;
  }

  /** The sum divided by n (a mean per pass, step or round trip); null when unknown. */
  per(n: number): ProcessCost | null {
    return this.sum && { cpuMs: this.sum.cpuMs / n, minorFaults: this.sum.minorFaults / n };
  }
}
