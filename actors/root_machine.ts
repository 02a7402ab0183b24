/**
 * The root machine: supervises the socket listener and the scheduler (one-for-one restarts with
 * a budget) and owns shutdown. Sessions are spawned as its children by the daemon. No I/O here:
 * the listener, scheduler and drain step are actors/actions the daemon provides.
 */
import { assign, fromPromise, setup, spawnChild, stopChild } from "xstate";
import { sessionMachine } from "./session_machine.ts";

/** Restarts allowed per child within the window before the daemon gives up. */
export const RESTART_LIMIT = 5;
export const RESTART_WINDOW_MS = 10_000;

export interface RootContext {
  failures: { child: string; at: number; error: string }[];
  fatal?: string;
}

export type RootEvent =
  | { type: "daemon.stop" }
  | { type: "daemon.child_failed"; child: string; error: string }
  | { type: "session.spawn_child"; id: string; input: unknown }
  | { type: "session.stop_child"; id: string };

/** Placeholder logic; the daemon provides the real listener, scheduler and drain. */
const idle = fromPromise<void>(() => new Promise<void>(() => {}));

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function overBudget(failures: RootContext["failures"], child: string, now: number): boolean {
  const recent = failures.filter((f) => f.child === child && now - f.at < RESTART_WINDOW_MS);
  return recent.length >= RESTART_LIMIT;
}

export const rootMachine = setup({
  types: {
    context: {} as RootContext,
    events: {} as RootEvent,
  },
  actors: {
    listener: idle,
    scheduler: idle,
    drainAll: fromPromise<void>(() => Promise.resolve()),
    /** The session machine; the daemon provides it again with its I/O wired in. */
    session: sessionMachine,
  },
  actions: {
    /** Audits the restart; provided by the daemon. */
    reportRestart: (_, _params: { child: string; error: string }) => {},
    recordFailure: assign({
      failures: ({ context }, params: { child: string; error: string }) =>
        [...context.failures, { ...params, at: Date.now() }].slice(-50),
    }),
    markFatal: assign({
      fatal: (_, params: { child: string; error: string }) =>
        `${params.child} failed ${RESTART_LIMIT} times within ${
          RESTART_WINDOW_MS / 1000
        } s (last: ${params.error}); stopping`,
    }),
  },
  guards: {
    budgetLeft: ({ context }, params: { child: string }) =>
      !overBudget(context.failures, params.child, Date.now()),
  },
}).createMachine({
  id: "root",
  context: { failures: [] },
  initial: "running",
  // Sessions are children of the root so one system holds them all (inspectable, one clock);
  // their failures are handled one-for-one by the daemon's session table.
  on: {
    "session.spawn_child": {
      actions: spawnChild("session", {
        id: ({ event }) => event.id,
        input: ({ event }) => (event as { input: unknown }).input as never,
      }),
    },
    "session.stop_child": { actions: stopChild(({ event }) => (event as { id: string }).id) },
  },
  states: {
    running: {
      type: "parallel",
      on: { "daemon.stop": "draining" },
      states: {
        listener: {
          initial: "up",
          states: {
            up: {
              invoke: {
                src: "listener",
                id: "listener",
                systemId: "listener",
                onError: [
                  {
                    guard: { type: "budgetLeft", params: { child: "listener" } },
                    target: "up",
                    reenter: true,
                    actions: [
                      {
                        type: "recordFailure",
                        params: ({ event }) => ({
                          child: "listener",
                          error: errorText(event.error),
                        }),
                      },
                      {
                        type: "reportRestart",
                        params: ({ event }) => ({
                          child: "listener",
                          error: errorText(event.error),
                        }),
                      },
                    ],
                  },
                  {
                    target: "#root.failed",
                    actions: {
                      type: "markFatal",
                      params: ({ event }) => ({ child: "listener", error: errorText(event.error) }),
                    },
                  },
                ],
              },
            },
          },
        },
        scheduler: {
          initial: "up",
          states: {
            up: {
              invoke: {
                src: "scheduler",
                id: "scheduler",
                systemId: "scheduler",
                onError: [
                  {
                    guard: { type: "budgetLeft", params: { child: "scheduler" } },
                    target: "up",
                    reenter: true,
                    actions: [
                      {
                        type: "recordFailure",
                        params: ({ event }) => ({
                          child: "scheduler",
                          error: errorText(event.error),
                        }),
                      },
                      {
                        type: "reportRestart",
                        params: ({ event }) => ({
                          child: "scheduler",
                          error: errorText(event.error),
                        }),
                      },
                    ],
                  },
                  {
                    target: "#root.failed",
                    actions: {
                      type: "markFatal",
                      params: ({ event }) => ({
                        child: "scheduler",
                        error: errorText(event.error),
                      }),
                    },
                  },
                ],
              },
            },
          },
        },
      },
    },
    draining: {
      tags: ["stopping"],
      invoke: { src: "drainAll", onDone: "stopped", onError: "stopped" },
    },
    failed: {
      tags: ["stopping"],
      invoke: { src: "drainAll", onDone: "stopped", onError: "stopped" },
    },
    stopped: { type: "final" },
  },
});
