/**
 * The command line: registers the commands of cli/ (one module per command, owning its options and a handler
 * that lazily imports its commands/ module, so `bridge doctor` does not load the training code), and runs them.
 */
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { installSignalHandlers } from "./backend/process.js";
import { ablateCommand } from "./cli/ablate.js";
import { benchCommand } from "./cli/bench.js";
import { callCommand } from "./cli/call.js";
import type { BridgeCommand } from "./cli/command.js";
import { dataCommand } from "./cli/data.js";
import { doctorCommand } from "./cli/doctor.js";
import { embedCommand } from "./cli/embed.js";
import { evalCommand } from "./cli/eval.js";
import { importCommand } from "./cli/import.js";
import { keysCommand } from "./cli/keys.js";
import { modelsCommand } from "./cli/models.js";
import { searchCommand } from "./cli/search.js";
import { serveCommand } from "./cli/serve.js";
import { trainCommand } from "./cli/train.js";

/** Every command, in the order `bridge --help` lists them. */
const COMMANDS: readonly BridgeCommand[] = [
  doctorCommand,
  trainCommand,
  evalCommand,
  ablateCommand,
  embedCommand,
  searchCommand,
  benchCommand,
  dataCommand,
  importCommand,
  keysCommand,
  modelsCommand,
  serveCommand,
  callCommand,
];

/** Runs a command's function; its number is the exit status; errors print without a stack. */
// biome-ignore lint/suspicious/noConfusingVoidType: a command that returns nothing (an async function without return) exits 0
async function run(fn: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await fn()) ?? 0;
  } catch (err) {
    const e = err as Error;
    console.error(process.env.BRIDGE_DEBUG ? e.stack : errorLine(e));
    process.exitCode = 1;
  }
}

/** What the CLI prints for a failed command: one "bridge: " prefix, whether or not the message already has one. */
export function errorLine(e: Error): string {
  return `bridge: ${e.message.replace(/^(bridge: )+/, "")}`;
}

/** Adds a command (and its subcommands, inside its builder) to y; its handler runs under run(). */
function register(y: Argv, c: BridgeCommand): Argv {
  const { builder, handler, subcommands = [] } = c;
  return y.command<object>({
    command: c.command,
    describe: c.describe,
    builder: subcommands.length === 0 ? builder : async (y: Argv) => subcommands.reduce(register, await builder(y)),
    handler: handler === undefined ? () => {} : (a) => run(() => handler(a)),
  });
}

/** An option that takes one value, given twice, would reach a command as a list: refused here, naming it. */
function refuseRepeats(argv: Record<string, unknown>, options: unknown): true | string {
  const lists = new Set((options as { array?: string[] }).array ?? []);
  const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  for (const [key, value] of Object.entries(argv)) {
    // each option as typed (data-dir), not again as its camel-case alias (dataDir)
    if (key === "_" || key === "$0" || /[A-Z]/.test(key) || !Array.isArray(value)) continue;
    if (lists.has(key) || lists.has(camel(key))) continue;
    return `--${key} was given ${value.length} times; it takes one value`;
  }
  return true;
}

/** A number option given something that is not one reaches yargs as NaN, and one given nothing (`--steps=`, an unset
 * shell variable) as 0: both refused here, naming the option, so that no command reports "NaN" or runs with 0. */
function refuseNotNumbers(raw: readonly string[]) {
  return (argv: Record<string, unknown>, options: unknown): true | string => {
    for (const [key, value] of Object.entries(argv)) {
      if (/[A-Z]/.test(key) || typeof value !== "number" || !Number.isNaN(value)) continue;
      return `--${key} takes a number`;
    }
    for (const key of (options as { number?: string[] }).number ?? []) {
      const empty = raw.findIndex((a, i) => a === `--${key}=` || (a === `--${key}` && raw[i + 1] === ""));
      if (empty >= 0) return `--${key} takes a number; it was given none`;
    }
    return true;
  };
}

/** A text option given nothing (`--data-dir ""`, `--config` last, an unset shell variable) reaches yargs as "": refused
 * here, naming the option, rather than taken as "not given" (the default data folder, say) or as a path "". */
function refuseEmptyStrings(argv: Record<string, unknown>, options: unknown): true | string {
  const strings = new Set((options as { string?: string[] }).string ?? []);
  for (const [key, value] of Object.entries(argv)) {
    if (/[A-Z]/.test(key) || !strings.has(key)) continue;
    if (value === "" || (Array.isArray(value) && value.includes(""))) return `--${key} takes a value; it was given none (an unset shell variable?)`;
  }
  return true;
}

export function buildCli(argv: string[]): Argv {
  return COMMANDS.reduce(register, yargs(argv).scriptName("bridge").usage("$0 <command> [options]"))
    .check(refuseRepeats, true)
    .check(refuseNotNumbers(argv), true)
    .check(refuseEmptyStrings, true)
    .demandCommand(1, "name a command (see --help)")
    .strict()
    .help()
    .version(false);
}

installSignalHandlers();
await buildCli(hideBin(process.argv)).parseAsync();
