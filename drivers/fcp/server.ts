/**
 * The FCP server factory: an MCP server (SDK `McpServer`) with exactly four tools for a domain
 * `D`: `D(ops)`, `D_query(q)`, `D_session(action)` and `D_help()`. Every answer is text; a
 * refused call is an MCP tool error (`isError: true`) carrying the `?` line, never a thrown
 * error that would take the server down.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { FcpError } from "./errors.ts";
import { type FcpDriver, type FcpReply, FcpSession } from "./session.ts";

/** Options for {@linkcode createFcpServer}: a driver, plus the server's name and version. */
export interface FcpServerOptions<S> extends FcpDriver<S> {
  name?: string;
  version?: string;
  /** Use this session instead of a fresh one (to share it or to inspect it in a test). */
  fcpSession?: FcpSession<S>;
}

/** Caps that keep one call from holding the session for long. */
const MAX_OPS = 1000;
const MAX_OP_CHARS = 1_000_000;

function reply(r: FcpReply): CallToolResult {
  return { content: [{ type: "text", text: r.text }], ...(r.ok ? {} : { isError: true }) };
}

/**
 * Build the MCP server for a driver; connect it to a transport to serve.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Client } from "@modelcontextprotocol/sdk/client/index.js";
 * import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
 * import { createFcpServer } from "./server.ts";
 * import { memoryStorage } from "./storage.ts";
 * const server = createFcpServer({
 *   domain: "notes", verbs: [], query: [], storage: memoryStorage(),
 *   session: { create: () => "", decode: () => "", encode: () => new Uint8Array() },
 * });
 * const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
 * await server.connect(serverSide);
 * const client = new Client({ name: "doc", version: "0.0.0" });
 * await client.connect(clientSide);
 * const { tools } = await client.listTools();
 * assert.deepEqual(tools.map((t: { name: string }) => t.name).sort(), [
 *   "notes", "notes_help", "notes_query", "notes_session",
 * ]);
 * await client.close();
 * ```
 */
export function createFcpServer<S>(options: FcpServerOptions<S>): McpServer {
  const d = options.domain;
  if (!/^[a-z][a-z0-9_]*$/.test(d)) {
    throw new FcpError("internal", `bad domain '${d}': use lower-case letters, digits and _`);
  }
  const session = options.fcpSession ?? new FcpSession(options);
  const what = options.description ? ` (${options.description})` : "";
  const server = new McpServer({
    name: options.name ?? `fcp-${d}`,
    version: options.version ?? "0.1.0",
  });

  server.registerTool(d, {
    description: `Apply ${d} mutations${what}, all or nothing: each op is one string ` +
      `"VERB positional… key:value… @selector…". See ${d}_help for the verbs.`,
    inputSchema: {
      ops: z.array(z.string().max(MAX_OP_CHARS)).max(MAX_OPS).describe("ops, applied in order"),
    },
  }, async ({ ops }: { ops: string[] }) => reply(await session.batch(ops)));

  server.registerTool(`${d}_query`, {
    description: `Inspect the open ${d} document (read-only). See ${d}_help for the queries.`,
    inputSchema: { q: z.string().max(MAX_OP_CHARS).describe("one query, e.g. get <path>") },
    annotations: { readOnlyHint: true },
  }, async ({ q }: { q: string }) => reply(await session.query(q)));

  server.registerTool(`${d}_session`, {
    description: `${d} document lifecycle: new, open <path>, save [as:<path>], ` +
      "checkpoint <name>, undo [to:<name>], redo, close.",
    inputSchema: { action: z.string().max(MAX_OP_CHARS).describe("one lifecycle action") },
  }, async ({ action }: { action: string }) => reply(await session.session(action)));

  server.registerTool(`${d}_help`, {
    description: `The ${d} reference card: every verb, query and action with its arguments.`,
    annotations: { readOnlyHint: true },
  }, () => reply({ ok: true, text: session.help() }));

  return server;
}
