/**
 * Crash between two model turns: a real `ostk listen` runs a three-turn model session (read,
 * edit, finish) against the local Anthropic wire server. The server holds its answer to the
 * second model call (the one that carries the first turn's tool result) and the test SIGKILLs
 * the daemon there. A new daemon revives the session from its drain snapshot and sidecar; it
 * finishes without running any tool twice or sending any tool result twice.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import {
  auditRows,
  call,
  closeClient,
  connect,
  type DaemonProcess,
  killDaemonProcess,
  rowOf,
  startDaemonProcess,
  waitFor,
  waitForRows,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { anthropicWire as wire } from "./servers/anthropic.ts";
import { replyStep } from "./servers/wire.ts";

const KEY = "sk-ant-crash-key-000077";

/** The tool_result ids of one Anthropic request body, in order. */
function toolResultIds(body: Record<string, unknown>): string[] {
  return (body.messages as { role: string; content: unknown }[]).flatMap((m) =>
    Array.isArray(m.content)
      ? m.content.filter((b) => b.type === "tool_result").map((b) => String(b.tool_use_id))
      : []
  );
}

Deno.test("daemon: a model session killed between turns resumes without repeating a tool", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(`${project.root}/notes.txt`, "hello world\n");
    const server = wire.start([
      replyStep(wire, {
        toolCalls: [{ id: "toolu_read", name: "file_read", args: { path: "notes.txt" } }],
      }),
      // The second call is held: headers go out, no event ever follows.
      { kind: "stall", contentType: wire.contentType, chunks: [] },
      replyStep(wire, {
        toolCalls: [{
          id: "toolu_edit",
          name: "file_edit",
          args: { path: "notes.txt", old: "world", new: "daemon" },
        }],
      }),
      replyStep(wire, { text: "done" }),
    ], KEY);
    let daemon: DaemonProcess | undefined;
    let client: DaemonClient | undefined;
    const alias = "model-crash";
    try {
      project.env.OSTK_ANTHROPIC_BASE_URL = server.url;
      project.env.ANTHROPIC_API_KEY = KEY;
      daemon = await startDaemonProcess(project);
      client = await connect(project);
      await call(client, "session/spawn", {
        alias,
        cpu: { kind: "model", model: wire.spec(server), task: "greet the daemon" },
      });
      // The second request exists only after turn 0's drain snapshot was written.
      await waitFor("the second model call", () => server.requests.length >= 2);
      assert.deepEqual(toolResultIds(server.requests[1].body), ["toolu_read"]);
      await closeClient(client);
      client = undefined;
      await killDaemonProcess(daemon);
      daemon = undefined;
      assert.equal(await Deno.readTextFile(`${project.root}/notes.txt`), "hello world\n");

      daemon = await startDaemonProcess(project);
      client = await connect(project);
      const rows = await waitForRows(client, "the revived session to finish", (rs) => {
        const row = rs.find((r) => r.alias === alias);
        return row !== undefined && row.state === "finished";
      });
      assert.equal(rowOf(rows, alias).state, "finished");
      assert.equal(await Deno.readTextFile(`${project.root}/notes.txt`), "hello daemon\n");

      // read, held call, edit (after the restart), finish.
      assert.equal(server.requests.length, 4);
      assert.equal(server.remaining(), 0);
      for (const [i, req] of server.requests.entries()) {
        const ids = toolResultIds(req.body);
        assert.equal(new Set(ids).size, ids.length, `request ${i} repeats a tool result: ${ids}`);
      }
      assert.deepEqual(toolResultIds(server.requests[2].body), ["toolu_read"]);
      assert.deepEqual(toolResultIds(server.requests[3].body), ["toolu_read", "toolu_edit"]);
      // The conversation after the restart is the one before it, plus the new turn.
      const before = server.requests[1].body.messages as unknown[];
      const after = server.requests[2].body.messages as unknown[];
      assert.deepEqual(after, before);

      const audit = await auditRows(project);
      const perCall = new Map<string, number>();
      for (const row of audit) {
        if (typeof row.call_id !== "string" || !String(row.event).startsWith("tool.")) continue;
        perCall.set(row.call_id, (perCall.get(row.call_id) ?? 0) + 1);
      }
      for (const [id, n] of perCall) assert.ok(n <= 1, `${id} ran ${n} times`);
      assert.equal(audit.filter((r) => r.event === "tool.file_edit").length, 1);
      assert.equal(
        audit.find((r) => r.event === "tool.file_edit")?.call_id,
        `${alias}:1:0`,
      );
      assert.ok(audit.some((r) => r.event === "session.revive" && r.session === alias));
      await waitFor(
        "the exit row",
        async () =>
          (await auditRows(project)).some((r) => r.event === "session.exit" && r.session === alias),
      );
      const exits = (await auditRows(project)).filter((r) =>
        r.event === "session.exit" && r.session === alias
      );
      assert.equal(exits.length, 1, JSON.stringify(exits));
      assert.equal(exits[0].reason, "done");
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
      await server.close();
    }
  });
});
