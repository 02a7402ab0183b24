/**
 * Outbound MCP: ostk as a client of the servers HUMANFILE declares. A call either reuses a
 * server kept alive by `ostk driver serve` (over its Unix socket) or starts the server for the
 * one call and stops it after. Every failure becomes an OstkError that names the driver and the
 * phase (start-up or the call), and the child is always stopped: nothing is left running.
 */
// The SDK's "./*" export maps `x.js` to types at `x.js.d.ts`, which do not exist; each
// @ts-types names the real declarations so the SDK is type-checked rather than `any`.
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import {
  getDefaultEnvironment,
  StdioClientTransport,
} from "@modelcontextprotocol/sdk/client/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/shared/stdio"
import { deserializeMessage, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
// @ts-types="@modelcontextprotocol/sdk/shared/transport"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
// @ts-types="@modelcontextprotocol/sdk/server/index"
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  type JSONRPCMessage,
  ListToolsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js";
import { compressOutput } from "../kernel/compress.ts";
import { OstkError } from "../kernel/errors.ts";
import { precacheDenoDriver } from "./deno_precache.ts";
import type { DriverEntry } from "./driver_registry.ts";

/** The answer of one outbound tool call (the SDK's CallToolResult, loosely typed). */
export interface DriverToolResult {
  content?: {
    type: string;
    text?: string;
    mimeType?: string;
    data?: string;
    [k: string]: unknown;
  }[];
  structuredContent?: unknown;
  isError?: boolean;
  [key: string]: unknown;
}

/** A connected client and how to let it go. */
export interface DriverConnection {
  client: Client;
  via: "spawn" | "serve";
  /** The last lines the server wrote to stderr (spawned servers only). */
  stderrTail(): string;
  /** The spawned server's pid (spawned servers only). */
  pid?: number;
  /** The spawned server's exit code once it has exited (null for a signal or unknown). */
  exitCode?(): number | null;
  /** Resolves when the connection (for a spawned server: the process) is gone. */
  exited: Promise<void>;
  /**
   * Let go. A spawned server gets EOF on stdin, then SIGTERM, then SIGKILL; with `kill` (after
   * a failure) SIGTERM comes at once. Resolves once the process has exited.
   */
  close(kill?: boolean): Promise<void>;
}

/** Resolve after `ms` or when `promise` settles, whichever is first; true when it settled. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Signal a child that may already be gone. */
function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof TypeError)) throw err;
  }
}

export const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_LINE = 64 * 1024 * 1024;
const encoder = new TextEncoder();

/**
 * An MCP transport over a Unix socket connection, newline-delimited JSON-RPC as on stdio; the
 * SDK's own serializer and schema-checked deserializer handle every message.
 */
export class SocketTransport implements Transport {
  #conn: Deno.Conn;
  #closed = false;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  start(): Promise<void> {
    void this.#read();
    return Promise.resolve();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of this.#conn.readable) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
          const line = buffer.slice(0, nl).replace(/\r$/, "");
          buffer = buffer.slice(nl + 1);
          if (line === "") continue;
          try {
            this.onmessage?.(deserializeMessage(line));
          } catch (err) {
            this.onerror?.(err as Error);
          }
        }
        if (buffer.length > MAX_LINE) throw new Error(`message over ${MAX_LINE} bytes`);
      }
    } catch (err) {
      if (
        !(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset ||
          err instanceof Deno.errors.Interrupted)
      ) this.onerror?.(err as Error);
    } finally {
      await this.close();
    }
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) throw closedError();
    const bytes = encoder.encode(serializeMessage(message));
    for (let off = 0; off < bytes.length;) off += await this.#conn.write(bytes.subarray(off));
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    try {
      this.#conn.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
    this.onclose?.();
    return Promise.resolve();
  }
}

/**
 * Start `entry`'s server as a child (stdin/stdout MCP, stderr kept for error messages), in the
 * project root, with the SDK's safe default environment plus the entry's `NAME=value` words.
 */
export async function spawnDriver(
  entry: DriverEntry,
  cwd: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
  wrap?: (argv: string[]) => string[],
): Promise<DriverConnection> {
  // A Deno script's modules are fetched first, with our network and certificate settings: in
  // the sandbox it has no network, and outside it gets only a few of our variables.
  await precacheDenoDriver(entry, cwd);
  // `wrap` runs the server under something else (the sandbox helper, which execs in place).
  const [command, ...args] = wrap ? wrap(entry.command) : entry.command;
  const transport = new StdioClientTransport({
    command,
    args,
    cwd,
    env: { ...getDefaultEnvironment(), ...entry.env },
    stderr: "pipe",
  });
  let tail = "";
  transport.stderr?.on("data", (chunk: Uint8Array | string) => {
    tail = (tail + (typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk))).slice(
      -2000,
    );
  });
  const client = new Client({ name: "ostk", version: "1" });
  let gone = false;
  let markGone = () => {};
  const exited = new Promise<void>((resolve) => (markGone = resolve)).then(() =>
    void (gone = true)
  );
  transport.onclose = () => markGone(); // the SDK chains its own handler after this one
  const conn: DriverConnection = {
    client,
    via: "spawn",
    stderrTail: () => tail,
    exitCode: () => code,
    exited,
    async close(kill = false) {
      const pid = transport.pid;
      if (kill && pid !== null && !gone) {
        signal(pid, "SIGTERM");
        if (!(await within(exited, 1000)) && !gone) signal(pid, "SIGKILL");
      }
      // The SDK waits between its signals on unref'd timers; a ref'd one keeps Deno from
      // exiting mid-close (which would orphan a child that ignores EOF and SIGTERM).
      const keepAlive = setInterval(() => {}, 250);
      try {
        await client.close();
        if (pid !== null) await within(exited, 2000);
      } finally {
        clearInterval(keepAlive);
      }
    },
  };
  let code: number | null = null;
  try {
    await client.connect(transport, { timeout: timeoutMs });
    conn.pid = transport.pid ?? undefined;
    // The SDK drops the exit code; its child process object still reports it.
    (transport as unknown as {
      _process?: { on(event: "exit", fn: (c: number | null) => void): void };
    })._process?.on("exit", (c) => void (code = c));
  } catch (err) {
    await conn.close(true);
    throw describeFailure(entry.name, "start-up", err, timeoutMs, conn.stderrTail());
  }
  return conn;
}

/** Connect to a served driver's socket, or undefined when nothing serves it. */
export async function connectServed(
  socket: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<DriverConnection | undefined> {
  let raw: Deno.Conn;
  try {
    raw = await Deno.connect({ transport: "unix", path: socket });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.ConnectionRefused) {
      return undefined;
    }
    throw err;
  }
  const client = new Client({ name: "ostk", version: "1" });
  const transport = new SocketTransport(raw);
  const exited = new Promise<void>((resolve) => (transport.onclose = resolve));
  try {
    await client.connect(transport, { timeout: timeoutMs });
  } catch {
    // A serve that is stopping accepts and then hangs up: start the server ourselves instead.
    await client.close();
    return undefined;
  }
  return { client, via: "serve", stderrTail: () => "", exited, close: () => client.close() };
}

function closedError(): McpError {
  return new McpError(ErrorCode.ConnectionClosed, "Connection closed");
}

/** Turn an SDK failure into one clear OstkError naming the driver and the phase. */
export function describeFailure(
  name: string,
  phase: string,
  err: unknown,
  timeoutMs: number,
  stderrTail = "",
): OstkError {
  if (err instanceof OstkError) return err;
  // One line, so the error stays one line: the server's last words are usually the reason.
  const last = stderrTail.split("\n").map((l) => l.trim()).filter(Boolean).slice(-3).join(" | ");
  const tail = last ? ` (its stderr: ${last.slice(-400)})` : "";
  if (err instanceof McpError && err.code === ErrorCode.ConnectionClosed) {
    return new OstkError(
      "io",
      `driver '${name}' exited during ${phase}${tail}`,
      {},
      "run its command by hand to see why",
    );
  }
  if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
    return new OstkError(
      "io",
      `driver '${name}' did not answer ${phase} within ${timeoutMs} ms (stopped)${tail}`,
      {},
      "raise --timeout, or check the server",
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  if (/ENOENT|not found/i.test(message) && phase === "start-up") {
    return new OstkError(
      "not_found",
      `cannot start driver '${name}': ${message}${tail}`,
      {},
      "check its command in HUMANFILE",
    );
  }
  return new OstkError("io", `driver '${name}' failed during ${phase}: ${message}${tail}`);
}

/** List a connected driver's tools. */
export async function listTools(
  name: string,
  conn: DriverConnection,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<{ name: string; description?: string }[]> {
  try {
    return (await conn.client.listTools(undefined, { timeout: timeoutMs })).tools;
  } catch (err) {
    throw describeFailure(name, "tools/list", err, timeoutMs, conn.stderrTail());
  }
}

/** Call one tool on a connected driver. A tool that answers isError is a result, not a throw. */
export async function callTool(
  name: string,
  conn: DriverConnection,
  tool: string,
  args: Record<string, unknown>,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<DriverToolResult> {
  try {
    return await conn.client.callTool({ name: tool, arguments: args }, undefined, {
      timeout: timeoutMs,
    }) as DriverToolResult;
  } catch (err) {
    throw describeFailure(name, `the call to '${tool}'`, err, timeoutMs, conn.stderrTail());
  }
}

/** Text a server returned, compressed for a model to read (kernel/compress.ts). */
export function compressText(text: string, exitCode: number): string {
  return compressOutput(text, { exitCode }).text;
}

/** A tool result as the lines a person reads. */
export function renderResult(result: DriverToolResult): string {
  const exitCode = result.isError ? 1 : 0;
  const parts = (result.content ?? []).map((c) => {
    if (c.type === "text") return compressText(c.text ?? "", exitCode);
    if (c.type === "image" || c.type === "audio") {
      return `[${c.type} ${c.mimeType ?? "?"}, ${Math.floor((c.data?.length ?? 0) * 3 / 4)} bytes]`;
    }
    if (c.type === "resource_link") return `[resource ${String(c.uri)}]`;
    if (c.type === "resource") {
      const r = c.resource as { uri?: string; text?: string } | undefined;
      return r?.text !== undefined ? compressText(r.text, exitCode) : `[resource ${r?.uri ?? "?"}]`;
    }
    return JSON.stringify(c);
  });
  if (parts.length === 0 && result.structuredContent !== undefined) {
    parts.push(JSON.stringify(result.structuredContent, null, 2));
  }
  return parts.join("\n");
}

/** A driver kept running by `ostk driver serve`. */
export interface ServedDriver {
  socket: string;
  tools: number;
  /** Resolves when serving ends: with the reason when the server died, else undefined. */
  done: Promise<string | undefined>;
  stop(): Promise<void>;
}

/**
 * Start `entry` once and proxy MCP to it from a Unix socket: each connection gets its own SDK
 * Server whose tools/list and tools/call are forwarded to the one upstream client. When the
 * upstream exits, serving stops and `done` says why; the socket file is always removed.
 */
export async function serveDriver(
  entry: DriverEntry,
  cwd: string,
  socket: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<ServedDriver> {
  if (await connectServed(socket, timeoutMs).then((c) => c?.close().then(() => true))) {
    throw new OstkError("conflict", `driver '${entry.name}' is already served at ${socket}`);
  }
  await Deno.remove(socket).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err; // a stale socket from a killed serve
  });
  const upstream = await spawnDriver(entry, cwd, timeoutMs);
  let tools: number;
  let listener: Deno.UnixListener;
  try {
    tools = (await listTools(entry.name, upstream, timeoutMs)).length;
    listener = Deno.listen({ transport: "unix", path: socket });
    await Deno.chmod(socket, 0o600);
  } catch (err) {
    await upstream.close();
    throw err;
  }
  const servers = new Set<Server>();
  let stopping = false;
  let finish: (reason: string | undefined) => void = () => {};
  const done = new Promise<string | undefined>((resolve) => (finish = resolve));
  const shutdown = async (reason: string | undefined) => {
    if (stopping) return;
    stopping = true;
    listener.close();
    for (const server of servers) await server.close();
    await upstream.close();
    await Deno.remove(socket).catch(() => undefined);
    finish(reason);
  };
  void upstream.exited.then(() => {
    void shutdown(
      describeFailure(entry.name, "serve", closedError(), timeoutMs, upstream.stderrTail()).message,
    );
  });
  (async () => {
    try {
      for await (const conn of listener) {
        const server = new Server(
          { name: `ostk-driver-${entry.name}`, version: "1" },
          { capabilities: { tools: {} } },
        );
        server.setRequestHandler(
          ListToolsRequestSchema,
          (req) => upstream.client.listTools(req.params, { timeout: timeoutMs }),
        );
        server.setRequestHandler(
          CallToolRequestSchema,
          (req) =>
            upstream.client.callTool(req.params, undefined, { timeout: timeoutMs }) as Promise<
              CallToolResult
            >,
        );
        server.onclose = () => servers.delete(server);
        servers.add(server);
        await server.connect(new SocketTransport(conn));
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) await shutdown(String(err));
    }
  })();
  return { socket, tools, done, stop: () => shutdown(undefined) };
}
