/**
 * The one parser of model specs: what `ostk spawn --model`, the daemon's spawn check, the model
 * CPU and an Agentfile's `FROM` line all read. It lives in kernel/ because the Agentfile parser
 * (kernel/) may not import actors/; actors/llm/provider.ts re-exports it.
 */
import { OstkError } from "./errors.ts";

/** The providers a spec may name. */
export const MODEL_PROVIDERS = ["anthropic", "openai", "openai-compatible", "ollama"] as const;

/** Which provider a spec names, and where it lives. */
export interface ModelSpec {
  provider: typeof MODEL_PROVIDERS[number];
  model: string;
  /** Only for `openai-compatible`: the base URL before `/chat/completions`. */
  baseUrl?: string;
}

/** Every form a model spec may take, as an error message lists them. */
export const MODEL_SPEC_FORMS =
  "anthropic:<model>, openai:<model>, ollama:<model> or openai-compatible:<base-url>#<model>";

/**
 * Parse a model spec. `<provider>/<model>` is accepted as well as `<provider>:<model>` for the
 * three named providers; `openai-compatible` needs its server's base URL, then `#<model>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModelSpec } from "./model_spec.ts";
 * assert.deepEqual(parseModelSpec("openai-compatible:http://127.0.0.1:8000/v1/#qwen3"), {
 *   provider: "openai-compatible",
 *   model: "qwen3",
 *   baseUrl: "http://127.0.0.1:8000/v1",
 * });
 * assert.deepEqual(parseModelSpec("anthropic/claude-sonnet-4"), {
 *   provider: "anthropic",
 *   model: "claude-sonnet-4",
 * });
 * assert.throws(() => parseModelSpec("gemini:pro"), /unknown provider/);
 * ```
 */
export function parseModelSpec(spec: string): ModelSpec {
  const bad = (why: string): never => {
    const hint = `expected ${MODEL_SPEC_FORMS}`;
    throw new OstkError("bad_input", `model '${spec}': ${why}`, {}, hint, { why });
  };
  const compat = /^openai-compatible:(.+)#([^#]+)$/.exec(spec);
  if (compat) {
    let url: URL;
    try {
      url = new URL(compat[1]);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      return bad(`'${compat[1]}' is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") bad("the base URL must be http(s)");
    return {
      provider: "openai-compatible",
      model: compat[2],
      baseUrl: compat[1].replace(/\/+$/, ""),
    };
  }
  if (/^openai-compatible[:/]/.test(spec)) {
    return bad("openai-compatible needs the server's base URL, then #<model>");
  }
  const m = /^(anthropic|openai|ollama)[:/](.+)$/.exec(spec);
  if (!m) return bad("unknown provider");
  return { provider: m[1] as ModelSpec["provider"], model: m[2] };
}
