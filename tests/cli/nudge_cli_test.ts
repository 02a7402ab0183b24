/** `ostk nudge` with a daemon running: through kernel/call as the operator, refusals included. */
import assert from "node:assert/strict";
import {
  auditRows,
  fakeAgent,
  killDaemonProcess,
  ostk,
  startDaemonProcess,
  withProject,
} from "../helpers/daemon_fixture.ts";

Deno.test("ostk nudge: queued through the daemon, delivered to the session, dead refused", async () => {
  await withProject(async (project) => {
    const daemon = await startDaemonProcess(project);
    try {
      const spawned = await ostk(project, [
        "spawn",
        "w",
        "--json",
        "--cpu",
        "command",
        "--",
        ...fakeAgent(60_000),
      ]);
      assert.equal(spawned.code, 0, spawned.stderr);
      const { alias } = JSON.parse(spawned.stdout);

      const unknown = await ostk(project, ["nudge", "nobody-1", "hello"]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /unknown alias 'nobody-1'/);

      const sent = await ostk(project, ["nudge", alias, "please rebase"]);
      assert.equal(sent.code, 0, sent.stderr);
      const read = await ostk(project, [
        "call",
        "file:read",
        '{"path":"nothing.txt"}',
        "--as",
        alias,
        "--json",
      ]);
      const response = JSON.parse(read.stdout);
      assert.ok(
        response.digest.split("\n").includes("[nudge] from=operator: please rebase"),
        response.digest,
      );

      const killed = await ostk(project, ["kill", alias]);
      assert.equal(killed.code, 0, killed.stderr);
      const dead = await ostk(project, ["nudge", alias, "too late"]);
      assert.equal(dead.code, 1);
      assert.match(dead.stderr, /dead/);

      const rows = await auditRows(project);
      const sends = rows.filter((r) => r.event === "nudge.send");
      assert.equal(sends.length, 1);
      assert.equal(sends[0].from, "operator");
      assert.equal(sends[0].to, alias);
      const delivered = rows.filter((r) => r.event === "nudge.deliver");
      assert.equal(delivered.length, 1);
      assert.equal(delivered[0].count, 1);
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});
