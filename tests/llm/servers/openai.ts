/**
 * A local stand-in for OpenAI Chat Completions (`POST /v1/chat/completions`, Bearer key) and
 * for a keyless OpenAI-compatible server, answering with real `data:` chunk sequences:
 * text deltas, `tool_calls[i].function.arguments` fragments, a usage chunk, `[DONE]`.
 */
import {
  pieces,
  type ScriptedReply,
  type ScriptedServer,
  startScriptedServer,
  type Step,
} from "./scripted.ts";
import type { Wire } from "./wire.ts";

const CT = "text/event-stream";

function chunk(choices: unknown[], usage: unknown = null, model = "gpt-test"): string {
  const body = { id: "chatcmpl-test", object: "chat.completion.chunk", created: 1, model, choices };
  return `data: ${JSON.stringify({ ...body, usage })}\n\n`;
}

const delta = (d: Record<string, unknown>, finish: string | null = null) => [
  { index: 0, delta: d, finish_reason: finish },
];

/** The `data:` chunks of one reply. */
export function openAiChunks(reply: ScriptedReply): string[] {
  const usage = reply.usage ?? { input: 10, output: 5 };
  const out = [chunk(delta({ role: "assistant", content: "" }))];
  for (const content of pieces(reply.text ?? "", 2)) {
    if (content) out.push(chunk(delta({ content })));
  }
  for (const [i, call] of (reply.toolCalls ?? []).entries()) {
    out.push(chunk(delta({
      tool_calls: [{
        index: i,
        id: call.id ?? `call_${i}`,
        type: "function",
        function: { name: call.name, arguments: "" },
      }],
    })));
    for (const args of pieces(JSON.stringify(call.args), reply.argPieces ?? 3)) {
      out.push(chunk(delta({ tool_calls: [{ index: i, function: { arguments: args } }] })));
    }
  }
  out.push(chunk(delta({}, reply.toolCalls?.length ? "tool_calls" : "stop")));
  out.push(chunk([], {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
  }));
  out.push("data: [DONE]\n\n");
  return out;
}

function validator(key: string | undefined) {
  return (path: string, headers: Headers, body: unknown): Response | undefined => {
    const error = (status: number, type: string, message: string) =>
      Response.json({ error: { message, type, param: null, code: null } }, { status });
    if (path !== "/v1/chat/completions") return error(404, "invalid_request_error", "no route");
    if (key !== undefined && headers.get("authorization") !== `Bearer ${key}`) {
      return error(401, "invalid_request_error", "Incorrect API key provided");
    }
    const b = body as Record<string, unknown>;
    if (typeof b.model !== "string" || !Array.isArray(b.messages) || b.stream !== true) {
      return error(400, "invalid_request_error", "model, messages and stream are required");
    }
    return undefined;
  };
}

const common = {
  contentType: CT,
  chunks: openAiChunks,
  malformed: () => [chunk(delta({ role: "assistant", content: "" })), 'data: {"choices": [\n\n'],
  toolResults: (body: Record<string, unknown>) =>
    (body.messages as { role: string; content: string }[])
      .filter((m) => m.role === "tool")
      .map((m) => m.content),
  toolNames: (body: Record<string, unknown>) =>
    ((body.tools ?? []) as { function: { name: string } }[]).map((t) => t.function.name),
};

export const openAiWire: Wire = {
  name: "openai",
  start: (steps: Step[], key = "sk-openai-test-key-0001"): ScriptedServer =>
    startScriptedServer(steps, validator(key)),
  spec: () => "openai:gpt-4o-test",
  env: (server) => ({ OSTK_OPENAI_BASE_URL: `${server.url}/v1` }),
  keyVar: "OPENAI_API_KEY",
  ...common,
};

export const openAiCompatibleWire: Wire = {
  name: "openai-compatible",
  start: (steps: Step[]): ScriptedServer => startScriptedServer(steps, validator(undefined)),
  spec: (server) => `openai-compatible:${server.url}/v1#local-model`,
  env: () => ({}),
  ...common,
};
