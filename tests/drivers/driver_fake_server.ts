/**
 * A tiny MCP server for the outbound driver tests (not a test itself). `echo` answers, `crash`
 * exits the process in the middle of the call, `hang` never answers and ignores SIGTERM (only
 * SIGKILL ends it); `pid`, `read` and `write` probe the sandbox. With FAKE_PID_FILE set, it
 * writes its pid there on start.
 */
// The SDK's "./*" export points types at `x.js.d.ts`; @ts-types names the real declarations.
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/stdio"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

if (import.meta.main) {
  const pidFile = Deno.env.get("FAKE_PID_FILE");
  if (pidFile) await Deno.writeTextFile(pidFile, `${Deno.pid}\n`);
  const server = new McpServer({ name: "fake", version: "1" });
  server.registerTool(
    "echo",
    { description: "echo", inputSchema: { text: z.string() } },
    ({ text }) => ({ content: [{ type: "text", text: `echo: ${text}` }] }),
  );
  server.registerTool("pid", { description: "this server's pid" }, () => ({
    content: [{ type: "text", text: String(Deno.pid) }],
  }));
  server.registerTool(
    "write",
    { description: "write a file", inputSchema: { path: z.string(), text: z.string() } },
    async ({ path, text }) => {
      try {
        // `$TMPDIR/…` names a file in the server's own temp dir.
        const file = path.replace(/^\$TMPDIR/, Deno.env.get("TMPDIR") ?? "/tmp");
        await Deno.writeTextFile(file, text);
        return { content: [{ type: "text", text: file }] };
      } catch (err) {
        return { content: [{ type: "text", text: String(err) }], isError: true };
      }
    },
  );
  server.registerTool(
    "read",
    { description: "read a file", inputSchema: { path: z.string() } },
    async ({ path }) => {
      try {
        return { content: [{ type: "text", text: await Deno.readTextFile(path) }] };
      } catch (err) {
        return { content: [{ type: "text", text: String(err) }], isError: true };
      }
    },
  );
  server.registerTool("crash", { description: "exit mid-call" }, () => {
    console.error("fake: crashing on purpose");
    Deno.exit(3);
  });
  server.registerTool("hang", { description: "never answer; ignore SIGTERM" }, () => {
    Deno.addSignalListener("SIGTERM", () => console.error("fake: ignoring SIGTERM"));
    return new Promise(() => setInterval(() => {}, 1000));
  });
  await server.connect(new StdioServerTransport());
}
