/**
 * A local stand-in for Ollama's native `POST /api/chat`, answering with real NDJSON lines:
 * text pieces, whole tool calls with argument objects, a final `done: true` line with counts.
 */
import {
  pieces,
  type ScriptedReply,
  type ScriptedServer,
  startScriptedServer,
  type Step,
} from "./scripted.ts";
import type { Wire } from "./wire.ts";

const CT = "application/x-ndjson";
const MODEL = "qwen3:test";

function line(message: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const created_at = "2025-01-01T00:00:00Z";
  return JSON.stringify({ model: MODEL, created_at, message, done: false, ...extra }) + "\n";
}

/** The NDJSON lines of one reply. */
export function ollamaChunks(reply: ScriptedReply): string[] {
  const usage = reply.usage ?? { input: 10, output: 5 };
  const out: string[] = [];
  for (const content of pieces(reply.text ?? "", 2)) {
    if (content) out.push(line({ role: "assistant", content }));
  }
  if (reply.toolCalls?.length) {
    out.push(line({
      role: "assistant",
      content: "",
      tool_calls: reply.toolCalls.map((c) => ({ function: { name: c.name, arguments: c.args } })),
    }));
  }
  out.push(line({ role: "assistant", content: "" }, {
    done: true,
    done_reason: "stop",
    total_duration: 1000,
    prompt_eval_count: usage.input,
    eval_count: usage.output,
  }));
  return out;
}

function validate(path: string, _headers: Headers, body: unknown): Response | undefined {
  if (path !== "/api/chat") return new Response("404 page not found", { status: 404 });
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || !Array.isArray(b.messages)) {
    return Response.json({ error: "model and messages are required" }, { status: 400 });
  }
  return undefined;
}

export const ollamaWire: Wire = {
  name: "ollama",
  start: (steps: Step[]): ScriptedServer => startScriptedServer(steps, validate),
  spec: () => `ollama:${MODEL}`,
  env: (server) => ({ OSTK_OLLAMA_HOST: server.url }),
  contentType: CT,
  chunks: ollamaChunks,
  malformed: () => [line({ role: "assistant", content: "hi" }), '{"model": "x", message\n'],
  toolResults: (body) =>
    (body.messages as { role: string; content: string }[])
      .filter((m) => m.role === "tool")
      .map((m) => m.content),
  toolNames: (body) =>
    ((body.tools ?? []) as { function: { name: string } }[]).map((t) => t.function.name),
};
