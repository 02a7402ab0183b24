/**
 * `ostk driver list|tools|call|serve`: the outbound MCP servers HUMANFILE declares. Each call is
 * audited as a `driver.call` row on the project's signed log.
 */
import type { AuditLog } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { locateProject, openSignedLog } from "../kernel/project.ts";
import {
  type DriverEntry,
  driverSocketPath,
  findDriver,
  listDrivers,
  writeDriverStatus,
} from "../drivers/driver_registry.ts";
import {
  callTool,
  connectServed,
  DEFAULT_TIMEOUT_MS,
  type DriverConnection,
  type DriverToolResult,
  listTools,
  renderResult,
  serveDriver,
  spawnDriver,
} from "../drivers/outbound.ts";
import type { DriverRuntime } from "../actors/driver_supervisor.ts";
import { type Command, err, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import { tryConnect } from "./daemon_client.ts";

const TIMEOUT_HELP =
  `  --timeout MS   give up on start-up or the call after MS (default ${DEFAULT_TIMEOUT_MS});
                 the server is stopped either way`;

function usage(command: string, message: string): OstkError {
  return new OstkError("usage", message, {}, `see 'ostk ${command} --help'`);
}

function timeoutOf(command: string, value: string | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0) {
    throw usage(command, `--timeout must be a positive integer`);
  }
  return ms;
}

/** The served driver when its socket answers, else a freshly started one. */
async function connect(
  paths: OstkPaths,
  entry: DriverEntry,
  timeoutMs: number,
): Promise<DriverConnection> {
  return (await connectServed(await driverSocketPath(paths, entry.name), timeoutMs)) ??
    await spawnDriver(entry, paths.root, timeoutMs);
}

/** A description's first line, cut to fit a terminal row. */
function firstLine(text: string): string {
  const line = text.split("\n")[0];
  return line.length > 100 ? `${line.slice(0, 99)}…` : line;
}

const LIST_FLAGS = { json: { type: "boolean" } } as const;
const TOOLS_FLAGS = { json: { type: "boolean" }, timeout: { type: "string" } } as const;
const CALL_FLAGS = TOOLS_FLAGS;
const SERVE_FLAGS = { timeout: { type: "string" } } as const;

export const driverListCommand: Command = {
  name: "driver list",
  summary: "List declared drivers: name, state (declared/running/failed), tools, command.",
  usage: "driver list [--json]",
  help: `Drivers come from HUMANFILE: 'mcp: <name> <command …>' and 'DRIVER <name> [command …]'.
Leading NAME=value words set the server's environment (on top of HOME, PATH, USER, SHELL, TERM).
running = 'ostk driver serve' answers on its socket; failed = its last call or serve failed.

  --json   the rows as a JSON array`,
  flags: LIST_FLAGS,
  async run(ctx) {
    const { values } = parseFlags("driver list", ctx.argv, LIST_FLAGS);
    if (values.help) {
      out(helpText(driverListCommand));
      return EXIT.ok;
    }
    const paths = await locateProject(ctx.cwd);
    const rows = await listDrivers(paths);
    // A running daemon knows the drivers it started: running (or restarting) and failed ones.
    const client = await tryConnect(paths);
    if (client) {
      try {
        const { drivers } = await client.request("driver/list", {}) as { drivers: DriverRuntime[] };
        for (const row of rows) {
          // One process per caller policy: running when any is, failed when one failed.
          const lives = drivers.filter((d) => d.name === row.name);
          if (lives.length === 0) continue;
          if (lives.some((d) => d.state !== "stopped" && d.state !== "failed")) {
            row.state = "running";
          } else if (lives.some((d) => d.state === "failed")) row.state = "failed";
          const tools = lives.find((d) => d.tools !== null)?.tools;
          if (tools !== undefined && tools !== null) row.tools = tools;
        }
      } finally {
        client.close();
      }
    }
    if (values.json) {
      outJson(rows);
      return EXIT.ok;
    }
    if (rows.length === 0) out("no drivers declared (add 'mcp: <name> <command …>' to HUMANFILE)");
    const table = rows.map((
      r,
    ) => [r.name, r.kind, r.state, r.tools === null ? "-" : String(r.tools), r.command]);
    const head = ["NAME", "KIND", "STATE", "TOOLS", "COMMAND"];
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
    for (const row of rows.length ? [head, ...table] : []) {
      out(row.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c)).join("  ").trimEnd());
    }
    return EXIT.ok;
  },
};

export const driverToolsCommand: Command = {
  name: "driver tools",
  summary: "List one driver's tools (starting it for the occasion unless it is served).",
  usage: "driver tools <name> [--json] [--timeout MS]",
  help: `  --json   [{name, description}, …]\n${TIMEOUT_HELP}`,
  flags: TOOLS_FLAGS,
  async run(ctx) {
    const { values, positionals } = parseFlags("driver tools", ctx.argv, TOOLS_FLAGS, true);
    if (values.help) {
      out(helpText(driverToolsCommand));
      return EXIT.ok;
    }
    if (positionals.length !== 1) throw usage("driver tools", "expected one driver name");
    const timeoutMs = timeoutOf("driver tools", values.timeout);
    const paths = await locateProject(ctx.cwd);
    const entry = await findDriver(paths, positionals[0]);
    let conn: DriverConnection | undefined;
    let tools;
    try {
      conn = await connect(paths, entry, timeoutMs);
      tools = await listTools(entry.name, conn, timeoutMs);
      await writeDriverStatus(paths, entry.name, {
        state: conn.via === "serve" ? "running" : "ok",
        tools: tools.length,
      });
    } catch (e) {
      await conn?.close(true);
      conn = undefined;
      await writeDriverStatus(paths, entry.name, { state: "failed", error: (e as Error).message });
      throw e;
    } finally {
      await conn?.close();
    }
    // Printed once the server is stopped: a reader that stops early ('| head') is no failure
    // of the driver.
    if (values.json) {
      outJson(tools.map((t) => ({ name: t.name, description: t.description ?? "" })));
    } else for (const t of tools) out(`${t.name.padEnd(24)} ${firstLine(t.description ?? "")}`);
    return EXIT.ok;
  },
};

export const driverCallCommand: Command = {
  name: "driver call",
  summary: "Call one tool of a declared MCP server and print its answer.",
  usage: "driver call <name> <tool> ['<json args>'] [--json] [--timeout MS]",
  help: `With a daemon running, the call goes through it: the daemon starts the server on first
use (sandboxed: project read-only, private TMPDIR, no network), keeps it for later calls and
stops it after --driver-idle-ms unused. Without one it reuses 'ostk driver serve <name>' when
that runs; otherwise starts the server, initializes, calls the tool and stops the server. Audited as a driver.call row {server, tool, duration_ms,
bytes, ok, via}.

  --json         print {server, tool, via, duration_ms, result} (the whole MCP result)
${TIMEOUT_HELP}

Exit codes: 0 the tool answered; 1 the tool answered an error (isError), or the server failed to
start, exited mid-call or timed out (nothing is left running); 2 usage error.`,
  flags: CALL_FLAGS,
  async run(ctx) {
    const { values, positionals } = parseFlags("driver call", ctx.argv, CALL_FLAGS, true);
    if (values.help) {
      out(helpText(driverCallCommand));
      return EXIT.ok;
    }
    const [name, tool, json, ...extra] = positionals;
    if (!name || !tool || extra.length) {
      throw usage("driver call", "expected <name> <tool> ['<json>']");
    }
    let args: Record<string, unknown> = {};
    if (json !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(json);
      } catch (e) {
        throw usage("driver call", `arguments are not JSON: ${(e as Error).message}`);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw usage("driver call", "arguments must be a JSON object");
      }
      args = parsed as Record<string, unknown>;
    }
    const timeoutMs = timeoutOf("driver call", values.timeout);
    const paths = await locateProject(ctx.cwd);
    const entry = await findDriver(paths, name);
    // Open the signed log first: a call that could not be audited is not made.
    // A running daemon keeps the server connected between calls (and audits the call).
    const client = await tryConnect(paths);
    if (client) {
      try {
        const answer = await client.request("driver/call", {
          name,
          tool,
          args,
          ...(values.timeout !== undefined ? { timeout_ms: timeoutMs } : {}),
        }) as { result: DriverToolResult; duration_ms: number; pid: number | null };
        return print(name, tool, "daemon", answer.duration_ms, answer.result, values.json, {
          pid: answer.pid,
        });
      } finally {
        client.close();
      }
    }
    const log = await openSignedLog(paths);
    try {
      const { result, via, durationMs } = await auditedCall(
        log,
        paths,
        entry,
        tool,
        args,
        timeoutMs,
      );
      return print(name, tool, via, durationMs, result, values.json);
    } finally {
      log.close();
    }
  },
};

function print(
  name: string,
  tool: string,
  via: string,
  durationMs: number,
  result: DriverToolResult,
  json: boolean | undefined,
  extra: Record<string, unknown> = {},
): number {
  if (json) {
    outJson({ server: name, tool, via, duration_ms: durationMs, ...extra, result });
  } else if (result.isError) {
    err(`ostk: driver '${name}' tool '${tool}' answered an error:`);
    err(renderResult(result));
  } else out(renderResult(result));
  return result.isError ? EXIT.refused : EXIT.ok;
}

/** One call, timed and audited whether it succeeds or not. */
async function auditedCall(
  log: AuditLog,
  paths: OstkPaths,
  entry: DriverEntry,
  tool: string,
  args: Record<string, unknown>,
  timeoutMs: number,
): Promise<{ result: DriverToolResult; via: string; durationMs: number }> {
  const started = performance.now();
  let conn: DriverConnection | undefined;
  let result: DriverToolResult | undefined;
  let failure: Error | undefined;
  try {
    conn = await connect(paths, entry, timeoutMs);
    result = await callTool(entry.name, conn, tool, args, timeoutMs);
  } catch (e) {
    failure = e as Error;
  } finally {
    await conn?.close(failure !== undefined);
  }
  const durationMs = Math.round(performance.now() - started);
  const bytes = result ? new TextEncoder().encode(JSON.stringify(result)).length : 0;
  const via = conn?.via ?? "spawn";
  await log.append({
    event: "driver.call",
    actor: "operator",
    fields: {
      server: entry.name,
      tool,
      duration_ms: durationMs,
      bytes,
      ok: result !== undefined && !result.isError,
      via,
      ...(failure ? { error: failure.message.split("\n")[0] } : {}),
    },
  });
  if (via === "spawn") {
    await writeDriverStatus(
      paths,
      entry.name,
      failure ? { state: "failed", error: failure.message } : { state: "ok" },
    );
  }
  if (failure) throw failure;
  return { result: result!, via, durationMs };
}

export const driverServeCommand: Command = {
  name: "driver serve",
  summary: "Keep one MCP server running in the foreground; 'driver call' reuses it.",
  usage: "driver serve <name> [--timeout MS]",
  help: `Starts the server once and listens on .ostk/drivers/<name>.sock (mode 0600); each 'ostk
driver call <name> …' connects there instead of starting the server again. Runs in the
foreground until SIGINT/SIGTERM (exit 0) or until the server exits (exit 1, reason on stderr).
Start and stop are audited (driver.serve, driver.stop). A running daemon ('ostk listen') starts
drivers on demand itself (sandboxed, project read-only) and 'driver call' goes through it.
${TIMEOUT_HELP}`,
  flags: SERVE_FLAGS,
  async run(ctx) {
    const { values, positionals } = parseFlags("driver serve", ctx.argv, SERVE_FLAGS, true);
    if (values.help) {
      out(helpText(driverServeCommand));
      return EXIT.ok;
    }
    if (positionals.length !== 1) throw usage("driver serve", "expected one driver name");
    const timeoutMs = timeoutOf("driver serve", values.timeout);
    const paths = await locateProject(ctx.cwd);
    const entry = await findDriver(paths, positionals[0]);
    const log = await openSignedLog(paths);
    try {
      const socket = await driverSocketPath(paths, entry.name);
      await Deno.mkdir(`${paths.dir}/drivers`, { recursive: true });
      const served = await serveDriver(entry, paths.root, socket, timeoutMs);
      const stop = () => void served.stop();
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
      await writeDriverStatus(paths, entry.name, {
        state: "running",
        pid: Deno.pid,
        tools: served.tools,
      });
      await log.append({
        event: "driver.serve",
        actor: "operator",
        fields: { server: entry.name, pid: Deno.pid, tools: served.tools, socket },
      });
      err(`ostk driver: serving '${entry.name}' (${served.tools} tools) at ${socket}`);
      const reason = await served.done;
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      await writeDriverStatus(
        paths,
        entry.name,
        reason ? { state: "failed", error: reason } : { state: "stopped" },
      );
      await log.append({
        event: "driver.stop",
        actor: "operator",
        fields: { server: entry.name, reason: reason?.split("\n")[0] ?? "signal" },
      });
      if (reason) err(`ostk: ${reason}`);
      return reason ? EXIT.refused : EXIT.ok;
    } finally {
      log.close();
    }
  },
};

export const DRIVER_COMMANDS: readonly Command[] = [
  driverListCommand,
  driverToolsCommand,
  driverCallCommand,
  driverServeCommand,
];
