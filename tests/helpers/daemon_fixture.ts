/**
 * Test helper for the daemon end-to-end tests (tests/actors/daemon_*_test.ts): scratch projects
 * with their own operator key, a real `ostk listen` process that is always killed in the end,
 * socket clients, and polling for a condition under an overall deadline (never a sleep that
 * decides an outcome).
 */
import { DaemonClient } from "../../actors/client.ts";
import { isAgentLeader } from "../../actors/cpu_command.ts";
import { type Frame, readFrames } from "../../actors/framing.ts";
import type { MethodName, MethodParams } from "../../actors/protocol.ts";
import { findSocketPath } from "../../actors/socket_path.ts";
import type { PsRow } from "../../cli/sessions.ts";
import { type AuditRow, readAuditRows } from "../../kernel/audit.ts";
import { loadOrCreateOperatorKey } from "../../kernel/identity.ts";
import { type OstkPaths, ostkPaths } from "../../kernel/layout.ts";
import { procStat } from "../../kernel/proc.ts";
import { initProject } from "../../kernel/project_init.ts";
import { ostkCommand, type OstkResult, runOstk, type Scratch, withScratch } from "./run_ostk.ts";

export type { PsRow };

/** The agent program command sessions run (see its header for flags). */
export const FAKE_AGENT = decodeURIComponent(new URL("./fake_agent.ts", import.meta.url).pathname);

/** The scripted transcripts in fixtures/agents/. */
export const AGENT_FIXTURES = decodeURIComponent(
  new URL("../../fixtures/agents/", import.meta.url).pathname,
);

/** How long a daemon may take to answer after it was started. */
const READY_MS = 20_000;

/** One initialised project in a scratch directory, and the env every process of it needs. */
export interface Project {
  scratch: Scratch;
  root: string;
  paths: OstkPaths;
  /** The operator key (OSTK_IDENTITY) shared by the projects of one scratch directory. */
  keyPath: string;
  env: Record<string, string>;
}

/**
 * Make a scratch directory holding one initialised project per name, run `fn`, remove it all.
 *
 * @example
 * ```ts ignore
 * await withProjects(["a", "b"], async ([a, b]) => { ... });
 * ```
 */
export function withProjects(
  names: string[],
  fn: (projects: Project[]) => Promise<void>,
): Promise<void> {
  return withScratch(async (scratch) => {
    const keyPath = `${scratch.dir}/key/identity.key`;
    const key = await loadOrCreateOperatorKey(keyPath);
    const projects: Project[] = [];
    for (const name of names) {
      const dir = `${scratch.dir}/${name}`;
      await Deno.mkdir(dir);
      const { root } = await initProject(dir, key);
      projects.push({
        scratch,
        root,
        paths: ostkPaths(root),
        keyPath,
        env: { OSTK_IDENTITY: keyPath },
      });
    }
    await fn(projects);
  });
}

/** `withProjects` for a single project. */
export function withProject(fn: (project: Project) => Promise<void>): Promise<void> {
  return withProjects(["p"], ([project]) => fn(project));
}

/** Run the real CLI in the project's root with its key. */
export function ostk(project: Project, args: string[]): Promise<OstkResult> {
  return runOstk(project.scratch, args, { cwd: project.root, env: project.env });
}

/** A daemon started by the test as its own child process. */
export interface DaemonProcess {
  pid: number;
  /** Resolves once the process has exited and its output is read. */
  exited: Promise<Deno.CommandStatus>;
  /** What it printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Signal it; a process that already exited is not an error. */
  kill(signal?: Deno.Signal): void;
}

/**
 * Start `ostk listen --tick-ms 100 <flags>` for `project` and resolve once its socket answers
 * `daemon/status` with this process's pid. A daemon that does not answer is killed before the
 * error is thrown, so a failing start leaks nothing.
 */
export async function startDaemonProcess(
  project: Project,
  flags: string[] = [],
): Promise<DaemonProcess> {
  const command = await ostkCommand(
    project.scratch,
    ["listen", "--tick-ms", "100", ...flags],
    { cwd: project.root, env: project.env },
  );
  const child = command.spawn();
  let text = "";
  const read = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  const exited = Promise.all([read(child.stdout), read(child.stderr)]).then(() => child.status);
  let gone = false;
  exited.then(() => (gone = true), () => (gone = true));
  const daemon: DaemonProcess = {
    pid: child.pid,
    exited,
    output: () => text,
    kill(signal = "SIGKILL") {
      if (gone) return;
      try {
        child.kill(signal);
      } catch (err) {
        // Deno throws a TypeError for a child that has already terminated.
        if (!(err instanceof TypeError || err instanceof Deno.errors.NotFound)) throw err;
      }
    },
  };
  try {
    await waitFor(`daemon pid ${child.pid} to answer`, async () => {
      if (gone) throw new Error(`the daemon exited before answering:\n${text}`);
      const status = await tryStatus(project);
      return status?.pid === child.pid;
    }, READY_MS);
  } catch (err) {
    daemon.kill("SIGKILL");
    await exited;
    throw err;
  }
  return daemon;
}

/** SIGKILL a daemon child (if still running) and wait until it has exited. */
export async function killDaemonProcess(daemon: DaemonProcess | undefined): Promise<void> {
  if (!daemon) return;
  daemon.kill("SIGKILL");
  await daemon.exited;
}

/** The daemon's `daemon/status`, or undefined when nothing answers on the socket. */
export async function tryStatus(
  project: Project,
): Promise<{ pid: number; uptime_ms: number } | undefined> {
  let client: DaemonClient;
  try {
    client = await DaemonClient.connect(findSocketPath(project.paths));
  } catch (err) {
    if ((err as { code?: string }).code === "not_found") return undefined;
    throw err;
  }
  try {
    return await client.request("daemon/status", {}) as { pid: number; uptime_ms: number };
  } catch {
    // A daemon that is starting or dying may accept and then drop the connection.
    return undefined;
  } finally {
    await closeClient(client);
  }
}

/** Connect a client to the project's daemon. */
export function connect(project: Project): Promise<DaemonClient> {
  return DaemonClient.connect(findSocketPath(project.paths));
}

/** Close a client and wait for its read loop, so no op outlives the test. */
export async function closeClient(client: DaemonClient | undefined): Promise<void> {
  if (!client) return;
  client.close();
  await client.done.catch(() => undefined);
}

/** A typed request. */
export async function call<T, M extends MethodName = MethodName>(
  client: DaemonClient,
  method: M,
  params: MethodParams<M>,
): Promise<T> {
  return await client.request(method, params) as T;
}

/** The process table. */
export async function ps(client: DaemonClient): Promise<PsRow[]> {
  return (await call<{ sessions: PsRow[] }>(client, "session/list", {})).sessions;
}

/** Poll `ps` until `done` holds for its rows; a timeout shows the last rows seen. */
export async function waitForRows(
  client: DaemonClient,
  what: string,
  done: (rows: PsRow[]) => boolean,
  timeoutMs = 20_000,
): Promise<PsRow[]> {
  let last: PsRow[] = [];
  try {
    return await waitFor(what, async () => {
      last = await ps(client);
      return done(last) ? last : undefined;
    }, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last ps: ${JSON.stringify(last)}`);
  }
}

/** One session's row, or a failure naming what `ps` did show. */
export function rowOf(rows: PsRow[], alias: string): PsRow {
  const row = rows.find((r) => r.alias === alias);
  if (!row) throw new Error(`no ps row for ${alias}: ${JSON.stringify(rows)}`);
  return row;
}

/**
 * Poll `probe` every `intervalMs` until it returns something truthy, and return that. Throws
 * after `timeoutMs` naming what was awaited and the last value seen: the deadline is a safety
 * net that fails the test, never what decides a passing outcome.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T> | T,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Every row of the project's audit log. */
export function auditRows(project: Project): Promise<AuditRow[]> {
  return readAuditRows(project.paths.audit);
}

/** Rows that concern `alias`: the filter `client/subscribe` applies for `{alias}`. */
export function concerns(row: AuditRow, alias: string): boolean {
  return row.actor === alias || row.alias === alias || row.session === alias;
}

/** True when `pid` is no longer a live process (gone, or a zombie nobody has reaped yet). */
export async function processGone(pid: number): Promise<boolean> {
  const stat = await procStat(pid);
  return stat === undefined || stat[0] === "Z";
}

/** `kill -0 <pid>`: whether a signal can still be delivered to `pid`. */
export async function signalable(pid: number): Promise<boolean> {
  const { success } = await new Deno.Command("kill", {
    args: ["-0", String(pid)],
    stdout: "null",
    stderr: "null",
  }).output();
  return success;
}

/**
 * End what may be left of a command session's agent: SIGKILL its group, then SIGCONT (a
 * SIGSTOPped leader must not linger). Only signalled while `pid` still leads its own group
 * and carries `alias`, so a recycled pid is never touched.
 */
export async function killAgent(pid: number | null | undefined, alias: string): Promise<void> {
  if (!pid || !(await isAgentLeader(pid, alias))) return;
  for (const signal of ["SIGKILL", "SIGCONT"] as const) {
    try {
      Deno.kill(-pid, signal);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

/** SIGKILL a daemon the test did not start as its child (`listen --background`). */
export async function killPid(pid: number | undefined): Promise<void> {
  if (!pid || (await processGone(pid))) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await waitFor(`pid ${pid} to exit`, () => processGone(pid), 10_000);
}

/** The argv of a fake agent that prints, then sleeps `sleepMs` without calling the kernel. */
export function fakeAgent(sleepMs: number, ...extra: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-env",
    "--allow-run=sleep",
    FAKE_AGENT,
    "--sleep-ms",
    String(sleepMs),
    ...extra,
  ];
}

/**
 * Copy `fixtures/agents/<name>.jsonl` to `dest` with every turn's `think_ms` set to `thinkMs`:
 * the same calls, paced so a test can act between turns without racing the agent.
 */
export async function pacedTranscript(
  name: string,
  dest: string,
  thinkMs: number,
): Promise<string> {
  const text = await Deno.readTextFile(`${AGENT_FIXTURES}${name}.jsonl`);
  const lines = text.split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.stringify({ ...JSON.parse(l), think_ms: thinkMs })
  );
  await Deno.writeTextFile(dest, lines.join("\n") + "\n");
  return dest;
}

/**
 * A raw socket connection that writes any bytes and reads whole lines: for input DaemonClient
 * would never send and answers it would not parse.
 */
export class RawConn {
  #conn: Deno.UnixConn;
  #frames: AsyncGenerator<Frame>;
  #closed = false;

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
    this.#frames = readFrames(conn.readable, 64 * 1024 * 1024);
  }

  static async open(project: Project): Promise<RawConn> {
    const path = findSocketPath(project.paths);
    return new RawConn(await Deno.connect({ transport: "unix", path }));
  }

  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** The next line, or undefined at the end of the stream; throws after `timeoutMs`. */
  async line(timeoutMs = 15_000): Promise<string | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no line within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const next = await Promise.race([this.#frames.next(), timeout]);
      if (next.done) return undefined;
      if (!("line" in next.value)) throw new Error("the daemon sent an over-long line");
      return next.value.line;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Half-close: the daemon sees the end of its input, we can still read. */
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
    // Let the frame reader see the end of the stream so no read is left pending.
    await this.#frames.return(undefined).catch(() => undefined);
  }
}
