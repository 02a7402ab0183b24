/**
 * `ostk mcp` end to end: the official MCP SDK client talks to the real CLI over stdio and over
 * Streamable HTTP, in a scratch project with its own operator key.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { DOCUMENTED_TOOLS } from "../../drivers/mcp_tools.ts";
import {
  FileCreateArgs,
  FileEditArgs,
  FileReadArgs,
  FileWriteArgs,
} from "../../kernel/tool_schema.ts";
import {
  auditRows,
  killDaemonProcess,
  ostk,
  type Project,
  startDaemonProcess,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { connectStdio, startHttp, structured, textOf } from "./mcp_fixture.ts";

const LINES = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join("\n") + "\n";

async function withClient(
  project: Project,
  name: string,
  fn: (client: Client) => Promise<void>,
): Promise<void> {
  const client = await connectStdio(project, name);
  try {
    await fn(client);
  } finally {
    await client.close();
  }
}

function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  return client.callTool({ name, arguments: args });
}

Deno.test("mcp stdio: the tool list is the documented one, file schemas are the kernel's", async () => {
  await withProject(async (project) => {
    await withClient(project, "test-client", async (client) => {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), Object.keys(DOCUMENTED_TOOLS).sort());
      const kernel = {
        read: FileReadArgs,
        edit: FileEditArgs,
        write: FileWriteArgs,
        create: FileCreateArgs,
      };
      for (const [name, schema] of Object.entries(kernel)) {
        const tool = tools.find((t) => t.name === name)!;
        assert.deepEqual(
          Object.keys(tool.inputSchema.properties ?? {}).sort(),
          Object.keys(schema.shape).sort(),
          name,
        );
        assert.equal(
          (tool.inputSchema as { additionalProperties?: boolean }).additionalProperties,
          false,
          name,
        );
      }
      assert.deepEqual(tools.find((t) => t.name === "edit")!.inputSchema.required?.sort(), [
        "new",
        "old",
        "path",
      ]);
    });
    // Listing tools issues no alias: only a call does.
    assert.equal((await auditRows(project)).filter((r) => r.event === "agent.alias").length, 0);
  });
});

Deno.test("mcp stdio: read → edit → stale edit far apart merges (Hot PR), audited as the client's alias", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(`${project.root}/notes.txt`, LINES);
    await withClient(project, "test-client", async (client) => {
      const read = await call(client, "read", { path: "notes.txt" });
      assert.ok(!read.isError, textOf(read));
      assert.match(textOf(read), /line 20/);
      assert.match(textOf(read), /\[procs\]/, "the digest envelope follows the answer");
      const gen0 = structured(read).gen as number;

      const first = await call(client, "edit", {
        path: "notes.txt",
        old: "line 2\n",
        new: "LINE 2\n",
        expected_gen: gen0,
      });
      assert.ok(!first.isError, textOf(first));
      assert.equal(structured(first).gen, gen0 + 1);

      // The same base gen again: another writer's change is 16 lines away, so tier 1 merges.
      const second = await call(client, "edit", {
        path: "notes.txt",
        old: "line 18\n",
        new: "LINE 18\n",
        expected_gen: gen0,
      });
      assert.ok(!second.isError, textOf(second));
      assert.ok(structured(second).merged, `expected a merge: ${textOf(second)}`);
      assert.match(textOf(second), /gen=\d+, merged with a concurrent edit \(tier 1\)/);
      const text = await Deno.readTextFile(`${project.root}/notes.txt`);
      assert.match(text, /^LINE 2$/m);
      assert.match(text, /^LINE 18$/m);

      // Editing text that no longer exists in the stale base: refused as a tool error.
      const third = await call(client, "edit", {
        path: "notes.txt",
        old: "LINE 2\n",
        new: "x\n",
        expected_gen: gen0,
      });
      assert.equal(third.isError, true);
      assert.match(textOf(third), /gen/);
    });
    const rows = await auditRows(project);
    const alias = rows.find((r) => r.event === "agent.alias");
    assert.equal(alias?.alias, "test-client-1");
    const edits = rows.filter((r) => r.event === "tool.file_edit");
    assert.equal(edits.length, 2);
    assert.ok(edits.every((r) => r.actor === "test-client-1"));
    assert.ok(edits[1].merged, "the second edit's row records the merge");
    assert.ok(rows.some((r) => r.event === "tool.conflict" && r.actor === "test-client-1"));
    assert.ok(rows.some((r) => r.event === "tool.file_read" && r.actor === "test-client-1"));
    assert.equal((await ostk(project, ["os", "audit"])).code, 0, "the chain still verifies");
  });
});

Deno.test("mcp stdio: refusals are tool errors (isError) and the server keeps serving", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(`${project.root}/a.txt`, "alpha\n");
    await withClient(project, "Test Client 2.0", async (client) => {
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ["read", { path: "missing.txt" }, /no such file/],
        ["read", { path: "../outside.txt" }, /escapes the project root/],
        ["read", { path: 5 }, /path/],
        ["write", { path: ".ostk/HUMANFILE", content: "x" }, /denied|kernel/],
        ["create", { path: "a.txt", content: "again" }, /already exists/],
        ["edit", { path: "a.txt", old: "nope", new: "x" }, /not found/],
        ["ps", {}, /no daemon/],
        ["spawn", { name: "w", command: ["true"] }, /no daemon/],
        ["shell", { command: "ls" }, /cmd/],
      ];
      for (const [tool, args, pattern] of cases) {
        const result = await call(client, tool, args);
        assert.equal(result.isError, true, `${tool} ${JSON.stringify(args)}: ${textOf(result)}`);
        assert.match(textOf(result), pattern, `${tool} ${JSON.stringify(args)}`);
      }
      const after = await call(client, "read", { path: "a.txt" });
      assert.ok(!after.isError);
      assert.match(textOf(after), /alpha/);
      const shell = await call(client, "shell", { cmd: "echo hello-from-shell" });
      assert.ok(!shell.isError, textOf(shell));
      assert.match(textOf(shell), /exit=0[\s\S]*hello-from-shell/);
      // "Test Client 2.0" → test-client (the version-like tail is dropped).
      assert.match(textOf(await call(client, "help")), /You are test-client-1 /);
    });
  });
});

Deno.test("mcp stdio: search finds files by name and content, never inside .ostk/ or .git/", async () => {
  await withProject(async (project) => {
    await Deno.mkdir(`${project.root}/src/deep`, { recursive: true });
    await Deno.mkdir(`${project.root}/.git`);
    await Deno.writeTextFile(`${project.root}/src/deep/needle_file.ts`, "export const x = 1;\n");
    await Deno.writeTextFile(`${project.root}/src/other.ts`, "// a needle here\n");
    await Deno.writeTextFile(`${project.root}/.git/needle`, "needle\n");
    await Deno.symlink("/etc/hostname", `${project.root}/src/needle_link`);
    await withClient(project, "searcher", async (client) => {
      const result = await call(client, "search", { query: "needle" });
      const text = textOf(result);
      assert.ok(!result.isError, text);
      assert.match(text, /^src\/deep\/needle_file\.ts$/m);
      assert.match(text, /^src\/other\.ts:1: \/\/ a needle here$/m);
      assert.doesNotMatch(text, /\.git|\.ostk|needle_link/);
      const globbed = textOf(
        await call(client, "search", { query: "needle", glob: "src/deep/**" }),
      );
      assert.doesNotMatch(globbed, /other\.ts/);
    });
  });
});

Deno.test("mcp stdio: with a daemon running, calls go through it (ps, spawn, session, edit)", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(`${project.root}/b.txt`, "one\n");
    const daemon = await startDaemonProcess(project);
    try {
      await withClient(project, "claude-code", async (client) => {
        assert.match(textOf(await call(client, "help")), /daemon running/);
        assert.equal((await call(client, "ps")).isError, undefined);
        const spawned = await call(client, "spawn", { name: "worker", command: ["sleep", "30"] });
        assert.ok(!spawned.isError, textOf(spawned));
        assert.equal(structured(spawned).alias, "worker-1");
        const shown = await call(client, "session", { alias: "worker-1", action: "show" });
        assert.equal(structured(shown).alias, "worker-1");
        const killed = await call(client, "session", { alias: "worker-1", action: "kill" });
        assert.ok(!killed.isError, textOf(killed));
        const read = await call(client, "read", { path: "b.txt" });
        const edit = await call(client, "edit", {
          path: "b.txt",
          old: "one",
          new: "two",
          expected_gen: structured(read).gen,
        });
        assert.ok(!edit.isError, textOf(edit));
      });
    } finally {
      await killDaemonProcess(daemon);
    }
    const rows = await auditRows(project);
    assert.ok(rows.some((r) => r.event === "tool.file_edit" && r.actor === "claude-code-1"));
    assert.ok(rows.some((r) => r.event === "session.spawn" && r.session === "worker-1"));
  });
});

Deno.test("mcp http: the same tools over Streamable HTTP; a bearer token is enforced", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(`${project.root}/c.txt`, "gamma\n");
    const server = await startHttp(project, ["--token", "s3cret"]);
    try {
      const bare = await fetch(server.url, { method: "POST", body: "{}" });
      await bare.body?.cancel();
      assert.equal(bare.status, 401);
      const client = new Client({ name: "http-client", version: "1" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(server.url), {
          requestInit: { headers: { Authorization: "Bearer s3cret" } },
        }),
      );
      try {
        assert.equal((await client.listTools()).tools.length, Object.keys(DOCUMENTED_TOOLS).length);
        const read = await call(client, "read", { path: "c.txt" });
        assert.match(textOf(read), /gamma/);
        const bad = await call(client, "read", { path: "nope.txt" });
        assert.equal(bad.isError, true);
      } finally {
        await client.close();
      }
    } finally {
      const status = await server.stop();
      assert.equal(status.code, 0, "SIGTERM stops the HTTP server cleanly");
    }
    const rows = await auditRows(project);
    assert.ok(rows.some((r) => r.event === "tool.file_read" && r.actor === "http-client-1"));
  });
});

Deno.test("mcp http: a non-loopback address is refused without --allow-remote --token", async () => {
  await withProject(async (project) => {
    const refused = await ostk(project, ["mcp", "--http", "0.0.0.0:0"]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /non-loopback/);
    const half = await ostk(project, ["mcp", "--http", "0.0.0.0:0", "--allow-remote"]);
    assert.equal(half.code, 2);
  });
});

Deno.test("mcp diag: connects to itself, lists the tools, reports no drift", async () => {
  await withProject(async (project) => {
    const result = await ostk(project, ["mcp", "diag", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.deepEqual(report.drift, []);
    assert.equal(report.tools.length, Object.keys(DOCUMENTED_TOOLS).length);
    const help = await ostk(project, ["mcp", "--help"]);
    assert.match(help.stdout, /"mcpServers"/);
    assert.match(help.stdout, /"args": \["mcp"\]/);
  });
});
