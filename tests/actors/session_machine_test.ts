/**
 * Session machine tests: every reachable state walked with xstate/graph and replayed on a live
 * actor with fake children, the main lifecycles, persistence, and the drain files written by the
 * default children (including a real script CPU in a Worker; needs --unstable-worker-options).
 */
import assert from "node:assert/strict";
import { createActor, fromCallback, fromPromise, type Snapshot, waitFor } from "xstate";
import { getShortestPaths } from "xstate/graph";
import type { ToolResponse } from "../../kernel/tools.ts";
import type { OstkError } from "../../kernel/errors.ts";
import { cpuRunnerLogic, type KernelPort } from "../../actors/cpu.ts";
import { drainWriterLogic, listDrains, readDrain, writeDrain } from "../../actors/drain.ts";
import {
  MACHINE_VERSION,
  READABLE_DRAIN_VERSIONS,
  sessionMachine,
} from "../../actors/session_machine.ts";
import type {
  CpuRunnerEvent,
  CpuRunnerInput,
  DrainWriterInput,
  SessionEvent,
  SessionInput,
  TurnRecord,
} from "../../actors/session_schema.ts";

const WRITER = new URL("../../fixtures/agents/writer_1.jsonl", import.meta.url).pathname;
const INPUT: SessionInput = {
  alias: "writer-1",
  cpu: { kind: "script", script: WRITER },
  revival: "revive",
};

/** What the fake children saw. */
interface Log {
  runners: { input: CpuRunnerInput; events: CpuRunnerEvent[]; stopped: boolean }[];
  drains: { reason: DrainWriterInput["reason"]; turns: number; machine: unknown }[];
  rehydrations: number;
}

/**
 * The session machine with fake children. The fake CPU answers `cpu.stop` with an aborted exit
 * when `autoExit` is set; the fake drain writer records what it would write, and succeeds.
 */
function fakeSession(log: Log, options: { autoExit?: boolean; failDrain?: boolean } = {}) {
  return sessionMachine.provide({
    actors: {
      cpuRunner: fromCallback<CpuRunnerEvent, CpuRunnerInput>(({ input, receive, sendBack }) => {
        const runner = { input, events: [] as CpuRunnerEvent[], stopped: false };
        log.runners.push(runner);
        receive((event) => {
          runner.events.push(event);
          if (event.type === "cpu.stop" && options.autoExit) {
            queueMicrotask(() => sendBack({ type: "session.cpu_exit", reason: "aborted" }));
          }
        });
        return () => runner.stopped = true;
      }),
      drainWriter: fromPromise<void, DrainWriterInput>(({ input, self }) => {
        const session = self._parent!;
        const context = (session.getSnapshot() as { context: { turns: number } }).context;
        const machine = session.getPersistedSnapshot();
        log.drains.push({ reason: input.reason, turns: context.turns, machine });
        return options.failDrain ? Promise.reject(new Error("disk full")) : Promise.resolve();
      }),
      rehydrator: fromPromise(() => {
        log.rehydrations++;
        return Promise.resolve();
      }),
    },
  });
}

function newLog(): Log {
  return { runners: [], drains: [], rehydrations: 0 };
}

function turn(n: number): SessionEvent {
  return {
    type: "session.turn_done",
    turn: {
      turn: n,
      calls: [{ tool: "file:edit", ok: true, gen: n + 1 }],
      tokens: { in: 10, out: 2 },
    },
    at: 1000 + n,
  };
}

/** One sample of every event, plus the done events of the promise children. */
const EVENTS = [
  { type: "session.started", at: 1, pid: 42 },
  turn(0),
  { type: "session.heartbeat", at: 5 },
  { type: "session.kill" },
  { type: "session.limit", limit: "turns", value: 2, max: 2 },
  { type: "session.reap", reason: "not revived" },
  { type: "session.cpu_exit", reason: "done" },
  { type: "session.cpu_exit", reason: "exited", code: 0 },
  { type: "session.cpu_exit", reason: "exited", code: 1 },
  { type: "session.cpu_exit", reason: "exited", code: 137, signal: "SIGKILL" },
  { type: "session.orphan" },
  { type: "session.revive" },
  { type: "session.stale" },
  { type: "session.crashed", error: "boom" },
  { type: "xstate.done.actor.drain" },
  { type: "xstate.done.actor.final_drain" },
  { type: "xstate.done.actor.rehydrator" },
] as SessionEvent[];

const ALL_STATES = [
  "crashed",
  "draining",
  "failed",
  "finished",
  "killed",
  "limited",
  "live.running",
  "live.saving",
  "live.spawning",
  "live.stale",
  "live.stopping",
  "orphaned",
  "rehydrating",
];

function stateName(snapshot: { value: unknown }): string {
  const value = snapshot.value;
  if (typeof value === "string") return value;
  const [parent, child] = Object.entries(value as Record<string, string>)[0];
  return `${parent}.${child}`;
}

Deno.test("every session state is reachable, and each shortest path replays on a live actor", async () => {
  const paths = getShortestPaths(sessionMachine, {
    input: INPUT,
    events: EVENTS,
    // The ending decided on the way into `draining` picks the final state, so two `draining`
    // snapshots with different endings are different states of the walk.
    serializeState: (snapshot) =>
      `${stateName(snapshot)}|${
        (snapshot.context as { ending?: { outcome: string } }).ending?.outcome ?? ""
      }`,
  });
  const reached = [...new Set(paths.map((p) => stateName(p.state)))].sort();
  assert.deepEqual(reached, ALL_STATES);

  for (const path of paths) {
    const log = newLog();
    const actor = createActor(fakeSession(log), { input: INPUT }).start();
    for (const step of path.steps.slice(1)) {
      const expected = stateName(step.state);
      if (step.event.type.startsWith("xstate.done.actor.")) {
        // The fake child settles on its own; wait for the transition its done event causes.
        await waitFor(actor, (s) => stateName(s) === expected);
      } else {
        actor.send(step.event);
        assert.equal(stateName(actor.getSnapshot()), expected, `after ${step.event.type}`);
      }
    }
    assert.equal(stateName(actor.getSnapshot()), stateName(path.state));
    actor.stop();
  }
});

Deno.test("kill: spawning → running → stopping → draining → killed", async () => {
  const log = newLog();
  const actor = createActor(fakeSession(log, { autoExit: true }), { input: INPUT });
  const seen: string[] = [];
  actor.subscribe((s) => {
    if (seen.at(-1) !== stateName(s)) seen.push(stateName(s));
  });
  actor.start();
  assert.ok(actor.getSnapshot().hasTag("alive"));
  actor.send({ type: "session.started", at: 7, pid: 99 });
  actor.send({ type: "session.kill" });
  assert.ok(actor.getSnapshot().hasTag("draining"));
  await waitFor(actor, (s) => s.hasTag("terminal"));
  assert.deepEqual(seen, ["live.spawning", "live.running", "live.stopping", "draining", "killed"]);
  assert.deepEqual(log.runners[0].events, [{ type: "cpu.start", startTurn: 0 }, {
    type: "cpu.stop",
  }]);
  assert.equal(log.runners[0].stopped, true);
  assert.deepEqual(log.drains.map((d) => d.reason), ["final"]);
  const { context, status } = actor.getSnapshot();
  assert.equal(status, "done");
  assert.deepEqual([context.pid, context.lastSeen, context.exit], [99, 7, { reason: "aborted" }]);
  assert.deepEqual(context.ending, { outcome: "killed", reason: "killed by the operator" });
  assert.ok(actor.getSnapshot().hasTag("killed"));
});

/** Drive a fresh session with `events` after its start; resolve with its final snapshot. */
async function endOf(events: SessionEvent[], options: { autoExit?: boolean } = {}) {
  const log = newLog();
  const actor = createActor(fakeSession(log, options), { input: INPUT }).start();
  actor.send({ type: "session.started", at: 1, pid: 7 });
  for (const event of events) actor.send(event);
  const snap = await waitFor(actor, (s) => s.hasTag("terminal") || s.hasTag("orphan"));
  actor.stop();
  return { snap, state: stateName(snap), drains: log.drains.map((d) => d.reason) };
}

Deno.test("each way a session ends is its own final state, with its reason", async () => {
  const cases: [string, SessionEvent[], string, string | undefined][] = [
    [
      "a transcript run to its end",
      [{ type: "session.cpu_exit", reason: "done" }],
      "finished",
      "done",
    ],
    [
      "a command exiting 0",
      [{ type: "session.cpu_exit", reason: "exited", code: 0 }],
      "finished",
      "exit 0",
    ],
    [
      "a command exiting 3",
      [{ type: "session.cpu_exit", reason: "exited", code: 3 }],
      "failed",
      "exit code 3",
    ],
    [
      "the operator's kill",
      [{ type: "session.kill", reason: "killed by the operator" }],
      "killed",
      "killed by the operator",
    ],
    [
      "a LIMIT",
      [{ type: "session.limit", limit: "turns", value: 2, max: 2 }],
      "limited",
      "LIMIT turns reached (2 of 2)",
    ],
    [
      "a kill after a LIMIT",
      [
        { type: "session.limit", limit: "tokens", value: 120, max: 100 },
        { type: "session.kill" },
      ],
      "limited",
      "LIMIT tokens reached (120 of 100)",
    ],
    [
      "a reaped crash",
      [
        { type: "session.crashed", error: "no heartbeat for 95 s" },
        { type: "session.reap", reason: "not revived (revival policy reap)" },
      ],
      "crashed",
      "no heartbeat for 95 s; not revived (revival policy reap)",
    ],
    [
      "a killed orphan",
      [
        { type: "session.orphan", reason: "daemon restarted" },
        { type: "session.kill", reason: "killed by the operator" },
      ],
      "killed",
      "killed by the operator",
    ],
  ];
  for (const [what, events, state, reason] of cases) {
    const end = await endOf(events, { autoExit: true });
    assert.equal(end.state, state, what);
    assert.ok(end.snap.hasTag("terminal") && end.snap.hasTag(state as never), what);
    assert.equal(end.snap.status, "done", what);
    assert.deepEqual(end.snap.context.ending, { outcome: state, reason }, what);
    assert.deepEqual(end.drains, ["final"], `${what}: the final drain is written`);
  }
});

Deno.test("an agent that dies by a signal, or a CPU that stops unasked, is orphaned (revivable)", async () => {
  const killed = await endOf([
    { type: "session.cpu_exit", reason: "exited", code: 137, signal: "SIGKILL" },
  ]);
  assert.equal(killed.state, "orphaned");
  assert.deepEqual(killed.snap.context.exit, { reason: "exited", code: 137, signal: "SIGKILL" });
  assert.equal(killed.snap.context.error, "the agent process was ended by SIGKILL");
  assert.equal(killed.snap.context.ending, undefined, "nothing is decided until revival says");

  const unasked = await endOf([{ type: "session.cpu_exit", reason: "aborted" }]);
  assert.equal(unasked.state, "orphaned");
  assert.match(unasked.snap.context.error ?? "", /stopped \(aborted\) without being asked/);
});

Deno.test("a failed final drain keeps the outcome and records the error", async () => {
  const actor = createActor(fakeSession(newLog(), { failDrain: true }), { input: INPUT }).start();
  actor.send({ type: "session.started", at: 1 });
  actor.send({ type: "session.cpu_exit", reason: "exited", code: 2 });
  const snap = await waitFor(actor, (s) => s.hasTag("terminal"));
  assert.equal(stateName(snap), "failed");
  assert.equal(snap.context.error, "disk full");
  actor.stop();
});

Deno.test("a drain snapshot is written after each turn, and the CPU waits for it", async () => {
  const log = newLog();
  const actor = createActor(fakeSession(log), { input: INPUT }).start();
  actor.send({ type: "session.started", at: 1 });
  for (const n of [0, 1, 2]) {
    actor.send(turn(n));
    assert.equal(stateName(actor.getSnapshot()), "live.saving");
    await waitFor(actor, (s) => stateName(s) === "live.running");
  }
  assert.deepEqual(log.drains.map((d) => [d.reason, d.turns]), [["turn", 1], ["turn", 2], [
    "turn",
    3,
  ]]);
  const acks = log.runners[0].events.filter((e) => e.type === "cpu.turn_saved");
  assert.deepEqual(acks, [0, 1, 2].map((n) => ({ type: "cpu.turn_saved", turn: n })));
  const { context } = actor.getSnapshot();
  assert.deepEqual(context.tokens, { in: 30, out: 6 });
  assert.deepEqual(context.history.map((t: TurnRecord) => t.turn), [0, 1, 2]);
  actor.send(turn(1)); // a replayed turn: acknowledged, not counted again
  assert.equal(actor.getSnapshot().context.turns, 3);
  assert.deepEqual(log.runners[0].events.at(-1), { type: "cpu.turn_saved", turn: 1 });
  actor.stop();
});

Deno.test("a failed drain write orphans the session", async () => {
  const actor = createActor(fakeSession(newLog(), { failDrain: true }), { input: INPUT }).start();
  actor.send({ type: "session.started", at: 1 });
  actor.send(turn(0));
  await waitFor(actor, (s) => s.hasTag("orphan"));
  assert.equal(actor.getSnapshot().context.error, "disk full");
  actor.stop();
});

Deno.test("orphan → rehydrate → running resumes at the drained turn count", async () => {
  const log = newLog();
  const actor = createActor(fakeSession(log), { input: INPUT }).start();
  actor.send({ type: "session.started", at: 1, pid: 50 });
  for (const n of [0, 1]) {
    actor.send(turn(n));
    await waitFor(actor, (s) => stateName(s) === "live.running");
  }
  actor.send({ type: "session.orphan", reason: "heartbeat lost" });
  assert.ok(actor.getSnapshot().hasTag("orphan"));
  assert.equal(log.runners[0].stopped, true, "leaving live stops the CPU");
  actor.send({ type: "session.revive" });
  assert.ok(actor.getSnapshot().hasTag("rehydrating"));
  await waitFor(actor, (s) => stateName(s) === "live.spawning");
  assert.equal(log.rehydrations, 1);
  assert.deepEqual(log.runners[1].events, [{ type: "cpu.start", startTurn: 2 }]);
  assert.equal(actor.getSnapshot().context.pid, undefined);
  actor.send({ type: "session.started", at: 9, pid: 51 });
  assert.equal(stateName(actor.getSnapshot()), "live.running");
  actor.stop();
});

Deno.test("a persisted snapshot restores state and context, with an idle CPU", async () => {
  const log = newLog();
  const actor = createActor(fakeSession(log), { input: INPUT }).start();
  actor.send({ type: "session.started", at: 1, pid: 60 });
  for (const n of [0, 1]) {
    actor.send(turn(n));
    await waitFor(actor, (s) => stateName(s) === "live.running");
  }
  const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
  actor.stop();

  const restoredLog = newLog();
  const restored = createActor(fakeSession(restoredLog), {
    snapshot: persisted as Snapshot<unknown>,
    input: INPUT,
  }).start();
  assert.equal(stateName(restored.getSnapshot()), "live.running");
  assert.deepEqual(restored.getSnapshot().context, actor.getSnapshot().context);
  assert.deepEqual(restoredLog.runners[0].events, [], "a restored CPU is not started again");
  restored.send({ type: "session.orphan" });
  restored.send({ type: "session.revive" });
  await waitFor(restored, (s) => stateName(s) === "live.spawning");
  assert.deepEqual(restoredLog.runners[1].events, [{ type: "cpu.start", startTurn: 2 }]);
  restored.stop();
});

/** A kernel that answers ok with the next gen, keeping the call ids. */
function fakeKernel(callIds: string[]): KernelPort {
  return {
    call(tool, _args, opts) {
      callIds.push(opts?.callId ?? "");
      const response = { ok: true, tool, result: { gen: callIds.length }, digest: "" };
      return Promise.resolve(response as ToolResponse);
    },
  };
}

function realSession(dir: string, callIds: string[]) {
  return sessionMachine.provide({
    actors: {
      cpuRunner: cpuRunnerLogic({ kernel: () => fakeKernel(callIds), now: () => 1_000 }),
      drainWriter: drainWriterLogic({ dir, anchor: "anchor-test", now: () => 1_000 }),
    },
  });
}

Deno.test("a script session runs to the end and drains, and can be revived from its file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const callIds: string[] = [];
    const actor = createActor(realSession(`${dir}/drain`, callIds), { input: INPUT });
    // Orphan the session (as a crash would) once its third turn is on disk.
    actor.subscribe((s) => {
      if (s.context.turns === 3 && stateName(s) === "live.running") {
        actor.send({ type: "session.orphan", reason: "simulated crash" });
      }
    });
    actor.start();
    await waitFor(actor, (s) => s.hasTag("orphan"));
    actor.stop();
    const drain = await readDrain(`${dir}/drain`, "writer-1");
    assert.deepEqual([drain.turns, drain.anchor, drain.machine_version], [
      3,
      "anchor-test",
      MACHINE_VERSION,
    ]);
    assert.deepEqual(await listDrains(`${dir}/drain`), ["writer-1"]);

    const revived = createActor(realSession(`${dir}/drain`, callIds), {
      snapshot: drain.machine as Snapshot<unknown>,
      input: INPUT, // required by the types; a restored actor keeps its own context
    }).start();
    // Drained mid-turn-save, it comes back in `saving`: it rewrites its drain under the new
    // anchor and settles in `running`, with an idle CPU until revived.
    assert.equal(stateName(revived.getSnapshot()), "live.saving");
    await waitFor(revived, (s) => stateName(s) === "live.running");
    revived.send({ type: "session.orphan" });
    revived.send({ type: "session.revive" });
    await waitFor(revived, (s) => s.hasTag("terminal"));
    // Turns 0–2 were drained: never made again. Turn 3 may have begun before the orphan
    // landed; a revival replays it (the daemon dedupes by call id), so it may appear twice.
    assert.deepEqual([...new Set(callIds)], [0, 1, 2, 3, 4, 5].map((t) => `writer-1:${t}:0`));
    for (const t of [0, 1, 2]) {
      assert.equal(callIds.filter((id) => id === `writer-1:${t}:0`).length, 1);
    }
    const final = await readDrain(`${dir}/drain`, "writer-1");
    assert.equal(final.turns, 6);
    assert.deepEqual(final.tokens, { in: 4500, out: 325 });
    assert.deepEqual(revived.getSnapshot().context.exit, { reason: "done" });
    assert.equal(stateName(revived.getSnapshot()), "finished");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readDrain refuses an unknown machine_version and a bad file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const snapshot = {
      version: 1 as const,
      lineage: "writer-1",
      anchor: "a",
      ts: new Date(0).toISOString(),
      cpu: INPUT.cpu,
      turns: 0,
      tokens: { in: 0, out: 0 },
      history: [],
      revival: "ask" as const,
      machine: {},
      machine_version: MACHINE_VERSION,
    };
    await writeDrain(dir, snapshot);
    assert.equal((await readDrain(dir, "writer-1")).revival, "ask");
    await Deno.writeTextFile(
      `${dir}/writer-1.json`,
      JSON.stringify({ ...snapshot, machine_version: 99 }),
    );
    await assert.rejects(
      readDrain(dir, "writer-1"),
      (err: OstkError) => /machine_version 99 is not one this ostk knows/.test(err.message),
    );
    // A snapshot of the machine before outcome states (version 1): its counters still carry a
    // lineage forward, so the daemon reads it; the default refuses it.
    await Deno.writeTextFile(
      `${dir}/writer-1.json`,
      JSON.stringify({ ...snapshot, machine_version: 1, turns: 4 }),
    );
    assert.equal((await readDrain(dir, "writer-1", READABLE_DRAIN_VERSIONS)).turns, 4);
    await assert.rejects(readDrain(dir, "writer-1"), /machine_version 1 is not one/);
    await Deno.writeTextFile(`${dir}/writer-1.json`, JSON.stringify({ ...snapshot, turns: -1 }));
    await assert.rejects(readDrain(dir, "writer-1"), /writer-1\.json: turns: /);
    await assert.rejects(readDrain(dir, "nobody"), (err: OstkError) => err.code === "not_found");
    await assert.rejects(readDrain(dir, "../etc"), /bad lineage/);
    assert.deepEqual(await listDrains(`${dir}/missing`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
