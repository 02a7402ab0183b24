/**
 * `ostk mcp --http`: the same MCP server over Streamable HTTP. The SDK's web-standard transport
 * (the core that its node:http `StreamableHTTPServerTransport` wraps) takes a `Request` and
 * returns a `Response`, so it plugs straight into `Deno.serve`. One transport and one McpServer
 * per MCP session; each session is its own agent with its own alias.
 *
 * Exposure: loopback only, with Host and Origin checked against loopback names so a web page
 * cannot reach the server through DNS rebinding. Another address needs `--allow-remote` and a
 * bearer token, and every request must then carry `Authorization: Bearer <token>`.
 */
// The SDK's "./*" export maps `x.js` to types at `x.js.d.ts`, which do not exist; each
// @ts-types names the real declarations so the SDK is type-checked rather than `any`.
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/webStandardStreamableHttp"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { OstkError } from "../kernel/errors.ts";

/** Options for {@linkcode serveHttp}. */
export interface HttpServeOptions {
  hostname: string;
  port: number;
  /** Required on every request when set; mandatory for a non-loopback address. */
  token?: string;
  allowRemote?: boolean;
  /** A new McpServer for each new MCP session. */
  newServer: () => McpServer;
  signal?: AbortSignal;
  /** Called once bound, with the URL clients should use. */
  onListen?: (url: string) => void;
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** True for loopback host names and addresses (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Parse `HOST:PORT` (`[::1]:PORT` for IPv6; a bare `PORT` means 127.0.0.1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseListenAddress } from "./mcp_http.ts";
 * const a = parseListenAddress("127.0.0.1:8808");
 * assert.equal(a.hostname, "127.0.0.1");
 * assert.equal(a.port, 8808);
 * assert.equal(parseListenAddress("[::1]:0").hostname, "::1");
 * ```
 */
export function parseListenAddress(spec: string): { hostname: string; port: number } {
  const m = /^(\d+)$/.exec(spec) ?? /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(spec) ??
    /^([^:\[\]]*):(\d+)$/.exec(spec);
  const [hostname, port] = m?.length === 2 ? ["", m[1]] : [m?.[1] ?? "", m?.[2] ?? ""];
  if (!m || Number(port) > 65535) {
    throw new OstkError(
      "usage",
      `bad --http address '${spec}'`,
      {},
      "expected HOST:PORT, e.g. 127.0.0.1:8808",
    );
  }
  return { hostname: hostname || "127.0.0.1", port: Number(port) };
}

/** Refuse an exposure the operator did not ask for explicitly. */
export function checkExposure(hostname: string, allowRemote?: boolean, token?: string): void {
  if (isLoopback(hostname)) return;
  if (!allowRemote || !token) {
    throw new OstkError(
      "usage",
      `refusing to serve MCP on non-loopback address ${hostname}`,
      {},
      "bind 127.0.0.1, or pass --allow-remote --token T (clients then send 'Authorization: Bearer T')",
    );
  }
}

/** Constant-time comparison, so a token cannot be guessed byte by byte from timings. */
function sameToken(given: string, token: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(token);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

function jsonError(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(
    JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }),
    { status, headers: { "content-type": "application/json", ...headers } },
  );
}

/** Hostname part of a Host header value (`127.0.0.1:8808`, `[::1]:8808`, `localhost`). */
function hostOf(value: string): string {
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(value);
  return (m?.[1] ?? value).toLowerCase();
}

/**
 * Serve until `signal` aborts. Resolves when the server has stopped and every session is closed.
 *
 * @example
 * ```ts ignore
 * await serveHttp({ hostname: "127.0.0.1", port: 8808, newServer: () => createMcpServer(o) });
 * ```
 */
export async function serveHttp(options: HttpServeOptions): Promise<void> {
  checkExposure(options.hostname, options.allowRemote, options.token);
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  const remote = !isLoopback(options.hostname);

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname !== "/mcp") return jsonError(404, "not found: the MCP endpoint is /mcp");
    if (!remote) {
      const host = req.headers.get("host");
      const origin = req.headers.get("origin");
      if (host && !isLoopback(hostOf(host))) return jsonError(403, `host '${host}' refused`);
      if (origin && origin !== "null" && !isLoopback(hostOf(new URL(origin).host))) {
        return jsonError(403, `origin '${origin}' refused`);
      }
    }
    if (options.token !== undefined) {
      const auth = req.headers.get("authorization") ?? "";
      const given = auth.startsWith("Bearer ") ? auth.slice(7) : "";
      if (!sameToken(given, options.token)) {
        return jsonError(401, "missing or wrong bearer token", { "www-authenticate": "Bearer" });
      }
    }
    const id = req.headers.get("mcp-session-id");
    if (id) {
      const transport = sessions.get(id);
      if (!transport) return jsonError(404, "session not found; initialize again");
      return await transport.handleRequest(req);
    }
    // No session yet: only an initialize request may open one.
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (sid) => void sessions.set(sid, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const server = options.newServer();
    await server.connect(transport);
    const response = await transport.handleRequest(req);
    if (!transport.sessionId) await server.close();
    return response;
  };

  // Open SSE streams would keep a graceful shutdown waiting; end the sessions first.
  options.signal?.addEventListener("abort", () => {
    for (const transport of sessions.values()) void transport.close();
  });
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: ({ hostname, port }) => {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      options.onListen?.(`http://${host}:${port}/mcp`);
    },
    onError: (err) => jsonError(500, err instanceof Error ? err.message : String(err)),
  }, handle);
  await server.finished;
  for (const transport of sessions.values()) await transport.close();
  sessions.clear();
}
