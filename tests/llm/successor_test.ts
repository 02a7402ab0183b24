/**
 * A real `ostk listen` runs model sessions against the local Anthropic wire server:
 *
 * - `successor: "auto"` with a tiny context window: usage drives the session to dying, its
 *   last turn drains into a handoff ("stopped: context window … full"), and a successor session
 *   starts with the handoff note as its task and runs against the same server. The protocol's
 *   `session/spawn` schema (actors/protocol.ts) has no `successor` key and refuses it, so the
 *   session enters as a `session.spawn` row that the daemon revives at start.
 * - a 429 with `retry-after: 0` is retried once and leaves a `model.retry` row.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import { handoffPath } from "../../actors/llm/handoff.ts";
import type { CpuSpec } from "../../actors/session_schema.ts";
import { AuditLog } from "../../kernel/audit.ts";
import { loadOrCreateOperatorKey } from "../../kernel/identity.ts";
import {
  auditRows,
  call,
  closeClient,
  connect,
  type DaemonProcess,
  killDaemonProcess,
  type Project,
  startDaemonProcess,
  waitFor,
  waitForRows,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { anthropicWire as wire } from "./servers/anthropic.ts";
import { replyStep } from "./servers/wire.ts";

const KEY = "sk-ant-successor-key-0099";

/** The reason of a session's `session.exit` row, once it is there. */
async function exitReason(project: Project, alias: string): Promise<unknown> {
  const row = await waitFor(
    `the session.exit row of ${alias}`,
    async () =>
      (await auditRows(project)).find((r) => r.event === "session.exit" && r.session === alias),
  );
  return row.reason;
}

/**
 * Append the `session.spawn` row a daemon writes when it accepts `session/spawn` (no daemon is
 * running), after the `agent.alias` row that issued `alias`: the next daemon finds the session alive in the log and revives it from turn 0.
 */
async function seedSpawn(project: Project, alias: string, spec: CpuSpec): Promise<void> {
  const key = await loadOrCreateOperatorKey(project.keyPath);
  const log = new AuditLog(project.paths.audit, {
    signer: key.signer,
    headPath: project.paths.head,
  });
  try {
    // Issued as `issueAlias` issues it, so the successor's alias is the next n.
    const [, name, n] = /^(.*)-(\d+)$/.exec(alias)!;
    await log.append({
      event: "agent.alias",
      actor: "operator",
      fields: { alias, name, n: Number(n) },
    });
    await log.append({
      event: "session.spawn",
      actor: "operator",
      fields: { session: alias, alias, cpu: spec.kind, revival: "revive", spec },
    });
  } finally {
    log.close();
  }
}

/** The text of every user message of an Anthropic request body. */
function userTexts(body: Record<string, unknown>): string[] {
  return (body.messages as { role: string; content: unknown }[])
    .filter((m) => m.role === "user")
    .flatMap((m) =>
      typeof m.content === "string"
        ? [m.content]
        : Array.isArray(m.content)
        ? m.content.filter((b) => b.type === "text").map((b) => String(b.text))
        : []
    );
}

Deno.test("daemon: a model session drained on a full context window gets a successor", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(`${project.root}/notes.txt`, "hello world\n");
    const server = wire.start([
      // 95 of 100 tokens: dying after this turn.
      replyStep(wire, {
        toolCalls: [{ id: "toolu_read", name: "file_read", args: { path: "notes.txt" } }],
        usage: { input: 90, output: 5 },
      }),
      // The draining turn: no tools offered, the reply becomes the handoff's progress.
      replyStep(wire, {
        text: "Read notes.txt; still to do: change world to successor.",
        usage: { input: 96, output: 4 },
      }),
      // The successor's first (and last) turn.
      replyStep(wire, { text: "successor done", usage: { input: 10, output: 2 } }),
    ], KEY);
    let daemon: DaemonProcess | undefined;
    let client: DaemonClient | undefined;
    const alias = "writer-1";
    try {
      project.env.OSTK_ANTHROPIC_BASE_URL = server.url;
      project.env.ANTHROPIC_API_KEY = KEY;
      // `session/spawn` refuses `successor` (see the header), so the spawn row is written as
      // the daemon writes it for an accepted spawn; the daemon revives it when it starts.
      await seedSpawn(project, alias, {
        kind: "model",
        model: wire.spec(server),
        task: "edit notes.txt",
        successor: "auto",
        context_window: 100,
      });
      daemon = await startDaemonProcess(project);
      client = await connect(project);
      const link = await waitFor(
        "the session.successor row",
        async () =>
          (await auditRows(project)).find((r) =>
            r.event === "session.successor" && r.from === alias
          ),
      );
      const next = String(link.to);
      assert.equal(next, "writer-2");
      const rows = await waitForRows(
        client,
        "both sessions to finish",
        (rs) => [alias, next].every((a) => rs.find((r) => r.alias === a)?.state === "finished"),
      );
      assert.equal(rows.length, 2);
      assert.equal(await exitReason(project, alias), "done");
      assert.equal(await exitReason(project, next), "done");

      const note = await Deno.readTextFile(handoffPath(project.root, alias));
      const audit = await auditRows(project);
      const spawn = audit.find((r) => r.event === "session.spawn" && r.session === next);
      assert.ok(spawn, "the successor has a spawn row");
      const spec = spawn.spec as { kind: string; task: string; successor?: string };
      assert.equal(spec.kind, "model");
      assert.equal(spec.successor, "auto");
      assert.match(spec.task, /^- stopped: context window \d+% full$/m);
      assert.ok(spec.task.includes("still to do: change world to successor."), spec.task);
      assert.equal(spec.task, note);

      // Three calls: the session's two turns, then the successor's, whose task is the note.
      assert.equal(server.requests.length, 3);
      assert.equal(server.remaining(), 0);
      assert.deepEqual(wire.toolNames(server.requests[1].body), []);
      assert.deepEqual(userTexts(server.requests[2].body), [spec.task]);
      assert.equal(
        audit.filter((r) => r.event === "session.successor" && r.from === alias).length,
        1,
      );
      // The successor ended on its own reply, not a full window: it has no successor.
      assert.ok(!audit.some((r) => r.event === "session.successor" && r.from === next));
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
      await server.close();
    }
  });
});

Deno.test("daemon: a 429 with retry-after 0 is retried and audited as model.retry", async () => {
  await withProject(async (project) => {
    const server = wire.start([
      {
        kind: "status",
        status: 429,
        headers: { "retry-after": "0", "content-type": "application/json" },
        body: JSON.stringify({
          type: "error",
          error: { type: "rate_limit_error", message: "slow down" },
        }),
      },
      replyStep(wire, { text: "done" }),
    ], KEY);
    let daemon: DaemonProcess | undefined;
    let client: DaemonClient | undefined;
    const alias = "model-retry";
    try {
      project.env.OSTK_ANTHROPIC_BASE_URL = server.url;
      project.env.ANTHROPIC_API_KEY = KEY;
      daemon = await startDaemonProcess(project);
      client = await connect(project);
      await call(client, "session/spawn", {
        alias,
        cpu: { kind: "model", model: wire.spec(server), task: "say done" },
      });
      await waitForRows(
        client,
        "the session to finish",
        (rs) => rs.find((r) => r.alias === alias)?.state === "finished",
      );
      assert.equal(await exitReason(project, alias), "done");
      assert.equal(server.requests.length, 2);
      assert.deepEqual(server.requests[1].body, server.requests[0].body);
      const retries = await waitFor("the model.retry row", async () => {
        const rs = (await auditRows(project)).filter((r) =>
          r.event === "model.retry" && r.session === alias
        );
        return rs.length > 0 ? rs : undefined;
      });
      assert.equal(retries.length, 1, JSON.stringify(retries));
      assert.equal(retries[0].attempt, 1);
      assert.equal(retries[0].status, 429);
      assert.equal(retries[0].wait_ms, 0);
      assert.equal(retries[0].reason, "rate_limit");
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
      await server.close();
    }
  });
});
