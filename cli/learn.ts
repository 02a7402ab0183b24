/**
 * `ostk learn`: run an agent with no sandbox while recording what it touches, then print (or
 * `--apply`) the minimal `LIMIT write-path / read-path / net` lines that would have allowed it.
 * The observing and reducing live in sandbox/learn.ts; this file picks what to run.
 */
import { readAgentfileText, resolveAgentfile } from "../kernel/agentfile_lint.ts";
import { WallClockValue } from "../kernel/agentfile_schema.ts";
import { atomicWrite } from "../kernel/atomic_write.ts";
import { readAuditRows } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import { findRoot, ostkPaths } from "../kernel/layout.ts";
import {
  type Learned,
  limitLines,
  MECHANISM,
  reduceEvents,
  resolvePath,
  rewriteLimits,
  traceCommand,
  type TraceEvent,
} from "../sandbox/learn.ts";
import { type Command, err, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import { whichAll } from "../kernel/which.ts";

/** Audit events of the kernel's file tools, and what each needs. */
const FILE_EVENTS: Record<string, "read" | "self" | "parent"> = {
  "tool.file_read": "read",
  "tool.file_edit": "self",
  "tool.file_write": "self",
  "tool.file_create": "parent",
};

export const learnCommand: Command = {
  name: "learn",
  summary: "Run an agent unsandboxed, record what it touches, print the LIMIT lines it needs.",
  usage: "learn <Agentfile | -- CMD…> [--duration S] [--apply] [--json]",
  help: `Prints the fewest LIMIT write-path, read-path and net lines (paths relative to the
project) that would have allowed one run. Only those lines go to stdout; the agent's own
stdout is passed to stderr.

Mechanism: ${MECHANISM}
(Linux only; install strace if missing). Every open/openat/creat (write when O_WRONLY,
O_RDWR, O_CREAT or O_TRUNC), mkdir, rename, unlink, rmdir, link, symlink, truncate and
chmod is resolved against the caller's working directory, and every TCP connect is kept.

  <Agentfile>    run its FROM command:<argv> in the project root. FROM script: transcripts
                 are not run: their kernel tool calls are read back from the audit log (the
                 tool.file_* rows of every session spawned with that transcript), so spawn
                 it once first. FROM <model> is refused.
  -- CMD…        run CMD in the current directory
  --duration S   stop the run after S (30, 30s, 2m): SIGTERM to its process group, SIGKILL
                 2s later. Default: the Agentfile's LIMIT wall_clock, else no limit
  --apply        write the lines into the Agentfile, replacing its LIMIT write-path,
                 read-path and net lines; comments and other lines stay. No connect seen
                 writes 'LIMIT net none'; a path key with nothing seen is left as it was
  --json         one JSON object: limits, lines, failed, ignored, binds, notes, exit

Rules: creating, removing or renaming needs the directory; grants collapse per top-level
entry to their deepest common directory (src/gen/a.ts + src/gen/b.ts -> src/gen/);
.ostk/, the run's private TMPDIR and the default policy's system dirs are never listed;
read-path includes the write grants. Failed writes that show intent (EACCES, EPERM, EROFS,
ENOENT…) are kept and reported; failed reads, EEXIST and ENXIO are dropped.`,
  async run(ctx) {
    const sep = ctx.argv.indexOf("--");
    const head = sep < 0 ? ctx.argv : ctx.argv.slice(0, sep);
    const cmd = sep < 0 ? [] : ctx.argv.slice(sep + 1);
    const { values, positionals } = parseFlags("learn", head, {
      duration: { type: "string" },
      apply: { type: "boolean" },
      json: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(learnCommand));
      return EXIT.ok;
    }
    if (sep >= 0 && cmd.length === 0) throw usage("'--' needs a command after it");
    if (cmd.length > 0 && positionals.length > 0) {
      throw usage("give an Agentfile or '-- CMD…', not both");
    }
    if (cmd.length === 0 && positionals.length !== 1) {
      throw usage("expected an Agentfile or -- CMD…");
    }
    let durationMs = values.duration === undefined ? undefined : parseDuration(values.duration);
    const file = positionals[0] === undefined ? undefined : absolute(ctx.cwd, positionals[0]);
    if (values.apply && !file) throw usage("--apply needs an Agentfile to write to");

    let learned: Learned;
    let report: Record<string, unknown>;
    if (!file) {
      const root = await projectRoot(ctx.cwd);
      await requireProgram(cmd[0], ctx.cwd);
      const run = await traceCommand(cmd, { cwd: ctx.cwd, durationMs });
      learned = reduceEvents(run.events, { root, tmpdir: run.tmpdir });
      report = { mechanism: "strace", command: cmd, exit: exitOf(run) };
    } else {
      const spec = await resolveAgentfile(file);
      const from = spec.from?.value;
      const root = await projectRoot(file.slice(0, file.lastIndexOf("/")) || "/");
      if (!from) {
        throw new OstkError("bad_input", "the Agentfile has no FROM line; nothing to run", {
          file,
        });
      }
      if (from.kind === "model") {
        throw new OstkError(
          "bad_input",
          `FROM ${from.model}: a model CPU runs in the daemon; there is no program to observe`,
          spec.from!.source,
          "use FROM command:<argv>, or 'ostk learn -- CMD…'",
        );
      }
      if (from.kind === "command") {
        durationMs ??= spec.limits.wall_clock?.value;
        await requireProgram(from.command[0], root);
        const run = await traceCommand(from.command, { cwd: root, durationMs });
        learned = reduceEvents(run.events, { root, tmpdir: run.tmpdir });
        report = { mechanism: "strace", command: from.command, exit: exitOf(run) };
      } else {
        learned = reduceEvents(await auditEvents(root, file, from.script), { root });
        report = { mechanism: "audit", script: from.script };
      }
    }

    const lines = limitLines(learned);
    if (values.apply) {
      const next = rewriteLimits(await readAgentfileText(file!), file!, learned);
      await atomicWrite(file!, next);
      report.applied = file;
    }
    if (values.json) {
      const { failed, ignored, binds, notes } = learned;
      const limits = { "write-path": learned["write-path"], "read-path": learned["read-path"] };
      outJson({
        ...report,
        limits: { ...limits, net: learned.net },
        lines,
        failed,
        ignored,
        binds,
        notes,
      });
      return EXIT.ok;
    }
    for (const line of lines) out(line);
    explain(report, learned, lines.length);
    return EXIT.ok;
  },
};

/** Notes for a person on stderr: how the run ended and what was kept or left out, and why. */
function explain(report: Record<string, unknown>, learned: Learned, count: number): void {
  const exit = report.exit as ReturnType<typeof exitOf> | undefined;
  if (exit?.stopped) err(`ostk learn: stopped the run after --duration (${exit.signal ?? "exit"})`);
  else if (exit && exit.code !== 0) err(`ostk learn: the agent exited ${exit.code}`);
  for (const f of learned.failed) {
    err(`ostk learn: kept failed ${f.syscall} ${f.path} (${f.errno}): it shows intent`);
  }
  for (const i of learned.ignored) err(`ostk learn: not granted: ${i.path}: ${i.reason}`);
  for (const b of learned.binds) err(`ostk learn: bound ${b}; an Agentfile has no bind limit`);
  for (const n of learned.notes) err(`ostk learn: ${n}`);
  if (count === 0) err("ostk learn: nothing seen beyond what the default policy allows");
  if (report.applied) err(`ostk learn: wrote the LIMIT lines into ${report.applied}`);
}

/**
 * A script transcript's file accesses, from the audit log: the `tool.file_*` rows (and file
 * `policy.deny` rows, as failed intent) of every session spawned with that transcript.
 */
async function auditEvents(root: string, file: string, script: string): Promise<TraceEvent[]> {
  const dir = file.slice(0, file.lastIndexOf("/")) || "/";
  const wanted = new Set<string>();
  for (const base of [dir, root]) {
    const path = resolvePath(base, script);
    wanted.add(path);
    wanted.add(await realPathOr(path));
  }
  const rows = await readAuditRows(ostkPaths(root).audit);
  const aliases = new Set<string>();
  for (const row of rows) {
    const spec = row.spec as { kind?: string; script?: string } | undefined;
    if (row.event !== "session.spawn" || spec?.kind !== "script" || !spec.script) continue;
    if (wanted.has(spec.script) || wanted.has(await realPathOr(spec.script))) {
      aliases.add(String(row.alias ?? row.session));
    }
  }
  if (aliases.size === 0) {
    throw new OstkError(
      "not_found",
      `FROM script:${script}: no session in the audit log ran this transcript, and a script ` +
        "is learned from the kernel's record of its tool calls, not by running it here",
      { file },
      `run it once ('ostk spawn NAME --cpu script --script ${script}'), then learn again`,
    );
  }
  const events: TraceEvent[] = [];
  for (const row of rows) {
    if (!aliases.has(row.actor) || typeof row.path !== "string") continue;
    const path = resolvePath(root, row.path);
    const base = { pid: 0, syscall: row.event, path };
    const need = FILE_EVENTS[row.event];
    if (need === "read") events.push({ kind: "read", ...base, dir: false });
    else if (need) events.push({ kind: "write", ...base, scope: need });
    else if (row.event === "policy.deny" && String(row.tool).startsWith("file:")) {
      const scope = row.tool === "file:create" ? "parent" : "self";
      events.push({ kind: "write", ...base, scope, errno: "policy.deny" });
    }
  }
  return events;
}

function exitOf(run: { code: number; signal: string | null; stopped: boolean }) {
  return { code: run.code, signal: run.signal, stopped: run.stopped };
}

/** The project holding `dir`, or `dir` itself when there is no project (nothing to protect). */
async function projectRoot(dir: string): Promise<string> {
  try {
    return await findRoot(dir);
  } catch (e) {
    if (e instanceof OstkError && e.code === "not_found") return await Deno.realPath(dir);
    throw e;
  }
}

async function realPathOr(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return path;
    throw e;
  }
}

function absolute(cwd: string, path: string): string {
  return resolvePath(cwd, path);
}

function parseDuration(text: string): number {
  const parsed = WallClockValue.safeParse(text);
  if (!parsed.success) {
    throw usage(`--duration: ${parsed.error.issues[0].message}, got '${text}'`);
  }
  return parsed.data;
}

function usage(message: string): OstkError {
  return new OstkError("usage", message, {}, "see 'ostk learn --help'");
}

/**
 * strace reports a program it cannot start on a line of its own before ostk's: look the program
 * up first so a typo is one line that says what to fix.
 */
async function requireProgram(program: string, cwd: string): Promise<void> {
  const relative = program.includes("/") && !program.startsWith("/");
  if ((await whichAll(relative ? `${cwd}/${program}` : program)).length > 0) return;
  throw new OstkError(
    "not_found",
    `program '${program}' is not ${program.includes("/") ? "an executable file" : "on PATH"}`,
    {},
    "check the command; give its full path if it is installed elsewhere",
  );
}
