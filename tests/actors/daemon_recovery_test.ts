/**
 * Crash cases against a real daemon process: the daemon SIGKILLed mid-run and started again
 * (sessions revive from the log and their drain snapshots and finish as if nothing happened),
 * and an agent process that hangs (SIGSTOP) while the daemon keeps running (the scheduler
 * notices and applies the session's revival policy).
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import type { AuditRow } from "../../kernel/audit.ts";
import {
  auditRows,
  call,
  closeClient,
  concerns,
  connect,
  type DaemonProcess,
  fakeAgent,
  killAgent,
  killDaemonProcess,
  ostk,
  pacedTranscript,
  processGone,
  type Project,
  ps,
  type PsRow,
  rowOf,
  signalable,
  startDaemonProcess,
  waitFor,
  waitForRows,
  withProject,
  withProjects,
} from "../helpers/daemon_fixture.ts";

const WRITERS = ["writer_1", "writer_2", "writer_3", "writer_4"];
const aliasOf = (writer: string) => writer.replace("writer_", "w");

/**
 * Spawn the four writers. Their transcripts are the fixtures with every think set to 200 ms: the
 * same calls, slow enough that the kill lands with some turns done and some still to run.
 */
async function spawnWriters(project: Project, client: DaemonClient): Promise<void> {
  for (const writer of WRITERS) {
    const dest = `${project.scratch.dir}/${project.root.split("/").pop()}_${writer}.jsonl`;
    const script = await pacedTranscript(writer, dest, 200);
    await call(client, "session/spawn", {
      alias: aliasOf(writer),
      cpu: { kind: "script", script },
    });
  }
}

const total = (rows: PsRow[]) => rows.reduce((n, r) => n + r.turns, 0);

/**
 * Audited writes per call id: tool.file_* rows, and the gen.recover row that recovery writes for
 * a call killed between its gen row and its audit row (a SIGKILL can land in that window; the
 * replayed turn must then skip the call, so it never gets a tool row of its own).
 */
function writesByCallId(rows: AuditRow[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const row of rows) {
    const write = row.event.startsWith("tool.file_") || row.event === "gen.recover";
    if (!write || typeof row.call_id !== "string") continue;
    counts.set(row.call_id, (counts.get(row.call_id) ?? 0) + 1);
  }
  return counts;
}

// Regression for two races: a SIGKILL between a write and its audit row once made the replayed
// call run twice (the gen row now goes in before the rename and recovery logs its call id), and
// concurrent fold refreshes once read mid-row.
Deno.test("daemon recovery: SIGKILL mid-run, restart, every session finishes as if uninterrupted", async () => {
  await withProjects(["crashed", "clean"], async ([crashed, clean]) => {
    const daemons: (DaemonProcess | undefined)[] = [];
    const clients: DaemonClient[] = [];
    try {
      // The reference run, uninterrupted, goes on alongside the crashed one.
      daemons[0] = await startDaemonProcess(crashed, ["--concurrency", "4"]);
      daemons[1] = await startDaemonProcess(clean, ["--concurrency", "4"]);
      let a = await connect(crashed);
      const b = await connect(clean);
      clients.push(a, b);
      await spawnWriters(crashed, a);
      await spawnWriters(clean, b);

      const before = await waitForRows(a, "8 turns done", (rows) => total(rows) >= 8);
      daemons[0]!.kill("SIGKILL");
      await daemons[0]!.exited;
      assert.ok(total(before) < 24, `the kill came too late: ${JSON.stringify(before)}`);
      assert.ok(before.some((r) => r.state !== "finished"), "some sessions were still running");

      daemons[2] = await startDaemonProcess(crashed, ["--concurrency", "4"]);
      a = await connect(crashed);
      clients.push(a);
      const finished = (rows: PsRow[]) =>
        rows.length > 0 && rows.every((r) => r.state === "finished");
      const done = await waitForRows(a, "the revived sessions to finish", finished);
      const reference = await waitForRows(b, "the clean run to finish", finished);
      assert.deepEqual(
        reference.map((r) => [r.alias, r.turns]),
        WRITERS.map((w) => [aliasOf(w), 6]),
      );
      assert.ok(done.every((r) => r.turns === 6), JSON.stringify(done));

      const log = await auditRows(crashed);
      const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
      for (const [i, writer] of WRITERS.entries()) {
        const file = `${writer}.txt`;
        const got = await Deno.readFile(`${crashed.root}/${file}`);
        const want = await Deno.readFile(`${clean.root}/${file}`);
        const history = log.filter((r) => r.path === file).map((r) =>
          `${r.seq} ${r.event} ${r.call_id ?? r.seen_by ?? ""} gen=${r.gen ?? "-"}`
        );
        assert.deepEqual(
          got,
          want,
          `${file} differs from the uninterrupted run:\n--- after the crash:\n${text(got)}` +
            `--- uninterrupted:\n${text(want)}--- its audit rows:\n${history.join("\n")}`,
        );
        const steps = [0, 1, 2, 3, 4, 5].map((s) => `step ${s}\n`).join("");
        assert.equal(text(got), `writer ${i + 1}\n${steps}`);
      }

      const writes = writesByCallId(log);
      const repeated = [...writes].filter(([, n]) => n > 1);
      assert.deepEqual(repeated, [], "a completed write was repeated");
      const expectedIds = WRITERS.flatMap((w) =>
        [0, 1, 2, 3, 4, 5].map((t) => `${aliasOf(w)}:${t}:0`)
      );
      assert.deepEqual([...writes.keys()].sort(), expectedIds.sort());
      const starts = log.filter((r) => r.event === "daemon.start");
      assert.equal(starts.length, 2);
      const restartSeq = starts[1].seq;
      for (const writer of WRITERS) {
        const alias = aliasOf(writer);
        const mine = log.filter((r) => concerns(r, alias) && r.event.startsWith("session."));
        const exits = mine.filter((r) => r.event === "session.exit");
        assert.deepEqual(exits.map((r) => r.turns), [6], `${alias} exits once, after 6 turns`);
        if (exits[0].seq < restartSeq) continue; // finished before the kill landed
        // Running when the daemon died: orphaned by the new daemon, revived, then finished.
        const after = mine.filter((r) => r.seq > restartSeq).map((r) => r.event);
        assert.deepEqual(after, ["session.orphan", "session.revive", "session.exit"], alias);
        assert.ok(done.some((r) => r.alias === alias), `${alias} is in the new process table`);
      }
      for (const project of [crashed, clean]) {
        const audit = await ostk(project, ["os", "audit"]);
        assert.equal(audit.code, 0, audit.stderr);
      }
    } finally {
      for (const client of clients) await closeClient(client);
      for (const daemon of daemons) await killDaemonProcess(daemon);
    }
  });
});

/** A daemon with small stale/crash thresholds, set from the command line. */
const HUNG_FLAGS = ["--tick-ms", "50", "--stale-ms", "300", "--crashed-ms", "800"];

/** Spawn a fake agent that runs but never calls the kernel; wait until the daemon calls it stale. */
async function spawnSilentAgent(
  client: DaemonClient,
  alias: string,
  revival: "reap" | "revive",
): Promise<PsRow> {
  const cpu = { kind: "command" as const, command: fakeAgent(600_000), graceMs: 200 };
  await call(client, "session/spawn", { alias, cpu, revival });
  return await waitFor(`${alias} to go stale`, async () => {
    const row = rowOf(await ps(client), alias);
    assert.ok(
      ["queued", "starting", "spawning", "running", "stale"].includes(row.state),
      JSON.stringify(row),
    );
    return row.state === "stale" && row.pid ? row : undefined;
  });
}

/** The session.* events of `alias`, in log order. */
async function sessionEvents(project: Project, alias: string): Promise<string[]> {
  return (await auditRows(project))
    .filter((r) => concerns(r, alias) && r.event.startsWith("session."))
    .map((r) => r.event);
}

Deno.test("daemon hung agent: a SIGSTOPped agent is detected and reaped (revival: reap)", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let client: DaemonClient | undefined;
    let stale: PsRow | undefined;
    const alias = "hung-reap";
    try {
      daemon = await startDaemonProcess(project, HUNG_FLAGS);
      client = await connect(project);
      stale = await spawnSilentAgent(client, alias, "reap");
      // Silent but alive is only stale: well past the crash threshold it is still not crashed.
      const c = client;
      await waitFor("the heartbeat to be older than the crash threshold", async () => {
        const row = rowOf(await ps(c), alias);
        return row.last_seen && Date.now() - Date.parse(row.last_seen) > 1600;
      });
      assert.equal(rowOf(await ps(client), alias).state, "stale");
      assert.ok(!(await sessionEvents(project, alias)).includes("session.crashed"));

      Deno.kill(stale.pid!, "SIGSTOP");
      const dead = await waitFor(`${alias} to be reaped`, async () => {
        const row = rowOf(await ps(c), alias);
        return row.state === "crashed" ? row : undefined;
      });
      assert.equal(dead.revival, "reap");
      const events = await waitFor("the session.exit row", async () => {
        const events = await sessionEvents(project, alias);
        return events.includes("session.exit") ? events : undefined;
      });
      assert.deepEqual(events, [
        "session.spawn",
        "session.crashed",
        "session.orphan",
        "session.reap",
        "session.exit",
      ]);
      // The stopped agent does not linger: its group gets SIGKILL after the grace period.
      await waitFor(`the stopped agent ${stale.pid} to be gone`, () => processGone(stale!.pid!));
      const log = await auditRows(project);
      assert.equal(log.filter((r) => r.event === "daemon.start").length, 1, "no daemon restart");
      assert.equal((await call<{ pid: number }>(client, "daemon/status", {})).pid, daemon.pid);
      assert.equal((await ostk(project, ["os", "audit"])).code, 0);
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
      await killAgent(stale?.pid, alias);
    }
  });
});

Deno.test("daemon hung agent: a SIGSTOPped agent is replaced by a new process (revival: revive)", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let client: DaemonClient | undefined;
    let old: PsRow | undefined;
    let fresh: PsRow | undefined;
    const alias = "hung-revive";
    try {
      daemon = await startDaemonProcess(project, HUNG_FLAGS);
      client = await connect(project);
      old = await spawnSilentAgent(client, alias, "revive");
      Deno.kill(old.pid!, "SIGSTOP");
      const c = client;
      fresh = await waitFor(`${alias} to run again in a new process`, async () => {
        const row = rowOf(await ps(c), alias);
        // pgid comes from /proc a moment after the pid is known; wait for both.
        return row.pid && row.pid !== old!.pid && row.pgid !== null &&
            ["running", "stale"].includes(row.state)
          ? row
          : undefined;
      });
      assert.equal(fresh.pgid, fresh.pid, "the new agent leads its own group");
      assert.equal(fresh.ppid, daemon.pid);
      assert.ok(await signalable(fresh.pid!), "the new agent is alive");
      await waitFor(`the stopped agent ${old.pid} to be killed`, () => processGone(old!.pid!));
      // The daemon appends these rows without waiting for them, so the new agent may be up
      // before the last of them has landed.
      const events = await waitFor("the session.revive row", async () => {
        const events = await sessionEvents(project, alias);
        return events.includes("session.revive") ? events : undefined;
      });
      assert.deepEqual(events, [
        "session.spawn",
        "session.crashed",
        "session.orphan",
        "session.revive",
      ]);
      const log = await auditRows(project);
      assert.equal(log.filter((r) => r.event === "daemon.start").length, 1, "no daemon restart");

      assert.deepEqual(await call(client, "session/kill", { alias }), { alias, state: "killed" });
      assert.equal(await signalable(fresh.pid!), false, "the new agent is gone after kill");
      assert.equal((await ostk(project, ["os", "audit"])).code, 0);
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
      await killAgent(old?.pid, alias);
      await killAgent(fresh?.pid, alias);
    }
  });
});
