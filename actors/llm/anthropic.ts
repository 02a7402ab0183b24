/**
 * Anthropic's Messages API with tool use, streamed as Server-Sent Events: `message_start`
 * (input usage), `content_block_start` / `content_block_delta` (`text_delta`,
 * `input_json_delta`) / `content_block_stop`, `message_delta` (stop reason, output usage),
 * `message_stop`; `ping` is ignored and an `error` event ends the call.
 */
import { ProviderError } from "./errors.ts";
import { type HttpOptions, openStream } from "./_http.ts";
import { type Json, num, obj, str } from "./_json.ts";
import { parseChunk, type SseEvent, sseEvents } from "./_stream.ts";
import type { ChatRequest, Message, ModelProvider, StopReason, StreamEvent } from "./provider.ts";
import type { KeySource } from "./secrets.ts";

/** The API version this module speaks. */
export const ANTHROPIC_VERSION = "2023-06-01";

/** What `providerFor` hands the Anthropic provider. */
export interface AnthropicConfig {
  id: string;
  model: string;
  baseUrl: string;
  key: KeySource;
  http: HttpOptions;
}

/** `anthropic:<model>`. */
export class AnthropicProvider implements ModelProvider {
  readonly id: string;
  readonly model: string;
  #config: AnthropicConfig;

  constructor(config: AnthropicConfig) {
    this.id = config.id;
    this.model = config.model;
    this.#config = config;
  }

  async secrets(): Promise<string[]> {
    const key = await this.#config.key.get();
    return key ? [key] : [];
  }

  async *chat(req: ChatRequest): AsyncGenerator<StreamEvent> {
    const { http, baseUrl } = this.#config;
    const key = await this.#config.key.get();
    if (!key) {
      throw new ProviderError(
        "auth",
        `${http.label}: no API key; set ANTHROPIC_API_KEY or add 'SECRET anthropic env:<VAR>' to HUMANFILE`,
      );
    }
    const body: Json = {
      model: this.model,
      max_tokens: req.maxTokens,
      system: req.system,
      messages: toAnthropicMessages(req.messages),
      stream: true,
    };
    if (req.tools.length > 0) {
      body.tools = req.tools.map((t) => ({
        name: t.name,
        description: t.description,
        input_schema: t.parameters,
      }));
    }
    const headers = {
      "x-api-key": key,
      "anthropic-version": ANTHROPIC_VERSION,
      accept: "text/event-stream",
    };
    const bytes = await openStream(
      `${baseUrl}/v1/messages`,
      headers,
      body,
      http,
      [key],
      req.signal,
    );
    yield* decodeAnthropic(sseEvents(bytes, http.label), http.label);
  }
}

/** Turn Anthropic's events into stream events. Exported for tests of the decoder alone. */
export async function* decodeAnthropic(
  events: AsyncIterable<SseEvent>,
  label: string,
): AsyncGenerator<StreamEvent> {
  let input = 0;
  let output = 0;
  let stop: string | undefined;
  const toolBlocks = new Set<number>();
  for await (const event of events) {
    const data = parseChunk(event.data, label);
    const index = num(data.index) ?? 0;
    switch (data.type) {
      case "message_start": {
        const usage = obj(obj(data.message)?.usage);
        // Cached prompt tokens still fill the context window, so they count as input.
        input = (num(usage?.input_tokens) ?? 0) + (num(usage?.cache_creation_input_tokens) ?? 0) +
          (num(usage?.cache_read_input_tokens) ?? 0);
        output = num(usage?.output_tokens) ?? 0;
        break;
      }
      case "content_block_start": {
        const block = obj(data.content_block);
        if (block?.type === "tool_use") {
          const id = str(block.id);
          const name = str(block.name);
          if (!id || !name) {
            throw new ProviderError(
              "protocol",
              `${label}: tool_use block ${index} lacks id or name`,
            );
          }
          toolBlocks.add(index);
          yield { type: "tool_call_start", index, id, name };
        } else if (block?.type === "text" && str(block.text)) {
          yield { type: "text", text: str(block.text)! };
        }
        break;
      }
      case "content_block_delta": {
        const delta = obj(data.delta);
        if (delta?.type === "text_delta" && str(delta.text) !== undefined) {
          yield { type: "text", text: str(delta.text)! };
        } else if (delta?.type === "input_json_delta" && str(delta.partial_json) !== undefined) {
          yield { type: "tool_call_delta", index, args: str(delta.partial_json)! };
        }
        break;
      }
      case "content_block_stop":
        if (toolBlocks.delete(index)) yield { type: "tool_call_end", index };
        break;
      case "message_delta": {
        stop = str(obj(data.delta)?.stop_reason) ?? stop;
        const usage = obj(data.usage);
        output = num(usage?.output_tokens) ?? output;
        break;
      }
      case "message_stop":
        yield { type: "usage", input_tokens: input, output_tokens: output };
        yield { type: "stop", reason: stopReason(stop), ...(stop ? { raw: stop } : {}) };
        return;
      case "error": {
        const error = obj(data.error);
        const kind = str(error?.type) ?? "error";
        const code = kind === "overloaded_error" || kind === "api_error" ? "server" : "protocol";
        throw new ProviderError(
          code,
          `${label}: stream error ${kind}: ${str(error?.message) ?? ""}`,
        );
      }
      default: // ping, and event types newer than this module
    }
  }
  throw new ProviderError("network", `${label}: the stream ended before message_stop`);
}

function stopReason(raw: string | undefined): StopReason {
  if (raw === "end_turn" || raw === "stop_sequence") return "end_turn";
  if (raw === "tool_use") return "tool_use";
  if (raw === "max_tokens") return "max_tokens";
  return "other";
}

type Block = Json;

/**
 * Neutral messages → Anthropic's: tool results travel in a user message, and neighbouring
 * messages of one role are merged (the API wants user and assistant to alternate).
 */
export function toAnthropicMessages(messages: readonly Message[]): Json[] {
  const out: { role: "user" | "assistant"; content: Block[] }[] = [];
  const push = (role: "user" | "assistant", blocks: Block[]) => {
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const m of messages) {
    if (m.role === "user") push("user", [{ type: "text", text: m.text }]);
    else if (m.role === "tool") {
      push(
        "user",
        m.results.map((r) => ({
          type: "tool_result",
          tool_use_id: r.id,
          content: r.content,
          ...(r.is_error ? { is_error: true } : {}),
        })),
      );
    } else {
      const blocks: Block[] = m.text ? [{ type: "text", text: m.text }] : [];
      for (const c of m.tool_calls) {
        blocks.push({ type: "tool_use", id: c.id, name: c.name, input: c.args });
      }
      push("assistant", blocks.length > 0 ? blocks : [{ type: "text", text: "(no reply)" }]);
    }
  }
  return out;
}
