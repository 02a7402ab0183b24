/**
 * `ostk listen`: the one anchor process of a project. Takes the anchor, reconciles the files,
 * then runs the root actor (listener + scheduler + sessions) until asked to stop. The daemon is
 * a cache: everything it knows is rebuilt from `.ostk/` on start.
 */
import { type AnyActorRef, createActor, fromPromise } from "xstate";
import { AuditLog } from "../kernel/audit.ts";
import { FoldCache } from "../kernel/fold_cache.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { projectSigner } from "../kernel/project.ts";
import { recoverProject } from "../kernel/recover.ts";
import { Kernel } from "../kernel/tools.ts";
import { acquireAnchor, type Anchor } from "./anchor.ts";
import { ApprovalGate } from "./approval_gate.ts";
import { AuditTail } from "./audit_tail.ts";
import { DriverSupervisor } from "./driver_supervisor.ts";
import { serveSocket } from "./listener.ts";
import { DEFAULT_MAX_LINE_BYTES } from "./protocol.ts";
import { rootMachine } from "./root_machine.ts";
import { createRouter } from "./router.ts";
import { SessionTable, type SessionThresholds } from "./session_table.ts";
import { statelyForwarder } from "./stately.ts";
import { type TraceRecorder, traceRecorderFor } from "./traces.ts";
import { chooseSocketPath, recordSocketPath } from "./socket_path.ts";

/** Daemon settings; tests shrink the times. */
export interface DaemonOptions {
  maxLineBytes?: number;
  tickMs?: number;
  thresholds?: Partial<SessionThresholds>;
  concurrency?: number;
  /** Session traces in .ostk/traces (default: on unless OSTK_TRACES=0); see traces.ts. */
  traces?: boolean;
  traceMaxBytes?: number;
  /** Forward inspection events to a Stately inspector at this ws:// URL (see stately.ts). */
  statelyInspect?: string;
  /** How long an approval question waits for the operator (default 60 s), then "no". */
  approvalTimeoutMs?: number;
  /** Stop a demand-started driver after this long unused (default 5 min). */
  driverIdleMs?: number;
}

/** Shared state the router, scheduler and sessions work on. */
export interface DaemonContext {
  paths: OstkPaths;
  anchor: Anchor;
  socket: string;
  startedAt: number;
  kernel: Kernel;
  log: AuditLog;
  fold: FoldCache;
  tail: AuditTail;
  sessions: SessionTable;
  /** The root actor once it runs (`session/inspect` reads session actors from it). */
  root?: AnyActorRef;
  traces?: TraceRecorder;
  approvals: ApprovalGate;
  /** HUMANFILE's MCP servers, started on first `driver/call`. */
  drivers: DriverSupervisor;
  requestStop: () => void;
}

/** A running daemon. `done` resolves with the exit code once it has stopped. */
export interface RunningDaemon {
  context: DaemonContext;
  done: Promise<number>;
  stop(): void;
}

/**
 * Start the daemon for `paths` and resolve once the socket answers.
 *
 * @example
 * ```ts ignore
 * const daemon = await startDaemon(await locateProject());
 * Deno.exit(await daemon.done);
 * ```
 */
export async function startDaemon(
  paths: OstkPaths,
  options: DaemonOptions = {},
): Promise<RunningDaemon> {
  const anchor = await acquireAnchor(paths);
  try {
    return await boot(paths, anchor, options);
  } catch (err) {
    anchor.close();
    throw err;
  }
}

async function boot(paths: OstkPaths, anchor: Anchor, options: DaemonOptions) {
  const key = await projectSigner(paths);
  const log = new AuditLog(paths.audit, { signer: key.signer, headPath: paths.head });
  // A crash may have left a torn row, a file newer than its gen row, or a gen row the log lacks.
  await log.repair();
  // One fold of the log serves recovery, the session table and the kernel gate.
  const fold = new FoldCache(paths.audit);
  await recoverProject(paths, log, fold);
  const socket = await chooseSocketPath(paths);
  // The anchor is ours, so a socket file still here belongs to a dead daemon.
  try {
    Deno.removeSync(socket);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  recordSocketPath(paths, socket);
  const kernel = new Kernel(paths, {
    signer: key.signer,
    // Sessions' shells run in their sandbox and ask about dangerous commands; the operator's
    // own calls (no session) get neither, as before.
    sandboxFor: (caller) => context.sessions.shellFor(caller.alias),
    approveDanger: (caller, request) => context.approvals.approveDanger(caller, request),
  });
  const tail = new AuditTail(paths.audit);
  let stopRequested = () => {};
  const context: DaemonContext = {
    paths,
    anchor,
    socket,
    startedAt: Date.now(),
    kernel,
    log,
    fold,
    tail,
    sessions: undefined as unknown as SessionTable,
    approvals: undefined as unknown as ApprovalGate,
    drivers: new DriverSupervisor(paths, log, { idleMs: options.driverIdleMs }),
    requestStop: () => stopRequested(),
  };
  context.approvals = new ApprovalGate(context, options.approvalTimeoutMs);
  context.sessions = new SessionTable(context, {
    thresholds: options.thresholds,
    concurrency: options.concurrency ?? navigator.hardwareConcurrency,
  });
  await log.append({
    event: "daemon.start",
    actor: "kernel",
    fields: { pid: Deno.pid, anchor: anchor.id, socket },
  });
  tail.skipToEnd();
  await context.sessions.restoreFromLog();

  let ready!: () => void;
  const listening = new Promise<void>((resolve) => (ready = resolve));
  const route = createRouter(context);
  const traces = context.traces = traceRecorderFor(paths, options);
  const statelyUrl = options.statelyInspect ?? Deno.env.get("OSTK_STATELY_INSPECT");
  const stately = statelyUrl ? statelyForwarder(statelyUrl) : undefined;
  const tickMs = options.tickMs ?? 1000;
  const root = createActor(
    rootMachine.provide({
      actors: {
        session: context.sessions.logic(),
        listener: fromPromise<void>(({ signal }) =>
          serveSocket({
            path: socket,
            route,
            maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
            signal,
            onReady: ready,
          })
        ),
        scheduler: fromPromise<void>(async ({ signal }) => {
          while (!signal.aborted) {
            await context.sessions.tick();
            await tail.poll();
            await sleep(tickMs, signal);
          }
        }),
        drainAll: fromPromise<void>(async () => {
          await context.sessions.drainAll();
          await context.drivers.stopAll();
          await log.append({ event: "daemon.stop", actor: "kernel", fields: { pid: Deno.pid } });
          await tail.poll();
        }),
      },
      actions: {
        reportRestart: (_, params) => {
          log.append({
            event: "daemon.restart_child",
            actor: "kernel",
            fields: { child: params.child, error: params.error },
          }).catch((err) => console.error(`ostk listen: ${err.message}`));
        },
      },
    }),
    {
      inspect: stately
        ? (event) => {
          traces?.observe(event);
          stately.observe(event);
        }
        : traces?.observe,
    },
  );
  context.root = root;
  const done = new Promise<number>((resolve) => {
    root.subscribe({
      next: (snapshot) => {
        if (snapshot.status !== "done") return;
        finish();
        if (snapshot.context.fatal) console.error(`ostk listen: ${snapshot.context.fatal}`);
        resolve(snapshot.context.fatal ? 1 : 0);
      },
      error: (err) => {
        finish();
        console.error(`ostk listen: ${(err as Error).message}`);
        resolve(1);
      },
    });
  });
  const finish = () => {
    stately?.stop();
    kernel.close();
    log.close();
    try {
      Deno.removeSync(socket);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    anchor.close();
  };
  stopRequested = () => root.send({ type: "daemon.stop" });
  root.start();
  context.sessions.attachRoot(root);
  await Promise.race([listening, done.then(() => Promise.reject(new Error("daemon stopped")))]);
  // Traces still buffered are written before the daemon reports that it has stopped.
  const flushed = done.then(async (code) => (await traces?.close().catch(() => {}), code));
  return { context, done: flushed, stop: stopRequested };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
