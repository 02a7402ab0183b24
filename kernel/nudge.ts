/**
 * Nudges: short messages one agent (or the operator) leaves for another. A nudge is appended to
 * `.ostk/nudges/<alias>.jsonl` under an exclusive lock on that file; the recipient's next tool
 * response carries every pending nudge as a `[nudge] from=<alias>: <text>` digest line, and the
 * queue is emptied (truncated under the same lock) as it is delivered.
 */
import type { FoldState } from "./fold.ts";

/** One queued nudge. */
export interface Nudge {
  from: string;
  text: string;
  ts: string;
}

/** The queue file of `alias` under a `.ostk` directory. */
export function nudgePath(dir: string, alias: string): string {
  return `${dir}/nudges/${alias}.jsonl`;
}

/**
 * Why a nudge to `to` would be refused, or undefined when it can be queued. The recipient must
 * be a known alias (an `agent.alias` row, or a session's own alias); if it has sessions, one of
 * them must be alive. An alias with no session at all (an external agent calling the kernel
 * with `--as`) is accepted: it reads its nudges with its next call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nudgeRefusal } from "./nudge.ts";
 * import { emptyState } from "./fold.ts";
 * const state = emptyState();
 * assert.match(nudgeRefusal(state, "ghost-1") ?? "", /unknown alias 'ghost-1'/);
 * state.aliases.set("codex-1", { alias: "codex-1", name: "codex", n: 1, seq: 0 });
 * assert.equal(nudgeRefusal(state, "codex-1"), undefined); // known, no session: queued
 * ```
 */
export function nudgeRefusal(state: FoldState, to: string): string | undefined {
  const sessions = [...state.sessions.values()].filter((s) => s.alias === to);
  if (!state.aliases.has(to) && sessions.length === 0) {
    return `unknown alias '${to}': no agent.alias or session row names it`;
  }
  if (sessions.length > 0 && sessions.every((s) => s.state === "dead")) {
    return `session '${to}' is dead; a nudge would never be read`;
  }
  return undefined;
}

/** Append a nudge to `to`'s queue under the file's lock; returns the queued line's byte count. */
export async function appendNudge(dir: string, to: string, nudge: Nudge): Promise<number> {
  await Deno.mkdir(`${dir}/nudges`, { recursive: true });
  const line = new TextEncoder().encode(JSON.stringify(nudge) + "\n");
  const file = await Deno.open(nudgePath(dir, to), { write: true, create: true, append: true });
  try {
    await file.lock(true);
    let written = 0;
    while (written < line.length) written += await file.write(line.subarray(written));
    await file.syncData();
  } finally {
    file.close(); // closing releases the lock
  }
  return line.length;
}

/** Take every pending nudge of `alias`: read and truncate the queue under its lock. */
export async function takeNudges(dir: string, alias: string): Promise<Nudge[]> {
  const path = nudgePath(dir, alias);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  try {
    await file.lock(true);
    const text = await Deno.readTextFile(path);
    if (text.length === 0) return [];
    await file.truncate(0);
    await file.syncData();
    const out: Nudge[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        const n = JSON.parse(line);
        if (typeof n?.from === "string" && typeof n?.text === "string") out.push(n);
      } catch {
        // a torn line (a writer that died mid-write) is skipped, not fatal
      }
    }
    return out;
  } finally {
    file.close();
  }
}

/** A nudge as one digest line: newlines folded so it stays one line. */
export function nudgeLine(n: Pick<Nudge, "from" | "text">): string {
  return `[nudge] from=${n.from}: ${n.text.replace(/\s*\n\s*/g, " ").trim()}`;
}
