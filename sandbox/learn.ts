/**
 * `ostk learn`: from what an agent touched in one permissive run, the fewest `LIMIT write-path`,
 * `LIMIT read-path` and `LIMIT net` entries that would have allowed it.
 *
 * Decisions, so that the output is reviewable rather than clever:
 * - A call that creates, removes or renames an entry needs the directory holding it (Landlock
 *   grants creation on the parent); a call that changes a file in place needs only the file.
 * - Inside the project, grants collapse per top-level entry to their deepest common directory
 *   (`src/gen/a.ts` + `src/gen/b.ts` → `src/gen/`); the project root itself is never granted,
 *   since that would include `.ostk/`. Outside the project, paths are listed as seen.
 * - Never granted: anything under `.ostk/`, the run's private TMPDIR, reads of the system dirs
 *   and devices the default policy already allows (sandbox/policy.ts).
 * - Failed calls: a failed write still shows intent and is kept (and reported as failed) when
 *   its error is one a sandbox causes or that hides the intent (EACCES, EPERM, EROFS, ENOENT…);
 *   failures that mean there was nothing to do (EEXIST from `mkdir -p`, ENXIO from `/dev/tty`)
 *   are dropped. Failed reads are probes (library and PATH lookups) and are dropped unless
 *   refused (EACCES, EPERM).
 * - Read grants include the write grants, so `agentfile lint` finds no write outside a read.
 * - Net: TCP connects only (Landlock filters TCP by port); UDP and unix sockets are reported as
 *   ignored; binds are reported, since an Agentfile has no bind limit.
 */
import { parseAgentfile } from "../kernel/agentfile_parse.ts";
import { OstkError } from "../kernel/errors.ts";
import { whichAll } from "../kernel/which.ts";
import { killGroup } from "../kernel/proc.ts";
import { DEVICE_WRITE, SYSTEM_READ } from "./policy.ts";
import { STRACE_FLAGS, StraceParser, type TraceEvent } from "./_strace.ts";

export { parseStrace, resolvePath, STRACE_FLAGS, StraceParser } from "./_strace.ts";
export type { TraceEvent } from "./_strace.ts";

/** How learn observes a command: named in `--help` and in `--json` output. */
export const MECHANISM = `strace ${STRACE_FLAGS.join(" ")} -o <file>`;

const REFUSED = ["EACCES", "EPERM", "policy.deny"];
const KEEP_FAILED_READ = new Set(REFUSED);
const KEEP_FAILED_WRITE = new Set([...REFUSED, "EROFS", "ENOENT", "EXDEV", "ENOSPC", "ETXTBSY"]);

/** The minimal grants of one run, plus what was seen but not granted and why. */
export interface Learned {
  "write-path": string[];
  "read-path": string[];
  net: string[];
  /** Failed calls kept as intent. */
  failed: { kind: string; path: string; syscall: string; errno: string }[];
  ignored: { path: string; reason: string }[];
  binds: string[];
  notes: string[];
}

/** Where the run happened, and how to tell a directory from a file after it. */
export interface ReduceOptions {
  root: string;
  tmpdir?: string;
  isDir?: (abs: string) => boolean;
}

interface Target {
  abs: string;
  dir: boolean;
}

/**
 * Reduce events to grants; paths in the result are relative to `root` (directories end in `/`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reduceEvents } from "./learn.ts";
 * const w = (path: string) => ({ kind: "write" as const, pid: 1, syscall: "openat", path,
 *   scope: "parent" as const });
 * const l = reduceEvents([w("/p/src/gen/a.ts"), w("/p/src/gen/b.ts")], { root: "/p" });
 * assert.deepEqual(l["write-path"], ["src/gen/"]); // two files, one directory rule
 * ```
 */
export function reduceEvents(events: TraceEvent[], options: ReduceOptions): Learned {
  const { root } = options;
  const isDir = options.isDir ?? statDir;
  const out: Learned = {
    "write-path": [],
    "read-path": [],
    net: [],
    failed: [],
    ignored: [],
    binds: [],
    notes: [],
  };
  const ignore = (path: string, reason: string) => {
    if (!out.ignored.some((i) => i.path === path && i.reason === reason)) {
      out.ignored.push({ path, reason });
    }
  };
  const writes: Target[] = [];
  const reads: Target[] = [];
  const net = new Set<string>();
  const binds = new Set<string>();
  for (const e of events) {
    if (e.kind !== "read" && e.kind !== "write") {
      if (e.family === "unix") ignore(e.host, "unix socket (not a TCP limit)");
      else if (e.proto === "udp") ignore(`${e.host}:${e.port}`, "UDP (Landlock filters TCP only)");
      else if (e.port > 0) {
        const host = e.family === "inet6" ? `[${e.host}]` : e.host;
        (e.kind === "connect" ? net : binds).add(`${host}:${e.port}`);
      }
      continue;
    }
    if (e.errno && !(e.kind === "write" ? KEEP_FAILED_WRITE : KEEP_FAILED_READ).has(e.errno)) {
      continue;
    }
    const rel = relative(root, e.path);
    if (e.path.includes("\n")) {
      ignore(e.path, "a path with a newline cannot be written in an Agentfile");
      continue;
    }
    if (rel === ".ostk" || rel?.startsWith(".ostk/")) {
      ignore(e.path, "under .ostk/, which is never granted");
      continue;
    }
    if (options.tmpdir && within(options.tmpdir, e.path)) {
      ignore(e.path, "in the run's private TMPDIR");
      continue;
    }
    if (DEVICE_WRITE.includes(e.path)) continue; // the default policy grants these
    if (e.kind === "read") {
      if (SYSTEM_READ.some((dir) => within(dir, e.path))) continue;
      if (e.path === root) {
        ignore(e.path, "the project root itself (a grant would include .ostk/)");
        continue;
      }
      reads.push({ abs: e.path, dir: e.dir || isDir(e.path) });
    } else {
      if (e.path === root) {
        ignore(e.path, "the project root itself (a grant would include .ostk/)");
        continue;
      }
      let target = { abs: e.path, dir: e.scope === "self" && isDir(e.path) };
      if (e.scope === "parent") {
        const parent = dirname(e.path);
        if (parent === root) {
          out.notes.push(
            `${rel}: creating or removing a top-level entry needs write on the project root, ` +
              `which is never granted; create it before the run`,
          );
          target = { abs: e.path, dir: e.syscall.startsWith("mkdir") || isDir(e.path) };
        } else target = { abs: parent, dir: true };
      }
      writes.push(target);
    }
    if (e.errno) {
      out.failed.push({ kind: e.kind, path: e.path, syscall: e.syscall, errno: e.errno });
    }
  }
  out["write-path"] = collapse(writes, root);
  out["read-path"] = collapse([...reads, ...writes], root);
  out.net = [...net].sort();
  out.binds = [...binds].sort();
  return out;
}

/**
 * The LIMIT lines for `learned`. With `netNone`, an empty net list becomes `LIMIT net none`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { limitLines } from "./learn.ts";
 * const lines = limitLines({ "write-path": ["out/"], "read-path": [], net: ["127.0.0.1:80"] });
 * assert.deepEqual(lines, ["LIMIT write-path out/", "LIMIT net 127.0.0.1:80"]);
 * ```
 */
export function limitLines(
  learned: Pick<Learned, "write-path" | "read-path" | "net">,
  options: { netNone?: boolean } = {},
): string[] {
  const lines: string[] = [];
  for (const key of ["write-path", "read-path", "net"] as const) {
    const values = learned[key].length || key !== "net" || !options.netNone
      ? learned[key]
      : ["none"];
    if (values.length) lines.push(`LIMIT ${key} ${values.map(quoteWord).join(" ")}`);
  }
  return lines;
}

/**
 * `text` (an Agentfile) with its `LIMIT write-path|read-path|net` lines (and their `\`
 * continuations) replaced by `learned`'s; comments and every other line stay. A path key with
 * nothing learned keeps its lines (no path value means "none"); net becomes `none`. The new
 * lines go where the first replaced line stood, else after the last LIMIT, else at the end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rewriteLimits } from "./learn.ts";
 * const text = "# mine\nFROM command:x\nLIMIT write-path src/ \\\n  docs/\nTASK go\n";
 * const l = { "write-path": ["out/"], "read-path": ["out/"], net: [] };
 * const next = rewriteLimits(text, "a", l);
 * assert.ok(next.startsWith("# mine\nFROM command:x\nLIMIT write-path out/\n"));
 * ```
 */
export function rewriteLimits(
  text: string,
  file: string,
  learned: Pick<Learned, "write-path" | "read-path" | "net">,
): string {
  const ast = parseAgentfile(text, file);
  const lines = text.split("\n");
  const replace = new Set([
    "net",
    ...(["write-path", "read-path"] as const).filter((k) => learned[k].length > 0),
  ]);
  const drop = new Set<number>();
  let at: number | undefined;
  let afterLast: number | undefined;
  for (const d of ast.directives) {
    if (d.directive !== "LIMIT") continue;
    let end = d.source.line - 1;
    while (continues(lines[end]) && end + 1 < lines.length) end++;
    afterLast = end + 1;
    if (!replace.has(d.limit.key)) continue;
    at ??= d.source.line - 1;
    for (let k = d.source.line - 1; k <= end; k++) drop.add(k);
  }
  const fresh = limitLines(learned, { netNone: true }).filter((l) => replace.has(l.split(" ")[1]));
  const result: string[] = [];
  const insertAt = at ?? afterLast;
  lines.forEach((line, k) => {
    if (k === insertAt) result.push(...fresh);
    if (!drop.has(k)) result.push(line);
  });
  if (insertAt === undefined || insertAt >= lines.length) {
    if (result.at(-1) === "") result.splice(result.length - 1, 0, ...fresh);
    else result.push(...fresh, "");
  }
  const next = result.join("\n");
  parseAgentfile(next, file); // what we write must still parse
  return next;
}

/** What one traced run left: its events, how it ended, and the private TMPDIR it was given. */
export interface TraceRun {
  events: TraceEvent[];
  code: number;
  signal: Deno.Signal | null;
  /** True when `durationMs` ran out (or learn was interrupted) and the group was stopped. */
  stopped: boolean;
  tmpdir: string;
}

/** Where and how long to run. */
export interface TraceOptions {
  cwd: string;
  /** Stop the run (SIGTERM to the group, SIGKILL after `graceMs`) after this long. */
  durationMs?: number;
  graceMs?: number;
}

/**
 * Run `cmd` under strace in its own process group, the agent's stdout passed to our stderr (so
 * stdout stays for the LIMIT lines), with a private TMPDIR; then parse what it touched.
 */
export async function traceCommand(cmd: string[], options: TraceOptions): Promise<TraceRun> {
  const strace = await findStrace();
  const work = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_learn_" }));
  const tmpdir = `${work}/tmp`;
  try {
    await Deno.mkdir(tmpdir);
    const traceFile = `${work}/trace.txt`;
    const child = new Deno.Command(strace, {
      args: [...STRACE_FLAGS, "-o", traceFile, "--", ...cmd],
      cwd: options.cwd,
      env: { TMPDIR: tmpdir },
      stdin: "inherit",
      stdout: "piped",
      stderr: "inherit",
      // Its own session and group: one signal reaches strace, the agent and all it started.
      detached: true,
    }).spawn();
    const pid = child.pid;
    const reader = child.stdout.getReader();
    const forward = (async () => {
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        Deno.stderr.writeSync(r.value);
      }
    })();
    let stopped = false;
    const timers: ReturnType<typeof setTimeout>[] = [];
    const stop = () => {
      stopped = true;
      killGroup(pid, "SIGTERM");
      timers.push(setTimeout(() => killGroup(pid, "SIGKILL"), options.graceMs ?? 2000));
    };
    if (options.durationMs !== undefined) timers.push(setTimeout(stop, options.durationMs));
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    let status: Deno.CommandStatus;
    try {
      status = await child.status;
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      timers.forEach(clearTimeout);
      // Whatever is left in the group goes too; that also closes the pipe it may hold.
      killGroup(pid, "SIGKILL");
    }
    // A process that left the group (setsid) may still hold stdout: stop waiting for it soon.
    let cut: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([forward, new Promise((resolve) => cut = setTimeout(resolve, 1000))]);
    clearTimeout(cut);
    await reader.cancel();
    const parser = new StraceParser(await Deno.realPath(options.cwd));
    const events = (await Deno.readTextFile(traceFile)).split("\n").flatMap((l) => parser.push(l));
    if (parser.execs === 0) {
      throw new OstkError(
        "io",
        `strace could not start '${cmd[0]}' (exit ${status.code})`,
        {},
        "check the command, and that ptrace is allowed here (kernel.yama.ptrace_scope)",
      );
    }
    return { events, code: status.code, signal: status.signal, stopped, tmpdir };
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** The strace binary on PATH, or a `not_found` error saying how to install it. */
export async function findStrace(): Promise<string> {
  if (Deno.build.os !== "linux") {
    throw new OstkError("not_found", "ostk learn observes agents with strace, which is Linux-only");
  }
  const [strace] = await whichAll("strace", Deno.env.get("PATH") ?? "/usr/bin:/bin");
  if (strace) return strace;
  throw new OstkError(
    "not_found",
    "strace is not installed; ostk learn records what the agent opens with it",
    {},
    "install it: apt-get install strace",
  );
}

/** Group inside paths by top-level entry and keep each group's deepest common path. */
function collapse(targets: Target[], root: string): string[] {
  const groups = new Map<string, Target[]>();
  const outside: Target[] = [];
  for (const t of targets) {
    const rel = relative(root, t.abs);
    if (rel === undefined) outside.push(t);
    else groups.set(rel.split("/")[0], [...groups.get(rel.split("/")[0]) ?? [], t]);
  }
  const inside = [...groups.values()].map((group) => {
    let common = group[0].abs;
    for (const t of group) while (!within(common, t.abs)) common = dirname(common);
    const dir = group.some((t) => t.abs !== common || t.dir);
    return `${relative(root, common)}${dir ? "/" : ""}`;
  });
  // Outside the project: as seen, minus anything already under another entry.
  const dirs = outside.filter((t) => t.dir).map((t) => t.abs);
  const far = outside
    .filter((t) => !dirs.some((d) => d !== t.abs && within(d, t.abs)))
    .map((t) => `${t.abs}${t.dir && t.abs !== "/" ? "/" : ""}`);
  return [...new Set(inside)].sort().concat([...new Set(far)].sort());
}

/** `path` relative to `root`, or undefined outside it ("" for the root itself). */
function relative(root: string, path: string): string | undefined {
  if (path === root) return "";
  const prefix = root === "/" ? "/" : `${root}/`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : undefined;
}

function within(dir: string, path: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/** Quote a LIMIT value the Agentfile lexer would otherwise split or cut. */
function quoteWord(value: string): string {
  return /[\s"'#\\]/.test(value) ? `"${value.replace(/(["\\])/g, "\\$1")}"` : value;
}

/** True when an Agentfile line continues onto the next (ends in `\`, not in a comment). */
function continues(line: string | undefined): boolean {
  if (line === undefined || line.trimStart().startsWith("#")) return false;
  return /\\\s*$/.test(line) && !/(^|\s)#\s.*\\\s*$/.test(line);
}

function statDir(abs: string): boolean {
  try {
    return Deno.statSync(abs).isDirectory;
  } catch (err) {
    if (
      err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory ||
      err instanceof Deno.errors.PermissionDenied
    ) return false;
    throw err;
  }
}
