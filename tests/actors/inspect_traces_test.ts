/**
 * Session traces (actors/traces.ts) and `ostk inspect <alias>`: the recorder as an XState
 * inspection observer, rotation, replay, and the daemon end to end (live state, recorded
 * history, --follow, --replay, OSTK_TRACES=0).
 */
import assert from "node:assert/strict";
import { createActor, fromCallback, fromPromise } from "xstate";
import { readDrain } from "../../actors/drain.ts";
import { sessionMachine } from "../../actors/session_machine.ts";
import { replayTrace } from "../../actors/trace_replay.ts";
import { readTrace, TraceRecorder, tracesDir } from "../../actors/traces.ts";
import {
  AGENT_FIXTURES,
  call,
  closeClient,
  connect,
  type DaemonProcess,
  fakeAgent,
  killAgent,
  killDaemonProcess,
  ostk,
  type PsRow,
  rowOf,
  startDaemonProcess,
  waitFor,
  waitForRows,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { ostkCommand } from "../helpers/run_ostk.ts";

const ID = "session:tr-1:0123abcd";
const INPUT = {
  alias: "tr-1",
  cpu: { kind: "script" as const, script: "x" },
  revival: "revive" as const,
};

/** A session actor whose CPU answers `cpu.start` with `session.started`, like the real one. */
function tracedSession(recorder: TraceRecorder) {
  const logic = sessionMachine.provide({
    actors: {
      cpuRunner: fromCallback(({ receive, sendBack }) => {
        receive((e) => {
          if (e.type === "cpu.start") sendBack({ type: "session.started", at: 5, pid: 42 });
        });
      }),
      drainWriter: fromPromise(() => Promise.resolve()),
      rehydrator: fromPromise(() => Promise.resolve()),
    },
  });
  return createActor(logic, { id: ID, input: INPUT, inspect: recorder.observe });
}

function turn(n: number) {
  return {
    type: "session.turn_done" as const,
    at: 10 + n,
    turn: { turn: n, calls: [], tokens: { in: 3, out: 4 } },
  };
}

async function settle(actor: { getSnapshot(): { value: unknown } }, value: unknown) {
  await waitFor(
    `state ${JSON.stringify(value)}`,
    () => JSON.stringify(actor.getSnapshot().value) === JSON.stringify(value),
  );
}

Deno.test("traces: the recorder writes events with source and target, snapshots and stops; a replay reaches the same state", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostk_traces_" });
  try {
    const recorder = new TraceRecorder({ dir });
    const actor = tracedSession(recorder);
    actor.start();
    await settle(actor, { live: "running" });
    actor.send(turn(0));
    await settle(actor, { live: "running" }); // saving → running once the drain resolves
    actor.send({ type: "session.heartbeat", at: 20 });
    actor.send(turn(1));
    await settle(actor, { live: "running" });
    actor.send({ type: "session.stale", at: 30 });
    actor.send({ type: "session.heartbeat", at: 31 }); // stale → running
    actor.send({ type: "session.heartbeat", at: 32 }); // changes nothing but lastSeen
    const live = actor.getSnapshot();
    assert.deepEqual(live.value, { live: "running" });
    assert.equal(live.context.turns, 2);
    actor.stop();
    await recorder.close();

    const entries = await readTrace(dir, "tr-1");
    const kinds = new Set(entries.map((e) => e.kind));
    for (const k of ["actor", "event", "snapshot", "stop"]) assert.ok(kinds.has(k as never), k);
    const started = entries.find((e) => e.kind === "event" && e.event.type === "session.started");
    assert.ok(started && started.kind === "event");
    assert.equal(started.source, `${ID}/cpu`, "the CPU child sent it");
    assert.equal(started.actor, ID, "to the session");
    const toCpu = entries.find((e) => e.kind === "event" && e.event.type === "cpu.start");
    assert.ok(
      toCpu && toCpu.kind === "event" && toCpu.source === ID && toCpu.actor === `${ID}/cpu`,
    );
    const created = entries.filter((e) => e.kind === "actor").map((e) => e.actor);
    assert.ok(
      created.includes(ID) && created.includes(`${ID}/cpu`) && created.includes(`${ID}/drain`),
    );
    const seqs = entries.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));

    const replay = replayTrace(entries);
    assert.equal(replay.actor, ID);
    assert.deepEqual(replay.final, live.value);
    assert.equal(replay.steps.at(-1)!.turns, 2);
    assert.equal(replay.mismatches, 0);
    assert.ok(replay.steps.every((s) => s.recorded !== undefined), "every step has its record");
    assert.ok(replay.steps.some((s) => JSON.stringify(s.value) === '{"live":"stale"}'));
    // A heartbeat that changed only lastSeen is not written as a snapshot.
    const beats = entries.filter((e) => e.kind === "snapshot" && e.event === "session.heartbeat");
    assert.equal(beats.length, 1, "only the heartbeat that left 'stale'");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("traces: a trace file rotates at its size limit and keeps one old file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostk_traces_" });
  try {
    const max = 4096;
    const recorder = new TraceRecorder({ dir, maxBytes: max });
    const actor = tracedSession(recorder);
    actor.start();
    await settle(actor, { live: "running" });
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 20; i++) actor.send({ type: "session.heartbeat", at: 100 + i });
      await recorder.flush();
    }
    actor.stop();
    await recorder.close();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["tr-1.jsonl", "tr-1.jsonl.1"]);
    for (const name of names) assert.ok(Deno.statSync(`${dir}/${name}`).size <= max, name);
    const entries = await readTrace(dir, "tr-1");
    // The oldest entries are gone with the file that rotated out; what is left is in order.
    assert.ok(entries[0].seq > 0);
    const seqs = entries.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(entries.at(-1)!.kind, "stop");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function json<T>(r: { code: number; stdout: string; stderr: string }): T {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

interface Inspected {
  alias: string;
  live: { state: string; source: string; value: unknown; context?: { turns: number } } | null;
  events: { kind: string; event?: { type: string } }[];
}

Deno.test("inspect: a finished script session — live state, recent events, replay ends where the session did", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    try {
      daemon = await startDaemonProcess(project);
      await Deno.copyFile(`${AGENT_FIXTURES}shared.txt`, `${project.root}/shared.txt`);
      const spawned = json<{ alias: string }>(
        await ostk(project, [
          "spawn",
          "ed",
          "--cpu",
          "script",
          "--script",
          `${AGENT_FIXTURES}editor_a.jsonl`,
          "--json",
        ]),
      );
      const client = await connect(project);
      let rows: PsRow[];
      try {
        rows = await waitForRows(
          client,
          "the script session to finish",
          (rs) => rowOf(rs, spawned.alias).state === "finished",
        );
      } finally {
        await closeClient(client);
      }
      const row = rowOf(rows, spawned.alias);
      const shown = json<Inspected>(
        await ostk(project, ["inspect", spawned.alias, "--json", "--events", "5"]),
      );
      assert.equal(shown.live?.state, "finished");
      assert.equal(shown.live?.value, "finished");
      assert.equal(shown.live?.context?.turns, row.turns);
      assert.equal(shown.events.length, 5);
      const replay = json<{ final: unknown; mismatches: number; steps: { turns: number }[] }>(
        await ostk(project, ["inspect", spawned.alias, "--replay", "--json"]),
      );
      assert.equal(replay.final, row.state, "the replay ends in the state ps shows");
      assert.equal(replay.mismatches, 0);
      const drain = await readDrain(project.paths.drain, spawned.alias);
      assert.equal(replay.steps.at(-1)!.turns, drain.turns);
      assert.equal(drain.turns, row.turns);
      const text = await ostk(project, ["inspect", spawned.alias, "--replay"]);
      assert.match(text.stdout, /session\.turn_done .*→ live\.saving/);
      assert.match(text.stdout, /\nfinal: finished {2}\(0 steps differ/);
      const one = await ostk(project, ["inspect", spawned.alias, "--replay", "--step", "1"]);
      assert.equal(one.stdout.trim().split("\n").length, 1);
      assert.match(one.stdout, /^#1 /);
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("inspect: a running command session — live value matches the replay, --follow streams the kill", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let pid: number | null = null;
    let alias = "";
    let follower: Deno.ChildProcess | undefined;
    try {
      daemon = await startDaemonProcess(project);
      alias = json<{ alias: string }>(
        await ostk(project, [
          "spawn",
          "agent",
          "--cpu",
          "command",
          "--json",
          "--",
          ...fakeAgent(600_000),
        ]),
      ).alias;
      const client = await connect(project);
      try {
        const rows = await waitForRows(
          client,
          "the agent running",
          (rs) => rowOf(rs, alias).state === "running",
        );
        pid = rowOf(rows, alias).pid;
        const live = await call<{ value: unknown; source: string; children: string[] }>(
          client,
          "session/inspect",
          { alias },
        );
        assert.equal(live.source, "actor");
        assert.deepEqual(live.value, { live: "running" });
        assert.deepEqual(live.children, ["cpu"]);
        // The trace is flushed a moment later; poll until the replay has caught up.
        await waitFor("the replay to reach the live state", async () => {
          const r = await ostk(project, ["inspect", alias, "--replay", "--json"]);
          return r.code === 0 &&
            JSON.stringify(JSON.parse(r.stdout).final) === JSON.stringify(live.value);
        });
        await assert.rejects(
          call(client, "session/inspect", { alias: "nosuch-1" }),
          /no session 'nosuch-1'/,
        );
      } finally {
        await closeClient(client);
      }

      follower =
        (await ostkCommand(project.scratch, ["inspect", alias, "--follow", "--events", "0"], {
          cwd: project.root,
          env: project.env,
        })).spawn();
      const lines = follower.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      const readUntil = async (re: RegExp) => {
        while (!re.test(seen)) {
          const { value, done } = await lines.read();
          if (done) throw new Error(`follow ended before ${re}: ${seen}`);
          seen += value;
        }
      };
      await readUntil(new RegExp(`^${alias}  running  live\\.running`, "m"));
      assert.equal((await ostk(project, ["kill", alias])).code, 0);
      await readUntil(/daemon → session {2}session\.kill/);
      await readUntil(/= session {2}killed \(done\)/);
      follower.kill("SIGTERM");
      await lines.cancel();
      await follower.status;
      follower = undefined;
      const replay = json<{ final: unknown }>(
        await ostk(project, ["inspect", alias, "--replay", "--json"]),
      );
      assert.equal(replay.final, "killed");
    } finally {
      if (follower) {
        follower.kill("SIGKILL");
        await follower.stdout.cancel().catch(() => {});
        await follower.status;
      }
      await killAgent(pid, alias);
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("inspect: with OSTK_TRACES=0 nothing is traced but session/inspect still answers", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    try {
      daemon = await startDaemonProcess({ ...project, env: { ...project.env, OSTK_TRACES: "0" } });
      const alias = json<{ alias: string }>(
        await ostk(project, [
          "spawn",
          "slow",
          "--cpu",
          "script",
          "--script",
          await slowScript(project.scratch.dir),
          "--json",
        ]),
      ).alias;
      const client = await connect(project);
      try {
        await waitForRows(client, "running", (rs) => rowOf(rs, alias).state === "running");
        const live = await call<{ source: string; trace: string | null }>(
          client,
          "session/inspect",
          { alias },
        );
        assert.equal(live.source, "actor");
        assert.equal(live.trace, null);
        await call(client, "session/kill", { alias });
      } finally {
        await closeClient(client);
      }
      await assert.rejects(Deno.stat(tracesDir(project.paths)), Deno.errors.NotFound);
      const r = await ostk(project, ["inspect", alias, "--replay"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no trace for/);
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

async function slowScript(dir: string): Promise<string> {
  const path = `${dir}/slow.jsonl`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      think_ms: 600_000,
      calls: [{ tool: "file:create", args: { path: "x", content: "" } }],
    }) + "\n",
  );
  return path;
}
