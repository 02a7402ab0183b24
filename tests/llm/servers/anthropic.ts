/**
 * A local stand-in for Anthropic's Messages API: `POST /v1/messages` with `x-api-key` and
 * `anthropic-version` checked as the real API does, answered with real SSE event sequences.
 */
import {
  pieces,
  type ScriptedReply,
  type ScriptedServer,
  startScriptedServer,
  type Step,
} from "./scripted.ts";
import type { Wire } from "./wire.ts";

const CT = "text/event-stream; charset=utf-8";

function sse(type: string, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

/** The SSE events of one reply, one event per chunk. */
export function anthropicChunks(reply: ScriptedReply, model = "claude-sonnet-4-test"): string[] {
  const usage = reply.usage ?? { input: 10, output: 5 };
  const out = [
    sse("message_start", {
      message: {
        id: "msg_test",
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: usage.input, output_tokens: 1 },
      },
    }),
    sse("ping", {}),
  ];
  let index = 0;
  if (reply.text) {
    out.push(sse("content_block_start", { index, content_block: { type: "text", text: "" } }));
    for (const text of pieces(reply.text, 2)) {
      out.push(sse("content_block_delta", { index, delta: { type: "text_delta", text } }));
    }
    out.push(sse("content_block_stop", { index }));
    index++;
  }
  for (const [i, call] of (reply.toolCalls ?? []).entries()) {
    const id = call.id ?? `toolu_${i}`;
    out.push(sse("content_block_start", {
      index,
      content_block: { type: "tool_use", id, name: call.name, input: {} },
    }));
    for (const partial_json of pieces(JSON.stringify(call.args), reply.argPieces ?? 3)) {
      out.push(sse("content_block_delta", {
        index,
        delta: { type: "input_json_delta", partial_json },
      }));
    }
    out.push(sse("content_block_stop", { index }));
    index++;
  }
  const stop = reply.toolCalls?.length ? "tool_use" : "end_turn";
  out.push(sse("message_delta", {
    delta: { stop_reason: stop, stop_sequence: null },
    usage: { output_tokens: usage.output },
  }));
  out.push(sse("message_stop", {}));
  return out;
}

/** Check a request as api.anthropic.com would (the parts this client relies on). */
function validator(key: string) {
  return (path: string, headers: Headers, body: unknown): Response | undefined => {
    const error = (status: number, type: string, message: string) =>
      Response.json({ type: "error", error: { type, message } }, { status });
    if (path !== "/v1/messages") return error(404, "not_found_error", `no route ${path}`);
    if (headers.get("x-api-key") !== key) {
      return error(401, "authentication_error", "invalid x-api-key");
    }
    if (!headers.get("anthropic-version")) {
      return error(400, "invalid_request_error", "anthropic-version header is required");
    }
    const b = body as Record<string, unknown>;
    if (typeof b.model !== "string" || typeof b.max_tokens !== "number") {
      return error(400, "invalid_request_error", "model and max_tokens are required");
    }
    if (!Array.isArray(b.messages) || b.messages.length === 0 || b.stream !== true) {
      return error(400, "invalid_request_error", "messages must be non-empty; stream true");
    }
    return undefined;
  };
}

export const anthropicWire: Wire = {
  name: "anthropic",
  start: (steps: Step[], key = "sk-ant-test-key-0001"): ScriptedServer =>
    startScriptedServer(steps, validator(key)),
  spec: () => "anthropic:claude-sonnet-4-test",
  env: (server) => ({ OSTK_ANTHROPIC_BASE_URL: server.url }),
  keyVar: "ANTHROPIC_API_KEY",
  contentType: CT,
  chunks: (reply) => anthropicChunks(reply),
  malformed: () => [
    sse("message_start", { message: { usage: { input_tokens: 3, output_tokens: 1 } } }),
    'event: content_block_start\ndata: {"type": "content_block_start", "index": 0,,}\n\n',
  ],
  toolResults: (body) =>
    (body.messages as { role: string; content: unknown }[]).flatMap((m) =>
      Array.isArray(m.content)
        ? m.content.filter((b) => b.type === "tool_result").map((b) => String(b.content))
        : []
    ),
  toolNames: (body) => ((body.tools ?? []) as { name: string }[]).map((t) => t.name),
};
