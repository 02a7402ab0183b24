/**
 * OpenAI Chat Completions with tools, streamed: `data:` chunks whose
 * `choices[0].delta` carries text and `tool_calls[i].function.arguments` fragments, a last
 * chunk with `usage` (asked for by `stream_options.include_usage`), then `data: [DONE]`.
 * Also serves any OpenAI-compatible server (vLLM, llama.cpp, LM Studio…) at its own base URL.
 */
import { ProviderError } from "./errors.ts";
import { type HttpOptions, openStream } from "./_http.ts";
import { arr, type Json, num, obj, str } from "./_json.ts";
import { parseChunk, type SseEvent, sseEvents } from "./_stream.ts";
import type { ChatRequest, Message, ModelProvider, StopReason, StreamEvent } from "./provider.ts";
import type { KeySource } from "./secrets.ts";

/** What `providerFor` hands the OpenAI provider. */
export interface OpenAiConfig {
  id: string;
  model: string;
  baseUrl: string;
  key: KeySource;
  http: HttpOptions;
  /** OpenAI's newer field, or the `max_tokens` most compatible servers still read. */
  maxTokensField: "max_completion_tokens" | "max_tokens";
  keyRequired: boolean;
}

/** `openai:<model>` and `openai-compatible:<base-url>#<model>`. */
export class OpenAiProvider implements ModelProvider {
  readonly id: string;
  readonly model: string;
  #config: OpenAiConfig;

  constructor(config: OpenAiConfig) {
    this.id = config.id;
    this.model = config.model;
    this.#config = config;
  }

  async secrets(): Promise<string[]> {
    const key = await this.#config.key.get();
    return key ? [key] : [];
  }

  async *chat(req: ChatRequest): AsyncGenerator<StreamEvent> {
    const { http, baseUrl, maxTokensField } = this.#config;
    const key = await this.#config.key.get();
    if (!key && this.#config.keyRequired) {
      throw new ProviderError(
        "auth",
        `${http.label}: no API key; set OPENAI_API_KEY or add 'SECRET openai env:<VAR>' to HUMANFILE`,
      );
    }
    const body: Json = {
      model: this.model,
      messages: toOpenAiMessages(req.system, req.messages),
      stream: true,
      stream_options: { include_usage: true },
      [maxTokensField]: req.maxTokens,
    };
    if (req.tools.length > 0) {
      body.tools = req.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.parameters },
      }));
    }
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (key) headers.authorization = `Bearer ${key}`;
    const url = `${baseUrl}/chat/completions`;
    const bytes = await openStream(url, headers, body, http, key ? [key] : [], req.signal);
    yield* decodeOpenAi(sseEvents(bytes, http.label), http.label);
  }
}

/** Turn Chat Completions chunks into stream events. Exported for tests of the decoder alone. */
export async function* decodeOpenAi(
  events: AsyncIterable<SseEvent>,
  label: string,
): AsyncGenerator<StreamEvent> {
  const calls = new Map<number, "open" | "closed">();
  let finish: string | undefined;
  let usage = { input_tokens: 0, output_tokens: 0 };
  let done = false;
  const closeAll = function* (): Generator<StreamEvent> {
    for (const [index, state] of [...calls].sort((a, b) => a[0] - b[0])) {
      if (state === "open") yield { type: "tool_call_end", index };
      calls.set(index, "closed");
    }
  };
  for await (const event of events) {
    if (event.data.trim() === "[DONE]") {
      done = true;
      break;
    }
    const chunk = parseChunk(event.data, label);
    const error = obj(chunk.error);
    if (error) {
      throw new ProviderError(
        "server",
        `${label}: stream error: ${str(error.message) ?? "unknown"}`,
      );
    }
    const u = obj(chunk.usage);
    if (u) {
      usage = {
        input_tokens: num(u.prompt_tokens) ?? 0,
        output_tokens: num(u.completion_tokens) ?? 0,
      };
    }
    const choice = obj(arr(chunk.choices)?.[0]);
    if (!choice) continue;
    const delta = obj(choice.delta);
    const text = str(delta?.content);
    if (text) yield { type: "text", text };
    for (const item of arr(delta?.tool_calls) ?? []) {
      const call = obj(item);
      const index = num(call?.index) ?? 0;
      const fn = obj(call?.function);
      if (!calls.has(index)) {
        const name = str(fn?.name);
        if (!name) {
          throw new ProviderError("protocol", `${label}: tool call ${index} starts without a name`);
        }
        calls.set(index, "open");
        yield { type: "tool_call_start", index, id: str(call?.id) ?? `call_${index}`, name };
      } else if (calls.get(index) === "closed") {
        throw new ProviderError(
          "protocol",
          `${label}: tool call ${index} continues after it ended`,
        );
      }
      const args = str(fn?.arguments);
      if (args) yield { type: "tool_call_delta", index, args };
    }
    const reason = str(choice.finish_reason);
    if (reason) {
      finish = reason;
      yield* closeAll();
    }
  }
  // Some compatible servers end without [DONE]; a finish reason is proof enough of a whole reply.
  if (!done && finish === undefined) {
    throw new ProviderError("network", `${label}: the stream ended before [DONE]`);
  }
  yield* closeAll();
  yield { type: "usage", ...usage };
  yield { type: "stop", reason: stopReason(finish), ...(finish ? { raw: finish } : {}) };
}

function stopReason(raw: string | undefined): StopReason {
  if (raw === "stop") return "end_turn";
  if (raw === "tool_calls" || raw === "function_call") return "tool_use";
  if (raw === "length") return "max_tokens";
  return "other";
}

/** Neutral messages → Chat Completions messages, system first, one `tool` message per result. */
export function toOpenAiMessages(system: string, messages: readonly Message[]): Json[] {
  const out: Json[] = [{ role: "system", content: system }];
  for (const m of messages) {
    if (m.role === "user") out.push({ role: "user", content: m.text });
    else if (m.role === "tool") {
      for (const r of m.results) out.push({ role: "tool", tool_call_id: r.id, content: r.content });
    } else {
      out.push({
        role: "assistant",
        content: m.text || null,
        ...(m.tool_calls.length > 0
          ? {
            tool_calls: m.tool_calls.map((c) => ({
              id: c.id,
              type: "function",
              function: { name: c.name, arguments: JSON.stringify(c.args) },
            })),
          }
          : {}),
      });
    }
  }
  return out;
}
