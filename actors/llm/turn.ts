/** Assembling a streamed reply: text, whole tool calls with parsed arguments, usage, stop. */
import { ProviderError } from "./errors.ts";
import type { StopReason, StreamEvent } from "./provider.ts";

/** One tool call as it arrived; `error` is set when its arguments are not a JSON object. */
export interface CollectedCall {
  id: string;
  name: string;
  argsText: string;
  args?: Record<string, unknown>;
  error?: string;
}

/** A whole reply. */
export interface AssistantTurn {
  text: string;
  calls: CollectedCall[];
  usage: { input_tokens: number; output_tokens: number };
  stop: StopReason;
  raw?: string;
}

/**
 * Drain a provider's stream into one reply. Argument fragments are joined per call index and
 * parsed once the call ends; bad arguments are kept as an error for the model to read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collectTurn } from "./turn.ts";
 * import type { StreamEvent } from "./provider.ts";
 * async function* s(): AsyncGenerator<StreamEvent> {
 *   yield { type: "tool_call_start", index: 0, id: "t1", name: "file_read" };
 *   yield { type: "tool_call_delta", index: 0, args: '{"pa' };
 *   yield { type: "tool_call_delta", index: 0, args: 'th":"a.txt"}' };
 *   yield { type: "tool_call_end", index: 0 };
 *   yield { type: "stop", reason: "tool_use" };
 * }
 * const turn = await collectTurn(s());
 * assert.equal(turn.calls[0].args?.path, "a.txt");
 * ```
 */
export async function collectTurn(
  events: AsyncIterable<StreamEvent>,
  label = "model",
): Promise<AssistantTurn> {
  let text = "";
  const byIndex = new Map<number, CollectedCall>();
  const calls: CollectedCall[] = [];
  let usage = { input_tokens: 0, output_tokens: 0 };
  for await (const event of events) {
    switch (event.type) {
      case "text":
        text += event.text;
        break;
      case "tool_call_start": {
        const call: CollectedCall = { id: event.id, name: event.name, argsText: "" };
        byIndex.set(event.index, call);
        calls.push(call);
        break;
      }
      case "tool_call_delta":
        callAt(byIndex, event.index, label).argsText += event.args;
        break;
      case "tool_call_end":
        parseArgs(callAt(byIndex, event.index, label));
        byIndex.delete(event.index);
        break;
      case "usage":
        usage = { input_tokens: event.input_tokens, output_tokens: event.output_tokens };
        break;
      case "stop":
        for (const open of byIndex.values()) parseArgs(open);
        return { text, calls, usage, stop: event.reason, ...(event.raw ? { raw: event.raw } : {}) };
    }
  }
  throw new ProviderError("protocol", `${label}: the stream ended without a stop event`);
}

function callAt(byIndex: Map<number, CollectedCall>, index: number, label: string): CollectedCall {
  const call = byIndex.get(index);
  if (!call) throw new ProviderError("protocol", `${label}: tool call ${index} was never started`);
  return call;
}

function parseArgs(call: CollectedCall): void {
  if (call.args || call.error) return;
  if (call.argsText.trim() === "") {
    call.args = {};
    return;
  }
  try {
    const value = JSON.parse(call.argsText);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) call.args = value;
    else call.error = "arguments must be a JSON object";
  } catch (err) {
    call.error = `arguments are not valid JSON (${err instanceof Error ? err.message : err})`;
  }
}
