/**
 * The inbound MCP server: the SDK's McpServer carrying the tool table of mcp_tools.ts, one per
 * connection (stdio has one; HTTP has one per MCP session). Each connection is an agent whose
 * alias comes from the client's own name in `initialize` and is issued at its first tool call,
 * so a client that only lists tools leaves no row behind.
 */
import process from "node:process";
// The SDK's "./*" export maps `x.js` to types at `x.js.d.ts`, which do not exist; each
// @ts-types names the real declarations so the SDK is type-checked rather than `any`.
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/stdio"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { validateAliasName } from "../kernel/alias.ts";
import { DOCUMENTED_TOOLS, type McpBackend, mcpTools, thrownResult } from "./mcp_tools.ts";

/** The alias base used when the client's name gives nothing usable. */
export const FALLBACK_ALIAS_NAME = "mcp";

/**
 * Turn a client's name into an alias base: lower-case, `[a-z0-9-]` only, starting with a letter,
 * not ending in `-<digits>` (that would read as an alias number), at most 40 characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { aliasBaseFor } from "./mcp_server.ts";
 * assert.equal(aliasBaseFor("Claude Code"), "claude-code");
 * assert.equal(aliasBaseFor("cursor-vscode 1.2"), "cursor-vscode");
 * assert.equal(aliasBaseFor("gpt-4o"), "gpt4o");
 * assert.equal(aliasBaseFor("!!!"), "mcp");
 * ```
 */
export function aliasBaseFor(clientName: string | undefined): string {
  let name = (clientName ?? "").toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/-+/g, "-");
  name = name.replace(/^[^a-z]+/, "").slice(0, 40);
  for (let prev = ""; prev !== name;) {
    prev = name;
    name = name.replace(/-[0-9]*$/, "");
  }
  name = name.replace(/-(?=[0-9])/g, ""); // "gpt-4o" → "gpt4o": a part may not start with a digit
  try {
    validateAliasName(name);
    return name;
  } catch {
    return FALLBACK_ALIAS_NAME;
  }
}

/** Options for {@linkcode createMcpServer}. */
export interface McpServerOptions {
  backend: McpBackend;
  version: string;
}

const INSTRUCTIONS = `ostk is the project's kernel: every file change is compare-and-swap and
audited under your alias. Read before you edit, pass expected_gen, and read the digest lines that
follow each answer: they say what other agents changed since you looked. Call 'help' for more.`;

/**
 * One MCP server for one connection.
 *
 * @example
 * ```ts ignore
 * const server = createMcpServer({ backend, version: "0.1.0" });
 * await server.connect(new StdioServerTransport());
 * ```
 */
export function createMcpServer(options: McpServerOptions): McpServer {
  const server = new McpServer(
    { name: "ostk", version: options.version },
    { instructions: INSTRUCTIONS },
  );
  let issued: Promise<string> | undefined;
  const ctx = {
    backend: options.backend,
    alias: (): Promise<string> => {
      issued ??= options.backend.issueAlias(aliasBaseFor(server.server.getClientVersion()?.name))
        .catch((err) => {
          issued = undefined; // a failed issue (no key, say) is retried by the next call
          throw err;
        });
      return issued;
    },
  };
  for (const tool of mcpTools()) {
    server.registerTool(
      tool.name,
      { description: tool.description, inputSchema: tool.inputSchema },
      async (args: Record<string, unknown>) => {
        try {
          return await tool.run(args, ctx);
        } catch (err) {
          // Any failure is the caller's answer, never the end of the server.
          return thrownResult(err);
        }
      },
    );
  }
  return server;
}

/**
 * Serve one MCP client on stdin/stdout until it hangs up. The SDK's stdio transport does not
 * watch for end of input, so the server would outlive its client while a daemon connection
 * keeps the event loop busy; stdin's `end` closes it here.
 */
export async function serveStdio(options: McpServerOptions): Promise<void> {
  const server = createMcpServer(options);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
  const onEnd = () => void server.close();
  process.stdin.once("end", onEnd);
  process.stdin.once("close", onEnd);
  await server.connect(transport);
  await closed;
  process.stdin.off("end", onEnd);
  process.stdin.off("close", onEnd);
}

/** What `ostk mcp diag` found. */
export interface DiagReport {
  server: { name: string; version: string } | undefined;
  tools: { name: string; params: string[] }[];
  /** One line per difference from {@linkcode DOCUMENTED_TOOLS}; empty when none. */
  drift: string[];
}

/** A tool's parameters in the documented form (`name`, `name?`), from its JSON schema. */
export function paramsOf(
  inputSchema: { properties?: Record<string, unknown>; required?: string[] },
) {
  const required = new Set(inputSchema.required ?? []);
  return Object.keys(inputSchema.properties ?? {}).map((p) => required.has(p) ? p : `${p}?`);
}

/** Compare live tools with the documented list. */
export function compareTools(tools: { name: string; params: string[] }[]): string[] {
  const drift: string[] = [];
  const live = new Map(tools.map((t) => [t.name, t.params]));
  for (const [name, params] of Object.entries(DOCUMENTED_TOOLS)) {
    const got = live.get(name);
    if (!got) drift.push(`missing tool '${name}'`);
    else if ([...got].sort().join(",") !== [...params].sort().join(",")) {
      drift.push(`${name}: documented (${params.join(", ")}), served (${got.join(", ")})`);
    }
  }
  for (const name of live.keys()) {
    if (!(name in DOCUMENTED_TOOLS)) drift.push(`undocumented tool '${name}'`);
  }
  return drift;
}

/**
 * Start `command args` as an MCP server over stdio, list its tools with the SDK client, and
 * compare them with the documented list. The child is always stopped before returning.
 */
export async function diagnose(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  timeoutMs = 30_000,
): Promise<DiagReport> {
  const transport = new StdioClientTransport({ command, args, env, cwd, stderr: "inherit" });
  const client = new Client({ name: "ostk-diag", version: "1" });
  try {
    await client.connect(transport, { timeout: timeoutMs });
    const { tools } = await client.listTools(undefined, { timeout: timeoutMs });
    const list = tools.map((t) => ({ name: t.name, params: paramsOf(t.inputSchema) }));
    return { server: client.getServerVersion(), tools: list, drift: compareTools(list) };
  } finally {
    await client.close();
  }
}
