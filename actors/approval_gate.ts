/**
 * The approval chain inside the daemon. Every kernel call a session makes is classified and
 * decided by kernel/approval.ts with that session's settings before the kernel runs it. An
 * "ask" goes to the operator: an `approval` event reaches the clients attached to the session
 * (and those attached to no session), and `session/approve` (`ostk approve`, or `ostk run` on a
 * terminal) answers it; no answer within the timeout is a deny. Every decision is audited as
 * `approval.decide`.
 */
import {
  type ApprovalDecision,
  type ApprovalRequest,
  askOperator,
  classifyCommand,
  decide,
  type OperatorAnswer,
  type ToolCall,
} from "../kernel/approval.ts";
import { OstkError } from "../kernel/errors.ts";
import { loadPolicy } from "../kernel/pin_caps.ts";
import { resolveProjectPath } from "../kernel/resolve_path.ts";
import type { DangerRequest } from "../kernel/shell.ts";
import type { Caller, ToolResponse } from "../kernel/tools.ts";
import type { DaemonContext } from "./daemon.ts";
import type { LimitHit, SessionSettings } from "./limits.ts";

/** How long a question waits for the operator before it counts as "no". */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 60_000;

/** Waiting for the operator is not a sign of death: the session's heartbeat is kept meanwhile. */
const HEARTBEAT_MS = 5_000;

/** A question waiting for the operator, as `session/approvals` lists it. */
export interface PendingApproval {
  request_id: string;
  alias: string;
  class: string;
  tool: string;
  summary: string;
  reason: string;
  asked_at: string;
  /**
   * A dangerous command (step 2 of the chain): it is asked every time, so an "a" answer to it
   * allows this call and the class's ordinary calls, never the next dangerous one.
   */
  dangerous: boolean;
}

/** The `approval` event clients receive. */
export interface ApprovalEvent {
  kind: "approval";
  alias: string;
  request_id: string;
  class: string;
  summary: string;
  dangerous: boolean;
  state: string;
}

interface Pending extends PendingApproval {
  settle(answer: OperatorAnswer | undefined): void;
}

interface Watcher {
  alias?: string;
  send(event: ApprovalEvent): void;
}

/** The outcome of the chain for one call: run it (as `caller`), or answer with `response`. */
export type Admission = { ok: true; caller: Caller } | { ok: false; response: ToolResponse };

/** One daemon's approval chain and its queue of questions. */
export class ApprovalGate {
  #ctx: DaemonContext;
  #timeoutMs: number;
  #pending = new Map<string, Pending>();
  #watchers = new Set<Watcher>();
  /** Callers whose dangerous command the operator already approved in the chain (step 2). */
  #preapproved = new WeakSet<Caller>();

  constructor(ctx: DaemonContext, timeoutMs = DEFAULT_APPROVAL_TIMEOUT_MS) {
    this.#ctx = ctx;
    this.#timeoutMs = timeoutMs;
  }

  /** Decide a session's call before the kernel sees it. */
  async admit(
    tool: string,
    args: unknown,
    caller: Caller,
    settings: SessionSettings,
  ): Promise<Admission> {
    const call = await this.#normalize(tool, args);
    // A path the resolver refuses never reaches a file: the kernel answers with the reason.
    if (!call) return { ok: true, caller };
    const policy = await loadPolicy(this.#ctx.paths.dir, settings.pin);
    let decision: ApprovalDecision & { answer?: OperatorAnswer } = decide(call, {
      policy,
      permissions: settings.permissions,
      approveAll: settings.approveAll,
      tools: settings.tools,
    });
    const asked = decision.decision === "ask";
    if (asked) decision = await this.#ask(caller.alias, tool, call, decision, settings);
    else if (settings.explicit || decision.decision !== "allow") {
      await this.#audit(caller.alias, tool, decision);
    }
    if (decision.decision === "deny") {
      return {
        ok: false,
        response: refusal(
          tool,
          `${tool}: denied by the approval chain at step ${decision.step} (${decision.class}): ${decision.reason}`,
          { class: decision.class, step: decision.step, decision: "deny" },
        ),
      };
    }
    if (!asked || decision.step !== 2) return { ok: true, caller };
    // The shell tool asks its own approveDanger hook for the same command; it must not ask twice.
    const approved = { ...caller };
    this.#preapproved.add(approved);
    return { ok: true, caller: approved };
  }

  /** The Kernel's `approveDanger` hook: a session's dangerous command asks the operator. */
  async approveDanger(caller: Caller, request: DangerRequest): Promise<boolean> {
    if (this.#preapproved.has(caller)) return true;
    const settings = this.#ctx.sessions.settingsOf(caller.alias);
    // The operator's own calls (and unknown aliases) have nobody else to ask: refused as before.
    if (!settings) return false;
    const call = { tool: "shell", args: { command: request.cmd } };
    const asking: ApprovalDecision = {
      class: classifyCommand(request.cmd),
      decision: "ask",
      step: 2,
      reason: `dangerous command (${request.pattern}): ${request.reason}`,
    };
    const decided = await this.#ask(caller.alias, "shell", call, asking, settings);
    return decided.decision === "allow";
  }

  async #ask(
    alias: string,
    tool: string,
    call: ToolCall,
    asking: ApprovalDecision,
    settings: SessionSettings,
  ): Promise<ApprovalDecision & { answer?: OperatorAnswer }> {
    const requestId = crypto.randomUUID().slice(0, 8);
    await this.#audit(alias, tool, asking, { request_id: requestId });
    const request: ApprovalRequest = { ...call, class: asking.class, reason: asking.reason };
    const dangerous = asking.step === 2;
    const source = {
      ask: (req: ApprovalRequest, signal?: AbortSignal) =>
        this.#enqueue(alias, requestId, req, dangerous, signal),
    };
    const beat = setInterval(() => this.#ctx.sessions.heartbeat(alias), HEARTBEAT_MS);
    const timeoutMs = this.#ctx.sessions.approvalTimeoutOf(alias) ?? this.#timeoutMs;
    let outcome;
    try {
      outcome = await askOperator([source], request, timeoutMs, settings.approveAll);
    } finally {
      clearInterval(beat);
    }
    // askOperator speaks for step 7; a dangerous command was asked at step 2.
    const decided = { ...outcome, step: asking.step };
    await this.#audit(alias, tool, decided, {
      request_id: requestId,
      answer: outcome.answer ?? "none",
    });
    return decided;
  }

  #enqueue(
    alias: string,
    requestId: string,
    req: ApprovalRequest,
    dangerous: boolean,
    signal?: AbortSignal,
  ): Promise<OperatorAnswer | undefined> {
    return new Promise((resolve) => {
      const entry: Pending = {
        request_id: requestId,
        alias,
        class: req.class,
        tool: req.tool,
        summary: summarize(req),
        reason: req.reason,
        asked_at: new Date().toISOString(),
        dangerous,
        settle: (answer) => {
          this.#pending.delete(requestId);
          resolve(answer);
        },
      };
      this.#pending.set(requestId, entry);
      signal?.addEventListener("abort", () => entry.settle(undefined), { once: true });
      for (const watcher of this.#watchers) this.#tell(watcher, entry);
    });
  }

  #tell(watcher: Watcher, entry: Pending): void {
    if (watcher.alias !== undefined && watcher.alias !== entry.alias) return;
    watcher.send({
      kind: "approval",
      alias: entry.alias,
      request_id: entry.request_id,
      class: entry.class,
      summary: entry.summary,
      dangerous: entry.dangerous,
      state: `approval ${entry.request_id} waiting: ${entry.summary}`,
    });
  }

  /**
   * Deliver approval events for `alias` (every session when undefined) to `send`, starting with
   * the questions already waiting; returns the function that stops it.
   */
  watch(alias: string | undefined, send: (event: ApprovalEvent) => void): () => void {
    const watcher = { alias, send };
    this.#watchers.add(watcher);
    for (const entry of this.#pending.values()) this.#tell(watcher, entry);
    return () => this.#watchers.delete(watcher);
  }

  /** `session/approve`: answer `request_id`, or the oldest question of `alias`. */
  answer(p: { alias: string; request_id?: string; answer: OperatorAnswer }) {
    const entry = p.request_id !== undefined
      ? this.#pending.get(p.request_id)
      : [...this.#pending.values()].find((e) => e.alias === p.alias);
    if (!entry || entry.alias !== p.alias) {
      throw new OstkError(
        "not_found",
        p.request_id !== undefined
          ? `no approval request '${p.request_id}' is waiting for ${p.alias}`
          : `no approval request is waiting for ${p.alias}`,
        {},
        "see 'ostk approve --list'",
      );
    }
    entry.settle(p.answer);
    // "a" is yes to every call of the class from now on, and that includes the calls of the
    // class already waiting; dangerous commands are the exception the chain makes (step 2).
    const alsoAnswered: string[] = [];
    if (p.answer === "a") {
      for (const other of [...this.#pending.values()]) {
        if (other.alias !== entry.alias || other.class !== entry.class || other.dangerous) continue;
        alsoAnswered.push(other.request_id);
        other.settle("a");
      }
    }
    return {
      alias: entry.alias,
      request_id: entry.request_id,
      answer: p.answer,
      ...(alsoAnswered.length ? { also_answered: alsoAnswered } : {}),
    };
  }

  /** The questions waiting, oldest first (for one session, or all). */
  list(alias?: string): PendingApproval[] {
    return [...this.#pending.values()]
      .filter((e) => alias === undefined || e.alias === alias)
      .map(({ settle: _, ...rest }) => rest);
  }

  /** Withdraw every question of a session that ended: nobody is waiting for the answers. */
  cancel(alias: string): void {
    for (const entry of [...this.#pending.values()]) {
      if (entry.alias === alias) entry.settle(undefined);
    }
  }

  /** The chain works on root-relative paths and on the shell's command as `command`. */
  async #normalize(tool: string, args: unknown): Promise<ToolCall | undefined> {
    if (typeof args !== "object" || args === null) return { tool, args };
    const record = args as Record<string, unknown>;
    if (tool === "shell" && typeof record.cmd === "string") {
      return { tool, args: { ...record, command: record.cmd } };
    }
    if (typeof record.path !== "string") return { tool, args };
    try {
      const { rel } = await resolveProjectPath(this.#ctx.paths.root, record.path, {
        allowKernel: true,
      });
      return { tool, args: { ...record, path: rel } };
    } catch (err) {
      if (err instanceof OstkError) return undefined;
      throw err;
    }
  }

  async #audit(
    alias: string,
    tool: string,
    d: ApprovalDecision,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    // No call_id here: the fold treats a call id as "this call ran", and a decision is not a run.
    await this.#ctx.log.append({
      event: "approval.decide",
      actor: "kernel",
      fields: {
        session: alias,
        class: d.class,
        decision: d.decision,
        step: d.step,
        reason: d.reason,
        tool,
        ...extra,
      },
    });
    await this.#ctx.tail.poll();
  }
}

/** A refused call as the kernel would answer it, without having run it. */
export function refusal(
  tool: string,
  message: string,
  details: Record<string, unknown>,
): ToolResponse {
  return { ok: false, tool, error: { code: "permission", message, details }, digest: "" };
}

/** The refusal for a call made by a session that hit one of its limits. */
export function limitRefusal(tool: string, hit: LimitHit): ToolResponse {
  return refusal(
    tool,
    `${tool}: the session hit LIMIT ${hit.limit} (${hit.value} of ${hit.max}) and is stopping`,
    { limit: hit.limit, value: hit.value, max: hit.max },
  );
}

function summarize(req: ApprovalRequest): string {
  const args = (req.args ?? {}) as Record<string, unknown>;
  const target = typeof args.command === "string"
    ? args.command
    : typeof args.path === "string"
    ? args.path
    : "";
  const shown = target.length > 200 ? `${target.slice(0, 200)}…` : target;
  return `${req.tool}${shown ? ` ${shown}` : ""} [${req.class}]: ${req.reason}`;
}
