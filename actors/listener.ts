/**
 * The socket listener's work: accept clients on a Unix socket, frame and validate each line,
 * hand valid requests to the daemon's router, and answer every bad one with a JSON-RPC error
 * while everyone else keeps being served.
 */
import { OstkError } from "../kernel/errors.ts";
import { describeIssue } from "../kernel/audit_schema.ts";
import { readFrames } from "./framing.ts";
import {
  fail,
  type MethodName,
  METHODS,
  ok,
  RPC_ERRORS,
  rpcCodeFor,
  type RpcNotification,
  RpcRequest,
  type RpcResponse,
} from "./protocol.ts";

/** A JSON-RPC failure a handler may throw on purpose. */
export class RpcFailure extends Error {
  readonly code: number;
  readonly data: unknown;
  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

/** One connected client as the router sees it. */
export interface Connection {
  readonly id: number;
  attached?: string;
  name?: string;
  closed: boolean;
  send(message: RpcResponse | RpcNotification): void;
  /** Run when the connection goes away (subscriptions register their cleanup here). */
  onClose: (() => void)[];
}

export type Router = (conn: Connection, method: MethodName, params: unknown) => Promise<unknown>;

export interface ServeOptions {
  path: string;
  route: Router;
  maxLineBytes: number;
  signal: AbortSignal;
  /** Called once the socket is bound and chmod'ed, so starters can wait for readiness. */
  onReady?: () => void;
}

let nextConnId = 1;

/** Bind, serve until `signal` aborts, then close every connection and remove the socket. */
export async function serveSocket(options: ServeOptions): Promise<void> {
  const listener = Deno.listen({ transport: "unix", path: options.path });
  // Mode 0600 so other local users cannot drive the kernel; set before announcing readiness.
  Deno.chmodSync(options.path, 0o600);
  const conns = new Set<Deno.UnixConn>();
  const stop = () => {
    listener.close();
    for (const c of conns) closeQuietly(c);
  };
  options.signal.addEventListener("abort", stop, { once: true });
  options.onReady?.();
  try {
    for await (const conn of listener) {
      conns.add(conn);
      handleConnection(conn, options).finally(() => conns.delete(conn));
    }
  } catch (err) {
    if (!options.signal.aborted) throw err;
  } finally {
    options.signal.removeEventListener("abort", stop);
    removeSocket(options.path);
  }
}

function removeSocket(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      console.error(`ostk listen: ${(err as Error).message}`);
    }
  }
}

function closeQuietly(conn: Deno.UnixConn): void {
  try {
    conn.close();
  } catch (err) {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}

async function handleConnection(raw: Deno.UnixConn, options: ServeOptions): Promise<void> {
  const encoder = new TextEncoder();
  let writing = Promise.resolve();
  const conn: Connection = {
    id: nextConnId++,
    closed: false,
    onClose: [],
    send(message) {
      if (conn.closed) return;
      const bytes = encoder.encode(JSON.stringify(message) + "\n");
      // One queue per connection keeps lines whole and in order; a dead peer just ends it.
      writing = writing.then(async () => {
        let off = 0;
        while (off < bytes.length && !conn.closed) off += await raw.write(bytes.subarray(off));
      }).catch(() => {
        conn.closed = true;
      });
    },
  };
  try {
    for await (const frame of readFrames(raw.readable, options.maxLineBytes)) {
      if ("tooLong" in frame) {
        conn.send(
          fail(
            null,
            RPC_ERRORS.tooLarge,
            `message of ${frame.tooLong} bytes exceeds the ${options.maxLineBytes}-byte limit`,
          ),
        );
        continue;
      }
      if (frame.line.trim() === "") continue;
      const response = await answer(conn, frame.line, options.route);
      if (response) conn.send(response);
    }
  } catch (err) {
    // A client that vanishes mid-message harms no one: its connection simply ends.
    if (
      !(err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BadResource ||
        err instanceof Deno.errors.Interrupted ||
        err instanceof Deno.errors.BrokenPipe)
    ) {
      console.error(`ostk listen: connection ${conn.id}: ${(err as Error).message}`);
    }
  } finally {
    conn.closed = true;
    for (const cleanup of conn.onClose) cleanup();
    await writing;
    closeQuietly(raw);
  }
}

/** Parse, validate and route one line; undefined for notifications (no id, no answer). */
async function answer(
  conn: Connection,
  line: string,
  route: Router,
): Promise<RpcResponse | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return fail(null, RPC_ERRORS.parse, `invalid JSON: ${(err as Error).message}`);
  }
  const id = typeof value === "object" && value !== null && "id" in value &&
      (typeof value.id === "string" || typeof value.id === "number")
    ? value.id
    : null;
  const rawParams = (value as { params?: unknown } | null)?.params;
  if (
    typeof rawParams === "object" && rawParams !== null && Object.hasOwn(rawParams, "__proto__")
  ) {
    // Copied into a plain object, this key would set a prototype instead of failing the schema.
    return fail(id, RPC_ERRORS.invalidParams, "params may not contain a '__proto__' key");
  }
  const request = RpcRequest.safeParse(value);
  if (!request.success) {
    return fail(id, RPC_ERRORS.invalidRequest, `invalid request: ${describeIssue(request.error)}`);
  }
  const { method, params } = request.data;
  // Own properties only: "constructor" or "toString" must be unknown methods, not prototype hits.
  const schema = Object.hasOwn(METHODS, method)
    ? (METHODS as Record<string, (typeof METHODS)[MethodName]>)[method]
    : undefined;
  if (!schema) {
    return fail(id, RPC_ERRORS.methodNotFound, `unknown method '${method}'`, {
      methods: Object.keys(METHODS),
    });
  }
  const parsed = schema.safeParse(params ?? {});
  if (!parsed.success) {
    return fail(id, RPC_ERRORS.invalidParams, `${method}: ${describeIssue(parsed.error)}`);
  }
  try {
    const result = await route(conn, method as MethodName, parsed.data);
    return request.data.id === undefined ? undefined : ok(request.data.id, result);
  } catch (err) {
    if (request.data.id === undefined) return undefined;
    if (err instanceof RpcFailure) return fail(id, err.code, err.message, err.data);
    if (err instanceof OstkError) {
      return fail(id, rpcCodeFor(err.code), err.toLine(), err.details);
    }
    console.error(`ostk listen: ${method}: ${(err as Error).stack ?? err}`);
    return fail(id, RPC_ERRORS.internal, `internal error in ${method}: ${(err as Error).message}`);
  }
}
