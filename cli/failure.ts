/**
 * Every way a command can fail, turned into one line on stderr and an exit code. The CLI prints
 * no stack unless `OSTK_DEBUG=1` asks for one.
 */
import { RpcError } from "../actors/client.ts";
import { RPC_ERRORS } from "../actors/protocol.ts";
import { errorLine, OstkError } from "../kernel/errors.ts";
import { EXIT } from "./command.ts";

/** What to tell the user and how to exit. */
export interface Failure {
  /** One line, starting `ostk: `. */
  line: string;
  exit: number;
  /** The stack, for an error nobody expected (printed only with OSTK_DEBUG=1). */
  stack?: string;
}

const RESTART = "restart it: 'ostk stop', then 'ostk listen --background'";
const REPORT = "a bug in ostk; please report it with the output of the same command run with " +
  "OSTK_DEBUG=1";

/**
 * The line and exit code for `e`, thrown by the command `command` (its registry name, when
 * dispatch got that far). Wire errors keep the daemon's own words (already one line, with its
 * hint) and add what the code alone tells: whether to fix the arguments or look at the daemon.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RpcError } from "../actors/client.ts";
 * import { describeFailure } from "./failure.ts";
 * const gone = describeFailure(new RpcError(-32001, "no session 'x-9' (see 'ostk ps')"), "kill");
 * assert.deepEqual([gone.line, gone.exit], ["ostk: no session 'x-9' (see 'ostk ps')", 1]);
 * const bad = describeFailure(new RpcError(-32602, "session/kill: alias: expected an alias"), "kill");
 * assert.equal(bad.exit, 2);
 * assert.match(bad.line, /see 'ostk kill --help'/);
 * const bug = describeFailure(new TypeError("x is undefined"));
 * assert.match(bug.line, /^ostk: internal error: x is undefined \(a bug in ostk;.*OSTK_DEBUG=1\)$/);
 * ```
 */
export function describeFailure(e: unknown, command?: string): Failure {
  if (e instanceof OstkError) {
    return { line: `ostk: ${e.toLine()}`, exit: e.code === "usage" ? EXIT.usage : EXIT.refused };
  }
  if (e instanceof RpcError) return wireFailure(e, command);
  if (e instanceof Deno.errors.PermissionDenied) {
    return { line: `ostk: permission denied: ${oneLine(e.message)}`, exit: EXIT.refused };
  }
  // The operating system refused something the command did not foresee (a file vanished, a
  // disk filled up): its message names the path and the reason, which is what the user needs.
  if (isOsError(e)) return { line: `ostk: ${oneLine((e as Error).message)}`, exit: EXIT.refused };
  const message = e instanceof Error ? e.message : String(e);
  return {
    line: `ostk: internal error: ${oneLine(message) || "(no message)"} (${REPORT})`,
    exit: EXIT.refused,
    stack: e instanceof Error ? e.stack : undefined,
  };
}

function wireFailure(e: RpcError, command: string | undefined): Failure {
  const said = oneLine(e.message);
  const help = command ? `see 'ostk ${command} --help'` : "see 'ostk --help'";
  switch (e.code) {
    case RPC_ERRORS.invalidParams:
      return { line: `ostk: ${errorLine({ message: said, hint: help })}`, exit: EXIT.usage };
    case RPC_ERRORS.closed:
      return {
        line: `ostk: the daemon closed the connection before answering${
          e.method ? ` ${e.method}` : ""
        } (it stopped or crashed: see 'ostk status' and .ostk/daemon.log)`,
        exit: EXIT.refused,
      };
    case RPC_ERRORS.methodNotFound:
    case RPC_ERRORS.invalidRequest:
    case RPC_ERRORS.parse:
      return {
        line: `ostk: the daemon did not understand the request: ${said} (it may be another ` +
          `version of ostk; ${RESTART})`,
        exit: EXIT.refused,
      };
    case RPC_ERRORS.internal:
      return {
        line: `ostk: the daemon failed: ${said} (${REPORT}; its log is .ostk/daemon.log)`,
        exit: EXIT.refused,
      };
    default:
      return { line: `ostk: ${said}`, exit: EXIT.refused };
  }
}

/** Errors Deno maps from an OS error code (`Deno.errors.NotFound`, `BrokenPipe`, …). */
function isOsError(e: unknown): boolean {
  return Object.values(Deno.errors).some((kind) => e instanceof kind);
}

function oneLine(text: string): string {
  return errorLine({ message: text });
}
