/**
 * The digest envelope: at most five short lines after every tool response, telling the caller
 * what moved in the project since it last looked. Same state and clock → same bytes.
 *
 * Nudges (kernel/nudge.ts) are the one exception to the five-line cap: each pending nudge adds
 * one `[nudge] from=<alias>: <text>` line after the status lines. They are messages, not
 * status, and are delivered once, so they are never cut to fit.
 */
import type { FoldState } from "./fold.ts";
import { nudgeLine } from "./nudge.ts";

/** What the caller's harness knows of its context window, when it tells the kernel. */
export interface ContextBudget {
  used: number;
  limit: number;
}

/** Inputs to {@linkcode renderDigest}. */
export interface DigestInput {
  state: FoldState;
  reader: string;
  nowMs: number;
  budget?: ContextBudget;
  /** Nudges delivered with this response: one line each, beyond the five status lines. */
  nudges?: { from: string; text: string }[];
}

const MAX_FILES = 3;
const WINDOW_MS = 60_000;

/**
 * Render the digest lines (without a trailing newline).
 *
 * `[procs]` counts sessions by where the log says they stand (kernel/fold.ts): `alive` are
 * spawned or revived and not since orphaned or ended; `orphaned` (shown only when there are
 * any) have no process running them (a crash, or a daemon that stopped) and may be revived;
 * sessions that ended (finished, failed, killed, crashed, limited) are not counted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderDigest } from "./digest.ts";
 * import { emptyState } from "./fold.ts";
 * const text = renderDigest({ state: emptyState(), reader: "a-1", nowMs: 0 });
 * assert.deepEqual(text.split("\n"), [
 *   "[procs] 0 alive · 0 aliases",
 *   "[loadavg] writes=0 conflicts=0 /1m",
 * ]);
 * ```
 */
export function renderDigest(input: DigestInput): string {
  const { state, reader, nowMs } = input;
  const sessions = [...state.sessions.values()];
  const alive = sessions.filter((s) => s.state === "alive");
  const orphaned = sessions.filter((s) => s.state === "orphaned");
  const names = (list: typeof sessions) =>
    list.length ? ": " + list.map((s) => s.alias).sort().slice(0, 6).join(" ") : "";
  const lines = [
    `[procs] ${alive.length} alive${names(alive)}${
      orphaned.length ? ` · ${orphaned.length} orphaned${names(orphaned)}` : ""
    } · ${state.aliases.size} aliases`,
  ];
  const seen = state.reads.get(reader);
  const moved = [];
  for (const [path, version] of seen ?? []) {
    const file = state.files.get(path);
    if (file && file.gen > version.gen && file.actor !== reader) moved.push(file);
  }
  if (moved.length > 0) {
    moved.sort((a, b) => b.seq - a.seq || a.path.localeCompare(b.path));
    const shown = moved.slice(0, MAX_FILES).map((f) =>
      `${f.path} gen=${f.gen} by=${f.actor} age=${formatAge(nowMs - Date.parse(f.ts))}`
    );
    const more = moved.length > MAX_FILES ? ` (+${moved.length - MAX_FILES} more)` : "";
    lines.push(`[files] ${shown.join("; ")}${more}`);
  }
  let writes = 0;
  let conflicts = 0;
  for (const event of state.recent) {
    if (nowMs - event.ms > WINDOW_MS || event.ms > nowMs) continue;
    if (event.kind === "write") writes++;
    else conflicts++;
  }
  lines.push(`[loadavg] writes=${writes} conflicts=${conflicts} /1m`);
  if (input.budget) {
    const pct = Math.round((100 * input.budget.used) / Math.max(1, input.budget.limit));
    lines.push(`[meminfo] context ${input.budget.used}/${input.budget.limit} tokens (${pct}%)`);
  }
  for (const n of input.nudges ?? []) lines.push(nudgeLine(n));
  return lines.join("\n");
}

/** `42s`, `3m`, `5h`, `2d`: short and stable. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
