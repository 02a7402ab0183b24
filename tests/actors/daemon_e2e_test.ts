/**
 * End-to-end tests of the daemon as a real process: its lifecycle through the CLI (`listen`,
 * `status`, `stop`), sessions through `spawn`/`ps`/`kill`, and audit subscriptions that survive
 * a disconnect. Each test has its own scratch project and operator key and kills every process
 * it started, pass or fail.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import type { AuditRow } from "../../kernel/audit.ts";
import { procStat } from "../../kernel/proc.ts";
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
  killPid,
  ostk,
  pacedTranscript,
  processGone,
  ps,
  type PsRow,
  rowOf,
  signalable,
  startDaemonProcess,
  waitFor,
  withProject,
} from "../helpers/daemon_fixture.ts";

Deno.test("daemon lifecycle: background start, status, one daemon only, 0600 socket, stop", async () => {
  await withProject(async (project) => {
    let pid: number | undefined;
    try {
      const started = await ostk(project, ["listen", "--background", "--tick-ms", "100"]);
      assert.equal(started.code, 0, started.stderr);
      pid = Number(/daemon pid (\d+)/.exec(started.stdout)?.[1]);
      assert.ok(pid > 0, `no pid in: ${started.stdout}`);

      const status = await ostk(project, ["status", "--json"]);
      assert.equal(status.code, 0, status.stderr);
      const body = JSON.parse(status.stdout);
      assert.equal(body.running, true);
      assert.equal(body.pid, pid);
      assert.equal(body.root, project.root);

      // A second daemon in the foreground is refused by the anchor and names the holder.
      const second = await ostk(project, ["listen", "--tick-ms", "100"]);
      assert.equal(second.code, 1, second.stdout + second.stderr);
      assert.match(second.stderr, new RegExp(`already running \\(pid ${pid}\\)`));
      // ...and so is a second background start.
      const third = await ostk(project, ["listen", "--background"]);
      assert.equal(third.code, 1, third.stdout + third.stderr);
      assert.match(third.stderr, new RegExp(`already running \\(pid ${pid}\\)`));
      assert.equal(JSON.parse((await ostk(project, ["status", "--json"])).stdout).pid, pid);

      const sock = await Deno.lstat(project.paths.socket);
      assert.ok(sock.isSocket, "ostk.sock is a socket");
      assert.equal((sock.mode ?? 0) & 0o777, 0o600, "socket mode");

      const stopped = await ostk(project, ["stop", "--json"]);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.deepEqual(JSON.parse(stopped.stdout), { stopped: true, pid });
      const after = await ostk(project, ["status", "--json"]);
      assert.equal(after.code, 1);
      assert.deepEqual(JSON.parse(after.stdout), { running: false });
      await assert.rejects(Deno.lstat(project.paths.socket), Deno.errors.NotFound);
      await waitFor(`daemon pid ${pid} to exit`, () => processGone(pid!));
      const events = (await auditRows(project)).map((r) => r.event);
      assert.deepEqual(events.filter((e) => e.startsWith("daemon.")), [
        "daemon.start",
        "daemon.stop",
      ]);
      pid = undefined;
    } finally {
      await killPid(pid);
    }
  });
});

Deno.test("daemon lifecycle: a socket left by a SIGKILLed daemon does not block a new one", async () => {
  await withProject(async (project) => {
    let first: DaemonProcess | undefined;
    let pid: number | undefined;
    try {
      first = await startDaemonProcess(project);
      first.kill("SIGKILL");
      await first.exited;
      // The stale socket file is still there, and nothing answers on it.
      assert.ok((await Deno.lstat(project.paths.socket)).isSocket, "stale socket left behind");
      const down = await ostk(project, ["status"]);
      assert.equal(down.code, 1, down.stdout);
      assert.match(down.stdout, /not running/);

      const started = await ostk(project, ["listen", "--background", "--tick-ms", "100"]);
      assert.equal(started.code, 0, started.stderr);
      pid = Number(/daemon pid (\d+)/.exec(started.stdout)?.[1]);
      assert.notEqual(pid, first.pid);
      const status = JSON.parse((await ostk(project, ["status", "--json"])).stdout);
      assert.equal(status.pid, pid);
      const sock = await Deno.lstat(project.paths.socket);
      assert.equal((sock.mode ?? 0) & 0o777, 0o600, "the new socket is 0600 too");
      assert.equal((await ostk(project, ["stop"])).code, 0);
      await waitFor(`daemon pid ${pid} to exit`, () => processGone(pid!));
      pid = undefined;
      assert.equal((await ostk(project, ["os", "audit"])).code, 0);
    } finally {
      await killDaemonProcess(first);
      await killPid(pid);
    }
  });
});

Deno.test("daemon sessions: spawn a command and a script session, ps shows them, kill ends them", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let agent: PsRow | undefined;
    try {
      daemon = await startDaemonProcess(project);
      // One quick turn, then a long think: the script session is running with turns == 1.
      const script = `${project.scratch.dir}/slow.jsonl`;
      await Deno.writeTextFile(
        script,
        [
          { calls: [{ tool: "file:create", args: { path: "slow.txt", content: "0\n" } }] },
          {
            think_ms: 600_000,
            calls: [{ tool: "file:write", args: { path: "slow.txt", content: "1\n" } }],
          },
        ].map((t) => JSON.stringify(t)).join("\n") + "\n",
      );
      const spawnedCmd = await ostk(project, [
        "spawn",
        "agent",
        "--cpu",
        "command",
        "--json",
        "--",
        ...fakeAgent(600_000),
      ]);
      assert.equal(spawnedCmd.code, 0, spawnedCmd.stderr);
      const cmdAlias = JSON.parse(spawnedCmd.stdout).alias as string;
      const spawnedScript = await ostk(project, [
        "spawn",
        "slow",
        "--cpu",
        "script",
        "--script",
        script,
        "--json",
      ]);
      assert.equal(spawnedScript.code, 0, spawnedScript.stderr);
      const scriptAlias = JSON.parse(spawnedScript.stdout).alias as string;
      assert.notEqual(cmdAlias, scriptAlias);

      const psJson = async () => {
        const r = await ostk(project, ["ps", "--json"]);
        assert.equal(r.code, 0, r.stderr);
        return JSON.parse(r.stdout) as PsRow[];
      };
      const rows = await waitFor("both sessions running, the script after one turn", async () => {
        const rows = await psJson();
        const c = rows.find((r) => r.alias === cmdAlias);
        const s = rows.find((r) => r.alias === scriptAlias);
        return c?.state === "running" && c.pid && c.pgid && s?.state === "running" &&
            s.turns === 1
          ? rows
          : undefined;
      });
      agent = rowOf(rows, cmdAlias);
      assert.equal(agent.cpu, "command");
      assert.equal(agent.turns, 0);
      assert.equal(agent.pgid, agent.pid, "the agent leads its own process group");
      assert.equal(agent.sid, agent.pid, "and its own session");
      assert.equal(agent.ppid, daemon.pid, "the agent is the daemon's child");
      assert.equal(agent.revival, "revive");
      assert.ok(await signalable(agent.pid!), "the agent process is alive");
      const slow = rowOf(rows, scriptAlias);
      assert.equal(slow.cpu, "script");
      assert.equal(slow.pid, daemon.pid, "a script session runs inside the daemon");
      assert.equal(slow.pgid, Number((await procStat(daemon.pid))?.[2]));
      assert.equal(slow.ppid, Deno.pid, "the daemon is this test's child");
      assert.equal(await Deno.readTextFile(`${project.root}/slow.txt`), "0\n");

      const killed = await ostk(project, ["kill", cmdAlias, "--json"]);
      assert.equal(killed.code, 0, killed.stderr);
      assert.deepEqual(JSON.parse(killed.stdout), { alias: cmdAlias, state: "killed" });
      // `kill` answers once the session is dead, which is after its process was reaped.
      assert.equal(await signalable(agent.pid!), false, "the agent process is gone");
      assert.ok(await processGone(agent.pid!));

      const killedScript = await ostk(project, ["kill", scriptAlias]);
      assert.equal(killedScript.code, 0, killedScript.stderr);
      assert.match(killedScript.stdout, new RegExp(`${scriptAlias} killed`));

      const final = await psJson();
      assert.equal(rowOf(final, cmdAlias).state, "killed");
      assert.equal(rowOf(final, scriptAlias).state, "killed");
      assert.equal(rowOf(final, scriptAlias).turns, 1, "the aborted turn is not counted");
      // The second turn never ran: its think was cut short by the kill.
      assert.equal(await Deno.readTextFile(`${project.root}/slow.txt`), "0\n");

      const rowsOf = (alias: string, rows: AuditRow[]) =>
        rows.filter((r) => r.session === alias).map((r) => r.event);
      const log = await waitFor("both session.exit rows", async () => {
        const log = await auditRows(project);
        const exits = log.filter((r) => r.event === "session.exit");
        return exits.length === 2 ? log : undefined;
      });
      assert.deepEqual(rowsOf(cmdAlias, log), ["session.spawn", "session.exit"]);
      assert.deepEqual(rowsOf(scriptAlias, log), ["session.spawn", "session.exit"]);
      const exit = log.find((r) => r.event === "session.exit" && r.session === cmdAlias)!;
      assert.equal(exit.turns, 0);

      const missing = await ostk(project, ["kill", "nosuch-1"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no session 'nosuch-1'/);
      assert.equal((await ostk(project, ["os", "audit"])).code, 0);
    } finally {
      await killDaemonProcess(daemon);
      await killAgent(agent?.pid, agent?.alias ?? "");
    }
  });
});

Deno.test("daemon subscribe: detach mid-run, resume from the next seq, miss nothing", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let control: DaemonClient | undefined;
    let a: DaemonClient | undefined;
    try {
      daemon = await startDaemonProcess(project);
      control = await connect(project);
      const script = await pacedTranscript(
        "writer_1",
        `${project.scratch.dir}/writer_1.jsonl`,
        150,
      );
      const alias = "tail-1";
      await call(control, "session/spawn", { alias, cpu: { kind: "script", script } });

      const seqs: number[] = [];
      const states: string[] = [];
      const listen = (client: DaemonClient) =>
        client.onEvent((event) => {
          if (event.kind === "audit") {
            assert.ok(concerns(event.row as AuditRow, alias), "only this alias's rows");
            seqs.push(event.row.seq as number);
          } else if (event.kind === "session") states.push(event.state);
        });

      // First life of client A: attach, subscribe from the start of the log.
      a = await connect(project);
      listen(a);
      const attached = await call<{ attached: string }>(a, "client/attach", { alias });
      assert.equal(attached.attached, alias);
      await call(a, "client/subscribe", { alias, from_seq: 0 });
      await waitFor("a tool row for the session", async () => {
        const rows = await auditRows(project);
        return seqs.some((s) => rows[s]?.event.startsWith("tool.file_"));
      });
      assert.deepEqual(await call(a, "client/detach", {}), { detached: true });
      await closeClient(a);
      a = undefined;
      const lastSeen = Math.max(...seqs);
      const firstLife = seqs.length;

      // While A is away the session keeps writing.
      await waitFor(
        "rows for the session appended while A was away",
        async () => (await auditRows(project)).some((r) => r.seq > lastSeen && concerns(r, alias)),
      );
      const rowsOf = await ps(control);
      assert.notEqual(rowOf(rowsOf, alias).state, "finished", "the session was still running");

      // Second life: resume right after the last row seen.
      a = await connect(project);
      listen(a);
      await call(a, "client/attach", { alias });
      const resumed = await call<{ next_seq: number }>(a, "client/subscribe", {
        alias,
        from_seq: lastSeen + 1,
      });
      assert.ok(resumed.next_seq > lastSeen);
      await waitFor(
        "the session to finish",
        async () => rowOf(await ps(control!), alias).state === "finished",
      );
      const expected = await waitFor("every row of the session delivered", async () => {
        const rows = (await auditRows(project)).filter((r) => concerns(r, alias));
        const exited = rows.some((r) => r.event === "session.exit");
        return exited && seqs.length >= rows.length ? rows.map((r) => r.seq) : undefined;
      });
      assert.ok(seqs.slice(firstLife).every((s) => s > lastSeen), "no row of the first life again");
      assert.equal(new Set(seqs).size, seqs.length, `duplicates in ${seqs}`);
      assert.deepEqual([...seqs].sort((x, y) => x - y), expected, "exactly the session's rows");
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), "in log order");
      assert.ok(states.includes("finished"), `state events: ${states}`);
    } finally {
      await closeClient(a);
      await closeClient(control);
      await killDaemonProcess(daemon);
    }
  });
});

// Regression: two FoldCache refreshes at once once folded the same rows and advanced the offset
// twice, so the next read started mid-row and every later kernel call failed.
Deno.test("daemon kernel calls: many concurrent callers are all served", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    const clients: DaemonClient[] = [];
    try {
      daemon = await startDaemonProcess(project);
      for (let i = 0; i < 16; i++) clients.push(await connect(project));
      const args = { path: "c.txt", content: "c\n" };
      await call(clients[0], "kernel/call", { tool: "file:create", args });
      for (let round = 0; round < 20; round++) {
        const answers = await Promise.all(
          clients.flatMap((client, i) =>
            Array.from(
              { length: 2 },
              (_, k) =>
                call<{ ok: boolean; error?: { message: string } }>(client, "kernel/call", {
                  // A call id makes the daemon consult its folded log before the call.
                  call_id: `c${i}:${round}:${k}`,
                  tool: k % 2 ? "file:read" : "file:write",
                  args: k % 2
                    ? { path: "c.txt", force: true }
                    : { path: `w${i}_${k}.txt`, content: `${round}\n` },
                }).catch((err) => ({ ok: false, error: { message: String(err) } })),
            )
          ),
        );
        const failed = answers.filter((a) => !a.ok).map((a) => a.error?.message);
        assert.deepEqual(failed, [], `round ${round}`);
      }
      assert.equal((await ostk(project, ["os", "audit"])).code, 0);
    } finally {
      for (const client of clients) await closeClient(client);
      await killDaemonProcess(daemon);
    }
  });
});
