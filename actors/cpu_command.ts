/**
 * The command CPU: an external agent program as a real OS subprocess, leader of its own
 * process group (`detached: true` makes Deno call setsid), so one signal reaches the agent and
 * everything it started. Its kernel calls arrive over the daemon socket (`OSTK_SOCKET`, as
 * `OSTK_AGENT`), so this CPU only relays output lines and reports how the process ended.
 */
import { killGroup, processGroupOf, readProc } from "../kernel/proc.ts";
import { OstkError } from "../kernel/errors.ts";
import type { Cpu, CpuResult, CpuRunContext } from "./cpu.ts";

/** SIGTERM → SIGKILL delay on abort when the spec gives none. */
export const DEFAULT_GRACE_MS = 5000;

/** Longest output line passed on whole; longer lines are cut into pieces of this size. */
const MAX_LINE_CHARS = 64 * 1024;

/** The command CPU's part of a `CpuSpec`. */
export interface CommandSpec {
  command: string[];
  cwd?: string;
  env?: Record<string, string>;
  graceMs?: number;
}

/** A running agent program. `pid` is set once the process has started. */
export class CommandCpu implements Cpu {
  readonly kind = "command" as const;
  readonly spec: CommandSpec;
  #socketPath: string;
  #pid: number | undefined;

  constructor(spec: CommandSpec, deps: { socketPath: string }) {
    this.spec = spec;
    this.#socketPath = deps.socketPath;
  }

  /** The agent's pid, which is also its process group id. */
  get pid(): number | undefined {
    return this.#pid;
  }

  async run(ctx: CpuRunContext): Promise<CpuResult> {
    if (ctx.signal.aborted) return { reason: "aborted" };
    const [program, ...args] = this.spec.command;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(program, {
        args,
        cwd: this.spec.cwd,
        env: {
          ...this.spec.env,
          OSTK_SOCKET: this.#socketPath,
          OSTK_AGENT: ctx.alias,
          OSTK_START_TURN: String(ctx.startTurn),
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        detached: true,
      }).spawn();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new OstkError("not_found", `agent program '${program}' not found`, {}, "check PATH");
      }
      throw err;
    }
    const pid = child.pid;
    this.#pid = pid;
    const output = Promise.all([
      readLines(child.stdout, (line) => ctx.onOutput("stdout", line)),
      readLines(child.stderr, (line) => ctx.onOutput("stderr", line)),
    ]);

    let aborted = false;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      aborted = true;
      killGroup(pid, "SIGTERM");
      const grace = this.spec.graceMs ?? DEFAULT_GRACE_MS;
      killTimer = setTimeout(() => killGroup(pid, "SIGKILL"), grace);
    };
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    ctx.onStart?.({ pid });

    const status = await child.status;
    ctx.signal.removeEventListener("abort", onAbort);
    clearTimeout(killTimer);
    // The leader is gone; whatever it left in its group goes too. Besides ending the session's
    // processes, this closes the pipes they still hold, so the line readers below can finish.
    killGroup(pid, "SIGKILL");
    await output;
    if (aborted) return { reason: "aborted", code: status.code };
    // A signal we did not send (the OOM killer, a segfault, someone's kill -9) is a crash,
    // not the agent's own decision to stop; the session machine tells the two apart by it.
    return status.signal === null
      ? { reason: "exited", code: status.code }
      : { reason: "exited", code: status.code, signal: status.signal };
  }
}

/**
 * True when `pid` is still the leader of its own group and was started for `alias` (its
 * environment holds `OSTK_AGENT=<alias>`): the check that a pid from a drain snapshot has not
 * been reused by an unrelated process before the group is signalled.
 */
export async function isAgentLeader(pid: number, alias: string): Promise<boolean> {
  if ((await processGroupOf(pid)) !== pid) return false;
  const environ = await readProc(pid, "environ"); // unreadable for other users' processes
  return environ !== undefined && environ.split("\0").includes(`OSTK_AGENT=${alias}`);
}

/** Feed `stream` to `onLine` one line at a time (without the newline), bounded per line. */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let pending = "";
  const emit = (line: string) => onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      emit(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    while (pending.length > MAX_LINE_CHARS) {
      emit(pending.slice(0, MAX_LINE_CHARS));
      pending = pending.slice(MAX_LINE_CHARS);
    }
  }
  if (pending !== "") emit(pending);
}
