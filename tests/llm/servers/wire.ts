/** One provider's local server and reply builders, so tests can run the same cases on each. */
import type { ScriptedReply, ScriptedServer, Step } from "./scripted.ts";

export interface Wire {
  name: string;
  /** Start the provider's local server; `key` is the one it accepts (if it checks keys). */
  start(steps: Step[], key?: string): ScriptedServer;
  /** The model spec a client uses for this server. */
  spec(server: ScriptedServer): string;
  /** Environment that points the client at the server. */
  env(server: ScriptedServer): Record<string, string>;
  /** The variable the key is read from by default (none for keyless providers). */
  keyVar?: string;
  contentType: string;
  /** The body of one reply, as the chunks the server writes. */
  chunks(reply: ScriptedReply): string[];
  /** A stream that starts well and then sends a chunk that is not JSON. */
  malformed(): string[];
  /** The tool results the client sent back, from a request body. */
  toolResults(body: Record<string, unknown>): string[];
  /** The tool names offered in a request body. */
  toolNames(body: Record<string, unknown>): string[];
}

/** A streamed reply step. */
export function replyStep(wire: Wire, reply: ScriptedReply): Step {
  return { kind: "stream", contentType: wire.contentType, chunks: wire.chunks(reply) };
}
