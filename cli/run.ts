/** Global flags, dispatch, and the mapping from errors to exit codes. */
import { closest } from "../drivers/fcp/mod.ts";
import { OstkError } from "../kernel/errors.ts";
import { type Command, err, EXIT, helpText, isVisible, out, StdoutClosed } from "./command.ts";
import { describeFailure } from "./failure.ts";
import { COMMANDS, GROUPS } from "./registry.ts";
import { VERSION } from "./version.ts";

const GLOBAL_HELP = () =>
  `usage: ostk [-C <dir>] <command> [args] [--help]

ostk — a local-first kernel for AI coding agents.

commands:
${
    COMMANDS.filter(isVisible).map((c) => `  ${c.name.padEnd(18)} ${c.summary}`)
      .join("\n")
  }

global flags:
  -C <dir>     run as if ostk was started in <dir> (repeatable, like git)
  -h, --help   this help; 'ostk <command> --help' for one command
  --version    print the version

exit codes: 0 done · 1 refused or failed (integrity, policy, conflict, missing project) · 2 usage
Errors are one line on stderr; OSTK_DEBUG=1 adds the stack of an internal error. A stdout closed
by its reader ('ostk log | head -1') ends the command quietly with exit 0, as a reader that
stopped reading is not a failure.`;

/**
 * Run the CLI on `argv` and return the exit code. `OSTK_CWD` (set by `deno task ostk` to the
 * caller's directory) is where relative paths and project discovery start.
 */
export async function runCli(argv: string[]): Promise<number> {
  let name: string | undefined;
  const uncaught = (event: PromiseRejectionEvent | ErrorEvent) => {
    // A promise or timer a command left behind failed after its caller stopped listening:
    // say so on one line and end, rather than let Deno print it with a stack.
    event.preventDefault();
    Deno.exit(report("reason" in event ? event.reason : event.error, name));
  };
  globalThis.addEventListener("unhandledrejection", uncaught);
  globalThis.addEventListener("error", uncaught);
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
    name = command.name;
    return await command.run({ argv: commandArgv, cwd: Deno.cwd() });
  } catch (e) {
    if (e instanceof GroupHelp) {
      try {
        out(e.message);
      } catch (closed) {
        if (!(closed instanceof StdoutClosed)) throw closed;
      }
      return EXIT.ok;
    }
    return report(e, name);
  } finally {
    globalThis.removeEventListener("unhandledrejection", uncaught);
    globalThis.removeEventListener("error", uncaught);
  }
}

/**
 * Print the one line a failure gets, and the stack of an internal error with OSTK_DEBUG=1 or
 * from the daemon (whose stderr is .ostk/daemon.log, read after the fact, where the stack is what
 * a bug report needs); return the exit code.
 */
function report(e: unknown, command: string | undefined): number {
  if (e instanceof StdoutClosed) return EXIT.ok;
  const failure = describeFailure(e, command);
  err(failure.line);
  const wantStack = Deno.env.get("OSTK_DEBUG") === "1" || command === "listen";
  if (failure.stack && wantStack) err(failure.stack);
  return failure.exit;
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
      const subs = visible().filter((c) => c.name.startsWith(first + " ")).map((c) => c.name);
      const near = second === undefined
        ? []
        : closest(second, subs.map((s) => s.slice(first.length + 1))).map((s) => `${first} ${s}`);
      throw usage(
        second ? `unknown command '${name}'` : `'${first}' needs a sub-command`,
        near.length > 0 ? didYouMean(near) : `try ${subs.map((s) => `'ostk ${s}'`).join(", ")}`,
      );
    }
    return { command, argv: words.slice(2) };
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) {
    const near = nearestCommands(first, second);
    throw usage(
      `unknown command '${first}'`,
      `${near.length > 0 ? `${didYouMean(near)} ` : ""}see 'ostk --help' for the list`,
    );
  }
  return { command, argv: words.slice(1) };
}

/** The commands `ostk --help` lists. */
function visible(): Command[] {
  return COMMANDS.filter(isVisible);
}

/**
 * The commands a mistyped first word most likely meant: close to a command or group name
 * (`lgo` → `log`, `drivr list` → `driver list`), or to the sub-command of a group
 * (`audit` → `os audit`).
 */
function nearestCommands(word: string, next: string | undefined): string[] {
  const names = new Set(visible().map((c) => c.name));
  const firsts = new Set<string>();
  const subs = new Map<string, string>();
  for (const name of names) {
    const [head, sub] = name.split(" ");
    firsts.add(head);
    if (sub !== undefined) subs.set(sub, name);
  }
  const near = closest(word, firsts).map((head) => {
    if (!GROUPS.has(head)) return head;
    return next !== undefined && names.has(`${head} ${next}`) ? `${head} ${next}` : `${head} …`;
  });
  if (near.length > 0) return near;
  return closest(word, subs.keys()).map((sub) => subs.get(sub)!);
}

function didYouMean(names: string[]): string {
  return `did you mean ${names.map((n) => `'ostk ${n}'`).join(", ")}?`;
}

/** Thrown by lookup to print a group's help and exit 0. */
class GroupHelp extends Error {}

function usage(message: string, hint: string): OstkError {
  return new OstkError("usage", message, {}, hint);
}
