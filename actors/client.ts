/** A socket client for the daemon: requests with ids, responses matched, events delivered. */
import { OstkError } from "../kernel/errors.ts";
import { readFrames } from "./framing.ts";
import {
  DEFAULT_MAX_LINE_BYTES,
  type MethodName,
  type MethodParams,
  RPC_ERRORS,
  RpcInbound,
  type RpcNotification,
} from "./protocol.ts";

/** An error the daemon answered with (or "closed" when it stopped answering). */
export class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;
  /** The request it answers, so a caller can say which one failed. */
  readonly method?: string;
  constructor(code: number, message: string, data?: unknown, method?: string) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
    this.method = method;
  }
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * One connection to a daemon.
 *
 * @example
 * ```ts ignore
 * const client = await DaemonClient.connect("/proj/.ostk/ostk.sock");
 * console.log(await client.request("daemon/status", {}));
 * client.close();
 * ```
 */
export class DaemonClient {
  #conn: Deno.UnixConn;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #onEvent: (event: RpcNotification["params"]) => void = () => {};
  #closed = false;
  /**
   * Settles when the connection ends: resolves when the daemon closed it or `close` was called,
   * rejects with what broke the read loop (an event handler that threw, say).
   */
  readonly done: Promise<void>;

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
    this.done = this.#readLoop();
    // Most callers never await `done`; the failure also reaches every request still waiting
    // (see #rejectAll), so an unobserved rejection here must not end the process.
    this.done.catch((err) => void err);
  }

  /** Connect, or throw `not_found` when no daemon answers at `path`. */
  static async connect(path: string): Promise<DaemonClient> {
    try {
      return new DaemonClient(await Deno.connect({ transport: "unix", path }));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.ConnectionRefused) {
        throw new OstkError(
          "not_found",
          `no daemon is listening at ${path}`,
          {},
          "start one with 'ostk listen'",
        );
      }
      throw err;
    }
  }

  /** Where server events (audit rows, output, session states) go. */
  onEvent(handler: (event: RpcNotification["params"]) => void): void {
    this.#onEvent = handler;
  }

  /** Send a request and wait for its answer. */
  request<M extends MethodName>(method: M, params: MethodParams<M>): Promise<unknown> {
    if (this.#closed) {
      return Promise.reject(
        new RpcError(RPC_ERRORS.closed, "connection closed", undefined, method),
      );
    }
    const id = this.#nextId++;
    const line = JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n";
    const answer = new Promise<unknown>((resolve, reject) =>
      this.#pending.set(id, { method, resolve, reject })
    );
    this.#write(line).catch((err) => {
      this.#pending.get(id)?.reject(err);
      this.#pending.delete(id);
    });
    return answer;
  }

  /** Send raw bytes (tests use this to send malformed input). */
  async sendRaw(text: string): Promise<void> {
    await this.#write(text);
  }

  async #write(text: string): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Close; requests still waiting are rejected with a "closed" error. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
    this.#rejectAll();
  }

  #rejectAll(failure?: unknown): void {
    for (const pending of this.#pending.values()) {
      pending.reject(
        failure instanceof Error
          ? failure
          : new RpcError(RPC_ERRORS.closed, "connection closed", undefined, pending.method),
      );
    }
    this.#pending.clear();
  }

  async #readLoop(): Promise<void> {
    let failure: unknown;
    try {
      for await (const frame of readFrames(this.#conn.readable, DEFAULT_MAX_LINE_BYTES * 64)) {
        if (!("line" in frame)) continue;
        const parsed = RpcInbound.safeParse(parseJson(frame.line));
        if (!parsed.success) continue;
        const msg = parsed.data;
        if ("method" in msg) {
          this.#onEvent(msg.params as RpcNotification["params"]);
          continue;
        }
        const pending = typeof msg.id === "number" ? this.#pending.get(msg.id) : undefined;
        if (!pending) continue;
        this.#pending.delete(msg.id as number);
        if ("error" in msg) {
          pending.reject(
            new RpcError(msg.error.code, msg.error.message, msg.error.data, pending.method),
          );
        } else pending.resolve(msg.result);
      }
    } catch (err) {
      if (
        !(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset ||
          err instanceof Deno.errors.Interrupted)
      ) {
        failure = err;
        throw err;
      }
    } finally {
      this.#closed = true;
      this.#rejectAll(failure);
    }
  }
}

/** A line that is not JSON is skipped like one that fails the schema. */
function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}
