/**
 * `session/inspect`: one session's machine as the daemon sees it — the live actor's state
 * value, tags, context summary and children; once the actor is gone, its last recorded trace
 * snapshot, or its drain snapshot.
 */
import type { AnyActorRef, StateValue } from "xstate";
import { OstkError } from "../kernel/errors.ts";
import type { DaemonContext } from "./daemon.ts";
import { readDrain } from "./drain.ts";
import { READABLE_DRAIN_VERSIONS, type SessionContext } from "./session_machine.ts";
import { readTrace, summarize, type TraceEntry, tracePath } from "./traces.ts";

/** The newest actor of `alias` among the root's children (ids are `session:<alias>:<hex>`). */
export function findSessionActor(root: AnyActorRef, alias: string): AnyActorRef | undefined {
  const children = (root.getSnapshot() as { children: Record<string, AnyActorRef> }).children;
  let found: AnyActorRef | undefined;
  for (const [id, ref] of Object.entries(children)) {
    if (id.startsWith(`session:${alias}:`)) found = ref;
  }
  return found;
}

/**
 * `session/inspect`: a session's machine as the daemon holds it now (state value, tags, context
 * summary, children), or, once its actor is gone, as its last drain snapshot recorded it.
 */
export async function inspectSession(ctx: DaemonContext, alias: string) {
  const row = (await ctx.sessions.list()).find((r) => r.alias === alias);
  if (!row) throw new OstkError("not_found", `no session '${alias}'`, {}, "see 'ostk ps'");
  const trace = ctx.traces ? tracePath(ctx.traces.dir, alias) : null;
  const ref = ctx.root ? findSessionActor(ctx.root, alias) : undefined;
  if (ref) {
    const snap = ref.getSnapshot() as {
      value: StateValue;
      status: string;
      tags: Set<string>;
      context: SessionContext;
      children: Record<string, AnyActorRef>;
    };
    return {
      alias,
      state: row.state,
      source: "actor",
      actor: ref.id,
      value: snap.value,
      status: snap.status,
      tags: [...snap.tags],
      context: summarize(snap.context),
      children: Object.keys(snap.children),
      trace,
    };
  }
  // The actor is gone (ended, or not started yet): the trace saw its last state; the drain
  // snapshot was taken on entering `draining`, one step before the end.
  if (ctx.traces) {
    await ctx.traces.flush();
    const last = await lastSnapshot(ctx.traces.dir, alias);
    if (last) {
      return {
        alias,
        state: row.state,
        source: "trace",
        actor: last.actor,
        value: last.value,
        status: last.status,
        context: last.context,
        trace,
      };
    }
  }
  try {
    const drain = await readDrain(ctx.paths.drain, alias, READABLE_DRAIN_VERSIONS);
    const machine = drain.machine as { value?: StateValue; status?: string } | null;
    return {
      alias,
      state: row.state,
      source: "drain",
      value: machine?.value ?? null,
      status: machine?.status ?? null,
      context: { turns: drain.turns, tokens: drain.tokens },
      trace,
    };
  } catch (err) {
    if (!(err instanceof OstkError && err.code === "not_found")) throw err;
    return { alias, state: row.state, source: "none", value: null, trace };
  }
}

async function lastSnapshot(dir: string, alias: string) {
  let entries: TraceEntry[];
  try {
    entries = await readTrace(dir, alias);
  } catch (err) {
    if (err instanceof OstkError && err.code === "not_found") return undefined;
    throw err;
  }
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    if (e.kind === "snapshot" && e.value !== undefined) return e;
  }
  return undefined;
}
