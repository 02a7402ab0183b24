/**
 * Session traces: what XState's inspection API sees of each session — actors created and
 * stopped, events with their source and target, snapshot changes — as JSON Lines in
 * `.ostk/traces/<alias>.jsonl`. The recorder is the root actor's `inspect` observer; it only
 * buffers (inspection runs inside XState's transition loop, so it must not wait on I/O) and a
 * timer flushes the buffers with async writes. Each file rotates at a size limit, keeping one
 * old file (`<alias>.jsonl.1`). Also here: reading a trace back. Replays are in
 * trace_replay.ts, `session/inspect` in session_inspect.ts.
 */
import type { AnyActorRef, InspectionEvent, StateValue } from "xstate";
import { OstkError } from "../kernel/errors.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import type { SessionContext } from "./session_machine.ts";

const encoder = new TextEncoder();

/** Rotate a trace file once it would pass this size. */
export const DEFAULT_TRACE_MAX_BYTES = 1024 * 1024;
/** How long entries may wait in memory before a flush. */
const FLUSH_MS = 200;
/** Past this much unflushed text (a stalled disk), the oldest entries are dropped and counted. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** Session actors are spawned as `session:<alias>:<8 hex>` (see session_table.ts). */
export const SESSION_ACTOR = /^session:([a-z][a-z0-9_-]{0,63}):[0-9a-f]{8}$/;

/** What one trace line says; `actor` is the session actor's id, or `<id>/<child>` for a child. */
export type TraceBody =
  | { kind: "actor"; actor: string; parent: string | null }
  | {
    kind: "event";
    actor: string;
    source: string | null;
    event: { type: string; [k: string]: unknown };
  }
  | {
    kind: "snapshot";
    actor: string;
    event: string;
    status: string;
    value?: StateValue;
    context?: ContextSummary;
  }
  | { kind: "stop"; actor: string }
  | { kind: "dropped"; actor: string; count: number };

/** One line of a trace: a body with its order in the recorder and a time (ms since the epoch). */
export type TraceEntry = { seq: number; ts: number } & TraceBody;

/** What a trace and `session/inspect` show of a session's context (no history). */
export interface ContextSummary {
  turns: number;
  tokens: { in: number; out: number };
  lastSeen: number;
  pid?: number;
  exit?: SessionContext["exit"];
  error?: string;
}

/** `.ostk/traces` of a project. */
export function tracesDir(paths: OstkPaths): string {
  return `${paths.dir}/traces`;
}

/** The current trace file of `alias` (the rotated one adds `.1`). */
export function tracePath(dir: string, alias: string): string {
  return `${dir}/${alias}.jsonl`;
}

export function summarize(context: SessionContext): ContextSummary {
  const { turns, tokens, lastSeen, pid, exit, error } = context;
  return {
    turns,
    tokens,
    lastSeen,
    ...(pid !== undefined ? { pid } : {}),
    ...(exit ? { exit } : {}),
    ...(error !== undefined ? { error } : {}),
  };
}

/** Errors become their message; actor refs (in events such as spawn results) become their id. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { message: value.message };
  return value;
}

interface ActorInfo {
  id: string;
  alias: string;
  isSession: boolean;
}

/**
 * The root actor's inspection observer, writing one trace file per session.
 *
 * @example
 * ```ts ignore
 * const traces = new TraceRecorder({ dir: tracesDir(paths) });
 * const root = createActor(logic, { inspect: traces.observe });
 * // ... on shutdown:
 * await traces.close();
 * ```
 */
export class TraceRecorder {
  readonly dir: string;
  #maxBytes: number;
  #seq = 0;
  #refs = new WeakMap<object, ActorInfo | null>();
  /** Per session actor: what its last recorded snapshot showed, to skip repeats. */
  #last = new Map<string, string>();
  #buffers = new Map<string, string[]>();
  #buffered = 0;
  #dropped = new Map<string, number>();
  #files = new Map<string, { file: Deno.FsFile; size: number }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;
  #madeDir = false;

  constructor(options: { dir: string; maxBytes?: number }) {
    this.dir = options.dir;
    this.#maxBytes = Math.max(1024, options.maxBytes ?? DEFAULT_TRACE_MAX_BYTES);
  }

  /** Pass as `createActor(logic, { inspect: recorder.observe })`. Never throws, never waits. */
  observe = (ev: InspectionEvent): void => {
    if (this.#closed) return;
    if (ev.type === "@xstate.event") {
      const target = this.#info(ev.actorRef);
      const source = ev.sourceRef ? this.#info(ev.sourceRef) : null;
      const owner = target ?? source;
      if (!owner) return;
      // What a child does to itself (a promise resolving) and its start (already an `actor`
      // entry) say nothing the next entries do not; leaving them out halves the bytes written.
      if (target && !target.isSession && (source === target || ev.event.type === "xstate.init")) {
        return;
      }
      this.#push(owner.alias, {
        kind: "event",
        actor: target?.id ?? this.#plainId(ev.actorRef),
        source: source?.id ?? (ev.sourceRef ? this.#plainId(ev.sourceRef) : null),
        event: ev.event,
      });
    } else if (ev.type === "@xstate.actor") {
      const info = this.#info(ev.actorRef);
      if (!info) return;
      const parent = (ev.actorRef as { _parent?: AnyActorRef })._parent;
      this.#push(info.alias, {
        kind: "actor",
        actor: info.id,
        parent: parent ? this.#info(parent)?.id ?? this.#plainId(parent) : null,
      });
    } else if (ev.type === "@xstate.snapshot") {
      const info = this.#info(ev.actorRef);
      if (!info) return;
      if (ev.event.type === "xstate.stop") {
        this.#last.delete(info.id);
        this.#push(info.alias, { kind: "stop", actor: info.id });
        return;
      }
      const snap = ev.snapshot as { status: string; value?: StateValue; context?: SessionContext };
      // A child's snapshot matters when it ends (done, error); a session's when its state or
      // counters change — not for a heartbeat that only moved `lastSeen`.
      if (!info.isSession) {
        if (snap.status === "active") return;
        this.#push(info.alias, {
          kind: "snapshot",
          actor: info.id,
          event: ev.event.type,
          status: snap.status,
        });
        return;
      }
      const context = snap.context ? summarize(snap.context) : undefined;
      const key = JSON.stringify([snap.status, snap.value, { ...context, lastSeen: 0 }]);
      if (this.#last.get(info.id) === key) return;
      this.#last.set(info.id, key);
      this.#push(info.alias, {
        kind: "snapshot",
        actor: info.id,
        event: ev.event.type,
        status: snap.status,
        value: snap.value,
        ...(context ? { context } : {}),
      });
    }
  };

  /** Which session an actor belongs to, cached per actor (child ids are only unique per parent). */
  #info(ref: unknown): ActorInfo | null {
    const key = ref as object;
    const known = this.#refs.get(key);
    if (known !== undefined) return known;
    const { id, _parent } = ref as { id: string; _parent?: AnyActorRef };
    const m = SESSION_ACTOR.exec(id);
    let info: ActorInfo | null = null;
    if (m) info = { id, alias: m[1], isSession: true };
    else if (_parent) {
      const parent = this.#info(_parent);
      if (parent) info = { id: `${parent.id}/${id}`, alias: parent.alias, isSession: false };
    }
    this.#refs.set(key, info);
    return info;
  }

  #plainId(ref: unknown): string {
    return (ref as { _parent?: unknown })._parent ? (ref as { id: string }).id : "root";
  }

  #push(alias: string, entry: TraceBody): void {
    const line = JSON.stringify({ seq: this.#seq++, ts: Date.now(), ...entry }, replacer) + "\n";
    let buf = this.#buffers.get(alias);
    if (!buf) this.#buffers.set(alias, buf = []);
    buf.push(line);
    this.#buffered += line.length;
    while (this.#buffered > MAX_BUFFERED_BYTES && buf.length > 1) {
      this.#buffered -= buf.shift()!.length;
      this.#dropped.set(alias, (this.#dropped.get(alias) ?? 0) + 1);
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch((err) => console.error(`ostk listen: traces: ${err.message}`));
    }, FLUSH_MS);
  }

  /** Write everything buffered so far; resolves once it is on disk (writes run one at a time). */
  flush(): Promise<void> {
    const batch = [...this.#buffers];
    const dropped = new Map(this.#dropped);
    this.#buffers.clear();
    this.#dropped.clear();
    this.#buffered = 0;
    // One write at a time, in order; a failed one is reported by its own flush, not the next.
    this.#writing = this.#writing.catch(() => {}).then(async () => {
      for (const [alias, lines] of batch) {
        const lost = dropped.get(alias);
        if (lost) {
          const mark: TraceEntry = {
            seq: -1,
            ts: Date.now(),
            actor: "",
            kind: "dropped",
            count: lost,
          };
          lines.unshift(JSON.stringify(mark) + "\n");
        }
        await this.#append(alias, lines);
      }
      this.#closeIdle(new Set(batch.map(([alias]) => alias)));
    });
    return this.#writing;
  }

  /** Append `lines` to the alias's file, rotating whenever the next line would pass the limit. */
  async #append(alias: string, lines: string[]): Promise<void> {
    if (!this.#madeDir) {
      await Deno.mkdir(this.dir, { recursive: true });
      this.#madeDir = true;
    }
    const path = tracePath(this.dir, alias);
    let open = this.#files.get(alias) ?? await this.#open(alias, path);
    let chunk: Uint8Array[] = [];
    let chunkBytes = 0;
    const write = async () => {
      if (chunkBytes === 0) return;
      const bytes = new Uint8Array(chunkBytes);
      let off = 0;
      for (const part of chunk) bytes.set(part, (off += part.length) - part.length);
      for (let done = 0; done < bytes.length;) done += await open.file.write(bytes.subarray(done));
      open.size += chunkBytes;
      chunk = [];
      chunkBytes = 0;
    };
    for (const line of lines) {
      const bytes = encoder.encode(line);
      if (open.size + chunkBytes > 0 && open.size + chunkBytes + bytes.length > this.#maxBytes) {
        await write();
        open.file.close();
        this.#files.delete(alias);
        // rename replaces the older `.1`: one old file is kept, the rest is let go.
        await Deno.rename(path, `${path}.1`);
        open = await this.#open(alias, path);
      }
      chunk.push(bytes);
      chunkBytes += bytes.length;
    }
    await write();
  }

  async #open(alias: string, path: string) {
    const file = await Deno.open(path, { append: true, create: true });
    const open = { file, size: (await file.stat()).size };
    this.#files.set(alias, open);
    return open;
  }

  /** Files of sessions that wrote nothing in the last flush are closed (reopened when needed). */
  #closeIdle(active: Set<string>): void {
    for (const [alias, open] of this.#files) {
      if (active.has(alias)) continue;
      open.file.close();
      this.#files.delete(alias);
    }
  }

  /** Stop recording and write what is left. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
    this.#closed = true;
    this.#closeIdle(new Set());
  }
}

/**
 * Read `alias`'s trace: the rotated file first, then the current one. A torn last line (a
 * daemon killed mid-write) is skipped.
 */
export async function readTrace(dir: string, alias: string): Promise<TraceEntry[]> {
  const out: TraceEntry[] = [];
  let found = false;
  for (const path of [`${tracePath(dir, alias)}.1`, tracePath(dir, alias)]) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    found = true;
    const lines = text.split("\n");
    lines.forEach((line, i) => {
      if (line.trim() === "") return;
      try {
        out.push(JSON.parse(line) as TraceEntry);
      } catch (err) {
        if (i < lines.length - 1 || !(err instanceof SyntaxError)) {
          throw new OstkError("bad_input", `${path}:${i + 1}: not a trace entry`, {
            file: path,
            line: i + 1,
          });
        }
      }
    });
  }
  if (!found) {
    throw new OstkError(
      "not_found",
      `no trace for '${alias}' in ${dir}`,
      {},
      "traces are written while the daemon runs with OSTK_TRACES unset or 1",
    );
  }
  return out;
}

/**
 * The daemon's recorder, or none when traces are off: `options.traces` decides, else
 * `OSTK_TRACES=0` turns them off. The size limit comes from `options.traceMaxBytes`, else
 * `OSTK_TRACE_MAX_BYTES`, else 1 MiB.
 */
export function traceRecorderFor(
  paths: OstkPaths,
  options: { traces?: boolean; traceMaxBytes?: number },
): TraceRecorder | undefined {
  const on = options.traces ?? Deno.env.get("OSTK_TRACES") !== "0";
  if (!on) return undefined;
  const fromEnv = Number(Deno.env.get("OSTK_TRACE_MAX_BYTES"));
  const maxBytes = options.traceMaxBytes ??
    (Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_TRACE_MAX_BYTES);
  return new TraceRecorder({ dir: tracesDir(paths), maxBytes });
}
