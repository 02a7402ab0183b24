/**
 * A model session's conversation, kept beside its drain snapshot as
 * `.ostk/drain/<alias>.messages.jsonl`. The drain snapshot's `TurnRecord` is a strict schema
 * (turn, calls, tokens) with no room for messages, so they live here, two lines per turn:
 *
 * - `call`: written right after the model answers, before any tool runs: the messages the turn
 *   added (task or drain prompt, then the reply) and the call's usage and cost.
 * - `done`: written after the tools ran, before the session's `onTurn`: the tool results, the
 *   pressure state, files touched and the turn's wall time.
 *
 * On revival at `startTurn` (the drain's turn count) turns below it are history, and a `call`
 * line of `startTurn` itself is a reply whose tools may have run before the crash: it is
 * replayed with the same call ids (the daemon skips calls it already audited) instead of
 * asking the model again. Anything else is dropped and the file rewritten. A torn last line (a
 * crash mid-append) is ignored; a bad line elsewhere is an integrity error.
 */
import { z } from "zod";
import { atomicWrite } from "../../kernel/atomic_write.ts";
import { OstkError } from "../../kernel/errors.ts";
import type { Pressure } from "./lifecycle.ts";
import type { Message } from "./provider.ts";

const count = z.number().int().nonnegative();

export const MessageSchema = z.discriminatedUnion("role", [
  z.strictObject({ role: z.literal("user"), text: z.string() }),
  z.strictObject({
    role: z.literal("assistant"),
    text: z.string(),
    tool_calls: z.array(
      z.strictObject({ id: z.string(), name: z.string(), args: z.record(z.string(), z.unknown()) }),
    ),
  }),
  z.strictObject({
    role: z.literal("tool"),
    results: z.array(
      z.strictObject({
        id: z.string(),
        name: z.string(),
        content: z.string(),
        is_error: z.boolean(),
      }),
    ),
  }),
]);

const FileTouchSchema = z.strictObject({ gen: count, wrote: z.boolean() });

export const SidecarLineSchema = z.discriminatedUnion("phase", [
  z.strictObject({
    v: z.literal(1),
    phase: z.literal("call"),
    turn: count,
    messages: z.array(MessageSchema),
    usage: z.strictObject({ input_tokens: count, output_tokens: count }),
    usd: z.number().nonnegative(),
  }),
  z.strictObject({
    v: z.literal(1),
    phase: z.literal("done"),
    turn: count,
    messages: z.array(MessageSchema),
    pressure: z.enum(["healthy", "aging", "dying", "draining", "dead"]),
    files: z.record(z.string(), FileTouchSchema),
    wall_ms: z.number().nonnegative(),
  }),
]);

export type SidecarLine = z.infer<typeof SidecarLineSchema>;
export type CallLine = Extract<SidecarLine, { phase: "call" }>;
export type FileTouch = z.infer<typeof FileTouchSchema>;

/** A session's conversation and spending, folded from its sidecar. */
export interface SidecarState {
  messages: Message[];
  /** The reply of turn `startTurn`, whose tools are to be replayed. */
  pending?: CallLine;
  usd: number;
  tokens: number;
  wallMs: number;
  pressure: Pressure;
  files: Record<string, FileTouch>;
  /** Turns below `startTurn` with no lines here (the sidecar was lost or cut). */
  missingTurns: number;
}

/** The sidecar's path for an alias under a project root. */
export function sidecarPath(root: string, alias: string): string {
  return `${root}/.ostk/drain/${alias}.messages.jsonl`;
}

/** Append one line and flush it to disk before the turn is reported. */
export async function appendSidecar(path: string, line: SidecarLine): Promise<void> {
  const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
  try {
    await file.write(new TextEncoder().encode(JSON.stringify(line) + "\n"));
    await file.syncData();
  } finally {
    file.close();
  }
}

/**
 * Load the sidecar for a session resuming at `startTurn`, dropping what lies past it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { appendSidecar, loadSidecar } from "./sidecar.ts";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/a.messages.jsonl`;
 * const reply = (turn: number) => ({
 *   v: 1 as const, phase: "call" as const, turn, usd: 0.01,
 *   usage: { input_tokens: 10, output_tokens: 5 },
 *   messages: [{ role: "assistant" as const, text: `turn ${turn}`, tool_calls: [] }],
 * });
 * await appendSidecar(path, reply(0));
 * await appendSidecar(path, {
 *   v: 1, phase: "done", turn: 0, messages: [], pressure: "aging", files: {}, wall_ms: 7,
 * });
 * await appendSidecar(path, reply(1));
 * await appendSidecar(path, reply(2)); // past the drain snapshot: dropped
 * const state = await loadSidecar(path, 1);
 * assert.equal(state.messages.length, 1); // turn 0's reply
 * assert.equal(state.pending?.turn, 1); // its tools are replayed, not asked for again
 * assert.equal(state.tokens, 30);
 * assert.equal(state.pressure, "aging");
 * assert.equal((await Deno.readTextFile(path)).trim().split("\n").length, 3);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadSidecar(path: string, startTurn: number): Promise<SidecarState> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const raw = text.split("\n");
  const parsed: SidecarLine[] = [];
  let torn = false;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i].trim() === "") continue;
    const line = parseLine(raw[i]);
    if (line) {
      parsed.push(line);
      continue;
    }
    if (raw.slice(i + 1).every((rest) => rest.trim() === "")) {
      torn = true; // a crash mid-append; the turn it belonged to is replayed
      continue;
    }
    throw new OstkError("integrity", `${path}:${i + 1}: not a sidecar line`, {
      file: path,
      line: i + 1,
    }, "move the file aside to start the conversation over");
  }
  const kept = parsed.filter((l) =>
    l.turn < startTurn || (l.turn === startTurn && l.phase === "call")
  );
  if (kept.length !== parsed.length || torn) {
    await atomicWrite(path, kept.map((l) => JSON.stringify(l) + "\n").join(""), { mode: 0o600 });
  }
  const state: SidecarState = {
    messages: [],
    usd: 0,
    tokens: 0,
    wallMs: 0,
    pressure: "healthy",
    files: {},
    missingTurns: 0,
  };
  const seen = new Set<number>();
  const finished = new Set(kept.filter((l) => l.phase === "done").map((l) => l.turn));
  for (const line of kept) {
    seen.add(line.turn);
    if (line.phase === "call") {
      // A pending reply was paid for too.
      state.usd += line.usd;
      state.tokens += line.usage.input_tokens + line.usage.output_tokens;
      if (line.turn === startTurn) {
        state.pending = line;
        continue;
      }
    } else {
      state.pressure = line.pressure;
      state.wallMs += line.wall_ms;
      for (const [path, touch] of Object.entries(line.files)) {
        touchFile(state.files, path, touch.gen, touch.wrote);
      }
    }
    state.messages.push(...line.messages);
    if (line.phase === "call" && !finished.has(line.turn)) {
      // A finished turn whose `done` line was lost: every call still needs a result, or the
      // provider refuses the history.
      state.messages.push(...lostResults(line));
    }
  }
  for (let t = 0; t < startTurn; t++) if (!seen.has(t)) state.missingTurns++;
  return state;
}

/** Note that a turn saw or wrote `path` at `gen`; once written, a file stays marked written. */
export function touchFile(
  files: Record<string, FileTouch>,
  path: string,
  gen: number,
  wrote: boolean,
): void {
  const before = files[path];
  files[path] = { gen, wrote: wrote || (before?.wrote ?? false) };
}

function lostResults(line: CallLine): Message[] {
  const reply = line.messages.at(-1);
  if (reply?.role !== "assistant" || reply.tool_calls.length === 0) return [];
  const results = reply.tool_calls.map((c) => ({
    id: c.id,
    name: c.name,
    content: "error: this call's result was lost in a crash; re-read what you need",
    is_error: true,
  }));
  return [{ role: "tool", results }];
}

function parseLine(text: string): SidecarLine | undefined {
  try {
    const result = SidecarLineSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}
