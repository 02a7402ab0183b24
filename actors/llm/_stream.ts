/**
 * Framing of streamed model responses: bytes → lines (bounded), lines → Server-Sent Events,
 * lines → NDJSON objects. A line over the cap is a protocol error, never an unbounded buffer.
 */
import { ProviderError } from "./errors.ts";

/** The longest line a stream may send (one SSE `data:` line or one NDJSON object). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

/** Split chunks into lines (LF or CRLF); a last line without a newline is still yielded. */
export async function* lines(
  chunks: AsyncIterable<Uint8Array>,
  label: string,
  maxBytes = MAX_LINE_BYTES,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of chunks) {
    buffered += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n", start)) {
      yield stripCr(buffered.slice(start, nl));
      start = nl + 1;
    }
    buffered = buffered.slice(start);
    // UTF-16 units ≤ bytes, so this bound is conservative and cheap.
    if (buffered.length > maxBytes) {
      throw new ProviderError("protocol", `${label}: a stream line exceeds ${maxBytes} bytes`);
    }
  }
  buffered += decoder.decode();
  if (buffered !== "") yield stripCr(buffered);
}

/** One Server-Sent Event: its `event:` name (if any) and its joined `data:` lines. */
export interface SseEvent {
  event?: string;
  data: string;
}

/**
 * Parse Server-Sent Events (the WHATWG grammar: `field: value`, `:` comments, blank line
 * dispatches, several `data:` lines join with newlines).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sseEvents } from "./_stream.ts";
 * const body = new TextEncoder().encode("event: ping\ndata: {}\n\n: note\ndata: a\ndata: b\n\n");
 * async function* one() { yield body; }
 * const got = [];
 * for await (const e of sseEvents(one(), "test")) got.push(e);
 * assert.equal(got.length, 2);
 * assert.equal(got[0].event, "ping");
 * assert.equal(got[1].data, "a\nb");
 * ```
 */
export async function* sseEvents(
  chunks: AsyncIterable<Uint8Array>,
  label: string,
): AsyncGenerator<SseEvent> {
  let event: string | undefined;
  let data: string[] = [];
  for await (const line of lines(chunks, label)) {
    if (line === "") {
      if (data.length > 0) {
        yield { ...(event !== undefined ? { event } : {}), data: data.join("\n") };
      }
      event = undefined;
      data = [];
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length > 0) yield { ...(event !== undefined ? { event } : {}), data: data.join("\n") };
}

/** Parse one JSON payload of a stream, or throw a protocol error that quotes its start. */
export function parseChunk(text: string, label: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message : String(err);
    throw new ProviderError(
      "protocol",
      `${label}: malformed JSON in the stream (${why}): ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProviderError("protocol", `${label}: expected a JSON object in the stream`);
  }
  return value as Record<string, unknown>;
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
