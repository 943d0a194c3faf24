/** What a command module of cli/ exports: the shape of yargs' CommandModule (command, describe, builder, handler). */
import type { ArgumentsCamelCase, Argv } from "yargs";

/** A command as its module writes it: U, its parsed options, is inferred from the builder. */
export interface TypedCommand<U> {
  /** The yargs command string, positionals included ("ablate <grid>"). */
  command: string;
  describe: string;
  /** Declares the command's options; async where a registry must be imported for the help text, so that
   * it loads only when this command is the one given. */
  builder: ((y: Argv) => Argv<U>) | ((y: Argv) => Promise<Argv<U>>);
  /** Lazily imports the command's commands/ module and runs it; cli.ts's run() makes the returned number
   * the exit status (none: 0). Absent for a command that only groups subcommands. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing (an async function without return) exits 0
  handler?: (args: ArgumentsCamelCase<U>) => Promise<number | void>;
  subcommands?: readonly BridgeCommand[];
}

/** A command with its option types erased, so that commands of different options share one list. */
export type BridgeCommand = TypedCommand<object>;

/** Types a command's handler arguments from its builder, then erases them for the list: sound, as yargs
 * hands the handler exactly what this command's builder declared. */
export function defineCommand<U>(command: TypedCommand<U>): BridgeCommand {
  return command as unknown as BridgeCommand;
}
