/**
 * Ollama's native `/api/chat` with tools, streamed as NDJSON: one object per line with
 * `message.content` text and whole `message.tool_calls`, the last one `done: true` with
 * `done_reason`, `prompt_eval_count` and `eval_count`. No key; default host 127.0.0.1:11434.
 */
import { ProviderError } from "./errors.ts";
import { type HttpOptions, openStream } from "./_http.ts";
import { arr, type Json, num, obj, str } from "./_json.ts";
import { lines, parseChunk } from "./_stream.ts";
import type { ChatRequest, Message, ModelProvider, StopReason, StreamEvent } from "./provider.ts";

/** What `providerFor` hands the Ollama provider. */
export interface OllamaConfig {
  id: string;
  model: string;
  baseUrl: string;
  http: HttpOptions;
}

/** `ollama:<model>`. */
export class OllamaProvider implements ModelProvider {
  readonly id: string;
  readonly model: string;
  #config: OllamaConfig;

  constructor(config: OllamaConfig) {
    this.id = config.id;
    this.model = config.model;
    this.#config = config;
  }

  secrets(): Promise<string[]> {
    return Promise.resolve([]);
  }

  async *chat(req: ChatRequest): AsyncGenerator<StreamEvent> {
    const { http, baseUrl } = this.#config;
    const body: Json = {
      model: this.model,
      messages: toOllamaMessages(req.system, req.messages),
      stream: true,
      options: { num_predict: req.maxTokens },
    };
    if (req.tools.length > 0) {
      body.tools = req.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.parameters },
      }));
    }
    const url = `${baseUrl.replace(/\/+$/, "")}/api/chat`;
    const bytes = await openStream(url, {}, body, http, [], req.signal);
    yield* decodeOllama(lines(bytes, http.label), http.label);
  }
}

/** Turn Ollama's NDJSON lines into stream events. Exported for tests of the decoder alone. */
export async function* decodeOllama(
  input: AsyncIterable<string>,
  label: string,
): AsyncGenerator<StreamEvent> {
  let index = 0;
  for await (const line of input) {
    if (line.trim() === "") continue;
    const chunk = parseChunk(line, label);
    const error = str(chunk.error);
    if (error !== undefined) throw new ProviderError("server", `${label}: stream error: ${error}`);
    const message = obj(chunk.message);
    const text = str(message?.content);
    if (text) yield { type: "text", text };
    // Ollama sends each tool call whole; it becomes start, one delta, end.
    for (const item of arr(message?.tool_calls) ?? []) {
      const fn = obj(obj(item)?.function);
      const name = str(fn?.name);
      if (!name) throw new ProviderError("protocol", `${label}: a tool call has no function name`);
      const args = fn?.arguments;
      const id = str(obj(item)?.id) ?? `call_${index}`;
      yield { type: "tool_call_start", index, id, name };
      yield {
        type: "tool_call_delta",
        index,
        args: typeof args === "string" ? args : JSON.stringify(args ?? {}),
      };
      yield { type: "tool_call_end", index };
      index++;
    }
    if (chunk.done === true) {
      const raw = str(chunk.done_reason);
      yield {
        type: "usage",
        input_tokens: num(chunk.prompt_eval_count) ?? 0,
        output_tokens: num(chunk.eval_count) ?? 0,
      };
      yield { type: "stop", reason: stopReason(raw, index > 0), ...(raw ? { raw } : {}) };
      return;
    }
  }
  throw new ProviderError("network", `${label}: the stream ended before done: true`);
}

function stopReason(raw: string | undefined, calledTools: boolean): StopReason {
  if (raw === "length") return "max_tokens";
  if (calledTools) return "tool_use";
  if (raw === "stop" || raw === undefined) return "end_turn";
  return "other";
}

/** Neutral messages → Ollama's: tool calls carry argument objects, results name their tool. */
export function toOllamaMessages(system: string, messages: readonly Message[]): Json[] {
  const out: Json[] = [{ role: "system", content: system }];
  for (const m of messages) {
    if (m.role === "user") out.push({ role: "user", content: m.text });
    else if (m.role === "tool") {
      for (const r of m.results) out.push({ role: "tool", content: r.content, tool_name: r.name });
    } else {
      out.push({
        role: "assistant",
        content: m.text,
        ...(m.tool_calls.length > 0
          ? {
            tool_calls: m.tool_calls.map((c) => ({
              function: { name: c.name, arguments: c.args },
            })),
          }
          : {}),
      });
    }
  }
  return out;
}
