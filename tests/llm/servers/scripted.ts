/**
 * A local HTTP server that answers each request with the next scripted step: a streamed body
 * (chunk by chunk, so tests control where the bytes split), an error status, a connection
 * dropped after some chunks, or a stream that stalls. It records every request. Provider
 * modules beside this one check the request the way the real API would and build the bodies.
 */

/** What one request gets. */
export type Step =
  | { kind: "stream"; contentType: string; chunks: string[] }
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: string }
  | { kind: "drop"; contentType: string; chunks: string[] }
  | { kind: "stall"; contentType: string; chunks: string[] };

/** A request as the server saw it. */
export interface Recorded {
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** Checks a request as the real API would; a Response refuses it. */
export type Validate = (path: string, headers: Headers, body: unknown) => Response | undefined;

export interface ScriptedServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: Recorded[];
  /** Steps not yet served. */
  remaining(): number;
  close(): Promise<void>;
}

const encoder = new TextEncoder();

/** Start a server on 127.0.0.1 with a free port. */
export function startScriptedServer(steps: Step[], validate?: Validate): ScriptedServer {
  const queue = [...steps];
  const requests: Recorded[] = [];
  const stalled = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      const text = await req.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return new Response(`{"error":"request body is not JSON"}`, { status: 400 });
      }
      requests.push({
        path,
        headers: Object.fromEntries(req.headers),
        body: body as Record<string, unknown>,
      });
      const refused = validate?.(path, req.headers, body);
      if (refused) return refused;
      const step = queue.shift();
      if (!step) {
        return new Response(`{"error":"no scripted response left"}`, { status: 400 });
      }
      if (step.kind === "status") {
        return new Response(step.body ?? "", { status: step.status, headers: step.headers });
      }
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          for (const chunk of step.chunks) {
            controller.enqueue(encoder.encode(chunk));
            // Yield so each chunk leaves as its own write.
            await new Promise((resolve) => setTimeout(resolve, 0));
          }
          if (step.kind === "stream") controller.close();
          else if (step.kind === "drop") controller.error(new Error("scripted connection drop"));
          else stalled.add(controller);
        },
        cancel() {
          for (const c of stalled) stalled.delete(c);
        },
      });
      return new Response(stream, { headers: { "content-type": step.contentType } });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    remaining: () => queue.length,
    async close() {
      for (const controller of stalled) controller.error(new Error("server closing"));
      stalled.clear();
      await server.shutdown();
    },
  };
}

/** Join chunks and cut them again every `size` bytes' worth of characters (splits lines). */
export function rechunk(chunks: string[], size: number): string[] {
  const all = chunks.join("");
  const out: string[] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size));
  return out;
}

/** Cut `text` into `n` nearly equal pieces (n ≥ 1). */
export function pieces(text: string, n: number): string[] {
  if (n <= 1 || text.length < 2) return [text];
  const size = Math.ceil(text.length / n);
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** What a scripted model reply holds, provider-neutral. */
export interface ScriptedReply {
  text?: string;
  toolCalls?: { id?: string; name: string; args: unknown }[];
  /** Tokens of this call. */
  usage?: { input: number; output: number };
  /** Split each tool call's argument JSON into this many deltas (default 3). */
  argPieces?: number;
}
