/**
 * FCP servers through the MCP SDK client: exactly four tools, calls and their answers, refusals
 * as tool errors (`isError: true`) that leave the server serving; and fcp-jsonc's real entry
 * point over stdio inside an ostk project, saving through the kernel.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { readAuditRows } from "../../kernel/audit.ts";
import { loadOrCreateOperatorKey } from "../../kernel/identity.ts";
import { ostkPaths } from "../../kernel/layout.ts";
import { initProject } from "../../kernel/project_init.ts";
import { createFcpServer, defineVerb, memoryStorage } from "../../drivers/fcp/mod.ts";
import { createJsoncServer } from "../../drivers/fcp_jsonc/mod.ts";

async function connected(server: McpServer): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: "fcp-test", version: "0.0.0" });
  await client.connect(clientSide);
  return client;
}

/** Call a tool and return its text and error flag. */
async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  const res = await client.callTool({ name, arguments: args });
  const content = res.content as { type: string; text: string }[];
  return { text: content.map((c) => c.text).join("\n"), isError: res.isError === true };
}

Deno.test("server: fcp-jsonc lists exactly its four tools", async () => {
  const client = await connected(createJsoncServer(memoryStorage()));
  try {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t: Tool) => t.name).sort(), [
      "jsonc",
      "jsonc_help",
      "jsonc_query",
      "jsonc_session",
    ]);
    const byName = Object.fromEntries(tools.map((t: Tool) => [t.name, t]));
    assert.deepEqual(byName.jsonc.inputSchema.required, ["ops"]);
    assert.equal(byName.jsonc_query.annotations?.readOnlyHint, true);
    assert.deepEqual(Object.keys(byName.jsonc_session.inputSchema.properties ?? {}), ["action"]);
  } finally {
    await client.close();
  }
});

Deno.test("server: session, batch, query and help over MCP, saving to storage", async () => {
  const storage = memoryStorage({ "deno.json": '{\n  // tasks\n  "tasks": {}\n}\n' });
  const client = await connected(createJsoncServer(storage));
  try {
    const opened = await call(client, "jsonc_session", { action: "open deno.json" });
    assert.equal(opened.isError, false);
    assert.match(opened.text, /^! opened deno\.json \(29 bytes\)\nstate: deno\.json · event 0\/0/);
    const batch = await call(client, "jsonc", {
      ops: ['set tasks.dev "deno run main.ts"', "set lock false"],
    });
    assert.equal(batch.isError, false);
    assert.deepEqual(batch.text.split("\n"), [
      '+ tasks.dev = "deno run main.ts"',
      "+ lock = false",
      "state: deno.json · event 2/2 · unsaved · 2 keys, 79 bytes",
    ]);
    assert.equal(
      (await call(client, "jsonc_query", { q: "get tasks.dev" })).text,
      '"deno run main.ts"',
    );
    const saved = await call(client, "jsonc_session", { action: "save" });
    assert.match(saved.text, /^! saved deno\.json \(79 bytes\)/);
    assert.equal(
      storage.text("deno.json"),
      '{\n  // tasks\n  "tasks": {\n    "dev": "deno run main.ts"\n  },\n  "lock": false\n}\n',
    );
    const help = await call(client, "jsonc_help");
    for (
      const line of [
        "jsonc(ops: string[])",
        "set <path> <value>",
        "unset <path>",
        "push <path>",
        "rename <path> <newkey>",
        "merge <path> <object>",
        "get [path] [raw:…]",
        "keys [path]",
        "dump",
        "open <path>",
        "save [as:…]",
        "undo [to:…]",
        "checkpoint <name>",
      ]
    ) {
      assert.ok(help.text.includes(line), `help lacks '${line}'`);
    }
  } finally {
    await client.close();
  }
});

Deno.test("server: refusals are tool errors and the server keeps serving", async () => {
  const client = await connected(createJsoncServer(memoryStorage()));
  try {
    const noDoc = await call(client, "jsonc", { ops: ["set a 1"] });
    assert.equal(noDoc.isError, true);
    assert.match(noDoc.text, /^\? no document open/);
    await call(client, "jsonc_session", { action: "new" });
    const failed = await call(client, "jsonc", {
      ops: ["set a 1", "set b 2", "frob c", "set d 4"],
    });
    assert.equal(failed.isError, true);
    assert.match(failed.text, /^\? op 3\/4 `frob c`: unknown verb 'frob'/);
    assert.match(failed.text, /\n! rolled back ops 1-2; nothing applied\n/);
    assert.equal((await call(client, "jsonc_query", { q: "dump" })).text, "{}\n");
    const quote = await call(client, "jsonc_query", { q: `get "a` });
    assert.equal(quote.isError, true);
    assert.match(quote.text, /unbalanced " quote opened at column 5/);
    assert.equal((await call(client, "jsonc_session", { action: "" })).isError, true);
    assert.equal(
      (await call(client, "jsonc_session", { action: "open missing.json" })).isError,
      true,
    );
    // Bad arguments are rejected by the SDK's schema check, also as a tool error.
    const badArgs = await call(client, "jsonc", { ops: "set a 1" });
    assert.equal(badArgs.isError, true);
    const ok = await call(client, "jsonc", { ops: ["set a 1"] });
    assert.equal(ok.isError, false);
  } finally {
    await client.close();
  }
});

Deno.test("server: a third-party driver built on the framework gets the same four tools", async () => {
  const server = createFcpServer<number>({
    domain: "counter",
    description: "a number",
    verbs: [
      defineVerb({
        name: "inc",
        summary: "add n",
        positionals: { n: z.coerce.number().int().positive().default(1) },
        run: (_s: number, a) => ({
          prefix: "~",
          message: `+${a.n}`,
          apply: (s) => s + a.n,
          revert: (s) => s - a.n,
        }),
      }),
    ],
    query: [defineVerb({ name: "value", summary: "the count", run: (s: number) => String(s) })],
    session: {
      create: () => 0,
      decode: (b) => Number(new TextDecoder().decode(b)),
      encode: (s) => new TextEncoder().encode(String(s)),
    },
    storage: memoryStorage(),
  });
  const client = await connected(server);
  try {
    const names = (await client.listTools()).tools.map((t: Tool) => t.name).sort();
    assert.deepEqual(names, ["counter", "counter_help", "counter_query", "counter_session"]);
    await call(client, "counter_session", { action: "new" });
    await call(client, "counter", { ops: ["inc", "inc 5"] });
    assert.equal((await call(client, "counter_query", { q: "value" })).text, "6");
    const bad = await call(client, "counter", { ops: ["inc -2"] });
    assert.equal(bad.isError, true);
    assert.match(bad.text, /inc: n: Too small/);
    await call(client, "counter_session", { action: "undo" });
    assert.equal((await call(client, "counter_query", { q: "value" })).text, "1");
    assert.match((await call(client, "counter_help")).text, /inc \[n\]\n {6}add n/);
  } finally {
    await client.close();
  }
});

Deno.test("fcp-jsonc main.ts over stdio saves through the kernel as fcp-jsonc", async () => {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_fcp_stdio_" });
  let client: Client | undefined;
  try {
    const keyPath = `${scratch}/key/identity.key`;
    const key = await loadOrCreateOperatorKey(keyPath);
    await Deno.mkdir(`${scratch}/proj/sub`, { recursive: true });
    await initProject(`${scratch}/proj`, key);
    const root = await Deno.realPath(`${scratch}/proj`);
    await Deno.writeTextFile(
      `${root}/tsconfig.json`,
      '{\n  /* keep */\n  "compilerOptions": {}\n}\n',
    );
    const main = new URL("../../drivers/fcp_jsonc/main.ts", import.meta.url).pathname;
    const config = new URL("../../deno.json", import.meta.url).pathname;
    const transport = new StdioClientTransport({
      command: Deno.execPath(),
      args: ["run", "--config", config, "--allow-read", "--allow-write", "--allow-env", main],
      cwd: `${root}/sub`,
      env: { ...Deno.env.toObject(), OSTK_IDENTITY: keyPath, NO_COLOR: "1" },
      stderr: "pipe",
    });
    client = new Client({ name: "fcp-stdio-test", version: "0.0.0" });
    await client.connect(transport);
    assert.equal((await client.listTools()).tools.length, 4);
    assert.equal(
      (await call(client, "jsonc_session", { action: "open tsconfig.json" })).isError,
      false,
    );
    const r = await call(client, "jsonc", { ops: ["set compilerOptions.strict true"] });
    assert.equal(r.isError, false, r.text);
    const saved = await call(client, "jsonc_session", { action: "save" });
    assert.match(saved.text, /^! saved tsconfig\.json \(\d+ bytes, gen 1\)/);
    assert.equal(
      await Deno.readTextFile(`${root}/tsconfig.json`),
      '{\n  /* keep */\n  "compilerOptions": {\n    "strict": true\n  }\n}\n',
    );
    const rows = await readAuditRows(ostkPaths(root).audit);
    const write = rows.find((row) => row.event === "tool.file_write");
    assert.equal(write?.actor, "fcp-jsonc");
    assert.equal((write as Record<string, unknown> | undefined)?.path, "tsconfig.json");
  } finally {
    await client?.close();
    await Deno.remove(scratch, { recursive: true });
  }
});
