/**
 * The daemon's driver supervisor: HUMANFILE's outbound MCP servers, started on first use, kept
 * connected for later calls, stopped after an idle time, and restarted with backoff when one
 * crashes (each crash audited as `driver.crash {server, code, restarts}`). Every server runs
 * under the sandbox of its caller: a session with a sandbox policy gets a process under that
 * policy; the operator (or a session without one) gets the default, the project read-only (no
 * project writes), no network. Either way the driver's own paths are readable and it has a
 * private TMPDIR. One process runs per (driver, effective policy), each with its own idle stop
 * and crash restart.
 */
import type { AuditLog } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { defaultPolicy, type SandboxPolicy } from "../sandbox/mod.ts";
import { type DriverEntry, findDriver, writeDriverStatus } from "../drivers/driver_registry.ts";
import {
  callTool,
  DEFAULT_TIMEOUT_MS,
  type DriverConnection,
  type DriverToolResult,
  listTools,
  spawnDriver,
} from "../drivers/outbound.ts";
import { makeAgentTmp, removeAgentTmp, sandboxedArgv } from "./limits.ts";

/** Supervisor settings; tests shrink the times. */
export interface DriverSupervisorOptions {
  /** Stop a driver unused for this long (default 5 min). */
  idleMs?: number;
  /** First restart delay after a crash; doubled per restart up to `backoffMaxMs`. */
  backoffMs?: number;
  backoffMaxMs?: number;
  /** Restarts in a row before a driver is left failed. */
  maxRestarts?: number;
  timeoutMs?: number;
}

export const DEFAULT_DRIVER_IDLE_MS = 5 * 60_000;

/** One running (or failed) driver as `driver/list` reports it. */
export interface DriverRuntime {
  name: string;
  /** Whose policy the process runs under: the default (read-only project) or a session's. */
  policy: "default" | "session";
  state: "starting" | "running" | "backoff" | "failed" | "stopped";
  pid: number | null;
  restarts: number;
  tools: number | null;
  error?: string;
  idle_ms: number | null;
}

interface Slot {
  entry: DriverEntry;
  /** The effective policy the process runs under, and where it came from. */
  policy: SandboxPolicy;
  origin: DriverRuntime["policy"];
  state: DriverRuntime["state"];
  conn?: DriverConnection;
  starting?: Promise<DriverConnection>;
  tmpdir?: string;
  restarts: number;
  tools: number | null;
  error?: string;
  lastUsed: number;
  busy: number;
  idleTimer?: ReturnType<typeof setTimeout>;
  restartTimer?: ReturnType<typeof setTimeout>;
  /** Set while we stop the driver ourselves (idle, shutdown): its exit is not a crash. */
  stopping: boolean;
}

/**
 * The sandbox a driver runs under: `base` plus read on the driver's own paths and a private
 * TMPDIR. Writes inside the project are dropped unless `projectWrites` (a calling session's own
 * policy, whose grants the driver inherits).
 */
export function driverPolicy(
  base: SandboxPolicy,
  root: string,
  entry: DriverEntry,
  projectWrites = false,
): SandboxPolicy {
  const inside = (p: string) => p === root || p.startsWith(`${root}/`);
  // The program, its script and config files, and paths in its env words must be readable.
  const read = new Set(base.read);
  for (const word of [...entry.command, ...Object.values(entry.env)]) {
    if (!word.startsWith("/")) continue;
    try {
      const info = Deno.statSync(word);
      read.add(info.isDirectory ? word : word.slice(0, word.lastIndexOf("/")) || "/");
    } catch {
      // not a path on this machine
    }
  }
  return {
    ...base,
    read: [...read],
    write: projectWrites ? [...base.write] : base.write.filter((p) => !inside(p)),
    tmp: true,
  };
}

export class DriverSupervisor {
  #paths: OstkPaths;
  #log: AuditLog;
  #opts: Required<DriverSupervisorOptions>;
  #slots = new Map<string, Slot>();
  #closed = false;

  constructor(paths: OstkPaths, log: AuditLog, options: DriverSupervisorOptions = {}) {
    this.#paths = paths;
    this.#log = log;
    this.#opts = {
      idleMs: options.idleMs ?? DEFAULT_DRIVER_IDLE_MS,
      backoffMs: options.backoffMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 30_000,
      maxRestarts: options.maxRestarts ?? 5,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    };
  }

  /**
   * Call `tool` on `name`, starting the driver when it is not running; audited driver.call.
   * `callerPolicy` is the calling session's sandbox policy (undefined: the default policy); the
   * call goes to the process running under that effective policy.
   */
  async call(
    name: string,
    tool: string,
    args: Record<string, unknown>,
    actor = "operator",
    timeoutMs = this.#opts.timeoutMs,
    callerPolicy?: SandboxPolicy,
  ): Promise<{ result: DriverToolResult; pid: number | null; duration_ms: number; cold: boolean }> {
    const started = performance.now();
    const slot = await this.#slot(name, callerPolicy);
    slot.busy++;
    let result: DriverToolResult | undefined;
    let failure: Error | undefined;
    let cold = false;
    let pid: number | null = null;
    try {
      cold = !slot.conn;
      const conn = await this.#ensure(slot);
      pid = conn.pid ?? null;
      result = await callTool(name, conn, tool, args, timeoutMs);
    } catch (e) {
      failure = e as Error;
    } finally {
      slot.busy--;
      slot.lastUsed = Date.now();
      this.#armIdle(slot);
    }
    const durationMs = Math.round(performance.now() - started);
    await this.#log.append({
      event: "driver.call",
      actor,
      fields: {
        server: name,
        tool,
        duration_ms: durationMs,
        bytes: result ? new TextEncoder().encode(JSON.stringify(result)).length : 0,
        ok: result !== undefined && !result.isError,
        via: "daemon",
        ...(pid !== null ? { pid } : {}),
        ...(failure ? { error: failure.message.split("\n")[0] } : {}),
      },
    });
    if (failure) throw failure;
    return { result: result!, pid, duration_ms: durationMs, cold };
  }

  /** What the daemon knows of each driver it has started. */
  list(): DriverRuntime[] {
    return [...this.#slots.values()].map((s) => ({
      name: s.entry.name,
      policy: s.origin,
      state: s.state,
      pid: s.conn?.pid ?? null,
      restarts: s.restarts,
      tools: s.tools,
      ...(s.error ? { error: s.error } : {}),
      idle_ms: s.conn ? Date.now() - s.lastUsed : null,
    }));
  }

  /** Stop every driver (daemon shutdown). */
  async stopAll(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#slots.values()].map((s) => this.#stop(s, "stopped")));
  }

  async #slot(name: string, callerPolicy: SandboxPolicy | undefined): Promise<Slot> {
    if (this.#closed) throw new OstkError("io", "the daemon is stopping");
    const root = this.#paths.root;
    const entry = await findDriver(this.#paths, name);
    const policy = callerPolicy
      ? driverPolicy(callerPolicy, root, entry, true)
      : driverPolicy(await defaultPolicy(root), root, entry);
    const key = `${name}\0${policyKey(policy)}`;
    let slot = this.#slots.get(key); // another call may have made it meanwhile
    if (!slot) {
      if (this.#closed) throw new OstkError("io", "the daemon is stopping");
      slot = {
        entry,
        policy,
        origin: callerPolicy ? "session" : "default",
        state: "stopped",
        restarts: 0,
        tools: null,
        lastUsed: Date.now(),
        busy: 0,
        stopping: false,
      };
      this.#slots.set(key, slot);
    }
    return slot;
  }

  /** The slot's connection, starting the driver when there is none. */
  #ensure(slot: Slot): Promise<DriverConnection> {
    if (slot.conn) return Promise.resolve(slot.conn);
    if (slot.starting) return slot.starting;
    clearTimeout(slot.restartTimer);
    slot.restartTimer = undefined;
    slot.state = "starting";
    const starting = this.#start(slot).finally(() => (slot.starting = undefined));
    slot.starting = starting;
    return starting;
  }

  async #start(slot: Slot): Promise<DriverConnection> {
    const { entry } = slot;
    const root = this.#paths.root;
    const policy = slot.policy;
    removeAgentTmp(slot.tmpdir);
    const tmpdir = slot.tmpdir = makeAgentTmp();
    let conn: DriverConnection;
    try {
      conn = await spawnDriver(
        entry,
        root,
        this.#opts.timeoutMs,
        (argv) => sandboxedArgv(policy, argv, tmpdir),
      );
      slot.tools = (await listTools(entry.name, conn, this.#opts.timeoutMs).catch(() => []))
        .length;
    } catch (err) {
      removeAgentTmp(tmpdir);
      slot.tmpdir = undefined;
      slot.state = "failed";
      slot.error = (err as Error).message;
      await writeDriverStatus(this.#paths, entry.name, { state: "failed", error: slot.error })
        .catch(() => {});
      throw err;
    }
    slot.conn = conn;
    slot.state = "running";
    slot.error = undefined;
    slot.stopping = false;
    slot.lastUsed = Date.now();
    this.#armIdle(slot);
    void conn.exited.then(() => this.#exited(slot, conn));
    await this.#log.append({
      event: "driver.start",
      actor: "kernel",
      fields: {
        server: entry.name,
        pid: conn.pid ?? null,
        tools: slot.tools,
        restarts: slot.restarts,
      },
    }).catch(() => {});
    return conn;
  }

  #armIdle(slot: Slot): void {
    clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    if (!slot.conn || this.#closed) return;
    slot.idleTimer = setTimeout(() => {
      if (slot.busy > 0) return this.#armIdle(slot);
      void this.#stop(slot, "stopped", "idle");
    }, this.#opts.idleMs);
  }

  async #stop(slot: Slot, state: DriverRuntime["state"], reason?: string): Promise<void> {
    clearTimeout(slot.idleTimer);
    clearTimeout(slot.restartTimer);
    slot.idleTimer = slot.restartTimer = undefined;
    const conn = slot.conn ?? await slot.starting?.catch(() => undefined);
    slot.stopping = true;
    slot.conn = undefined;
    slot.state = state;
    if (conn) {
      await conn.close();
      removeAgentTmp(slot.tmpdir);
      slot.tmpdir = undefined;
      if (reason) {
        await this.#log.append({
          event: "driver.stop",
          actor: "kernel",
          fields: { server: slot.entry.name, pid: conn.pid ?? null, reason },
        }).catch(() => {});
      }
    }
  }

  /** The process is gone: ours to stop, or a crash to audit and restart after a backoff. */
  async #exited(slot: Slot, conn: DriverConnection): Promise<void> {
    if (slot.stopping || this.#closed || (slot.conn !== conn && slot.conn !== undefined)) return;
    slot.conn = undefined;
    clearTimeout(slot.idleTimer);
    removeAgentTmp(slot.tmpdir);
    slot.tmpdir = undefined;
    const code = conn.exitCode?.() ?? null;
    slot.restarts++;
    slot.error = `exited with code ${code}`;
    await this.#log.append({
      event: "driver.crash",
      actor: "kernel",
      fields: { server: slot.entry.name, code, restarts: slot.restarts, pid: conn.pid ?? null },
    }).catch(() => {});
    this.#scheduleRestart(slot);
  }

  #scheduleRestart(slot: Slot): void {
    if (this.#closed) return;
    if (slot.restarts > this.#opts.maxRestarts) {
      slot.state = "failed";
      void writeDriverStatus(this.#paths, slot.entry.name, {
        state: "failed",
        error: `${slot.error}; gave up after ${slot.restarts - 1} restarts`,
      }).catch(() => {});
      return;
    }
    slot.state = "backoff";
    const delay = Math.min(
      this.#opts.backoffMs * 2 ** (slot.restarts - 1),
      this.#opts.backoffMaxMs,
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (slot.conn || slot.starting || this.#closed) return;
      this.#ensure(slot).catch(() => {
        slot.restarts++;
        this.#scheduleRestart(slot);
      });
    }, delay);
  }
}

/** A stable key for a policy: the same grants in any order give the same key. */
function policyKey(policy: SandboxPolicy): string {
  const sorted = (xs: string[]) => [...new Set(xs)].sort();
  const net = typeof policy.net === "object"
    ? {
      connect: [...new Set(policy.net.connect)].sort((a, b) => a - b),
      bind: [...new Set(policy.net.bind)].sort((a, b) => a - b),
    }
    : policy.net;
  return JSON.stringify([
    sorted(policy.read),
    sorted(policy.write),
    net,
    policy.tmp,
    policy.allow_metadata,
    policy.allow_unsandboxed,
  ]);
}
