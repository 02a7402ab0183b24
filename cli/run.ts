/** Global flags, dispatch, and the mapping from errors to exit codes. */
import { OstkError } from "../kernel/errors.ts";
import { type Command, err, EXIT, helpText, out } from "./command.ts";
import { COMMANDS, GROUPS } from "./registry.ts";
import { VERSION } from "./version.ts";

const GLOBAL_HELP = () =>
  `usage: ostk [-C <dir>] <command> [args] [--help]

ostk — a local-first kernel for AI coding agents.

commands:
${
    COMMANDS.filter((c) => !c.name.startsWith("_")).map((c) =>
      `  ${c.name.padEnd(18)} ${c.summary}`
    )
      .join("\n")
  }

global flags:
  -C <dir>     run as if ostk was started in <dir> (repeatable, like git)
  -h, --help   this help; 'ostk <command> --help' for one command
  --version    print the version

exit codes: 0 done · 1 refused or failed (integrity, policy, conflict, missing project) · 2 usage`;

/**
 * Run the CLI on `argv` and return the exit code. `OSTK_CWD` (set by `deno task ostk` to the
 * caller's directory) is where relative paths and project discovery start.
 */
export async function runCli(argv: string[]): Promise<number> {
  try {
    const start = Deno.env.get("OSTK_CWD");
    if (start) Deno.chdir(start);
    let i = 0;
    for (; i < argv.length; i++) {
      const arg = argv[i];
      if (arg === "-C") {
        const dir = argv[++i];
        if (dir === undefined) throw usage("-C needs a directory", "ostk -C <dir> <command>");
        chdir(dir);
      } else if (arg.startsWith("-C") && arg.length > 2) chdir(arg.slice(2));
      else if (arg === "--version" || arg === "-V") {
        out(`ostk ${VERSION}`);
        return EXIT.ok;
      } else if (arg === "--help" || arg === "-h") {
        out(GLOBAL_HELP());
        return EXIT.ok;
      } else if (arg.startsWith("-")) {
        throw usage(`unknown global flag '${arg}'`, "see 'ostk --help'");
      } else break;
    }
    const rest = argv.slice(i);
    if (rest.length === 0) {
      err(GLOBAL_HELP());
      return EXIT.usage;
    }
    if (rest[0] === "help") {
      const command = rest.length > 1 ? lookup(rest.slice(1)).command : undefined;
      out(command ? helpText(command) : GLOBAL_HELP());
      return EXIT.ok;
    }
    const { command, argv: commandArgv } = lookup(rest);
    return await command.run({ argv: commandArgv, cwd: Deno.cwd() });
  } catch (e) {
    if (e instanceof GroupHelp) {
      out(e.message);
      return EXIT.ok;
    }
    if (e instanceof OstkError) {
      err(`ostk: ${e.toLine()}`);
      return e.code === "usage" ? EXIT.usage : EXIT.refused;
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      err(`ostk: permission denied: ${(e as Error).message}`);
      return EXIT.refused;
    }
    throw e;
  }
}

function chdir(dir: string): void {
  try {
    Deno.chdir(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw usage(`-C ${dir}: no such directory`, "check the path");
    }
    throw e;
  }
}

function lookup(words: string[]): { command: Command; argv: string[] } {
  const [first, second] = words;
  if (GROUPS.has(first)) {
    if (second === "--help" || second === "-h") {
      const subs = COMMANDS.filter((c) => c.name.startsWith(first + " "));
      throw new GroupHelp(
        `usage: ostk ${first} <command>\n\n${
          subs.map((c) => `  ${c.name.padEnd(20)} ${c.summary}`).join("\n")
        }`,
      );
    }
    const name = `${first} ${second ?? ""}`.trim();
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) {
      const subs = COMMANDS.filter((c) => c.name.startsWith(first + " ")).map((c) => c.name);
      throw usage(
        second ? `unknown command '${name}'` : `'${first}' needs a sub-command`,
        `try ${subs.map((s) => `'ostk ${s}'`).join(", ")}`,
      );
    }
    return { command, argv: words.slice(2) };
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) throw usage(`unknown command '${first}'`, "see 'ostk --help' for the list");
  return { command, argv: words.slice(1) };
}

/** Thrown by lookup to print a group's help and exit 0. */
class GroupHelp extends Error {}

function usage(message: string, hint: string): OstkError {
  return new OstkError("usage", message, {}, hint);
}
