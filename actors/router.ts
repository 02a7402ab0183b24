/** The daemon's request router: one function per JSON-RPC method, params already validated. */
import type { AuditRow } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import type { DaemonContext } from "./daemon.ts";
import { callKernel } from "./kernel_gate.ts";
import type { Connection, Router } from "./listener.ts";
import type { MethodParams } from "./protocol.ts";
import { inspectSession } from "./session_inspect.ts";

/** Build the router for a daemon. */
export function createRouter(ctx: DaemonContext): Router {
  return (conn, method, params) => {
    switch (method) {
      case "kernel/call": {
        const p = params as MethodParams<"kernel/call">;
        return callKernel(ctx, p.tool, p.args, {
          alias: p.as ?? conn.attached ?? "operator",
          callId: p.call_id,
          budget: p.budget,
        });
      }
      case "session/spawn":
        return ctx.sessions.spawn(params as MethodParams<"session/spawn">);
      case "session/kill": {
        const { alias, reason } = params as MethodParams<"session/kill">;
        return ctx.sessions.kill(alias, reason);
      }
      case "session/list":
        return ctx.sessions.list().then((sessions) => ({ sessions }));
      case "session/approve":
        return Promise.resolve(ctx.approvals.answer(params as MethodParams<"session/approve">));
      case "session/approvals": {
        const p = params as MethodParams<"session/approvals">;
        return Promise.resolve({ pending: ctx.approvals.list(p.alias) });
      }
      case "session/inspect":
        return inspectSession(ctx, (params as MethodParams<"session/inspect">).alias);
      case "lineage/resolve": {
        const p = params as MethodParams<"lineage/resolve">;
        return ctx.sessions.resolve(p.alias, p.action);
      }
      case "client/attach":
        return Promise.resolve(attach(ctx, conn, params as MethodParams<"client/attach">));
      case "client/detach":
        conn.attached = undefined;
        detachOutput(conn);
        return Promise.resolve({ detached: true });
      case "client/subscribe":
        return subscribe(ctx, conn, params as MethodParams<"client/subscribe">);
      case "driver/call": {
        const p = params as MethodParams<"driver/call">;
        const caller = p.as ?? conn.attached ?? "operator";
        // The driver runs under the calling session's sandbox policy, if it has one.
        return ctx.drivers.call(
          p.name,
          p.tool,
          p.args ?? {},
          caller,
          p.timeout_ms,
          ctx.sessions.settingsOf(caller)?.policy,
        );
      }
      case "driver/list":
        return Promise.resolve({ drivers: ctx.drivers.list() });
      case "daemon/status":
        return Promise.resolve(status(ctx));
      case "daemon/stop":
        // Let the answer reach the client before the listener closes its connection.
        setTimeout(ctx.requestStop, 20);
        return Promise.resolve({ stopping: true });
    }
  };
}

const outputs = new WeakMap<Connection, () => void>();

function detachOutput(conn: Connection): void {
  outputs.get(conn)?.();
  outputs.delete(conn);
}

function attach(ctx: DaemonContext, conn: Connection, p: MethodParams<"client/attach">) {
  if (p.alias && !ctx.sessions.has(p.alias)) {
    throw new OstkError("not_found", `no session '${p.alias}'`, {}, "see 'ostk ps'");
  }
  detachOutput(conn);
  conn.attached = p.alias;
  conn.name = p.name;
  // Approval questions go to clients attached to the session and to those attached to none.
  const offApproval = ctx.approvals.watch(
    p.alias,
    (params) => conn.send({ jsonrpc: "2.0", method: "event", params }),
  );
  outputs.set(conn, offApproval);
  conn.onClose.push(offApproval);
  if (p.alias) {
    const alias = p.alias;
    const off = ctx.sessions.onOutput(
      alias,
      (stream, line) =>
        conn.send({
          jsonrpc: "2.0",
          method: "event",
          params: { kind: "output", alias, stream, line },
        }),
    );
    const offState = ctx.sessions.onState(
      alias,
      (state) =>
        conn.send({ jsonrpc: "2.0", method: "event", params: { kind: "session", alias, state } }),
    );
    const both = () => {
      off();
      offState();
      offApproval();
    };
    outputs.set(conn, both);
    conn.onClose.push(both);
  }
  return { client: conn.id, attached: p.alias ?? null };
}

async function subscribe(
  ctx: DaemonContext,
  conn: Connection,
  p: MethodParams<"client/subscribe">,
) {
  const filter = (row: AuditRow) =>
    (!p.event_prefix || row.event.startsWith(p.event_prefix)) &&
    (!p.alias || row.actor === p.alias || row.alias === p.alias || row.session === p.alias);
  const sub = {
    next: p.from_seq ?? (await ctx.fold.refresh()).lastSeq + 1,
    filter,
    send: (row: AuditRow) =>
      conn.send({ jsonrpc: "2.0", method: "event", params: { kind: "audit", row } }),
    catchingUp: false,
  };
  conn.onClose.push(() => ctx.tail.unsubscribe(sub));
  await ctx.tail.subscribe(sub);
  return { subscribed: true, next_seq: sub.next };
}

function status(ctx: DaemonContext) {
  return {
    pid: Deno.pid,
    root: ctx.paths.root,
    socket: ctx.socket,
    anchor: ctx.anchor.id,
    uptime_ms: Date.now() - ctx.startedAt,
    sessions: ctx.sessions.counts(),
  };
}
