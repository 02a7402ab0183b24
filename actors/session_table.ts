/**
 * The process table: every session the daemon knows, as children of the root actor. Spawning,
 * killing, heartbeats, the scheduler's health pass, revival after crashes, and the rebuild from
 * the audit log and drain snapshots when the daemon starts.
 */
import type { Actor, AnyActorRef, SnapshotFrom } from "xstate";
import { issueAlias } from "../kernel/alias.ts";
import { type ModelInfo, readPriceOverrides } from "./llm/prices.ts";
import type { AuditEntry } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import { isOutcome, SESSION_OUTCOMES, type SessionOutcome } from "../kernel/session_outcome.ts";
import type { ToolClass } from "../kernel/agentfile_schema.ts";
import type { ShellSpawner } from "../kernel/shell.ts";
import type { ToolResponse } from "../kernel/tools.ts";
import { cpuRunnerLogic, type KernelPort, rehydratorLogic } from "./cpu.ts";
import { isAgentLeader } from "./cpu_command.ts";
import { procStat } from "../kernel/proc.ts";
import type { DaemonContext } from "./daemon.ts";
import { drainWriterLogic, readDrain } from "./drain.ts";
import { handoffPath } from "./llm/handoff.ts";
import { callKernel } from "./kernel_gate.ts";
import {
  type LimitHit,
  limitHit,
  makeAgentTmp,
  removeAgentTmp,
  sandboxedArgv,
  sandboxedShell,
  sandboxRefusal,
  type SessionSettings,
  settingsFields,
  settingsFor,
  settingsFromRow,
  spendUsd,
} from "./limits.ts";
import type { MethodParams } from "./protocol.ts";
import type { rootMachine } from "./root_machine.ts";
import { READABLE_DRAIN_VERSIONS, sessionMachine } from "./session_machine.ts";
import type {
  CpuSpec,
  DrainSnapshot,
  Revival,
  SessionEnding,
  SessionInput,
} from "./session_schema.ts";
import { validateCpu } from "./session_validate.ts";

/** Heartbeat ages that mark a session stale, then crashed. */
export interface SessionThresholds {
  staleMs: number;
  crashedMs: number;
}

export const DEFAULT_THRESHOLDS: SessionThresholds = { staleMs: 30_000, crashedMs: 90_000 };

/** Revivals allowed per session within a minute before it is left orphaned. */
const REVIVE_LIMIT = 3;

type SessionSnapshot = SnapshotFrom<typeof sessionMachine>;

interface Entry {
  alias: string;
  cpu: CpuSpec;
  revival: Revival;
  ref?: AnyActorRef;
  /** Where the next life starts: set while queued, or between launch and the root being up. */
  queued?: { startTurn: number; carried?: Partial<SessionInput> };
  state: string;
  outputs: Set<(stream: "stdout" | "stderr", line: string) => void>;
  watchers: Set<(state: string) => void>;
  revives: number[];
  unsubscribe?: () => void;
  exitLogged?: boolean;
  settings: SessionSettings;
  /** Set once a LIMIT stopped the session (the machine then ends it `limited`). */
  limitHit?: LimitHit;
  /** How the session ended, once it has (`state` is then the outcome), for `ps`. */
  ending?: SessionEnding;
  /** How long its approval questions wait for the operator, when not the daemon's default. */
  approvalTimeoutMs?: number;
  /** Why a session restored from the log is orphaned (it has no actor to say so yet). */
  orphanedBy?: string;
  /** A sandboxed command agent's private TMPDIR for the current life. */
  tmpdir?: string;
}

/** The sessions of one daemon. */
export class SessionTable {
  #ctx: DaemonContext;
  #entries = new Map<string, Entry>();
  #thresholds: SessionThresholds;
  #concurrency: number;
  #root?: Actor<typeof rootMachine>;

  constructor(
    ctx: DaemonContext,
    options: { thresholds?: Partial<SessionThresholds>; concurrency: number },
  ) {
    this.#ctx = ctx;
    this.#thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
    this.#concurrency = Math.max(1, options.concurrency);
  }

  /** The session logic with the daemon's I/O wired in; the root provides it as `session`. */
  logic() {
    return sessionMachine.provide({
      actors: {
        cpuRunner: cpuRunnerLogic({
          kernel: (alias) => this.#port(alias),
          projectRoot: this.#ctx.paths.root,
          socketPath: this.#ctx.socket,
          now: Date.now,
          onOutput: (alias, stream, line) => {
            for (const fn of this.#entries.get(alias)?.outputs ?? []) fn(stream, line);
          },
          onModelRetry: (alias, r) => {
            this.#append("model.retry", {
              session: alias,
              attempt: r.attempt,
              status: r.status ?? null,
              wait_ms: r.delay_ms,
              reason: r.reason,
            });
            const line = `[llm] retry ${r.attempt} (${r.reason}${
              r.status ? ` ${r.status}` : ""
            }) in ${r.delay_ms} ms`;
            for (const fn of this.#entries.get(alias)?.outputs ?? []) fn("stderr", line);
          },
        }),
        drainWriter: drainWriterLogic({
          dir: this.#ctx.paths.drain,
          anchor: this.#ctx.anchor.id,
          now: Date.now,
        }),
        rehydrator: rehydratorLogic(),
      },
    });
  }

  /** Called once the root actor runs; sessions are spawned as its children from then on. */
  attachRoot(root: Actor<typeof rootMachine>): void {
    this.#root = root;
    for (const entry of this.#entries.values()) {
      if (entry.state === "starting") this.#startChild(entry);
    }
  }

  #port(alias: string): KernelPort {
    return {
      call: (tool, args, opts) =>
        callKernel(this.#ctx, tool, args, { alias, callId: opts?.callId }),
    };
  }

  /** The operator's PRICE lines; a HUMANFILE that does not parse prices nothing, loudly. */
  #prices(): Record<string, ModelInfo> {
    try {
      return readPriceOverrides(this.#ctx.paths.root);
    } catch (err) {
      console.error(`ostk listen: ${(err as Error).message}`);
      return {};
    }
  }

  has(alias: string): boolean {
    return this.#entries.has(alias);
  }

  /** Start a session (or queue it while the concurrency limit is reached). */
  async spawn(p: MethodParams<"session/spawn">): Promise<{ alias: string; state: string }> {
    const existing = p.alias ? this.#entries.get(p.alias) : undefined;
    if (existing && !isOutcome(existing.state)) {
      throw new OstkError(
        "conflict",
        `session '${p.alias}' exists`,
        {},
        "kill it first, or pick another alias",
      );
    }
    const refused = sandboxRefusal(p.sandbox);
    if (refused) throw new OstkError("permission", refused);
    // Before any row is written: a CPU that cannot start is refused, not spawned to crash.
    await validateCpu(p.cpu as CpuSpec);
    const settings = await settingsFor(this.#ctx.paths.root, p, Date.now());
    let alias = p.alias ?? await issueAlias(this.#ctx.log, p.name ?? "agent", "operator");
    // An alias given explicitly at spawn has no agent.alias row, so the issuer cannot see it;
    // issue again rather than reuse a name a session of this daemon already carries.
    while (!p.alias && this.#entries.has(alias)) {
      alias = await issueAlias(this.#ctx.log, p.name ?? "agent", "operator");
    }
    const entry: Entry = {
      alias,
      cpu: p.cpu as CpuSpec,
      revival: p.revival ?? "revive",
      state: "queued",
      outputs: new Set(),
      watchers: new Set(),
      revives: [],
      settings,
      approvalTimeoutMs: p.approval_timeout_ms,
    };
    this.#entries.set(alias, entry);
    await this.#ctx.log.append({
      event: "session.spawn",
      actor: "operator",
      fields: {
        session: alias,
        alias,
        cpu: entry.cpu.kind,
        revival: entry.revival,
        spec: entry.cpu,
        ...settingsFields(p),
        ...(p.approval_timeout_ms ? { approval_timeout_ms: p.approval_timeout_ms } : {}),
      },
    });
    if (this.#running() < this.#concurrency) this.#launch(entry, 0);
    else entry.queued = { startTurn: 0 };
    await this.#ctx.tail.poll();
    return { alias, state: entry.state };
  }

  #running(): number {
    let n = 0;
    for (const e of this.#entries.values()) {
      if (e.ref && !isOutcome(e.state) && e.state !== "orphaned") n++;
    }
    return n;
  }

  #launch(entry: Entry, startTurn: number, carried?: Partial<SessionInput>): void {
    entry.exitLogged = false;
    entry.orphanedBy = undefined;
    entry.state = "starting";
    entry.queued = { startTurn, carried };
    if (this.#root) this.#startChild(entry);
  }

  #startChild(entry: Entry): void {
    const root = this.#root!;
    const { startTurn, carried } = entry.queued ?? { startTurn: 0 };
    entry.queued = undefined;
    // A fresh child id per life: the previous life's actor may still be winding down.
    const id = `session:${entry.alias}:${crypto.randomUUID().slice(0, 8)}`;
    const input: SessionInput = {
      alias: entry.alias,
      cpu: this.#cpuFor(entry),
      revival: entry.revival,
      startTurn,
      ...carried,
    };
    root.send({ type: "session.spawn_child", id, input });
    const ref = root.getSnapshot().children[id as never] as AnyActorRef | undefined;
    if (!ref) throw new Error(`session child ${id} did not start`);
    entry.unsubscribe?.();
    entry.ref = ref;
    const sub = ref.subscribe({
      next: (snap: SessionSnapshot) => this.#observe(entry, ref, snap),
      error: (err: unknown) => this.#failed(entry, ref, err),
    });
    entry.unsubscribe = () => sub.unsubscribe();
    this.#observe(entry, ref, ref.getSnapshot() as SessionSnapshot);
  }

  /** A sandboxed command CPU runs its agent through the exec helper, with a fresh TMPDIR. */
  #cpuFor(entry: Entry): CpuSpec {
    const policy = entry.settings.policy;
    if (entry.cpu.kind !== "command" || !policy) return entry.cpu;
    this.#dropTmp(entry);
    entry.tmpdir = policy.tmp ? makeAgentTmp() : undefined;
    return { ...entry.cpu, command: sandboxedArgv(policy, entry.cpu.command, entry.tmpdir) };
  }

  #dropTmp(entry: Entry): void {
    removeAgentTmp(entry.tmpdir);
    entry.tmpdir = undefined;
  }

  #observe(entry: Entry, ref: AnyActorRef, snap: SessionSnapshot): void {
    if (entry.ref !== ref) return;
    // Each turn (and every other change) is where a session can pass a limit.
    if (snap.hasTag("alive")) this.#checkLimits(entry, snap, "over");
    const state = labelOf(snap);
    if (state === entry.state) return;
    entry.state = state;
    for (const fn of entry.watchers) fn(state);
    if (isOutcome(state)) this.#ended(entry, snap, state);
    else if (state === "orphaned") this.#orphaned(entry, snap);
  }

  #ended(entry: Entry, snap: SessionSnapshot, outcome: SessionOutcome): void {
    entry.unsubscribe?.();
    this.#root?.send({ type: "session.stop_child", id: entry.ref!.id });
    this.#ctx.approvals.cancel(entry.alias);
    this.#dropTmp(entry);
    const { exit, ending } = snap.context;
    entry.ending = { outcome, reason: ending?.reason ?? outcome };
    if (!entry.exitLogged) {
      entry.exitLogged = true;
      this.#append("session.exit", {
        session: entry.alias,
        outcome,
        reason: entry.ending.reason,
        // The exit code and signal of a command agent that ended by itself, not of one that
        // was stopped on purpose (SIGTERM's 143 says nothing the outcome does not).
        ...(exit && exit.reason !== "aborted" && exit.code !== undefined
          ? { code: exit.code }
          : {}),
        ...(exit?.signal ? { signal: exit.signal } : {}),
        ...(outcome === "limited" && entry.limitHit ? { limit: entry.limitHit.limit } : {}),
        turns: snap.context.turns,
        // Recorded for budgeted and model sessions: script and command CPUs spend nothing.
        ...(entry.settings.limits.budget_usd !== undefined || entry.cpu.kind === "model"
          ? { spend_usd: spendUsd(entry.cpu, snap.context.tokens, this.#prices()) }
          : {}),
      });
      if (outcome === "finished") {
        this.#successor(entry).catch((err) =>
          console.error(`ostk listen: successor of ${entry.alias}: ${(err as Error).message}`)
        );
      }
    }
    this.#startQueued();
  }

  /**
   * `LIMIT successor auto`: a model session that ended by draining (its handoff note says it
   * stopped on a full context window) is continued by a new session, `<name>-<n+1>`, whose task
   * is the handoff note. A handoff written for a spent budget or other limit starts nothing.
   */
  async #successor(entry: Entry): Promise<void> {
    if (entry.cpu.kind !== "model" || entry.cpu.successor !== "auto") return;
    const path = handoffPath(this.#ctx.paths.root, entry.alias);
    let note: string;
    try {
      note = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    if (!/^- stopped: context window/m.test(note)) return;
    const base = /^(.*)-\d+$/.exec(entry.alias)?.[1] ?? entry.alias;
    const name = base.replace(/[^a-z0-9_]/g, "_").replace(/^[^a-z]+/, "") || "agent";
    const s = entry.settings;
    const next = await this.spawn({
      name,
      cpu: { ...entry.cpu, task: note },
      revival: entry.revival,
      limits: s.limits,
      ...(s.explicit ? { permissions: s.permissions } : {}),
      ...(s.tools.length ? { tools: s.tools } : {}),
      ...(s.pin ? { pin: s.pin } : {}),
      ...(s.sandbox ? { sandbox: s.sandbox } : {}),
    });
    await this.#ctx.log.append({
      event: "session.successor",
      actor: "kernel",
      fields: { from: entry.alias, to: next.alias },
    });
    await this.#ctx.tail.poll();
  }

  /** A session that crashed (or whose heartbeat stopped) is handled by its revival policy. */
  #orphaned(entry: Entry, snap: SessionSnapshot): void {
    this.#ctx.approvals.cancel(entry.alias);
    this.#dropTmp(entry);
    const why = snap.context.error ?? "crashed";
    this.#append("session.orphan", {
      session: entry.alias,
      reason: why,
      turns: snap.context.turns,
    });
    if (entry.revival === "reap") {
      this.#append("session.reap", { session: entry.alias });
      entry.ref?.send({ type: "session.reap", reason: "not revived (revival policy reap)" });
      return;
    }
    if (entry.revival === "ask") return;
    const now = Date.now();
    entry.revives = entry.revives.filter((t) => now - t < 60_000);
    if (entry.revives.length >= REVIVE_LIMIT) {
      // A session that keeps crashing ends here, as crashed, rather than sitting orphaned.
      const refused = `revived ${REVIVE_LIMIT} times within a minute`;
      this.#append("session.revive_refused", { session: entry.alias, reason: refused });
      entry.ref?.send({ type: "session.reap", reason: `not revived again: ${refused}` });
      return;
    }
    entry.revives.push(now);
    this.#append("session.revive", { session: entry.alias, from_turn: snap.context.turns });
    entry.ref?.send({ type: "session.revive" });
  }

  /** The actor itself failed (a bug, not a crashed agent): restart it from its last drain. */
  #failed(entry: Entry, ref: AnyActorRef, err: unknown): void {
    if (entry.ref !== ref) return;
    this.#append("session.restart", {
      session: entry.alias,
      error: String((err as Error)?.message ?? err),
    });
    readDrain(this.#ctx.paths.drain, entry.alias).then(
      (d) => this.#launch(entry, d.turns, { tokens: d.tokens, history: d.history }),
      () => this.#launch(entry, 0),
    );
  }

  #append(event: string, fields: Record<string, unknown>): void {
    this.#ctx.log.append({ event, actor: "kernel", fields })
      .then(() => this.#ctx.tail.poll())
      .catch((err) => console.error(`ostk listen: audit ${event}: ${(err as Error).message}`));
  }

  #startQueued(): void {
    for (const entry of this.#entries.values()) {
      if (this.#running() >= this.#concurrency) return;
      if (entry.state === "queued" && entry.queued) {
        this.#launch(entry, entry.queued.startTurn, entry.queued.carried);
      }
    }
  }

  /**
   * Stop a session: its CPU is aborted (a command's group gets SIGTERM, then SIGKILL). `why`
   * is the operator's reason, kept after "killed by the operator" in the exit row.
   */
  kill(alias: string, why?: string): Promise<{ alias: string; state: string }> {
    const entry = this.#get(alias);
    const reason = why ? `killed by the operator: ${why}` : "killed by the operator";
    if (!entry.ref && !isOutcome(entry.state)) return this.#endUnstarted(entry, "killed", reason);
    return this.#endWith(entry, { type: "session.kill", reason });
  }

  /**
   * End a session that has no actor: one queued behind the concurrency limit, or one restored
   * orphaned (revival policy ask) that was never started again.
   */
  #endUnstarted(
    entry: Entry,
    outcome: SessionOutcome,
    reason: string,
  ): Promise<{ alias: string; state: string }> {
    entry.state = outcome;
    entry.ending = { outcome, reason };
    this.#append("session.exit", {
      session: entry.alias,
      outcome,
      reason,
      turns: entry.queued?.startTurn ?? 0,
    });
    entry.queued = undefined;
    for (const fn of entry.watchers) fn(outcome);
    return Promise.resolve({ alias: entry.alias, state: outcome });
  }

  /** Send `event` to the session and answer once it has ended (at once if it already has). */
  async #endWith(
    entry: Entry,
    event: { type: "session.kill"; reason: string } | { type: "session.reap"; reason: string },
  ): Promise<{ alias: string; state: string }> {
    if (isOutcome(entry.state)) return { alias: entry.alias, state: entry.state };
    const done = new Promise<string>((resolve) => {
      const watch = (state: string) => {
        if (!isOutcome(state)) return;
        entry.watchers.delete(watch);
        resolve(state);
      };
      entry.watchers.add(watch);
    });
    entry.ref?.send(event);
    return { alias: entry.alias, state: await done };
  }

  /** `ostk lineage resolve`: decide an orphan's fate. */
  resolve(alias: string, action: "revive" | "reap"): Promise<{ alias: string; state: string }> {
    const entry = this.#get(alias);
    if (entry.state !== "orphaned") {
      throw new OstkError("conflict", `session '${alias}' is ${entry.state}, not orphaned`);
    }
    if (action === "reap") {
      this.#append("session.reap", { session: alias, by: "operator" });
      const reason = "not revived: reaped by the operator";
      if (!entry.ref) {
        return this.#endUnstarted(entry, "crashed", `${entry.orphanedBy ?? "orphaned"}; ${reason}`);
      }
      return this.#endWith(entry, { type: "session.reap", reason });
    }
    this.#append("session.revive", { session: alias, by: "operator" });
    if (entry.ref) {
      entry.ref.send({ type: "session.revive" });
      return Promise.resolve({ alias, state: "rehydrating" });
    }
    // Restored orphaned by a new daemon: there is no actor to revive, so a new life starts.
    this.#launch(entry, entry.queued?.startTurn ?? 0, entry.queued?.carried);
    return Promise.resolve({ alias, state: entry.state });
  }

  #get(alias: string): Entry {
    const entry = this.#entries.get(alias);
    if (!entry) throw new OstkError("not_found", `no session '${alias}'`, {}, "see 'ostk ps'");
    return entry;
  }

  /** How long `alias`'s approval questions wait, when its spawn said (else the daemon's). */
  approvalTimeoutOf(alias: string): number | undefined {
    return this.#entries.get(alias)?.approvalTimeoutMs;
  }

  /** The settings of a session, or undefined for an alias that is not one (the operator). */
  settingsOf(alias: string): SessionSettings | undefined {
    return this.#entries.get(alias)?.settings;
  }

  /** The sandboxed shell spawner of a session, if it runs under a policy (`sandboxFor`). */
  shellFor(alias: string): ShellSpawner | undefined {
    const policy = this.#entries.get(alias)?.settings.policy;
    return policy ? sandboxedShell(policy) : undefined;
  }

  /**
   * Before a session's kernel call: a session that has reached one of its limits is stopped
   * (once) and the limit returned, so the call is refused instead of run.
   */
  atLimit(alias: string): LimitHit | undefined {
    const entry = this.#entries.get(alias);
    if (!entry) return undefined;
    if (entry.limitHit) return entry.limitHit;
    const snap = entry.ref?.getSnapshot() as SessionSnapshot | undefined;
    return snap?.hasTag("alive") ? this.#checkLimits(entry, snap, "reached") : undefined;
  }

  #checkLimits(
    entry: Entry,
    snap: SessionSnapshot,
    mode: "over" | "reached",
  ): LimitHit | undefined {
    if (entry.limitHit) return entry.limitHit;
    const usd = spendUsd(entry.cpu, snap.context.tokens, this.#prices());
    const hit = limitHit(entry.settings, { ...snap.context, usd }, mode);
    if (!hit) return undefined;
    entry.limitHit = hit;
    this.#append("session.limit", { session: entry.alias, ...hit });
    const ref = entry.ref;
    // Not from inside the actor's own snapshot notification: the stop goes out right after.
    queueMicrotask(() => ref?.send({ type: "session.limit", ...hit }));
    return hit;
  }

  /** A sign of life (any kernel call made as this alias). */
  heartbeat(alias: string): void {
    this.#entries.get(alias)?.ref?.send({ type: "session.heartbeat", at: Date.now() });
  }

  /** A command CPU's kernel calls are its turn boundaries. */
  afterCall(alias: string, tool: string, response: ToolResponse): void {
    const entry = this.#entries.get(alias);
    if (!entry?.ref || entry.cpu.kind !== "command") return;
    const snap = entry.ref.getSnapshot() as SessionSnapshot;
    entry.ref.send({
      type: "session.turn_done",
      at: Date.now(),
      turn: {
        turn: snap.context.turns,
        calls: [{ tool, ok: response.ok, ...(response.ok ? {} : { error: response.error.code }) }],
        tokens: { in: 0, out: 0 },
      },
    });
  }

  onOutput(alias: string, fn: (stream: "stdout" | "stderr", line: string) => void): () => void {
    const entry = this.#get(alias);
    entry.outputs.add(fn);
    return () => entry.outputs.delete(fn);
  }

  onState(alias: string, fn: (state: string) => void): () => void {
    const entry = this.#get(alias);
    entry.watchers.add(fn);
    return () => entry.watchers.delete(fn);
  }

  /** pid → its ppid, pgid and sid, refreshed by each scheduler tick (reading /proc costs a fork). */
  #ids = new Map<number, { ppid: number; pgid: number; sid: number }>();

  async #refreshIds(): Promise<void> {
    const pids = new Set<number>([Deno.pid]);
    for (const e of this.#entries.values()) {
      const pid = (e.ref?.getSnapshot() as SessionSnapshot | undefined)?.context.pid;
      if (pid) pids.add(pid);
    }
    for (const pid of [...this.#ids.keys()]) if (!pids.has(pid)) this.#ids.delete(pid);
    for (const pid of pids) {
      if (this.#ids.has(pid) && pid === Deno.pid) continue;
      const f = await procStat(pid);
      if (f) this.#ids.set(pid, { ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]) });
    }
  }

  /** The process table for `ps`. */
  async list() {
    await this.#refreshIds();
    return [...this.#entries.values()].map((e) => {
      const snap = e.ref?.getSnapshot() as SessionSnapshot | undefined;
      const pid = e.cpu.kind === "command" ? snap?.context.pid ?? null : Deno.pid;
      const ids = pid ? this.#ids.get(pid) : undefined;
      return {
        alias: e.alias,
        pid,
        ppid: ids?.ppid ?? null,
        pgid: ids?.pgid ?? null,
        sid: ids?.sid ?? null,
        cpu: e.cpu.kind,
        state: e.state,
        turns: snap?.context.turns ?? e.queued?.startTurn ?? 0,
        last_seen: snap?.context.lastSeen ? new Date(snap.context.lastSeen).toISOString() : null,
        revival: e.revival,
        reason: this.#reasonOf(e, snap),
        spend_usd: spendUsd(e.cpu, snap?.context.tokens ?? { in: 0, out: 0 }, this.#prices()),
      };
    });
  }

  /**
   * Why a session is where it is, for `ps`: how it ended, why it is orphaned (and what happens
   * next), why it waits; null while it simply runs.
   */
  #reasonOf(e: Entry, snap: SessionSnapshot | undefined): string | null {
    if (isOutcome(e.state)) return e.ending?.reason ?? null;
    if (e.state === "queued") {
      return `waiting for a free slot (${this.#concurrency} sessions run at once)`;
    }
    const error = snap?.context.error ?? e.orphanedBy;
    if (e.state === "orphaned") {
      const why = error ?? "crashed";
      return e.revival === "ask" ? `${why}; waiting for 'ostk lineage resolve'` : why;
    }
    if (e.state === "rehydrating") return `reviving after: ${error ?? "a crash"}`;
    if (e.state === "stale" && snap?.context.lastSeen) {
      return `no kernel call for ${Math.round((Date.now() - snap.context.lastSeen) / 1000)} s`;
    }
    return null;
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.#entries.values()) out[e.state] = (out[e.state] ?? 0) + 1;
    return out;
  }

  /**
   * The scheduler's pass: heartbeat ages decide stale and crashed. A command session past the
   * crash threshold is probed first: a stopped (SIGSTOP) or vanished process is crashed; a live
   * one that simply has not called the kernel is left stale.
   */
  async tick(): Promise<void> {
    const now = Date.now();
    for (const entry of this.#entries.values()) {
      if (!entry.ref || !["running", "stale"].includes(entry.state)) continue;
      const snap = entry.ref.getSnapshot() as SessionSnapshot;
      // A wall clock runs out between turns too.
      if (this.#checkLimits(entry, snap, "over")) continue;
      const age = now - snap.context.lastSeen;
      if (age > this.#thresholds.crashedMs && !(await this.#probeAlive(entry, snap))) {
        this.#append("session.crashed", { session: entry.alias, silent_ms: age });
        entry.ref.send({
          type: "session.crashed",
          error: `no heartbeat for ${Math.round(age / 1000)} s`,
        });
      } else if (age > this.#thresholds.staleMs && entry.state === "running") {
        entry.ref.send({ type: "session.stale", at: now });
      }
    }
    this.#startQueued();
  }

  async #probeAlive(entry: Entry, snap: SessionSnapshot): Promise<boolean> {
    if (entry.cpu.kind !== "command" || !snap.context.pid) return false;
    const state = (await procStat(snap.context.pid))?.[0];
    if (state === undefined || state === "T" || state === "t" || state === "Z") return false;
    return await isAgentLeader(snap.context.pid, entry.alias);
  }

  /** On shutdown: stop every CPU at a turn boundary; their drain snapshots are current. */
  async drainAll(): Promise<void> {
    const live = [...this.#entries.values()].filter((e) =>
      e.ref && !isOutcome(e.state) && !["orphaned", "queued"].includes(e.state)
    );
    await Promise.all(live.map(async (entry) => {
      const snap = entry.ref!.getSnapshot() as SessionSnapshot;
      await this.#ctx.log.append({
        event: "session.drain",
        actor: "kernel",
        fields: { session: entry.alias, turns: snap.context.turns },
      });
      // Marked so the exit of a drained session is not logged: the lineage lives on and is
      // revived when the daemon starts again.
      entry.exitLogged = true;
      entry.unsubscribe?.();
      this.#ctx.approvals.cancel(entry.alias);
      entry.ref!.send({ type: "session.orphan", reason: "daemon stopping" });
      entry.ref!.stop?.();
    }));
  }

  /**
   * Rebuild the table from the log: sessions the log says were running are orphaned, then
   * revived from their drain snapshot per their policy (or left for `lineage resolve`).
   */
  async restoreFromLog(): Promise<void> {
    // The daemon's shared fold: the log is parsed once at start, not once per consumer.
    const state = await this.#ctx.fold.refresh();
    // One batch (one fdatasync) for every orphan/revive row, and launches after it is durable.
    const entries: AuditEntry[] = [];
    const launches: (() => void)[] = [];
    for (const session of state.sessions.values()) {
      // Alive or orphaned when the last daemon went: either way it has not ended.
      if (session.state === "dead") continue;
      const spawnRow = session.spawn;
      const cpu = spawnRow?.spec as CpuSpec | undefined;
      if (!cpu) continue;
      const revival = (spawnRow?.revival as Revival | undefined) ?? "revive";
      let drain: DrainSnapshot | undefined;
      try {
        drain = await readDrain(this.#ctx.paths.drain, session.alias, READABLE_DRAIN_VERSIONS);
      } catch (err) {
        if (!(err instanceof OstkError && err.code === "not_found")) throw err;
      }
      const entry: Entry = {
        alias: session.alias,
        cpu,
        revival,
        state: "orphaned",
        outputs: new Set(),
        watchers: new Set(),
        revives: [],
        settings: await settingsFromRow(this.#ctx.paths.root, spawnRow ?? {}),
        ...(typeof spawnRow?.approval_timeout_ms === "number"
          ? { approvalTimeoutMs: spawnRow.approval_timeout_ms }
          : {}),
      };
      // The operator's "a" answers outlive the daemon that heard them: the log keeps them.
      for (const cls of session.approved) entry.settings.approveAll.add(cls as ToolClass);
      this.#entries.set(session.alias, entry);
      const turns = drain?.turns ?? 0;
      entries.push({
        event: "session.orphan",
        actor: "kernel",
        fields: { session: session.alias, reason: "daemon restarted", turns },
      });
      // Orphaned already (a crash, or drained by a daemon that stopped), or running when its
      // daemon died without a word: either way nothing runs it now.
      entry.orphanedBy = session.state === "orphaned"
        ? session.reason ?? "orphaned"
        : "its daemon died while it ran";
      if (revival === "reap") {
        entry.state = "crashed";
        entry.ending = {
          outcome: "crashed",
          reason: `${entry.orphanedBy}; not revived (revival policy reap)`,
        };
        entries.push({
          event: "session.reap",
          actor: "kernel",
          fields: { session: session.alias },
        });
        entries.push({
          event: "session.exit",
          actor: "kernel",
          fields: {
            session: session.alias,
            outcome: "crashed",
            reason: entry.ending.reason,
            turns,
          },
        });
        continue;
      }
      if (revival === "ask") {
        entry.queued = {
          startTurn: turns,
          carried: drain ? { tokens: drain.tokens, history: drain.history } : undefined,
        };
        continue;
      }
      entries.push({
        event: "session.revive",
        actor: "kernel",
        fields: { session: session.alias, from_turn: turns },
      });
      launches.push(() =>
        this.#launch(entry, turns, drain ? { tokens: drain.tokens, history: drain.history } : {})
      );
    }
    if (entries.length > 0) await this.#ctx.log.appendBatch(entries);
    for (const launch of launches) launch();
  }
}

/** The state name `ps` shows, read from tags rather than state paths. */
function labelOf(snap: SessionSnapshot): string {
  if (snap.hasTag("terminal")) return SESSION_OUTCOMES.find((o) => snap.hasTag(o)) ?? "crashed";
  if (snap.hasTag("orphan")) return "orphaned";
  if (snap.hasTag("rehydrating")) return "rehydrating";
  if (snap.hasTag("draining")) return "draining";
  if (snap.hasTag("stale")) return "stale";
  if (snap.matches({ live: "spawning" })) return "spawning";
  return "running";
}
