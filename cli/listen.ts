/** `ostk listen`, `ostk stop`, `ostk status`: the daemon's lifecycle from the command line. */
import { RpcError } from "../actors/client.ts";
import { startDaemon } from "../actors/daemon.ts";
import { RPC_ERRORS } from "../actors/protocol.ts";
import { OstkError } from "../kernel/errors.ts";
import { locateProject } from "../kernel/project.ts";
import { type Command, err, EXIT, helpText, intFlag, out, outJson, parseFlags } from "./command.ts";
import { startInBackground } from "./background.ts";
import { connectOrFail, tryConnect } from "./daemon_client.ts";

export const listenCommand: Command = {
  name: "listen",
  summary: "Run the project's daemon (foreground; --background to detach once it answers).",
  usage:
    "listen [--background] [--tick-ms N] [--stale-ms N] [--crashed-ms N] [--concurrency N] [--approval-timeout-ms N] [--driver-idle-ms N] [--stately-inspect URL]",
  help: `Takes .ostk/anchor.lock (a second daemon exits 1 with the holder's pid), serves JSON-RPC on
.ostk/ostk.sock (mode 0600), revives sessions from the audit log and drain snapshots.
SIGTERM/SIGINT drain every session and exit 0.

  --background   start detached, wait until the socket answers, print the pid, exit
  --tick-ms N       scheduler tick (default 1000)
  --stale-ms N      heartbeat age that marks a session stale (default 30000)
  --crashed-ms N    heartbeat age after which a session is probed and, if dead or stopped,
                    handled by its revival policy (default 90000)
  --concurrency N   sessions running at once; more are queued (default: number of cores)
  --approval-timeout-ms N
                    how long a session's approval question waits for the operator before it
                    counts as "no" (default 60000); a session spawned with its own wait
                    ('ostk run --approval-timeout-ms') keeps that one
  --driver-idle-ms N
                    stop a HUMANFILE driver started on demand after N ms unused (default 300000)
  --stately-inspect ws://127.0.0.1:PORT
                    also send every actor event to a Stately inspector (@statelyai/inspect)
                    on loopback; OSTK_STATELY_INSPECT does the same`,
  async run(ctx) {
    const { values } = parseFlags("listen", ctx.argv, {
      background: { type: "boolean" },
      "tick-ms": { type: "string" },
      "stale-ms": { type: "string" },
      "crashed-ms": { type: "string" },
      concurrency: { type: "string" },
      "approval-timeout-ms": { type: "string" },
      "stately-inspect": { type: "string" },
      "driver-idle-ms": { type: "string" },
    });
    if (values.help) {
      out(helpText(listenCommand));
      return EXIT.ok;
    }
    const tickMs = intFlag("--tick-ms", values["tick-ms"], 10);
    const staleMs = intFlag("--stale-ms", values["stale-ms"], 10);
    const crashedMs = intFlag("--crashed-ms", values["crashed-ms"], 10);
    const concurrency = intFlag("--concurrency", values.concurrency, 1);
    const approvalTimeoutMs = intFlag("--approval-timeout-ms", values["approval-timeout-ms"], 1);
    const driverIdleMs = intFlag("--driver-idle-ms", values["driver-idle-ms"], 1);
    const extra = [
      ...(staleMs ? ["--stale-ms", String(staleMs)] : []),
      ...(crashedMs ? ["--crashed-ms", String(crashedMs)] : []),
      ...(concurrency ? ["--concurrency", String(concurrency)] : []),
      ...(approvalTimeoutMs ? ["--approval-timeout-ms", String(approvalTimeoutMs)] : []),
      ...(values["stately-inspect"] ? ["--stately-inspect", values["stately-inspect"]] : []),
      ...(driverIdleMs ? ["--driver-idle-ms", String(driverIdleMs)] : []),
    ];
    const paths = await locateProject(ctx.cwd);
    if (values.background) {
      const { pid } = await startInBackground(paths.root, { tickMs, extraArgs: extra });
      out(`ostk listen: daemon pid ${pid}`);
      return EXIT.ok;
    }
    const daemon = await startDaemon(paths, {
      tickMs,
      concurrency,
      approvalTimeoutMs,
      statelyInspect: values["stately-inspect"],
      driverIdleMs,
      thresholds: {
        ...(staleMs ? { staleMs } : {}),
        ...(crashedMs ? { crashedMs } : {}),
      },
    });
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(signal, () => daemon.stop());
    }
    err(`ostk listen: pid ${Deno.pid} serving ${daemon.context.socket}`);
    return await daemon.done;
  },
};

/** Long enough for a daemon to drain a few sessions' last turns; `--timeout-ms` overrides. */
const STOP_WAIT_MS = 15_000;

export const stopCommand: Command = {
  name: "stop",
  summary: "Ask the daemon to drain every session and exit.",
  usage: "stop [--timeout-ms N] [--json]",
  help: `Waits until the daemon has gone (its socket stops answering). Exit 0 once it has; exit 1
if it still answers after the timeout (it may be draining long sessions: check 'ostk status').

  --timeout-ms N   how long to wait for the daemon to go (default ${STOP_WAIT_MS})
  --json           print {"stopped": true, "pid": N}`,
  async run(ctx) {
    const { values } = parseFlags("stop", ctx.argv, {
      json: { type: "boolean" },
      "timeout-ms": { type: "string" },
    });
    if (values.help) {
      out(helpText(stopCommand));
      return EXIT.ok;
    }
    const waitMs = intFlag("--timeout-ms", values["timeout-ms"], 0) ?? STOP_WAIT_MS;
    const paths = await locateProject(ctx.cwd);
    const client = await connectOrFail(paths);
    const status = await client.request("daemon/status", {}) as { pid: number };
    // The daemon may close the connection before its answer is flushed: both mean "stopping".
    await client.request("daemon/stop", {}).catch((e) => {
      if (!(e instanceof RpcError && e.code === RPC_ERRORS.closed)) throw e;
    });
    client.close();
    const deadline = Date.now() + waitMs;
    for (;;) {
      const again = await tryConnect(paths);
      if (!again) break;
      again.close();
      // Saying "stopped" while the socket still answers would report work that did not happen.
      if (Date.now() >= deadline) {
        throw new OstkError(
          "io",
          `daemon pid ${status.pid} still answers ${waitMs} ms after it was asked to stop`,
          {},
          `it may be draining sessions: see 'ostk status'; wait longer with --timeout-ms, or end it with 'kill ${status.pid}'`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (values.json) outJson({ stopped: true, pid: status.pid });
    else out(`stopped daemon pid ${status.pid}`);
    return EXIT.ok;
  },
};

export const statusCommand: Command = {
  name: "status",
  summary: "Say whether a daemon is running: pid, uptime, session counts.",
  usage: "status [--json]",
  help: `Exit 0 when a daemon answers, 1 when none is running.

  --json   the daemon's status object ({"running": false} when none)`,
  async run(ctx) {
    const { values } = parseFlags("status", ctx.argv, { json: { type: "boolean" } });
    if (values.help) {
      out(helpText(statusCommand));
      return EXIT.ok;
    }
    const paths = await locateProject(ctx.cwd);
    const client = await tryConnect(paths);
    if (!client) {
      if (values.json) outJson({ running: false });
      else out("not running");
      return EXIT.refused;
    }
    try {
      const status = await client.request("daemon/status", {}) as {
        pid: number;
        uptime_ms: number;
        sessions: Record<string, number>;
      };
      if (values.json) outJson({ running: true, ...status });
      else {
        const counts = Object.entries(status.sessions).map(([k, v]) => `${k} ${v}`).join(", ");
        out(
          `running  pid ${status.pid}  up ${Math.round(status.uptime_ms / 1000)} s  sessions: ${
            counts || "none"
          }`,
        );
      }
      return EXIT.ok;
    } finally {
      client.close();
    }
  },
};
