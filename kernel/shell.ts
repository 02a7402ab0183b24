/**
 * The shell tool: run one command line for an agent, inside the project, under the pin caps and
 * the dangerous-command check, with a deadline, and hand back compressed output.
 *
 * Order of gates: cwd resolves inside the project → `deny-verb` rules → dangerous patterns (need
 * the operator's approval) → run. Every refusal is an {@linkcode OstkError} `permission` whose
 * `details` say which rule or pattern refused, so the caller can audit it.
 *
 * Process lifetime: the shell is started detached, so it leads its own process group. On the
 * deadline the whole group gets SIGTERM, then SIGKILL after a grace period. When the shell exits
 * on its own, whatever it left running that still holds the output pipe is stopped the same way;
 * a background job that redirected its output (`nohup srv >log 2>&1 &`) is left alone.
 */

import { type CompressOptions, compressOutput, type OutputKind } from "./compress.ts";
import { type Danger, detectDanger } from "./dangerous.ts";
import { OstkError } from "./errors.ts";
import { checkVerb, type Policy } from "./pin_caps.ts";
import { resolveProjectPath } from "./resolve_path.ts";

/** The tool's arguments, as a model sends them. */
export interface ShellInput {
  cmd: string;
  /** Project-relative working directory; the project root when absent. */
  cwd?: string;
  /** Deadline in seconds (default 120, at most a day). */
  timeout_s?: number;
}

/** What {@linkcode ShellSpawner.spawn} is given; a sandbox must honour `detached`. */
export interface ShellSpawnOptions {
  cwd: string;
  stdin: "null";
  stdout: "piped";
  stderr: "piped";
  /** Own process group, so a timeout can stop everything the command started. */
  detached: true;
}

/** Starts the process; the sandbox supplies one that confines it. */
export interface ShellSpawner {
  spawn(cmd: string[], opts: ShellSpawnOptions): Deno.ChildProcess;
}

/** What the operator is asked to approve. */
export interface DangerRequest extends Danger {
  cmd: string;
  /** Project-relative cwd. */
  cwd: string;
}

/** Where and under which rules to run. */
export interface ShellContext {
  root: string;
  policy: Policy;
  sandbox?: ShellSpawner;
  approveDanger?: (request: DangerRequest) => Promise<boolean>;
  /** Output bytes kept, half from the start and half from the end (default 8 MiB). */
  maxOutputBytes?: number;
  /** Between SIGTERM and SIGKILL (default 2000 ms). */
  killGraceMs?: number;
  compress?: Omit<CompressOptions, "exitCode">;
}

/** One finished run. */
export interface ShellResult {
  cmd: string;
  /** Project-relative cwd the command ran in. */
  cwd: string;
  exit_code: number;
  /** Set when a signal ended the shell. */
  signal?: Deno.Signal;
  duration_ms: number;
  /** stdout and stderr interleaved as written, then compressed. */
  output: string;
  kind: OutputKind;
  /** Bytes the command wrote, all of them, even past the buffer cap. */
  bytes_before: number;
  bytes_after: number;
  timed_out: boolean;
  /** True when output past `maxOutputBytes` was dropped from the middle before compression. */
  truncated: boolean;
  cut?: { lines: number; bytes: number };
  /** The dangerous pattern the operator approved for this run. */
  danger?: Danger;
}

export const DEFAULT_TIMEOUT_S = 120;
export const DEFAULT_MAX_OUTPUT_BYTES = 8 * 1024 * 1024;
const MAX_TIMEOUT_S = 24 * 60 * 60;
const MAX_CMD_BYTES = 64 * 1024;
/** How long a clean exit waits for the pipe to close before stopping leftovers. */
const DRAIN_MS = 200;

const plainSpawner: ShellSpawner = {
  spawn: (cmd, opts) => new Deno.Command(cmd[0], { ...opts, args: cmd.slice(1) }).spawn(),
};

/**
 * Run `input.cmd` with `sh -c` in the project. Throws {@linkcode OstkError}: `bad_input` for a
 * malformed call, `permission` for a cwd outside the project, a `deny-verb` rule
 * (details `{rule, source}`) or an unapproved dangerous command (details
 * `{pattern, reason, needs: "approval"}`), `io` when the shell cannot start. A command that runs
 * and fails is a result with its exit code, not an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runShell } from "./shell.ts";
 * const root = await Deno.makeTempDir();
 * const result = await runShell({ cmd: "echo hi; exit 3" }, { root, policy: { pins: [], rules: [] } });
 * assert.equal(result.exit_code, 3);
 * assert.equal(result.output, "hi\n");
 * assert.equal(result.kind, "failure");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function runShell(input: ShellInput, ctx: ShellContext): Promise<ShellResult> {
  const { cmd, timeoutMs } = validate(input);
  const where = await resolveProjectPath(ctx.root, input.cwd ?? ".");
  await requireDirectory(where.abs, where.rel);

  const verdict = checkVerb(ctx.policy, cmd);
  if (!verdict.allowed) {
    const source = `${verdict.source.file}:${verdict.source.line}`;
    throw new OstkError(
      "permission",
      `shell: denied by '${verdict.rule}' (${source}): ${verdict.reason}`,
      verdict.source,
      "edit the pin file or run something else",
      { rule: verdict.rule, source },
    );
  }

  const danger = detectDanger(cmd);
  if (danger) {
    const approved = ctx.approveDanger
      ? await ctx.approveDanger({ ...danger, cmd, cwd: where.rel })
      : false;
    if (!approved) {
      throw new OstkError(
        "permission",
        `shell: '${danger.pattern}' needs the operator's approval: ${danger.reason}`,
        {},
        ctx.approveDanger ? "the operator declined" : "no operator is present to approve it",
        { pattern: danger.pattern, reason: danger.reason, needs: "approval" },
      );
    }
  }

  const run = await execute(cmd, where.abs, timeoutMs, ctx);
  const compressed = compressOutput(run.text, { ...ctx.compress, exitCode: run.code });
  return {
    cmd,
    cwd: where.rel,
    exit_code: run.code,
    ...(run.signal ? { signal: run.signal } : {}),
    duration_ms: run.durationMs,
    output: compressed.text,
    kind: compressed.kind,
    bytes_before: run.total,
    bytes_after: compressed.after,
    timed_out: run.timedOut,
    truncated: run.truncated,
    ...(compressed.cut ? { cut: compressed.cut } : {}),
    ...(danger ? { danger } : {}),
  };
}

/**
 * The fields the kernel's audit row records for a run (no output: it can be large and the
 * audit log is forever).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { auditFieldsFor, type ShellResult } from "./shell.ts";
 * const r = { cmd: "ls", exit_code: 0, duration_ms: 3, bytes_before: 10, bytes_after: 10,
 *   kind: "success", timed_out: false, output: "a.ts\n" } as ShellResult;
 * // The output itself never reaches the audit log, only its size.
 * assert.deepEqual(auditFieldsFor(r), { cmd: "ls", exit_code: 0, duration_ms: 3, bytes_before: 10,
 *   bytes_after: 10, kind: "success", timed_out: false });
 * ```
 */
export function auditFieldsFor(result: ShellResult): Record<string, unknown> {
  return {
    cmd: result.cmd,
    exit_code: result.exit_code,
    duration_ms: result.duration_ms,
    bytes_before: result.bytes_before,
    bytes_after: result.bytes_after,
    kind: result.kind,
    timed_out: result.timed_out,
    ...(result.truncated ? { truncated: true } : {}),
    ...(result.danger ? { danger: result.danger.pattern } : {}),
  };
}

function validate(input: ShellInput): { cmd: string; timeoutMs: number } {
  const bad = (what: string): never => {
    throw new OstkError("bad_input", `shell: ${what}`);
  };
  const cmd = input?.cmd;
  if (typeof cmd !== "string" || cmd.trim() === "") bad("expected a non-empty 'cmd' string");
  if (cmd.includes("\0")) bad("'cmd' contains NUL");
  const size = new TextEncoder().encode(cmd).length;
  if (size > MAX_CMD_BYTES) bad(`'cmd' is ${size} bytes; the limit is ${MAX_CMD_BYTES}`);
  const t = input.timeout_s ?? DEFAULT_TIMEOUT_S;
  if (typeof t !== "number" || !Number.isFinite(t) || t <= 0 || t > MAX_TIMEOUT_S) {
    bad(`'timeout_s' must be a number of seconds in (0, ${MAX_TIMEOUT_S}], got ${t}`);
  }
  return { cmd, timeoutMs: Math.ceil(t * 1000) };
}

async function requireDirectory(abs: string, rel: string): Promise<void> {
  try {
    if ((await Deno.stat(abs)).isDirectory) return;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError("not_found", `shell: cwd '${rel}' does not exist`);
    }
    throw err;
  }
  throw new OstkError("bad_input", `shell: cwd '${rel}' is not a directory`);
}

interface Run {
  code: number;
  signal?: Deno.Signal;
  text: string;
  total: number;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

async function execute(
  cmd: string,
  cwd: string,
  timeoutMs: number,
  ctx: ShellContext,
): Promise<Run> {
  const grace = ctx.killGraceMs ?? 2000;
  // `exec 2>&1` first, on the same line, so stderr shares stdout's pipe (true interleaving) and
  // the command's own line numbers in shell errors stay right.
  const argv = ["sh", "-c", `exec 2>&1; ${cmd}`];
  const opts: ShellSpawnOptions = {
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  };
  const started = performance.now();
  let child: Deno.ChildProcess;
  try {
    child = (ctx.sandbox ?? plainSpawner).spawn(argv, opts);
  } catch (err) {
    throw new OstkError("io", `shell: cannot start sh: ${err}`);
  }
  const tap = new OutputTap(ctx.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES);
  const readers = [child.stdout.getReader(), child.stderr.getReader()];
  const drained = Promise.all(readers.map((r) => tap.drain(r)));
  let timedOut = false;
  let exited = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const deadline = setTimeout(() => {
    timedOut = true;
    signalGroup(child.pid, "SIGTERM", !exited);
    killTimer = setTimeout(() => signalGroup(child.pid, "SIGKILL", !exited), grace);
  }, timeoutMs);
  let status: Deno.CommandStatus;
  try {
    status = await child.status;
    exited = true;
  } finally {
    clearTimeout(deadline);
    clearTimeout(killTimer);
  }
  // The pgid stays reserved while any member lives (Linux will not hand out a pid still in use
  // as a process group id), so signalling it after the leader is reaped cannot hit a stranger.
  if (!await settled(drained, DRAIN_MS)) {
    signalGroup(child.pid, "SIGTERM");
    if (!await settled(drained, grace)) {
      signalGroup(child.pid, "SIGKILL");
      // Someone outside the group (setsid) still holds the pipe: stop reading, do not hang.
      if (!await settled(drained, grace)) await Promise.all(readers.map((r) => r.cancel()));
    }
  }
  await drained;
  return {
    code: status.code,
    ...(status.signal ? { signal: status.signal } : {}),
    text: tap.text(),
    total: tap.total,
    truncated: tap.total > tap.cap,
    timedOut,
    durationMs: Math.round(performance.now() - started),
  };
}

/**
 * Signal the process group led by `pid`; a group already gone is not an error. A spawner that
 * ignored `detached` leaves no group to signal; while the shell is known to be running (its pid
 * cannot have been reused yet) the shell itself is signalled, so the call still ends.
 */
function signalGroup(pid: number, signal: Deno.Signal, leaderRunning = false): void {
  for (const target of leaderRunning ? [-pid, pid] : [-pid]) {
    try {
      Deno.kill(target, signal);
      return;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

/** True when `p` settles within `ms`; the timer is always cleared. */
async function settled(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A bounded output buffer: keeps the first and the last `cap / 2` bytes and counts the rest, so
 * a command that prints gigabytes neither exhausts memory nor hides its final error.
 */
class OutputTap {
  readonly cap: number;
  total = 0;
  #head: Uint8Array[] = [];
  #headBytes = 0;
  #tail: Uint8Array[] = [];
  #tailBytes = 0;

  constructor(cap: number) {
    this.cap = Math.max(2, cap);
  }

  async drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.#push(value);
    }
  }

  #push(chunk: Uint8Array): void {
    this.total += chunk.length;
    const half = Math.floor(this.cap / 2);
    const room = half - this.#headBytes;
    if (room > 0) {
      this.#head.push(chunk.subarray(0, room));
      this.#headBytes += Math.min(room, chunk.length);
      chunk = chunk.subarray(room);
    }
    if (chunk.length === 0) return;
    this.#tail.push(chunk);
    this.#tailBytes += chunk.length;
    const keep = this.cap - half;
    while (this.#tailBytes - this.#tail[0].length >= keep) {
      this.#tailBytes -= this.#tail.shift()!.length;
    }
  }

  text(): string {
    const decode = (parts: Uint8Array[], skip = 0) => {
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) all.set(p, (at += p.length) - p.length);
      return new TextDecoder().decode(all.subarray(skip));
    };
    if (this.total <= this.cap) return decode([...this.#head, ...this.#tail]);
    const skip = this.#tailBytes - (this.cap - Math.floor(this.cap / 2));
    const dropped = this.total - this.cap;
    return `${decode(this.#head)}\n… [output truncated: ${dropped} bytes dropped here] …\n` +
      decode(this.#tail, skip);
  }
}
