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
 * `stale`, `draining` (stopping, draining), `terminal` (dead), `orphan`, `rehydrating`.
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
  type SessionEvent,
  type SessionInput,
  type Tokens,
  type TurnRecord,
} from "./session_schema.ts";

/** Bump when states, context or children change shape; drain snapshots record it. */
export const MACHINE_VERSION = 1;

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
  exit?: { reason: CpuExitReason; code?: number };
  error?: string;
}

/** The tags a session state may carry. */
export type SessionTag = "alive" | "stale" | "draining" | "terminal" | "orphan" | "rehydrating";

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
      const { reason, code } = event;
      return { exit: code === undefined ? { reason } : { reason, code } };
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
    /** A command CPU that exited non-zero crashed: revivable, not finished. */
    exitedBadly: ({ event }) =>
      event.type === "session.cpu_exit" && event.reason === "exited" && event.code !== 0,
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
        "session.kill": ".stopping",
        "session.orphan": { target: "orphaned", actions: "recordError" },
        "session.crashed": { target: "orphaned", actions: "recordError" },
        "session.cpu_exit": [
          { guard: "exitedBadly", target: "orphaned", actions: "recordExit" },
          { target: "draining", actions: "recordExit" },
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
            "session.kill": {},
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
        onDone: "dead",
        onError: { target: "dead", actions: "recordError" },
      },
    },
    dead: { type: "final", tags: ["terminal"] },
    orphaned: {
      tags: ["orphan"],
      on: {
        "session.revive": "rehydrating",
        "session.kill": "draining",
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
        "session.kill": "draining",
        "session.orphan": "orphaned",
      },
    },
  },
});
