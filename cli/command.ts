/** The shape every CLI command shares, and the small helpers they print with. */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { OstkError } from "../kernel/errors.ts";

/** What a command receives after global flags are handled. */
export interface CommandContext {
  /** Arguments after the command name (and sub-command, for groups). */
  argv: string[];
  /** The directory the command acts in (after OSTK_CWD and every -C). */
  cwd: string;
}

/** One command: its help text and how to run it. Returns the process exit code. */
export interface Command {
  name: string;
  summary: string;
  /** Usage lines after `ostk`, e.g. `init [dir] [--json]`. */
  usage: string;
  /** Longer help: flags and what the command prints. */
  help: string;
  run(ctx: CommandContext): Promise<number>;
}

/** Exit codes: 0 done, 1 refused or failed (integrity, policy, conflict), 2 usage error. */
export const EXIT = { ok: 0, refused: 1, usage: 2 } as const;

/**
 * Parse a command's flags strictly; an unknown flag becomes a usage error naming the command.
 * `--help` is always accepted and reported as `help: true`.
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals,
      strict: true,
    });
  } catch (err) {
    const message = (err as Error).message.split("\n")[0].replace(/\. To specify.*$/, "");
    throw new OstkError("usage", message, {}, `see 'ostk ${command} --help'`);
  }
}

const encoder = new TextEncoder();

/** Print a line to stdout. */
export function out(line = ""): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

/** Print a line to stderr. */
export function err(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/** Print a value as one line of JSON (Maps become objects). */
export function outJson(value: unknown): void {
  out(JSON.stringify(value, (_k, v) => v instanceof Map ? Object.fromEntries(v) : v));
}

/** Render a help page: usage, summary, details. */
export function helpText(command: Command): string {
  return `usage: ostk ${command.usage}\n\n${command.summary}\n${
    command.help ? `\n${command.help.trimEnd()}\n` : ""
  }`;
}
