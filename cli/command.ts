/** The shape every CLI command shares, and the small helpers they print with. */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { OstkError } from "../kernel/errors.ts";
import { closest } from "../drivers/fcp/mod.ts";

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
  /**
   * The flags `run` passes to `parseFlags`, when the command declares them here, so completions
   * see them without running the command. Commands that do not are completed from the flags
   * their `usage` and `help` document.
   */
  flags?: ParseArgsOptionsConfig;
  run(ctx: CommandContext): Promise<number>;
}

/** Whether users see and type `command` (a leading `_` marks an internal one). */
export function isVisible(command: Command): boolean {
  return !command.name.startsWith("_");
}

/** Exit codes: 0 done, 1 refused or failed (integrity, policy, conflict), 2 usage error. */
export const EXIT = { ok: 0, refused: 1, usage: 2 } as const;

/**
 * Parse a command's flags strictly; an unknown flag becomes a usage error naming the command and
 * the nearest known flag. `--help` is always accepted and reported as `help: true`.
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
    const unknown = /^Unknown option '(-{1,2}[^'=]+)/.exec((err as Error).message)?.[1];
    const message = unknown
      ? `unknown flag '${unknown}'`
      : (err as Error).message.split("\n")[0].replace(/\. To specify.*$/, "");
    const near = unknown ? closest(unknown.replace(/^-+/, ""), Object.keys(options)) : [];
    const hint = near.length > 0
      ? `did you mean ${near.map((n) => `--${n}`).join(", ")}? see 'ostk ${command} --help'`
      : `see 'ostk ${command} --help'`;
    throw new OstkError("usage", message, {}, hint);
  }
}

/**
 * Thrown by `out` when stdout is a pipe whose reader has gone (`ostk log | head -1`). It unwinds
 * the command through its `finally` blocks (closing logs, stopping drivers); `runCli` then exits
 * 0 without a word, as a reader that stopped reading is not a failure of the command.
 */
export class StdoutClosed extends Error {
  constructor() {
    super("stdout was closed by its reader");
    this.name = "StdoutClosed";
  }
}

/**
 * The longest delay a timer takes: setTimeout fires at once (after a warning) for anything
 * longer, so a larger millisecond flag would mean "now", not "a long time".
 */
export const MAX_DELAY_MS = 2_147_483_647;

/**
 * A whole-number flag in [`min`, `max`], or undefined when absent; anything else is a usage error
 * that names the flag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { intFlag } from "./command.ts";
 * assert.equal(intFlag("--tick-ms", "250", 10), 250);
 * assert.equal(intFlag("--tick-ms", undefined, 10), undefined);
 * assert.throws(() => intFlag("--tick-ms", "5", 10), /--tick-ms needs an integer from 10/);
 * assert.throws(() => intFlag("--wait-ms", "3000000000", 1), /to 2147483647/);
 * ```
 */
export function intFlag(
  name: string,
  value: string | undefined,
  min: number,
  max = MAX_DELAY_MS,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new OstkError("usage", `${name} needs an integer from ${min} to ${max}, not '${value}'`);
  }
  return n;
}

const encoder = new TextEncoder();

/** Write all of `bytes`: a pipe may take fewer bytes than offered in one write. */
function writeAll(stream: typeof Deno.stdout | typeof Deno.stderr, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += stream.writeSync(bytes.subarray(off));
}

/** Print a line to stdout; throws `StdoutClosed` once nobody reads it any more. */
export function out(line = ""): void {
  try {
    writeAll(Deno.stdout, encoder.encode(line + "\n"));
  } catch (err) {
    if (err instanceof Deno.errors.BrokenPipe) throw new StdoutClosed();
    throw err;
  }
}

/** Print a line to stderr. A closed stderr leaves nowhere to say anything, so it is ignored. */
export function err(line: string): void {
  try {
    writeAll(Deno.stderr, encoder.encode(line + "\n"));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
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
