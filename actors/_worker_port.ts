/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The worker side of the CPU worker protocol (actors/cpu_worker.ts), shared by the script and
 * model workers: requests to the host answered by id, the replies every worker handles the same
 * way, and failure reports. Each entry keeps only what is its own: how it starts and probes.
 */
import { OstkError } from "../kernel/errors.ts";
import {
  asToolResponse,
  type HostMessage,
  HostMessageSchema,
  type WorkerMessage,
} from "./cpu_worker.ts";

/** What an entry uses to talk to its host. */
export interface WorkerPort {
  post(msg: WorkerMessage): void;
  /** Send a request made with a fresh id; resolves with the host's answer to that id. */
  request<T>(make: (id: number) => WorkerMessage): Promise<T>;
  /** Aborted when the host sends `abort`. */
  signal: AbortSignal;
  /** Post `failed` for `err`, with code and site when it is a kernel error. */
  fail(err: unknown): void;
}

/** Host messages an entry handles itself (the rest are answered here). */
export type EntryMessage = Extract<
  HostMessage,
  { type: "start" | "probe" | "start_model" | "probe_fetch" }
>;

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/**
 * Wire the worker's global scope to the protocol and hand the entry-specific messages to
 * `handle`. State lives in this closure only.
 */
export function serveWorker(
  scope: typeof self,
  handle: (msg: EntryMessage, port: WorkerPort) => void,
): void {
  const controller = new AbortController();
  const waiting = new Map<number, Waiter>();
  let nextId = 0;
  const post = (msg: WorkerMessage) => scope.postMessage(msg);
  const port: WorkerPort = {
    post,
    signal: controller.signal,
    request<T>(make: (id: number) => WorkerMessage): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
        post(make(id));
      });
    },
    fail(err) {
      if (err instanceof OstkError) {
        post({ type: "failed", message: err.message, code: err.code, ...err.site });
      } else {
        post({ type: "failed", message: err instanceof Error ? err.message : String(err) });
      }
    },
  };
  const answer = (id: number, settle: (waiter: Waiter) => void) => {
    const waiter = waiting.get(id);
    waiting.delete(id);
    if (waiter) settle(waiter);
  };
  scope.onmessage = (e: MessageEvent) => {
    const parsed = HostMessageSchema.safeParse(e.data);
    if (!parsed.success) {
      post({
        type: "failed",
        message: `host sent a bad message: ${parsed.error.issues[0].message}`,
      });
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case "call_result":
        answer(msg.id, (w) => w.resolve(asToolResponse(msg.response)));
        break;
      case "call_failed":
      case "turn_failed":
        answer(msg.id, (w) => w.reject(new Error(msg.message)));
        break;
      case "turn_saved":
        answer(msg.id, (w) => w.resolve(undefined));
        break;
      case "abort":
        controller.abort();
        break;
      default:
        handle(msg, port);
    }
  };
}

/** The state of each permission inside this worker, for probes. */
export async function permissionStates(): Promise<Record<string, string>> {
  const states: Record<string, string> = {};
  for (const name of ["read", "write", "run", "net", "env", "ffi", "sys"] as const) {
    states[name] = (await Deno.permissions.query({ name })).state;
  }
  return states;
}

/** `Name: message` of a caught error, for probe reports. */
export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
