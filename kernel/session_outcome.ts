/**
 * How a session ended. One vocabulary for the session machine's final states, the `outcome` of
 * a `session.exit` audit row, `ostk ps` and `ostk run`:
 *
 * - `finished`: the agent did its work and stopped by itself (a transcript or model loop ran
 *   to its end, a command exited 0);
 * - `failed`: a command agent exited by itself with a non-zero code (the code is kept);
 * - `killed`: the operator stopped it (`ostk kill`, Ctrl-C on `ostk run`);
 * - `crashed`: it died unexpectedly (a signal nobody sent, a lost heartbeat, a daemon crash)
 *   and was not revived (revival policy `reap`, too many revivals, or `lineage resolve --reap`);
 * - `limited`: one of its LIMITs (turns, tokens, wall clock, budget) stopped it.
 */

/** Every way a session can end, in the order `ps` documents them. */
export const SESSION_OUTCOMES = ["finished", "failed", "killed", "crashed", "limited"] as const;

export type SessionOutcome = typeof SESSION_OUTCOMES[number];

/**
 * True for a state name that is an end state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isOutcome } from "./session_outcome.ts";
 * assert.equal(isOutcome("failed"), true);
 * assert.equal(isOutcome("orphaned"), false);
 * ```
 */
export function isOutcome(state: unknown): state is SessionOutcome {
  return (SESSION_OUTCOMES as readonly unknown[]).includes(state);
}

/**
 * The outcome a `session.exit` row records. Rows written before outcomes existed carry only a
 * `reason` (`done`, `exited` with a `code`, `aborted`, `killed`, `reaped`, `limit:<name>`);
 * they are read the way the kernel of the time meant them. Undefined when the row says nothing
 * either way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outcomeOfExit } from "./session_outcome.ts";
 * assert.equal(outcomeOfExit({ outcome: "failed", reason: "exit code 3" }), "failed");
 * assert.equal(outcomeOfExit({ reason: "exited", code: 0 }), "finished");
 * assert.equal(outcomeOfExit({ reason: "exited", code: 1 }), "failed");
 * assert.equal(outcomeOfExit({ reason: "aborted", code: 143 }), "killed");
 * assert.equal(outcomeOfExit({ reason: "limit:turns" }), "limited");
 * assert.equal(outcomeOfExit({ reason: "reaped" }), "crashed");
 * assert.equal(outcomeOfExit({}), undefined);
 * ```
 */
export function outcomeOfExit(row: Record<string, unknown>): SessionOutcome | undefined {
  if (isOutcome(row.outcome)) return row.outcome;
  const reason = typeof row.reason === "string" ? row.reason : "";
  if (reason === "done") return "finished";
  if (reason === "exited") return row.code === 0 ? "finished" : "failed";
  if (reason === "aborted" || reason === "killed") return "killed";
  if (reason === "reaped") return "crashed";
  if (reason.startsWith("limit:")) return "limited";
  return undefined;
}
