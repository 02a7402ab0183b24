/**
 * `ostk run <Agentfile>` end to end: the real CLI, a real daemon (its own process, or the one
 * `ostk run` starts inside itself when none runs), real workers. The Agentfiles are
 * fixtures/agentfiles/run_*.Agentfile, copied into each scratch project with the transcript.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import {
  AGENT_FIXTURES,
  auditRows,
  closeClient,
  connect,
  type DaemonProcess,
  killDaemonProcess,
  ostk,
  type Project,
  ps,
  rowOf,
  startDaemonProcess,
  withProject,
} from "../helpers/daemon_fixture.ts";

const AGENTFILES = decodeURIComponent(
  new URL("../../fixtures/agentfiles/", import.meta.url).pathname,
);

/** Copy `run_<name>.Agentfile` and the six-turn writer transcript into the project root. */
async function setUp(project: Project, name: string): Promise<string> {
  await Deno.copyFile(`${AGENT_FIXTURES}writer_1.jsonl`, `${project.root}/writer.jsonl`);
  const file = `${name}.Agentfile`;
  await Deno.copyFile(`${AGENTFILES}run_${name}.Agentfile`, `${project.root}/${file}`);
  return file;
}

/** The last JSON line `ostk run --json` printed: the outcome. */
function outcomeOf(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

Deno.test("ostk run --dry-run prints the plan and starts nothing", async () => {
  await withProject(async (project) => {
    const file = await setUp(project, "script");
    const text = await ostk(project, ["run", file, "--dry-run"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^cpu +script ${project.root}/writer\\.jsonl$`, "m"));
    assert.match(text.stdout, /^task +Write writer_1\.txt in six steps\.$/m);
    assert.match(text.stdout, /^limits +budget_usd 1\.5 \(script\/command CPUs spend \$0\)$/m);
    assert.match(text.stdout, /^permissions +auto$/m);
    assert.match(text.stdout, /^revival +reap$/m);
    assert.match(text.stdout, /^pin +default$/m);
    assert.match(text.stdout, /^isolation +landlock \(Agentfile\); /m);
    assert.match(text.stdout, /^sandbox +read .*\/usr/m);
    assert.match(text.stdout, /^ +net none$/m);

    const json = await ostk(project, ["run", file, "--dry-run", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const plan = JSON.parse(json.stdout);
    assert.deepEqual(plan.cpu, { kind: "script", script: `${project.root}/writer.jsonl` });
    assert.deepEqual(plan.limits, { budget_usd: 1.5 });
    assert.equal(plan.permissions, "auto");
    assert.ok(plan.policy.read.includes(project.root), JSON.stringify(plan.policy));
    assert.ok(!plan.policy.write.includes(`${project.root}/.ostk`), "the kernel dir stays closed");
    // Nothing ran: no session was spawned, no daemon left behind.
    const rows = await auditRows(project);
    assert.ok(!rows.some((r) => r.event === "session.spawn" || r.event === "daemon.start"));
  });
});

Deno.test("ostk run plans a model FROM as a model CPU and refuses lint errors", async () => {
  await withProject(async (project) => {
    const model = await setUp(project, "model");
    const planned = await ostk(project, ["run", model, "--dry-run", "--json"]);
    assert.equal(planned.code, 0, planned.stderr);
    assert.match(planned.stdout, /"kind":\s*"model"/);
    assert.match(planned.stdout, /anthropic\/claude-sonnet-4/);

    const bad = await setUp(project, "bad");
    const lint = await ostk(project, ["run", bad, "--dry-run"]);
    assert.equal(lint.code, 1);
    assert.match(lint.stderr, /bad\.Agentfile:3:13: error \[bad-value\] LIMIT turns/);
    const rows = await auditRows(project);
    assert.ok(!rows.some((r) => r.event === "session.spawn"), "nothing was spawned");
  });
});

Deno.test(
  "ostk run with no daemon running runs a script worker to completion in-process (exit 0)",
  async () => {
    await withProject(async (project) => {
      const file = await setUp(project, "script");
      const run = await ostk(project, ["run", file, "--json"]);
      assert.equal(run.code, 0, run.stderr + run.stdout);
      const outcome = outcomeOf(run.stdout);
      assert.equal(outcome.outcome, "done");
      assert.equal(outcome.turns, 6);
      const text = await Deno.readTextFile(`${project.root}/writer_1.txt`);
      assert.equal(text, "writer 1\nstep 0\nstep 1\nstep 2\nstep 3\nstep 4\nstep 5\n");
      const rows = await auditRows(project);
      const exit = rows.find((r) => r.event === "session.exit" && r.session === outcome.alias)!;
      assert.equal(exit.reason, "done");
      assert.equal(exit.spend_usd, 0, "a script CPU records its (zero) spend");
      // The daemon started for the run is gone, and it said so in the log.
      assert.equal(rows.filter((r) => r.event === "daemon.stop").length, 1);
      const status = await ostk(project, ["status"]);
      assert.equal(status.code, 1, "no daemon is left running");
    });
  },
);

Deno.test(
  "ostk run: LIMIT turns 2 stops a six-turn script after two turns; exit 1 names the limit",
  async () => {
    await withProject(async (project) => {
      let daemon: DaemonProcess | undefined;
      let client: DaemonClient | undefined;
      try {
        daemon = await startDaemonProcess(project);
        const file = await setUp(project, "limit");
        const run = await ostk(project, ["run", file]);
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.match(run.stderr, /stopped: LIMIT turns reached \(2 of 2\) after 2 turn\(s\)/);
        assert.equal(
          await Deno.readTextFile(`${project.root}/writer_1.txt`),
          "writer 1\nstep 0\nstep 1\n",
          "the third turn's write never happened",
        );
        const rows = await auditRows(project);
        const limit = rows.find((r) => r.event === "session.limit");
        assert.ok(limit, "session.limit is audited");
        assert.deepEqual(
          { limit: limit.limit, value: limit.value, max: limit.max },
          { limit: "turns", value: 2, max: 2 },
        );
        const alias = String(limit.session);
        const exit = rows.find((r) => r.event === "session.exit" && r.session === alias)!;
        assert.equal(exit.reason, "limit:turns");
        client = await connect(project);
        const row = rowOf(await ps(client), alias) as unknown as Record<string, unknown>;
        assert.equal(row.state, "dead");
        assert.equal(row.turns, 2);
        assert.equal(row.reason, "limit:turns");
        const psJson = await ostk(project, ["ps", "--json"]);
        assert.match(psJson.stdout, /"reason":"limit:turns"/);
      } finally {
        await closeClient(client);
        await killDaemonProcess(daemon);
      }
    });
  },
);

Deno.test(
  "ostk run: a command worker under ISOLATION landlock writes inside the project only",
  async () => {
    await withProject(async (project) => {
      const file = await setUp(project, "landlock");
      // The default policy grants write on existing top-level entries, not on the root itself.
      await Deno.mkdir(`${project.root}/work`);
      const outside = `${project.root}/../outside.txt`;
      const run = await ostk(project, ["run", file]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal(await Deno.readTextFile(`${project.root}/work/inside.txt`), "inside\n");
      await assert.rejects(Deno.stat(outside), Deno.errors.NotFound, "the write outside failed");
      assert.match(run.stdout, /stderr: .*outside\.txt: Permission denied/);
    });
  },
);
