/**
 * The approval chain in a real daemon: sessions spawned with Agentfile settings (permissions,
 * TOOL patterns) make kernel calls from a script; questions reach attached clients as
 * `approval` events and are answered with `session/approve` (and `ostk approve`); unanswered
 * questions are denied after the daemon's timeout; every decision is an audit row.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import type { MethodParams, RpcNotification } from "../../actors/protocol.ts";
import type { AuditRow } from "../../kernel/audit.ts";
import {
  auditRows,
  call,
  closeClient,
  connect,
  type DaemonProcess,
  killDaemonProcess,
  ostk,
  type Project,
  rowOf,
  startDaemonProcess,
  waitFor,
  waitForRows,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { exists } from "../../kernel/exists.ts";

type ApprovalEvent = Extract<RpcNotification["params"], { kind: "approval" }>;

/** Write a transcript: one turn per call, no thinking. */
async function transcript(project: Project, calls: { tool: string; args: unknown }[]) {
  const path = `${project.root}/agent.jsonl`;
  await Deno.writeTextFile(path, calls.map((c) => JSON.stringify({ calls: [c] })).join("\n"));
  return path;
}

/** A client that records the approval events it is sent. */
async function listener(project: Project, alias?: string) {
  const client = await connect(project);
  const events: ApprovalEvent[] = [];
  client.onEvent((e) => {
    if (e.kind === "approval") events.push(e);
  });
  await call(client, "client/attach", alias ? { alias } : {});
  const nth = (n: number) => waitFor(`approval event #${n + 1}`, () => events[n]);
  return { client, events, nth };
}

/** The `approval.decide` rows of a session, as `decision@step/answer` strings. */
function decisions(rows: AuditRow[], alias: string): string[] {
  return rows.filter((r) => r.event === "approval.decide" && r.session === alias)
    .map((r) => `${r.decision}@${r.step}${r.answer ? `/${r.answer}` : ""}`);
}

/** Spawn a session and wait until it has ended; returns the audit rows after. */
async function runSession(
  client: DaemonClient,
  project: Project,
  params: MethodParams<"session/spawn">,
  answer: () => Promise<void> = () => Promise.resolve(),
): Promise<AuditRow[]> {
  await call(client, "session/spawn", params);
  await answer();
  await waitForRows(client, `${params.alias} to end`, (rows) => {
    const row = rows.find((r) => r.alias === params.alias);
    return ["finished", "failed", "killed", "crashed", "limited"].includes(row?.state ?? "");
  });
  return await waitFor("the exit row", async () => {
    const rows = await auditRows(project);
    return rows.some((r) => r.event === "session.exit" && r.session === params.alias)
      ? rows
      : undefined;
  });
}

Deno.test("approval: governed writes ask; y writes, n refuses, a allows the class from then on", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    const clients: DaemonClient[] = [];
    try {
      // A long timeout: every question here is answered, so time never decides the outcome.
      daemon = await startDaemonProcess(project, ["--approval-timeout-ms", "60000"]);
      const control = await connect(project);
      clients.push(control);
      const script = await transcript(
        project,
        ["a", "b", "c", "d"].map((n) => ({
          tool: "file:write",
          args: { path: `${n}.txt`, content: `${n}\n` },
        })),
      );
      const alias = "gov";
      const rows = await runSession(control, project, {
        alias,
        cpu: { kind: "script", script },
        permissions: "governed",
      }, async () => {
        const attached = await listener(project, alias);
        const anyone = await listener(project); // attached to no session: sees every question
        clients.push(attached.client, anyone.client);

        const first = await attached.nth(0);
        assert.equal(first.class, "FileWrite");
        assert.match(first.summary, /^file:write a\.txt \[FileWrite\]/);
        assert.equal((await anyone.nth(0)).request_id, first.request_id);
        await call(attached.client, "session/approve", {
          alias,
          request_id: first.request_id,
          answer: "y",
        });

        const second = await attached.nth(1);
        const list = await ostk(project, ["approve", alias, "--list", "--json"]);
        assert.equal(list.code, 0, list.stderr);
        assert.deepEqual(JSON.parse(list.stdout).map((p: { request_id: string }) => p.request_id), [
          second.request_id,
        ]);
        const no = await ostk(project, ["approve", alias, "--no"]);
        assert.equal(no.code, 0, no.stderr);
        assert.match(no.stdout, new RegExp(`${alias} ${second.request_id} no`));

        await anyone.nth(2);
        // No request id: the oldest waiting question of the session is answered.
        await call(anyone.client, "session/approve", { alias, answer: "a" });
      });
      assert.equal(await Deno.readTextFile(`${project.root}/a.txt`), "a\n");
      assert.equal(await exists(`${project.root}/b.txt`), false, "the denied write never ran");
      assert.equal(await Deno.readTextFile(`${project.root}/c.txt`), "c\n");
      assert.equal(await Deno.readTextFile(`${project.root}/d.txt`), "d\n", "allowed by 'a'");
      assert.deepEqual(decisions(rows, alias), [
        "ask@7",
        "allow@7/y",
        "ask@7",
        "deny@7/n",
        "ask@7",
        "allow@7/a",
        "allow@5",
      ]);
      const decided = rows.filter((r) => r.event === "approval.decide" && r.session === alias);
      assert.ok(decided.every((r) => r.class === "FileWrite" && r.tool === "file:write"));
      assert.ok(decided.every((r) => typeof r.reason === "string" && r.reason !== ""));
      assert.ok(decided.every((r) => r.call_id === undefined), "a decision is not a call");
      // The script saw the refusal as a permission error naming the step.
      const drain = JSON.parse(await Deno.readTextFile(`${project.paths.drain}/${alias}.json`));
      assert.match(drain.history[1].calls[0].error, /^permission: .*step 7/);
      const bad = await ostk(project, ["approve", alias, "--yes"]);
      assert.equal(bad.code, 1, "nothing is left to answer");
      assert.match(bad.stderr, /no approval request is waiting for gov/);
    } finally {
      for (const c of clients) await closeClient(c);
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("approval: with no client to answer, the question is denied after the timeout", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let client: DaemonClient | undefined;
    try {
      daemon = await startDaemonProcess(project, ["--approval-timeout-ms", "300"]);
      client = await connect(project);
      const script = await transcript(project, [
        { tool: "file:write", args: { path: "a.txt", content: "a\n" } },
      ]);
      const rows = await runSession(client, project, {
        alias: "lonely",
        cpu: { kind: "script", script },
        permissions: "governed",
      });
      assert.equal(await exists(`${project.root}/a.txt`), false);
      assert.deepEqual(decisions(rows, "lonely"), ["ask@7", "deny@7/none"]);
      const denied = rows.find((r) => r.event === "approval.decide" && r.decision === "deny")!;
      assert.match(String(denied.reason), /no operator answered within 300 ms/);
      // The transcript ran to its end: its work was denied, not the session.
      assert.equal(rowOf(await waitForRows(client, "ps", () => true), "lonely").state, "finished");

      // The operator's own calls are not a session's: no chain, no question.
      const own = await call<{ ok: boolean }>(client, "kernel/call", {
        tool: "file:write",
        args: { path: "mine.txt", content: "operator\n" },
      });
      assert.equal(own.ok, true);
      const after = await auditRows(project);
      assert.equal(after.filter((r) => r.event === "approval.decide").length, 2);
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("approval: auto + TOOL patterns, pin caps at step 1, a dangerous command asked once", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    const clients: DaemonClient[] = [];
    try {
      daemon = await startDaemonProcess(project, ["--approval-timeout-ms", "60000"]);
      const control = await connect(project);
      clients.push(control);
      await Deno.mkdir(`${project.root}/work`, { mode: 0o755 });
      const script = await transcript(project, [
        { tool: "file:write", args: { path: "ok.txt", content: "ok\n" } },
        { tool: "shell", args: { cmd: "expr 40 + 2" } },
        { tool: "shell", args: { cmd: "seq 3" } },
        { tool: "file:write", args: { path: ".ostk/evil.txt", content: "x" } },
        { tool: "shell", args: { cmd: "chmod -R 777 work" } },
      ]);
      const alias = "auto";
      let watcher: Awaited<ReturnType<typeof listener>> | undefined;
      const rows = await runSession(control, project, {
        alias,
        cpu: { kind: "script", script },
        permissions: "auto",
        tools: [{ class: "ShellExec", substring: "expr" }],
      }, async () => {
        watcher = await listener(project, alias);
        clients.push(watcher.client);
        const seq = await watcher.nth(0);
        assert.equal(seq.class, "ShellExec");
        assert.match(seq.summary, /^shell seq 3 /);
        await call(watcher.client, "session/approve", { alias, answer: "n" });
        const danger = await watcher.nth(1);
        assert.match(danger.summary, /chmod -R 777 work .*dangerous command/);
        await call(watcher.client, "session/approve", { alias, answer: "y" });
      });
      assert.equal(watcher!.events.length, 2, "the dangerous command was asked about once");
      assert.deepEqual(decisions(rows, alias), [
        "allow@4",
        "allow@6",
        "ask@7",
        "deny@7/n",
        "deny@1",
        "ask@2",
        "allow@2/y",
      ]);
      const shells = rows.filter((r) => r.event === "tool.shell").map((r) => r.cmd);
      assert.deepEqual(shells, ["expr 40 + 2", "chmod -R 777 work"]);
      assert.equal(await exists(`${project.root}/.ostk/evil.txt`), false);
      assert.equal((await Deno.stat(`${project.root}/work`)).mode! & 0o777, 0o777);
    } finally {
      for (const c of clients) await closeClient(c);
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("approval: a session revived after a daemon crash keeps its settings", async () => {
  await withProject(async (project) => {
    const daemons: (DaemonProcess | undefined)[] = [];
    const clients: DaemonClient[] = [];
    try {
      daemons[0] = await startDaemonProcess(project, ["--approval-timeout-ms", "60000"]);
      const first = await connect(project);
      clients.push(first);
      const script = await transcript(project, [
        { tool: "file:write", args: { path: "a.txt", content: "a\n" } },
      ]);
      const alias = "phoenix";
      await call(first, "session/spawn", {
        alias,
        cpu: { kind: "script", script },
        permissions: "governed",
        revival: "revive",
      });
      const before = await listener(project, alias);
      clients.push(before.client);
      await before.nth(0);
      daemons[0]!.kill("SIGKILL");
      await daemons[0]!.exited;

      daemons[1] = await startDaemonProcess(project, ["--approval-timeout-ms", "60000"]);
      const after = await listener(project, alias);
      clients.push(after.client);
      // Still governed: the revived session asks again rather than writing on its own.
      const again = await after.nth(0);
      assert.match(again.summary, /^file:write a\.txt/);
      await call(after.client, "session/approve", { alias, answer: "y" });
      await waitForRows(
        after.client,
        `${alias} to end`,
        (rows) => rows.find((r) => r.alias === alias)?.state === "finished",
      );
      assert.equal(await Deno.readTextFile(`${project.root}/a.txt`), "a\n");
      const rows = await auditRows(project);
      assert.deepEqual(decisions(rows, alias).slice(-3), ["ask@7", "ask@7", "allow@7/y"]);
    } finally {
      for (const c of clients) await closeClient(c);
      for (const d of daemons) await killDaemonProcess(d);
    }
  });
});

Deno.test("approval: 'a' answers the waiting questions of its class too, and outlives the daemon", async () => {
  await withProject(async (project) => {
    const daemons: (DaemonProcess | undefined)[] = [];
    const clients: DaemonClient[] = [];
    try {
      daemons[0] = await startDaemonProcess(project, ["--approval-timeout-ms", "60000"]);
      const control = await connect(project);
      clients.push(control);
      const alias = "multi";
      // The agent does nothing itself; the test makes its calls, several at once.
      await call(control, "session/spawn", {
        alias,
        cpu: { kind: "command", command: ["sleep", "600"] },
        permissions: "governed",
      });
      const watcher = await listener(project, alias);
      clients.push(watcher.client);
      // One connection per call: a connection's requests are answered in order.
      const as = async (tool: string, args: unknown) => {
        const c = await connect(project);
        clients.push(c);
        return call<{ ok: boolean }>(c, "kernel/call", { tool, args, as: alias });
      };
      const writes = [
        as("file:write", { path: "a.txt", content: "a\n" }),
        as("file:write", { path: "b.txt", content: "b\n" }),
        as("file:create", { path: "c.txt", content: "c\n" }),
      ];
      const shell = as("shell", { cmd: "make" });
      // Settled (or failed) before the end of the test, whatever happens in between.
      for (const p of [...writes, shell]) p.catch(() => undefined);
      await watcher.nth(3);
      const first = watcher.events.find((e) => e.summary.startsWith("file:write a.txt"))!;
      const answered = await ostk(project, [
        "approve",
        alias,
        "--all",
        "--request",
        first.request_id,
      ]);
      assert.equal(answered.code, 0, answered.stderr);
      assert.match(
        answered.stdout,
        new RegExp(
          `^${alias} ${first.request_id} all \\(and \\w+ \\w+, waiting in the same class\\)$`,
          "m",
        ),
      );
      assert.deepEqual((await Promise.all(writes)).map((r) => r.ok), [true, true, true]);
      // Another class is not covered: it still waits, and is answered on its own.
      const left = await call<{ pending: { class: string }[] }>(control, "session/approvals", {
        alias,
      });
      assert.deepEqual(left.pending.map((p) => p.class), ["ShellExec"]);
      await call(control, "session/approve", { alias, answer: "n" });
      assert.equal((await shell).ok, false);
      // A later call of the class passes at step 5 without a question.
      assert.equal((await as("file:write", { path: "d.txt", content: "d\n" })).ok, true);
      assert.equal(watcher.events.length, 4);

      // The daemon dies; the next one revives the session with its "a" answers from the log.
      daemons[0]!.kill("SIGKILL");
      await daemons[0]!.exited;
      daemons[1] = await startDaemonProcess(project, ["--approval-timeout-ms", "60000"]);
      const again = await connect(project);
      clients.push(again);
      const after = await call<{ ok: boolean }>(again, "kernel/call", {
        tool: "file:write",
        args: { path: "e.txt", content: "e\n" },
        as: alias,
      });
      assert.equal(after.ok, true, JSON.stringify(after));
      const rows = await auditRows(project);
      assert.deepEqual(decisions(rows, alias).slice(-1), ["allow@5"]);
      assert.equal(await Deno.readTextFile(`${project.root}/e.txt`), "e\n");
      await call(again, "session/kill", { alias });
    } finally {
      for (const c of clients) await closeClient(c);
      for (const d of daemons) await killDaemonProcess(d);
    }
  });
});
