/**
 * `ostk doctor`: check what a first hour with ostk depends on — the `ostk` command on PATH, the
 * Deno it runs on, Landlock, the operator key, the daemon and the MCP client config — and say
 * how to fix each problem found.
 */
import { OstkError } from "../kernel/errors.ts";
import { findRoot, type OstkPaths, ostkPaths } from "../kernel/layout.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import {
  type Check,
  checkDaemon,
  checkKey,
  checkLandlock,
  checkMcp,
  checkPathAndDeno,
} from "./doctor_checks.ts";

export type { Check };

/** Run every check for a command started in `cwd`. */
export async function runChecks(cwd: string): Promise<Check[]> {
  const checks = await checkPathAndDeno();
  checks.push(await checkLandlock());
  let paths: OstkPaths | undefined;
  try {
    paths = ostkPaths(await findRoot(cwd));
  } catch (err) {
    if (!(err instanceof OstkError && err.code === "not_found")) throw err;
  }
  checks.push(await checkKey(paths));
  if (paths) {
    checks.push({ check: "project", status: "ok", detail: paths.root });
    checks.push(await checkDaemon(paths));
  } else {
    checks.push({
      check: "project",
      status: "warn",
      detail: `not inside an ostk project (no .ostk/ in ${cwd} or above); daemon not checked`,
      fix: "run 'ostk init' in your project",
    });
  }
  checks.push(await checkMcp(paths?.root ?? cwd));
  return checks;
}

export const doctorCommand: Command = {
  name: "doctor",
  summary: "Check the set-up: ostk on PATH, Deno, Landlock, the key, the daemon, .mcp.json.",
  usage: "doctor [--json]",
  help: `One line per check, 'ok', 'warn' or 'fail', with how to fix each that is not ok:
  path      is 'ostk' on PATH, is it the launcher for this checkout, is its deno.lock current
  deno      the Deno running ostk; the launcher's pinned binary and module cache exist
  landlock  the Landlock ABI this kernel offers (Seatbelt on macOS)
  key       the operator key exists, is mode 600, and matches .ostk/identity.pub
  project   whether the working directory is inside an ostk project
  daemon    whether its socket answers, or is left over from a daemon that died
  mcp       .mcp.json (project root, else the working directory) has an ostk server whose
            command resolves on PATH

Exit 0 when nothing failed (warnings allowed), 1 when any check failed.

  --json   {"ok": bool, "checks": [{"check", "status", "detail", "fix"?}]}`,
  async run(ctx) {
    const { values } = parseFlags("doctor", ctx.argv, { json: { type: "boolean" } });
    if (values.help) {
      out(helpText(doctorCommand));
      return EXIT.ok;
    }
    const checks = await runChecks(ctx.cwd);
    const failed = checks.filter((c) => c.status === "fail").length;
    const warned = checks.filter((c) => c.status === "warn").length;
    if (values.json) outJson({ ok: failed === 0, checks });
    else {
      for (const c of checks) {
        out(`${c.status.padEnd(5)} ${c.check.padEnd(9)} ${c.detail}`);
        if (c.fix) out(`${"".padEnd(16)}fix: ${c.fix}`);
      }
      out(`${failed} failed, ${warned} warning(s), ${checks.length - failed - warned} ok`);
    }
    return failed ? EXIT.refused : EXIT.ok;
  },
};
