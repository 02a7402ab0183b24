/**
 * End to end: a real `ostk listen` runs a `{kind: "model"}` session against the local
 * Anthropic wire server in this test process. The session reads and edits a file through the
 * daemon's kernel, finishes, and leaves its conversation in the sidecar; the key appears in no
 * file under `.ostk/`.
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
  waitForRows,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { anthropicWire as wire } from "./servers/anthropic.ts";
import { replyStep } from "./servers/wire.ts";

const KEY = "sk-ant-e2e-key-000042";

Deno.test("daemon: a model session edits through the kernel and finishes", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(`${project.root}/notes.txt`, "hello world\n");
    const server = wire.start([
      replyStep(wire, { toolCalls: [{ name: "file_read", args: { path: "notes.txt" } }] }),
      replyStep(wire, {
        toolCalls: [{
          name: "file_edit",
          args: { path: "notes.txt", old: "world", new: "daemon" },
        }],
      }),
      replyStep(wire, { text: "done" }),
    ], KEY);
    let daemon: DaemonProcess | undefined;
    let client: DaemonClient | undefined;
    try {
      project.env.OSTK_ANTHROPIC_BASE_URL = server.url;
      project.env.ANTHROPIC_API_KEY = KEY;
      daemon = await startDaemonProcess(project);
      client = await connect(project);
      const alias = "model-e2e";
      await call(client, "session/spawn", {
        alias,
        cpu: { kind: "model", model: wire.spec(server), task: "greet the daemon" },
      });
      const rows = await waitForRows(client, "the model session to finish", (rs) => {
        const row = rs.find((r) => r.alias === alias);
        return row !== undefined && row.state === "finished";
      });
      const row = rowOf(rows, alias);
      assert.equal(row.state, "finished", JSON.stringify(row));
      assert.equal(await Deno.readTextFile(`${project.root}/notes.txt`), "hello daemon\n");
      const edit = (await auditRows(project)).find((r) => r.event === "tool.file_edit");
      assert.equal(edit?.call_id, `${alias}:1:0`);
      assert.equal(server.requests.length, 3);
      const sidecar = await Deno.readTextFile(
        `${project.root}/.ostk/drain/${alias}.messages.jsonl`,
      );
      assert.equal(sidecar.trim().split("\n").length, 6);
      for await (const entry of Deno.readDir(`${project.root}/.ostk/drain`)) {
        if (!entry.isFile) continue;
        const text = await Deno.readTextFile(`${project.root}/.ostk/drain/${entry.name}`);
        assert.ok(!text.includes(KEY), `${entry.name} holds the key`);
      }
      assert.ok(!(await Deno.readTextFile(project.paths.audit)).includes(KEY));
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
      await server.close();
    }
  });
});
