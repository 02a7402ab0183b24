/**
 * A model session's life by context pressure, and its budgets. Pure functions; the model CPU
 * calls them at each turn boundary and before each model call.
 *
 * healthy → aging (≥ 70 % of the window) → dying (≥ 90 %) → draining (one last turn, no tools,
 * asking for a handoff) → dead. Pressure only rises: a smaller reply does not make a session
 * young again, since its history is still there.
 */

/** The states of context pressure. */
export type Pressure = "healthy" | "aging" | "dying" | "draining" | "dead";

export const AGING_AT = 0.7;
export const DYING_AT = 0.9;

const ORDER: readonly Pressure[] = ["healthy", "aging", "dying", "draining", "dead"];

/**
 * The state after a model call that used `used` tokens of a `window`-token context.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextPressure } from "./lifecycle.ts";
 * assert.equal(nextPressure("healthy", 75, 100), "aging");
 * assert.equal(nextPressure("healthy", 92, 100), "dying");
 * assert.equal(nextPressure("aging", 10, 100), "aging");
 * ```
 */
export function nextPressure(current: Pressure, used: number, window: number): Pressure {
  const share = used / Math.max(1, window);
  const measured: Pressure = share >= DYING_AT ? "dying" : share >= AGING_AT ? "aging" : "healthy";
  return ORDER.indexOf(measured) > ORDER.indexOf(current) ? measured : current;
}

/** `LIMIT` values of an Agentfile that bound a model session; `wall_clock` in milliseconds. */
export interface ModelLimits {
  budget_usd?: number;
  tokens?: number;
  turns?: number;
  wall_clock_ms?: number;
}

/** What a session has spent so far, across revivals. */
export interface Spent {
  usd: number;
  tokens: number;
  turns: number;
  wallMs: number;
}

/**
 * The first limit that `spent` has reached, as a sentence, or undefined. Checked before each
 * model call, so a call is never started once a limit is met.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exceededLimit } from "./lifecycle.ts";
 * const spent = { usd: 0.5, tokens: 1200, turns: 3, wallMs: 10 };
 * assert.equal(exceededLimit({ tokens: 1000 }, spent), "LIMIT tokens 1000 reached (1200 used)");
 * assert.equal(exceededLimit({ turns: 4 }, spent), undefined);
 * ```
 */
export function exceededLimit(limits: ModelLimits, spent: Spent): string | undefined {
  if (limits.budget_usd !== undefined && spent.usd >= limits.budget_usd) {
    return `LIMIT budget_usd ${limits.budget_usd} reached ($${spent.usd.toFixed(4)} spent)`;
  }
  if (limits.tokens !== undefined && spent.tokens >= limits.tokens) {
    return `LIMIT tokens ${limits.tokens} reached (${spent.tokens} used)`;
  }
  if (limits.turns !== undefined && spent.turns >= limits.turns) {
    return `LIMIT turns ${limits.turns} reached (${spent.turns} done)`;
  }
  if (limits.wall_clock_ms !== undefined && spent.wallMs >= limits.wall_clock_ms) {
    return `LIMIT wall_clock ${limits.wall_clock_ms}ms reached (${
      Math.round(spent.wallMs)
    }ms used)`;
  }
  return undefined;
}
