/**
 * The session machine: one per agent. It has no I/O of its own; what it starts is named in
 * `setup` and replaced by the daemon through `sessionMachine.provide({ actors })`:
 *
 * - `cpuRunner` (callback; id `cpu`) runs the CPU. It starts the CPU only on `cpu.start`, which
 *   `live.spawning` sends on entry, so a session restored from a persisted snapshot never starts
 *   a CPU by itself. Default with I/O: `cpuRunnerLogic(deps)` in cpu.ts.
 * - `drainWriter` (promise; ids `drain` and `final_drain`) writes the drain snapshot after each
 *   turn and once when draining. Default with I/O: `drainWriterLogic(deps)` in drain.ts.
 * - `rehydrator` (promise) runs before a revived session respawns its CPU, e.g. to end what is
 *   left of the previous agent process. Default: nothing to do; `rehydratorLogic()` in cpu.ts.
 *
 * Daemon wiring:
 * ```ts ignore
 * const logic = sessionMachine.provide({ actors: {
 *   cpuRunner: cpuRunnerLogic({ kernel: (alias) => port(alias), socketPath, now: Date.now }),
 *   drainWriter: drainWriterLogic({ dir: paths.drain, anchor, now: Date.now }),
 *   rehydrator: rehydratorLogic(),
 * } });
 * const fresh = createActor(logic, { input: SessionInputSchema.parse(input) });
 * const drain = await readDrain(paths.drain, alias);        // after a daemon crash
 * const restored = createActor(logic, { snapshot: drain.machine as Snapshot<unknown>, input });
 * // restored is in its old state with an idle CPU: send `session.orphan`, then revive or reap.
 * ```
 *
 * Ask the snapshot for tags, not state names: `alive` (spawning, running, saving, stale),
 * `stale`, `draining` (stopping, draining), `orphan`, `rehydrating`, and `terminal` on each of
 * the five final states, which also carries its own name as a tag: `finished`, `failed`,
 * `killed`, `crashed`, `limited` (kernel/session_outcome.ts says what each means).
 *
 * How a session ends is decided here, on the way into `stopping` or `draining`, and kept in
 * `context.ending` until the final drain is written; the final state is then the outcome:
 * a CPU that ran to its end (or a command that exited 0) `finished`; a command that exited by
 * itself with another code `failed`; `session.kill` `killed`; `session.limit` `limited`;
 * `session.reap` of an orphan `crashed`. A CPU that died by a signal nobody sent, crashed or
 * stopped answering is `orphaned`, where the daemon's revival policy takes over.
 */
import { assign, fromCallback, fromPromise, sendTo, setup } from "xstate";
import {
  type CpuExitReason,
  type CpuRunnerEvent,
  type CpuRunnerInput,
  type CpuSpec,
  type DrainWriterInput,
  HISTORY_LIMIT,
  type RehydratorInput,
  type Revival,
  type SessionEnding,
  type SessionEvent,
  type SessionInput,
  type SessionOutcome,
  type Tokens,
  type TurnRecord,
} from "./session_schema.ts";

/**
 * Bump when states, context or children change shape; drain snapshots record it. 2: the one
 * final state `dead` became five outcome states, and context gained `ending`.
 */
export const MACHINE_VERSION = 2;

/**
 * Drain snapshot versions whose turns, tokens and history the daemon can carry forward. A
 * version-1 snapshot differs only in its final state, and a revival never restores an ended
 * machine, so its counters read the same.
 */
export const READABLE_DRAIN_VERSIONS: readonly number[] = [1, MACHINE_VERSION];

/** What a session remembers. */
export interface SessionContext {
  alias: string;
  cpu: CpuSpec;
  revival: Revival;
  /** Turns finished (and drained); also the next turn to run. */
  turns: number;
  tokens: Tokens;
  /** The newest turns, at most HISTORY_LIMIT. */
  history: TurnRecord[];
  /** Milliseconds since the epoch of the last sign of life (start, turn, heartbeat). */
  lastSeen: number;
  pid?: number;
  exit?: { reason: CpuExitReason; code?: number; signal?: string };
  error?: string;
  /** How the session ends, decided on the way into `stopping` or `draining`. */
  ending?: SessionEnding;
}

/** The tags a session state may carry. */
export type SessionTag =
  | "alive"
  | "stale"
  | "draining"
  | "terminal"
  | "orphan"
  | "rehydrating"
  | SessionOutcome;

/** The short reason a session's ending records, from the event that decided it. */
function endingReason(outcome: SessionOutcome, context: SessionContext, event: SessionEvent) {
  switch (event.type) {
    case "session.cpu_exit":
      if (event.reason === "done") return "done";
      return event.code === 0 ? "exit 0" : `exit code ${event.code}`;
    case "session.kill":
      return event.reason ?? "killed by the operator";
    case "session.limit":
      return `LIMIT ${event.limit} reached (${event.value} of ${event.max})`;
    case "session.reap":
      return `${context.error ?? "crashed"}; ${event.reason}`;
    default:
      return outcome;
  }
}

const FINISHED = { outcome: "finished" } as const;
const FAILED = { outcome: "failed" } as const;
const KILLED = { outcome: "killed" } as const;
const CRASHED = { outcome: "crashed" } as const;
const LIMITED = { outcome: "limited" } as const;

/** From the final drain to the outcome state the ending recorded (crashed when none did). */
const ENDINGS = [
  { guard: { type: "endsAs", params: FINISHED }, target: "finished" },
  { guard: { type: "endsAs", params: FAILED }, target: "failed" },
  { guard: { type: "endsAs", params: KILLED }, target: "killed" },
  { guard: { type: "endsAs", params: LIMITED }, target: "limited" },
  { target: "crashed" },
] as const;

export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    tags: {} as SessionTag,
  },
  actors: {
    cpuRunner: fromCallback<CpuRunnerEvent, CpuRunnerInput>(({ receive, sendBack }) => {
      receive((event) => {
        if (event.type !== "cpu.start") return;
        sendBack({ type: "session.crashed", error: "no cpuRunner provided to sessionMachine" });
      });
    }),
    drainWriter: fromPromise<void, DrainWriterInput>(() =>
      Promise.reject(new Error("no drainWriter provided to sessionMachine"))
    ),
    rehydrator: fromPromise<void, RehydratorInput>(() => Promise.resolve()),
  },
  actions: {
    startCpu: sendTo("cpu", ({ context }) => ({ type: "cpu.start", startTurn: context.turns })),
    stopCpu: sendTo("cpu", { type: "cpu.stop" }),
    /** Release the CPU's `onTurn` for the turn just drained. */
    ackTurn: sendTo("cpu", ({ context }) => ({ type: "cpu.turn_saved", turn: context.turns - 1 })),
    /** A turn already counted (a replay): nothing to save, but the CPU must not wait. */
    ackOldTurn: sendTo("cpu", ({ event }) => ({
      type: "cpu.turn_saved",
      turn: event.type === "session.turn_done" ? event.turn.turn : -1,
    })),
    recordStart: assign(({ context, event }) => {
      if (event.type !== "session.started") return {};
      return { pid: event.pid ?? context.pid, lastSeen: event.at };
    }),
    recordTurn: assign(({ context, event }) => {
      if (event.type !== "session.turn_done") return {};
      const { turn } = event;
      return {
        turns: turn.turn + 1,
        tokens: {
          in: context.tokens.in + turn.tokens.in,
          out: context.tokens.out + turn.tokens.out,
        },
        history: [...context.history, turn].slice(-HISTORY_LIMIT),
        lastSeen: Math.max(context.lastSeen, event.at),
      };
    }),
    touch: assign(({ context, event }) => {
      if (event.type !== "session.heartbeat") return {};
      return { lastSeen: Math.max(context.lastSeen, event.at) };
    }),
    recordExit: assign(({ event }) => {
      if (event.type !== "session.cpu_exit") return {};
      const { reason, code, signal } = event;
      return {
        exit: {
          reason,
          ...(code !== undefined ? { code } : {}),
          ...(signal !== undefined ? { signal } : {}),
        },
      };
    }),
    /** A CPU that stopped when nobody asked it to: why, for the orphan row and for `ps`. */
    recordDeath: assign(({ event }) => {
      if (event.type !== "session.cpu_exit") return {};
      if (event.signal) return { error: `the agent process was ended by ${event.signal}` };
      return { error: `the CPU stopped (${event.reason}) without being asked to` };
    }),
    /** Decide how the session ends; the first decision stands. */
    end: assign(({ context, event }, params: { outcome: SessionOutcome }) => {
      if (context.ending) return {};
      return {
        ending: {
          outcome: params.outcome,
          reason: endingReason(params.outcome, context, event),
        },
      };
    }),
    recordError: assign(({ event }) => {
      if (event.type === "session.crashed") return { error: event.error };
      if (event.type === "session.orphan") return event.reason ? { error: event.reason } : {};
      // The error events of invoked promises carry the rejection as `error`.
      const err = (event as { error?: unknown }).error;
      return { error: err instanceof Error ? err.message : String(err) };
    }),
    clearRun: assign({ pid: undefined, exit: undefined, error: undefined }),
  },
  guards: {
    isNewTurn: ({ context, event }) =>
      event.type === "session.turn_done" && event.turn.turn >= context.turns,
    /** The CPU ran to its end: a transcript or model loop `done`, a command that exited 0. */
    finishedWell: ({ event }) =>
      event.type === "session.cpu_exit" &&
      (event.reason === "done" || (event.reason === "exited" && event.code === 0)),
    /**
     * A command that exited by itself with a non-zero code failed: it said so, and running it
     * again would most likely say so again. One ended by a signal did not choose to end.
     */
    exitedWithCode: ({ event }) =>
      event.type === "session.cpu_exit" && event.reason === "exited" &&
      event.signal === undefined && event.code !== undefined && event.code !== 0,
    endsAs: ({ context }, params: { outcome: SessionOutcome }) =>
      context.ending?.outcome === params.outcome,
  },
}).createMachine({
  id: "session",
  context: ({ input }) => ({
    alias: input.alias,
    cpu: input.cpu,
    revival: input.revival,
    turns: input.startTurn ?? 0,
    tokens: input.tokens ?? { in: 0, out: 0 },
    history: (input.history ?? []).slice(-HISTORY_LIMIT),
    lastSeen: 0,
  }),
  initial: "live",
  on: {
    "session.heartbeat": { actions: "touch" },
  },
  states: {
    live: {
      invoke: {
        id: "cpu",
        src: "cpuRunner",
        input: ({ context }) => ({ alias: context.alias, cpu: context.cpu }),
      },
      initial: "spawning",
      on: {
        "session.kill": { target: ".stopping", actions: { type: "end", params: KILLED } },
        "session.limit": { target: ".stopping", actions: { type: "end", params: LIMITED } },
        "session.orphan": { target: "orphaned", actions: "recordError" },
        "session.crashed": { target: "orphaned", actions: "recordError" },
        "session.cpu_exit": [
          {
            guard: "finishedWell",
            target: "draining",
            actions: ["recordExit", { type: "end", params: FINISHED }],
          },
          {
            guard: "exitedWithCode",
            target: "draining",
            actions: ["recordExit", { type: "end", params: FAILED }],
          },
          { target: "orphaned", actions: ["recordExit", "recordDeath"] },
        ],
      },
      states: {
        spawning: {
          tags: ["alive"],
          entry: "startCpu",
          on: { "session.started": { target: "running", actions: "recordStart" } },
        },
        running: {
          tags: ["alive"],
          on: {
            "session.turn_done": [
              { guard: "isNewTurn", target: "saving", actions: "recordTurn" },
              { actions: "ackOldTurn" },
            ],
            "session.stale": "stale",
          },
        },
        stale: {
          tags: ["alive", "stale"],
          on: {
            "session.heartbeat": { target: "running", actions: "touch" },
            "session.turn_done": [
              { guard: "isNewTurn", target: "saving", actions: "recordTurn" },
              { target: "running", actions: "ackOldTurn" },
            ],
          },
        },
        saving: {
          tags: ["alive"],
          invoke: {
            id: "drain",
            src: "drainWriter",
            input: ({ context }) => ({ alias: context.alias, reason: "turn" as const }),
            onDone: { target: "running", actions: "ackTurn" },
            // A session that cannot record its progress stops here; revival resumes from the
            // last snapshot that did get written.
            onError: { target: "#session.orphaned", actions: "recordError" },
          },
        },
        stopping: {
          tags: ["draining"],
          entry: "stopCpu",
          on: {
            // Already stopping: the reason that started it stands.
            "session.kill": {},
            "session.limit": {},
            "session.cpu_exit": { target: "#session.draining", actions: "recordExit" },
            "session.crashed": { target: "#session.draining", actions: "recordError" },
            "session.orphan": { target: "#session.draining", actions: "recordError" },
          },
        },
      },
    },
    draining: {
      tags: ["draining"],
      invoke: {
        id: "final_drain",
        src: "drainWriter",
        input: ({ context }) => ({ alias: context.alias, reason: "final" as const }),
        onDone: ENDINGS,
        // The ending stands when its last snapshot cannot be written; the error is kept.
        onError: ENDINGS.map((t) => ({ ...t, actions: "recordError" as const })),
      },
    },
    finished: { type: "final", tags: ["terminal", "finished"] },
    failed: { type: "final", tags: ["terminal", "failed"] },
    killed: { type: "final", tags: ["terminal", "killed"] },
    crashed: { type: "final", tags: ["terminal", "crashed"] },
    limited: { type: "final", tags: ["terminal", "limited"] },
    orphaned: {
      tags: ["orphan"],
      on: {
        "session.revive": "rehydrating",
        "session.kill": { target: "draining", actions: { type: "end", params: KILLED } },
        "session.reap": { target: "draining", actions: { type: "end", params: CRASHED } },
      },
    },
    rehydrating: {
      tags: ["rehydrating"],
      invoke: {
        id: "rehydrator",
        src: "rehydrator",
        input: ({ context }) => ({
          alias: context.alias,
          cpu: context.cpu,
          pid: context.pid,
          turns: context.turns,
        }),
        onDone: { target: "live", actions: "clearRun" },
        onError: { target: "orphaned", actions: "recordError" },
      },
      on: {
        "session.kill": { target: "draining", actions: { type: "end", params: KILLED } },
        "session.reap": { target: "draining", actions: { type: "end", params: CRASHED } },
        "session.orphan": "orphaned",
      },
    },
  },
});
