/**
 * `fold(rows)`: the pure function from audit rows to kernel state. The daemon's memory is a
 * cache of this; after a crash, folding the log again rebuilds it.
 */
import type { AuditRow } from "./audit_schema.ts";
import { outcomeOfExit, type SessionOutcome } from "./session_outcome.ts";

/** One issued agent alias. */
export interface AliasRecord {
  alias: string;
  name: string;
  n: number;
  seq: number;
}

/**
 * Where a session stands as the log tells it: `alive` (spawned or revived, and running as far
 * as the log knows), `orphaned` (no process runs it: it crashed, or its daemon stopped and
 * drained it; a daemon may revive it), `dead` (it ended; `outcome` says how).
 */
export type SessionLogState = "alive" | "orphaned" | "dead";

/** A session as the log knows it. */
export interface SessionRecord {
  id: string;
  alias: string;
  state: SessionLogState;
  since: number;
  lastSeq: number;
  /** The session's spawn row: what it runs and under which settings (revival reads it). */
  spawn?: AuditRow;
  /** Once dead: how it ended, when the row says (kernel/session_outcome.ts). */
  outcome?: SessionOutcome;
  /** Once dead or orphaned: the reason the last end or orphan row gave. */
  reason?: string;
  /** Tool classes the operator answered "a" (yes to every call of the class) for. */
  approved: string[];
}

/** A file some tool touched, with the last generation the log recorded. */
export interface FileRecord {
  path: string;
  gen: number;
  actor: string;
  seq: number;
  ts: string;
}

/** Everything the log implies so far. */
export interface FoldState {
  rows: number;
  lastSeq: number;
  aliases: Map<string, AliasRecord>;
  /** Highest n issued per alias name; the next alias uses n + 1. */
  highestN: Map<string, number>;
  sessions: Map<string, SessionRecord>;
  files: Map<string, FileRecord>;
  /** Per reader alias: the gen of each path it last read (or wrote, which implies a read). */
  reads: Map<string, Map<string, SeenVersion>>;
  /** Idempotency keys of calls already recorded (see `Caller.callId` in tools.ts). */
  callIds: Set<string>;
  /** The latest write and conflict events, oldest first, for load figures (bounded). */
  recent: RecentEvent[];
}

/** The version of a file a reader last saw: its gen, and its content hash when known. */
export interface SeenVersion {
  gen: number;
  hash?: string;
}

/** A write or conflict at a time, for the digest's load line. */
export interface RecentEvent {
  ms: number;
  kind: "write" | "conflict";
}

/** Events that change a file's content and so its gen. */
export const WRITE_EVENTS = new Set([
  "tool.file_edit",
  "tool.file_write",
  "tool.file_create",
  "bypass.detected",
  "gen.recover",
]);

const RECENT_LIMIT = 512;

/** The state before any row. */
export function emptyState(): FoldState {
  return {
    rows: 0,
    lastSeq: -1,
    aliases: new Map(),
    highestN: new Map(),
    sessions: new Map(),
    files: new Map(),
    reads: new Map(),
    callIds: new Set(),
    recent: [],
  };
}

const SESSION_END_EVENTS = new Set(["session.exit", "session.dead", "session.reap"]);
/** Rows after which nothing runs the session until a revive: a crash, or a daemon's drain. */
const SESSION_ORPHAN_EVENTS = new Set(["session.orphan", "session.drain"]);

/**
 * Apply one row to `state` (mutating it, for speed over large logs) and return it.
 * Unknown events are ignored, so old kernels can fold logs written by newer ones.
 */
export function foldRow(state: FoldState, row: AuditRow): FoldState {
  state.rows++;
  state.lastSeq = row.seq;
  if (typeof row.call_id === "string") state.callIds.add(row.call_id);
  if (row.event === "agent.alias") {
    const alias = String(row.alias);
    const name = String(row.name);
    const n = Number(row.n);
    if (!state.aliases.has(alias)) state.aliases.set(alias, { alias, name, n, seq: row.seq });
    state.highestN.set(name, Math.max(state.highestN.get(name) ?? 0, n));
  } else if (row.event === "session.spawn" && typeof row.session === "string") {
    state.sessions.set(row.session, {
      id: row.session,
      alias: typeof row.alias === "string" ? row.alias : row.actor,
      state: "alive",
      since: row.seq,
      lastSeq: row.seq,
      spawn: row,
      approved: [],
    });
  } else if (row.event.startsWith("session.") && typeof row.session === "string") {
    foldSessionRow(state.sessions.get(row.session), row);
  } else if (row.event === "approval.decide" && typeof row.session === "string") {
    // "a" answers are what the approve-all list of a session is made of; a revived session
    // (even under a new daemon) keeps them.
    const session = state.sessions.get(row.session);
    const cls = row.class;
    if (session && row.answer === "a" && row.decision === "allow" && typeof cls === "string") {
      if (!session.approved.includes(cls)) session.approved.push(cls);
    }
  }
  if (typeof row.path === "string" && typeof row.gen === "number") {
    if (WRITE_EVENTS.has(row.event)) {
      // Rows of two writers may land in either order; the higher gen is the later write.
      const known = state.files.get(row.path);
      if (!known || row.gen >= known.gen) {
        state.files.set(row.path, {
          path: row.path,
          gen: row.gen,
          actor: row.actor,
          seq: row.seq,
          ts: row.ts,
        });
      }
      if (row.event !== "bypass.detected" && row.event !== "gen.recover") {
        noteRead(state, row.actor, row.path, row.gen, row.hash);
      }
      pushRecent(state, row.ts, "write");
    } else if (row.event === "tool.file_read" && row.ranged !== true) {
      // A ranged read saw only part of the file; it must not make a later full read elide.
      noteRead(state, row.actor, row.path, row.gen, row.hash);
    }
  }
  if (row.event === "tool.conflict") pushRecent(state, row.ts, "conflict");
  return state;
}

/** A session row after the spawn: orphaned, revived, or ended. A dead session stays dead. */
function foldSessionRow(session: SessionRecord | undefined, row: AuditRow): void {
  if (!session) return;
  const reason = typeof row.reason === "string" ? row.reason : undefined;
  if (SESSION_END_EVENTS.has(row.event)) {
    session.state = "dead";
    session.lastSeq = row.seq;
    // `session.reap` is followed by the exit row that says how it ended; an old log may stop
    // at the reap, which only ever ended a crashed session.
    const outcome = row.event === "session.reap" ? "crashed" : outcomeOfExit(row);
    if (outcome) session.outcome = outcome;
    if (reason !== undefined) session.reason = reason;
  } else if (session.state === "dead") {
    return;
  } else if (SESSION_ORPHAN_EVENTS.has(row.event)) {
    session.state = "orphaned";
    session.lastSeq = row.seq;
    const why = reason ?? (row.event === "session.drain" ? "its daemon stopped" : undefined);
    if (why !== undefined) session.reason = why;
    else delete session.reason;
  } else if (row.event === "session.revive") {
    session.state = "alive";
    session.lastSeq = row.seq;
    delete session.reason;
  }
}

function noteRead(
  state: FoldState,
  reader: string,
  path: string,
  gen: number,
  hash: unknown,
): void {
  let seen = state.reads.get(reader);
  if (!seen) state.reads.set(reader, seen = new Map());
  const before = seen.get(path);
  if (before && before.gen > gen) return;
  seen.set(path, { gen, ...(typeof hash === "string" ? { hash } : {}) });
}

function pushRecent(state: FoldState, ts: string, kind: RecentEvent["kind"]): void {
  state.recent.push({ ms: Date.parse(ts), kind });
  if (state.recent.length > RECENT_LIMIT) {
    state.recent.splice(0, state.recent.length - RECENT_LIMIT);
  }
}

/**
 * Fold every row into a fresh state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fold } from "./fold.ts";
 * let seq = 0;
 * const row = (event: string, fields: Record<string, unknown>) => ({
 *   seq: seq++, ts: "2025-01-01T00:00:00.000Z", event, actor: "kernel",
 *   prev_hash: "0".repeat(64), sig: "", ...fields,
 * });
 * const state = fold([
 *   row("agent.alias", { alias: "claude-1", name: "claude", n: 1 }),
 *   row("session.spawn", { session: "s1", alias: "claude-1" }),
 *   row("tool.file_write", { path: "a.txt", gen: 2 }),
 *   row("tool.file_write", { path: "a.txt", gen: 1 }), // a slower writer's row lands last
 *   row("session.exit", { session: "s1" }),
 * ]);
 * assert.equal(state.rows, 5);
 * assert.equal(state.highestN.get("claude"), 1);
 * assert.equal(state.files.get("a.txt")?.gen, 2); // the higher gen is the later write
 * assert.equal(state.sessions.get("s1")?.state, "dead");
 * ```
 */
export function fold(rows: Iterable<AuditRow>): FoldState {
  const state = emptyState();
  for (const row of rows) foldRow(state, row);
  return state;
}
