/**
 * The one interface to a language model: `ModelProvider.chat` streams `StreamEvent`s for one
 * request. Messages and events are provider-neutral; each provider module translates them to
 * and from its own wire protocol. `providerFor` picks the provider by the spec's prefix.
 */
import { type ModelSpec, parseModelSpec } from "../../kernel/model_spec.ts";
import { AnthropicProvider } from "./anthropic.ts";
import type { HttpOptions, RetryInfo, RetryPolicy } from "./_http.ts";
import { OllamaProvider } from "./ollama.ts";
import { OpenAiProvider } from "./openai.ts";
import { keySourceFor } from "./secrets.ts";

/** A tool the model may call: a wire-safe name and a JSON schema for its arguments. */
export interface ToolDef {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/** A tool call the model made; `args` is the JSON object it sent. */
export interface ToolCall {
  id: string;
  name: string;
  args: Record<string, unknown>;
}

/** What a tool call returned, as the model will read it. */
export interface ToolResult {
  id: string;
  name: string;
  content: string;
  is_error: boolean;
}

/** One message of a conversation, provider-neutral (and the sidecar's on-disk form). */
export type Message =
  | { role: "user"; text: string }
  | { role: "assistant"; text: string; tool_calls: ToolCall[] }
  | { role: "tool"; results: ToolResult[] };

/** One model call. */
export interface ChatRequest {
  system: string;
  messages: Message[];
  tools: ToolDef[];
  maxTokens: number;
  signal?: AbortSignal;
}

/** Why the model stopped: finished, wants tools, ran out of output tokens, or anything else. */
export type StopReason = "end_turn" | "tool_use" | "max_tokens" | "other";

/** What a streaming model call yields, in order; exactly one `stop` ends a complete stream. */
export type StreamEvent =
  | { type: "text"; text: string }
  | { type: "tool_call_start"; index: number; id: string; name: string }
  | { type: "tool_call_delta"; index: number; args: string }
  | { type: "tool_call_end"; index: number }
  | { type: "usage"; input_tokens: number; output_tokens: number }
  | { type: "stop"; reason: StopReason; raw?: string };

/** A language model behind one wire protocol. */
export interface ModelProvider {
  /** The spec it was made from, e.g. `anthropic:claude-sonnet-4`. */
  readonly id: string;
  readonly model: string;
  /** Stream one call; throws `ProviderError` once retries are spent or the stream breaks. */
  chat(req: ChatRequest): AsyncIterable<StreamEvent>;
  /** The key values this provider sends, so tool output can be masked before the model reads it. */
  secrets(): Promise<string[]>;
}

// The spec parser lives in kernel/ so an Agentfile's FROM line reads specs with it too.
export { type ModelSpec, parseModelSpec };

/** How `providerFor` finds keys and base URLs, retries, and reports retries. */
export interface ProviderOptions {
  env?: { get(name: string): string | undefined };
  /** HUMANFILE text, for `SECRET <provider> env:NAME` / `cmd:<command>` lines. */
  humanfile?: string;
  /** A key given directly (tests); wins over env and HUMANFILE. */
  apiKey?: string;
  retry?: Partial<RetryPolicy>;
  /** Called before each retry; the model CPU audits it. */
  onRetry?: (info: RetryInfo) => void | Promise<void>;
  /** A stream with no bytes for this long is a dropped connection (default 300 s). */
  idleTimeoutMs?: number;
}

/**
 * The base URL a provider calls: the spec's own for `openai-compatible`, else the
 * `OSTK_*` override from `env`, else the public default.
 */
export function providerBaseUrl(
  parsed: ModelSpec,
  env: { get(name: string): string | undefined },
): string {
  switch (parsed.provider) {
    case "anthropic":
      return env.get("OSTK_ANTHROPIC_BASE_URL") ?? "https://api.anthropic.com";
    case "openai":
      return env.get("OSTK_OPENAI_BASE_URL") ?? "https://api.openai.com/v1";
    case "openai-compatible":
      return parsed.baseUrl!;
    case "ollama":
      return env.get("OSTK_OLLAMA_HOST") ?? "http://127.0.0.1:11434";
  }
}

/** The environment variables `providerFor` reads for base URLs. */
export const BASE_URL_VARS = [
  "OSTK_ANTHROPIC_BASE_URL",
  "OSTK_OPENAI_BASE_URL",
  "OSTK_OLLAMA_HOST",
];

/**
 * The provider for a spec. Base URLs come from `OSTK_ANTHROPIC_BASE_URL`, `OSTK_OPENAI_BASE_URL`
 * and `OSTK_OLLAMA_HOST` when set (tests point them at local servers).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { providerFor } from "./provider.ts";
 * const p = providerFor("ollama:qwen3", { env: { get: () => undefined } });
 * assert.equal(p.id, "ollama:qwen3");
 * assert.equal(p.model, "qwen3");
 * ```
 */
export function providerFor(spec: string, options: ProviderOptions = {}): ModelProvider {
  const parsed = parseModelSpec(spec);
  const env = options.env ?? Deno.env;
  const http: HttpOptions = {
    label: `${parsed.provider}:${parsed.model}`,
    retry: options.retry,
    onRetry: options.onRetry,
    idleTimeoutMs: options.idleTimeoutMs,
  };
  const key = keySourceFor(parsed.provider, { ...options, env });
  const id = spec;
  switch (parsed.provider) {
    case "anthropic":
      return new AnthropicProvider({
        id,
        model: parsed.model,
        baseUrl: providerBaseUrl(parsed, env),
        key,
        http,
      });
    case "openai":
      return new OpenAiProvider({
        id,
        model: parsed.model,
        baseUrl: providerBaseUrl(parsed, env),
        key,
        http,
        maxTokensField: "max_completion_tokens",
        keyRequired: true,
      });
    case "openai-compatible":
      return new OpenAiProvider({
        id,
        model: parsed.model,
        baseUrl: providerBaseUrl(parsed, env),
        key,
        http,
        maxTokensField: "max_tokens",
        keyRequired: false,
      });
    case "ollama":
      return new OllamaProvider({
        id,
        model: parsed.model,
        baseUrl: providerBaseUrl(parsed, env),
        http,
      });
  }
}
