/**
 * Replaying a recorded session trace: the session's events, in the order the daemon saw them,
 * fed to a fresh session machine whose child actors do nothing (what they did is in the trace
 * as events too), so each step shows the state the machine reaches — and whether the daemon
 * recorded the same.
 */
import { createActor, fromCallback, fromPromise, type StateValue } from "xstate";
import { OstkError } from "../kernel/errors.ts";
import { sessionMachine } from "./session_machine.ts";
import type { SessionInput } from "./session_schema.ts";
import { SESSION_ACTOR, type TraceEntry } from "./traces.ts";

/** One step of a replay: the event fed to the machine and the state it led to. */
export interface ReplayStep {
  n: number;
  seq: number;
  event: string;
  source: string | null;
  value: StateValue;
  /** The value the daemon recorded after the same event, when the trace has it. */
  recorded?: StateValue;
  turns: number;
}

/** A replay of the last life in a trace whose start (its `xstate.init`) is still on file. */
export interface Replay {
  actor: string;
  steps: ReplayStep[];
  final: StateValue;
  /** Steps whose replayed value differs from the recorded one. */
  mismatches: number;
}

const never = () => new Promise<void>(() => {});

/**
 * Feed a session's recorded events, in order, to a fresh session machine whose child actors do
 * nothing (their results are events in the trace too) and collect the state after each.
 */
export function replayTrace(entries: TraceEntry[]): Replay {
  const inits = entries.filter((e) =>
    e.kind === "event" && e.event.type === "xstate.init" && SESSION_ACTOR.test(e.actor)
  );
  const init = inits.at(-1);
  if (!init || init.kind !== "event") {
    throw new OstkError(
      "not_found",
      "the trace holds no session start (it may have rotated past it)",
      {},
      "raise the trace size limit, or inspect the live state with 'ostk inspect <alias>'",
    );
  }
  const life = init.actor;
  const logic = sessionMachine.provide({
    actors: {
      cpuRunner: fromCallback(() => {}),
      drainWriter: fromPromise(never),
      rehydrator: fromPromise(never),
    },
  });
  const actor = createActor(logic, { input: init.event.input as SessionInput });
  actor.start();
  const steps: ReplayStep[] = [];
  const step = (seq: number, event: string, source: string | null) => {
    const snap = actor.getSnapshot();
    steps.push({
      n: steps.length,
      seq,
      event,
      source,
      value: snap.value,
      turns: snap.context.turns,
    });
  };
  step(init.seq, "xstate.init", init.source);
  const awaiting: ReplayStep[] = [steps[0]];
  let lastRecorded: StateValue | undefined;
  for (const e of entries) {
    if (e.seq <= init.seq || e.actor !== life) continue;
    if (e.kind === "event") {
      const event = { ...e.event };
      if (event.type.startsWith("xstate.error.actor.") && event.error) {
        event.error = new Error(String((event.error as { message?: unknown }).message));
      }
      actor.send(event as never);
      step(e.seq, event.type, e.source);
      awaiting.push(steps.at(-1)!);
    } else if (e.kind === "snapshot" && e.value !== undefined) {
      // The session's mailbox is FIFO and its events are logged as they are queued, so a
      // snapshot belongs to the oldest waiting event of its type; the events before that one
      // were processed without one (the recorder skips snapshots that changed nothing).
      const i = awaiting.findIndex((s) => s.event === e.event);
      if (i < 0) continue;
      const processed = awaiting.splice(0, i + 1);
      for (const skipped of processed.slice(0, -1)) skipped.recorded = lastRecorded;
      processed[i].recorded = lastRecorded = e.value;
    }
  }
  for (const skipped of awaiting) skipped.recorded = lastRecorded;
  actor.stop();
  const mismatches =
    steps.filter((s) =>
      s.recorded !== undefined && JSON.stringify(s.recorded) !== JSON.stringify(s.value)
    ).length;
  return { actor: life, steps, final: steps.at(-1)!.value, mismatches };
}
