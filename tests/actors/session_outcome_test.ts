/**
 * Sessions say what happened, through the real `ostk` and a real daemon: `spawn` refuses a CPU
 * that cannot start (exit 1, one line, nothing spawned, for CLI and socket clients alike);
 * a session's end state is its outcome (finished, failed with its exit code, killed, crashed,
 * limited) with a reason in `ps`, `ps --json`, `pstree --json` and the `session.exit` row.
 */
import assert from "node:assert/strict";
import { RpcError } from "../../actors/client.ts";
import type { DaemonClient } from "../../actors/client.ts";
import type { AuditRow } from "../../kernel/audit.ts";
import {
  auditRows,
  call,
  closeClient,
  connect,
  type DaemonProcess,
  fakeAgent,
  killAgent,
  killDaemonProcess,
  ostk,
  type Project,
  ps,
  type PsRow,
  rowOf,
  startDaemonProcess,
  waitFor,
  waitForRows,
  withProject,
} from "../helpers/daemon_fixture.ts";

/** Run `fn` with a daemon for `project` and a client on it; both end with the test. */
async function withDaemon(
  project: Project,
  fn: (client: DaemonClient) => Promise<void>,
): Promise<void> {
  let daemon: DaemonProcess | undefined;
  let client: DaemonClient | undefined;
  try {
    daemon = await startDaemonProcess(project);
    client = await connect(project);
    await fn(client);
  } finally {
    await closeClient(client);
    await killDaemonProcess(daemon);
  }
}

/** The one line a failed command printed, checked to be one line with no stack. */
function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.doesNotMatch(stderr, /Uncaught|\n\s+at /);
  return lines[0];
}

/** The `session.exit` row of `alias`, once it is in the log. */
function exitRow(project: Project, alias: string): Promise<AuditRow> {
  return waitFor(
    `the session.exit row of ${alias}`,
    async () =>
      (await auditRows(project)).find((r) => r.event === "session.exit" && r.session === alias),
  );
}

/** Poll `ps` until `alias` has ended; its row. */
async function ended(client: DaemonClient, alias: string): Promise<PsRow> {
  const ends = ["finished", "failed", "killed", "crashed", "limited"];
  const rows = await waitForRows(
    client,
    `${alias} to end`,
    (rows) => ends.includes(rows.find((r) => r.alias === alias)?.state ?? ""),
  );
  return rowOf(rows, alias);
}

Deno.test("spawn refuses a CPU that cannot start: exit 1, one line, nothing spawned", async () => {
  await withProject(async (project) => {
    await withDaemon(project, async (client) => {
      await Deno.writeTextFile(`${project.root}/broken.jsonl`, '{"calls": []}\n{"calls": 7}\n');
      await Deno.writeTextFile(`${project.root}/plain.sh`, "echo hi\n");
      const cases: [string, string[], RegExp][] = [
        [
          "a script that does not exist",
          ["spawn", "w", "--cpu", "script", "--script", "nosuch.jsonl"],
          new RegExp(`^ostk: script '${project.root}/nosuch\\.jsonl' does not exist \\(give`),
        ],
        [
          "a transcript that does not parse",
          ["spawn", "w", "--cpu", "script", "--script", "broken.jsonl"],
          /^ostk: .*broken\.jsonl:2: calls: .*expected \{"think_ms"/,
        ],
        [
          "a script that is a device, which would never end",
          ["spawn", "w", "--cpu", "script", "--script", "/dev/zero"],
          /^ostk: script '\/dev\/zero' is not a regular file/,
        ],
        [
          "a script that is a directory",
          ["spawn", "w", "--cpu", "script", "--script", "."],
          /^ostk: script '.*' is not a regular file/,
        ],
        [
          "a program that is not on PATH",
          ["spawn", "w", "--cpu", "command", "--", "no-such-agent-x", "--flag"],
          /^ostk: agent program 'no-such-agent-x' is not on the daemon's PATH \(give its full path/,
        ],
        [
          "a program path that does not exist",
          ["spawn", "w", "--cpu", "command", "--", "./bin/agent"],
          /^ostk: agent program '\.\/bin\/agent' does not exist \(check the path/,
        ],
        [
          "a program that is not executable",
          ["spawn", "w", "--cpu", "command", "--", "./plain.sh"],
          /^ostk: agent program '\.\/plain\.sh' is not executable \(make it an executable file/,
        ],
        [
          "a model spec no provider takes",
          ["spawn", "w", "--cpu", "model", "--model", "nosuch:m1"],
          /^ostk: model 'nosuch:m1': unknown provider \(expected anthropic:<model>, .*openai-compatible:<base-url>#<model>\)$/,
        ],
      ];
      for (const [what, args, expected] of cases) {
        const result = await ostk(project, args);
        assert.equal(result.code, 1, `${what}: ${result.stdout}${result.stderr}`);
        assert.equal(result.stdout, "", what);
        assert.match(oneLine(result.stderr), expected, what);
      }
      // A socket client is refused the same way, with the same words.
      await assert.rejects(
        call(client, "session/spawn", {
          name: "w",
          cpu: { kind: "script", script: `${project.root}/nosuch.jsonl` },
        }),
        (e: RpcError) => e instanceof RpcError && /nosuch\.jsonl' does not exist/.test(e.message),
      );
      const rows = await auditRows(project);
      const spawned = rows.filter((r) => r.event === "session.spawn" || r.event === "agent.alias");
      assert.deepEqual(spawned, [], "no alias issued, no session spawned");
      assert.deepEqual(JSON.parse((await ostk(project, ["ps", "--json"])).stdout), []);

      // What can start still does, and an agent found on PATH by name is fine.
      const good = await ostk(project, ["spawn", "ok", "--cpu", "command", "--", "sh", "-c", ":"]);
      assert.equal(good.code, 0, good.stderr);
      assert.equal((await ended(client, "ok-1")).state, "finished");
    });
  });
});

Deno.test("end states: finished, failed with its code, killed, crashed; ps and pstree say why", async () => {
  await withProject(async (project) => {
    await withDaemon(project, async (client) => {
      const spawn = (name: string, revival: string, argv: string[]) =>
        ostk(project, ["spawn", name, "--revival", revival, "--cpu", "command", "--", ...argv]);
      assert.equal((await spawn("good", "revive", fakeAgent(0))).code, 0);
      assert.equal((await spawn("bad", "revive", fakeAgent(0, "--exit", "3"))).code, 0);
      assert.equal((await spawn("slow", "revive", fakeAgent(60_000))).code, 0);
      // Ended by a signal nobody in ostk sent: a crash, not the agent's own decision.
      assert.equal((await spawn("shot", "reap", ["sh", "-c", "kill -9 $$"])).code, 0);

      const good = await ended(client, "good-1");
      assert.deepEqual([good.state, good.reason], ["finished", "exit 0"]);
      const bad = await ended(client, "bad-1");
      assert.deepEqual([bad.state, bad.reason], ["failed", "exit code 3"]);
      const shot = await ended(client, "shot-1");
      assert.equal(shot.state, "crashed");
      assert.equal(
        shot.reason,
        "the agent process was ended by SIGKILL; not revived (revival policy reap)",
      );
      await waitForRows(
        client,
        "slow-1 to run",
        (rows) => rowOf(rows, "slow-1").state === "running",
      );
      const kill = await ostk(project, ["kill", "slow-1"]);
      assert.equal(kill.code, 0, kill.stderr);
      assert.equal(kill.stdout, "slow-1 killed\n");
      const slow = await ended(client, "slow-1");
      assert.deepEqual([slow.state, slow.reason], ["killed", "killed by the operator"]);

      for (const alias of ["good-1", "bad-1", "slow-1", "shot-1"]) await exitRow(project, alias);
      const rows = await auditRows(project);
      const exits = Object.fromEntries(
        ["good-1", "bad-1", "slow-1", "shot-1"].map((alias) => {
          const exit = rows.find((r) => r.event === "session.exit" && r.session === alias)!;
          return [alias, [exit.outcome, exit.reason, exit.code ?? null, exit.signal ?? null]];
        }),
      );
      assert.deepEqual(exits, {
        "good-1": ["finished", "exit 0", 0, null],
        "bad-1": ["failed", "exit code 3", 3, null],
        "slow-1": ["killed", "killed by the operator", null, null],
        "shot-1": [
          "crashed",
          "the agent process was ended by SIGKILL; not revived (revival policy reap)",
          137,
          "SIGKILL",
        ],
      });
      // A failed agent is not revived: it said it failed, and would say so again.
      assert.ok(
        !rows.some((r) => r.session === "bad-1" && r.event.startsWith("session.revive")),
        "bad-1 was never revived",
      );

      const table = await ostk(project, ["ps"]);
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.trimEnd().split("\n");
      assert.match(lines[0], /\bSTATE\b.*\bREASON$/);
      assert.match(lines.find((l) => l.includes("bad-1"))!, /\bfailed\b.* exit code 3$/);
      assert.match(lines.find((l) => l.includes("good-1"))!, /\bfinished\b.* exit 0$/);

      const tree = await ostk(project, ["pstree", "--json"]);
      assert.equal(tree.code, 0, tree.stderr);
      const parsed = JSON.parse(tree.stdout);
      assert.equal(parsed.daemon.root, project.root);
      assert.equal(typeof parsed.daemon.pid, "number");
      const byAlias = Object.fromEntries(
        parsed.sessions.map((r: PsRow) => [r.alias, [r.state, r.reason]]),
      );
      assert.deepEqual(byAlias["bad-1"], ["failed", "exit code 3"]);
      assert.deepEqual(byAlias["slow-1"], ["killed", "killed by the operator"]);
      const text = await ostk(project, ["pstree"]);
      assert.match(text.stdout, /─ bad-1 \[command\] failed \(\d+\) turns=0: exit code 3$/m);
    });
  });
});

Deno.test("an agent that keeps crashing is revived, then ends crashed; ask waits, with its reason", async () => {
  await withProject(async (project) => {
    await withDaemon(project, async (client) => {
      const suicide = ["sh", "-c", "kill -9 $$"];
      await call(client, "session/spawn", {
        alias: "again",
        cpu: { kind: "command", command: suicide },
        revival: "revive",
      });
      const again = await ended(client, "again");
      assert.equal(again.state, "crashed");
      assert.match(
        again.reason ?? "",
        /^the agent process was ended by SIGKILL; not revived again: revived 3 times within a minute$/,
      );
      await exitRow(project, "again");
      const rows = (await auditRows(project)).filter((r) => r.session === "again");
      assert.equal(rows.filter((r) => r.event === "session.revive").length, 3);
      assert.equal(rows.at(-1)?.event, "session.exit");
      assert.equal(rows.at(-1)?.outcome, "crashed");

      await call(client, "session/spawn", {
        alias: "asking",
        cpu: { kind: "command", command: suicide },
        revival: "ask",
      });
      const orphan = await waitForRows(
        client,
        "asking to be orphaned",
        (rows) => rows.find((r) => r.alias === "asking")?.state === "orphaned",
      );
      assert.equal(
        rowOf(orphan, "asking").reason,
        "the agent process was ended by SIGKILL; waiting for 'ostk lineage resolve'",
      );
      const psJson = JSON.parse((await ostk(project, ["ps", "--json"])).stdout) as PsRow[];
      assert.equal(rowOf(psJson, "asking").reason, rowOf(orphan, "asking").reason);
      const reaped = await ostk(project, ["lineage", "resolve", "asking", "--reap"]);
      assert.equal(reaped.code, 0, reaped.stderr);
      assert.equal(reaped.stdout, "asking crashed\n");
      const exit = await exitRow(project, "asking");
      assert.deepEqual([exit.outcome, exit.reason], [
        "crashed",
        "the agent process was ended by SIGKILL; not revived: reaped by the operator",
      ]);
    });
  });
});

Deno.test("a daemon that died: reap sessions end crashed and say why; ask sessions wait for the operator", async () => {
  await withProject(async (project) => {
    const daemons: (DaemonProcess | undefined)[] = [];
    let client: DaemonClient | undefined;
    const sleeper = fakeAgent(600_000);
    try {
      daemons[0] = await startDaemonProcess(project, ["--concurrency", "4"]);
      client = await connect(project);
      for (const [alias, revival] of [["gone", "reap"], ["held", "ask"], ["back", "ask"]]) {
        await call(client, "session/spawn", {
          alias,
          cpu: { kind: "command", command: sleeper },
          revival: revival as "reap" | "ask",
        });
      }
      const running = await waitForRows(
        client,
        "all three running",
        (rows) => rows.length === 3 && rows.every((r) => r.state === "running"),
      );
      await closeClient(client);
      daemons[0]!.kill("SIGKILL");
      await daemons[0]!.exited;

      daemons[1] = await startDaemonProcess(project, ["--concurrency", "4"]);
      client = await connect(project);
      const rows = await ps(client);
      assert.deepEqual([rowOf(rows, "gone").state, rowOf(rows, "gone").reason], [
        "crashed",
        "its daemon died while it ran; not revived (revival policy reap)",
      ]);
      assert.deepEqual([rowOf(rows, "held").state, rowOf(rows, "held").reason], [
        "orphaned",
        "its daemon died while it ran; waiting for 'ostk lineage resolve'",
      ]);
      const reaped = await ostk(project, ["lineage", "resolve", "held", "--reap"]);
      assert.equal(reaped.stdout, "held crashed\n", reaped.stderr);
      const revived = await ostk(project, ["lineage", "resolve", "back", "--revive"]);
      assert.equal(revived.code, 0, revived.stderr);
      await waitForRows(
        client,
        "back to run again",
        (rows) => rowOf(rows, "back").state === "running",
      );
      const killed = await ostk(project, ["kill", "back"]);
      assert.equal(killed.stdout, "back killed\n", killed.stderr);
      const exits = await Promise.all(["gone", "held", "back"].map((a) => exitRow(project, a)));
      assert.deepEqual(exits.map((e) => [e.outcome, e.reason]), [
        ["crashed", "its daemon died while it ran; not revived (revival policy reap)"],
        ["crashed", "its daemon died while it ran; not revived: reaped by the operator"],
        ["killed", "killed by the operator"],
      ]);
      // The agents of the dead daemon's first lives are not left behind.
      for (const row of running) await killAgent(row.pid, row.alias);
    } finally {
      await closeClient(client);
      for (const d of daemons) await killDaemonProcess(d);
    }
  });
});
