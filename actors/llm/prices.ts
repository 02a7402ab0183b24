/**
 * What a model costs and how much it can hold: USD per million tokens in and out, and the
 * context window in tokens. Figures are the providers' public list prices (standard tier, no
 * caching or batch discounts) as of 2025; check them before trusting a budget to the cent.
 * A model id matches the longest listed prefix, so dated ids (`claude-sonnet-4-20250514`) work.
 */
import type { ModelSpec } from "./provider.ts";

/** Price and size of one model. `priced: false` means the cost is unknown, not zero. */
export interface ModelInfo {
  contextWindow: number;
  inPerMTok: number;
  outPerMTok: number;
  priced: boolean;
}

const row = (contextWindow: number, inPerMTok: number, outPerMTok: number): ModelInfo => ({
  contextWindow,
  inPerMTok,
  outPerMTok,
  priced: true,
});

/** Listed models, by id prefix. */
export const PRICES: Readonly<Record<string, ModelInfo>> = {
  "claude-opus-4-5": row(200_000, 5, 25),
  "claude-opus-4": row(200_000, 15, 75),
  "claude-sonnet-4": row(200_000, 3, 15),
  "claude-haiku-4-5": row(200_000, 1, 5),
  "claude-3-7-sonnet": row(200_000, 3, 15),
  "claude-3-5-sonnet": row(200_000, 3, 15),
  "claude-3-5-haiku": row(200_000, 0.8, 4),
  "gpt-5-nano": row(400_000, 0.05, 0.4),
  "gpt-5-mini": row(400_000, 0.25, 2),
  "gpt-5": row(400_000, 1.25, 10),
  "gpt-4.1-nano": row(1_047_576, 0.1, 0.4),
  "gpt-4.1-mini": row(1_047_576, 0.4, 1.6),
  "gpt-4.1": row(1_047_576, 2, 8),
  "gpt-4o-mini": row(128_000, 0.15, 0.6),
  "gpt-4o": row(128_000, 2.5, 10),
  "o4-mini": row(200_000, 1.1, 4.4),
  "o3": row(200_000, 2, 8),
};

/** A model we know nothing about: a modest window, cost unknown. */
const UNKNOWN: ModelInfo = { contextWindow: 32_768, inPerMTok: 0, outPerMTok: 0, priced: false };

/**
 * Price and window for a model. Local providers (`ollama`, `openai-compatible`) cost nothing;
 * their window defaults to 32k tokens unless `contextWindow` says otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelInfo } from "./prices.ts";
 * const info = modelInfo({ provider: "anthropic", model: "claude-sonnet-4-20250514" });
 * assert.equal(info.contextWindow, 200_000);
 * assert.equal(info.inPerMTok, 3);
 * assert.ok(!modelInfo({ provider: "openai", model: "mystery" }).priced);
 * ```
 */
export function modelInfo(
  spec: Pick<ModelSpec, "provider" | "model">,
  contextWindow?: number,
  overrides: Readonly<Record<string, ModelInfo>> = {},
): ModelInfo {
  // The operator's PRICE lines win over the built-in table, prefix for prefix.
  const table = { ...PRICES, ...overrides };
  let best: string | undefined;
  for (const id of Object.keys(table)) {
    if (spec.model.startsWith(id) && (best === undefined || id.length > best.length)) best = id;
  }
  const local = spec.provider === "ollama" || spec.provider === "openai-compatible";
  const info = best !== undefined ? table[best] : local ? { ...UNKNOWN, priced: true } : UNKNOWN;
  return contextWindow !== undefined ? { ...info, contextWindow } : info;
}

/** USD for one call's usage. */
export function costUsd(
  info: ModelInfo,
  usage: { input_tokens: number; output_tokens: number },
): number {
  return (usage.input_tokens * info.inPerMTok + usage.output_tokens * info.outPerMTok) / 1_000_000;
}

/**
 * `PRICE <model-prefix> <usd-in-per-Mtok> <usd-out-per-Mtok> [context-window]` lines of a
 * HUMANFILE, as overrides for {@linkcode modelInfo}. A malformed line is an error naming it:
 * a budget computed from a price the operator mistyped would be silently wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePriceLines } from "./prices.ts";
 * const o = parsePriceLines("PRICE my-model 1 2 64000\n", "HUMANFILE");
 * assert.equal(o["my-model"].outPerMTok, 2);
 * assert.equal(o["my-model"].contextWindow, 64000);
 * ```
 */
export function parsePriceLines(text: string, file: string): Record<string, ModelInfo> {
  const out: Record<string, ModelInfo> = {};
  text.split("\n").forEach((raw, i) => {
    const words = raw.replace(/#.*$/, "").trim().split(/\s+/);
    if (words[0] !== "PRICE") return;
    const [, model, inP, outP, window] = words;
    const nums = [inP, outP].map(Number);
    const cw = window === undefined ? 200_000 : Number(window);
    if (!model || nums.some((n) => !Number.isFinite(n) || n < 0) || !(cw > 0)) {
      throw new Error(
        `${file}:${i + 1}: expected 'PRICE <model> <usd-in-per-Mtok> <usd-out-per-Mtok> ` +
          `[context-window]', got '${raw.trim()}'`,
      );
    }
    out[model] = row(cw, nums[0], nums[1]);
  });
  return out;
}

/** The PRICE overrides of a project's `.ostk/HUMANFILE` (none when it has no such lines). */
export function readPriceOverrides(root: string): Record<string, ModelInfo> {
  const file = `${root}/.ostk/HUMANFILE`;
  try {
    return parsePriceLines(Deno.readTextFileSync(file), file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    throw err;
  }
}
