/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Entry of the model CPU's Worker (started by `cpu_model_worker.ts`, narrowed to its provider's
 * host:port and its sidecar/handoff directories). It runs `ModelCpu` with the key and base URLs
 * the host resolved; each kernel call and each finished turn is a request to the host, answered
 * by id; output lines and retries are relayed.
 */
import { OstkError } from "../../kernel/errors.ts";
import type { ToolResponse } from "../../kernel/tools.ts";
import {
  asToolResponse,
  type HostMessage,
  HostMessageSchema,
  type WorkerMessage,
} from "../cpu_worker.ts";
import { ModelCpu } from "./cpu_model.ts";
import { ProviderError } from "./errors.ts";
import type { ModelInfo } from "./prices.ts";

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

function serve(scope: typeof self): void {
  const controller = new AbortController();
  const waiting = new Map<number, Waiter>();
  let nextId = 0;
  let started = false;

  const post = (msg: WorkerMessage) => scope.postMessage(msg);
  const request = <T>(make: (id: number) => WorkerMessage): Promise<T> => {
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      post(make(id));
    });
  };
  const answer = (id: number, settle: (waiter: Waiter) => void) => {
    const waiter = waiting.get(id);
    waiting.delete(id);
    if (waiter) settle(waiter);
  };

  const run = async (msg: Extract<HostMessage, { type: "start_model" }>) => {
    try {
      const { spec, env } = msg;
      if (spec.kind !== "model") throw new Error(`model worker got a ${spec.kind} spec`);
      const cpu = new ModelCpu(spec, {
        root: msg.root,
        priceOverrides: msg.price_overrides as Record<string, ModelInfo>,
        providerOptions: {
          env: { get: (name) => env[name] },
          apiKey: msg.api_key,
          humanfile: "", // the host read it and resolved the key
        },
        onRetry: (info) => post({ type: "retry", info }),
      });
      const result = await cpu.run({
        alias: msg.alias,
        startTurn: msg.start_turn,
        signal: controller.signal,
        kernel: {
          call: (tool, args, opts) =>
            request<ToolResponse>((id) => ({
              type: "call",
              id,
              tool,
              args,
              call_id: opts?.callId ?? "",
            })),
        },
        onTurn: (turn) => request((id) => ({ type: "turn", id, turn })),
        onOutput: (stream, line) => post({ type: "output", stream, line }),
        onStart: () => post({ type: "ready", turns: 0 }),
      });
      post({ type: "done", reason: result.reason === "aborted" ? "aborted" : "done" });
    } catch (err) {
      if (err instanceof OstkError) {
        post({ type: "failed", message: err.message, code: err.code, ...err.site });
      } else if (err instanceof ProviderError) {
        post({ type: "failed", message: err.message, code: err.code });
      } else {
        post({ type: "failed", message: err instanceof Error ? err.message : String(err) });
      }
    }
  };

  const probe = async (url: string) => {
    const permissions: Record<string, string> = {};
    for (const name of ["read", "write", "run", "net", "env", "ffi", "sys"] as const) {
      permissions[name] = (await Deno.permissions.query({ name })).state;
    }
    let fetchError: string | null = null;
    try {
      const res = await fetch(url);
      await res.body?.cancel();
    } catch (err) {
      fetchError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    post({ type: "probe_fetch_result", permissions, fetch_error: fetchError });
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
      case "start_model":
        if (started) return;
        started = true;
        run(msg);
        break;
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
      case "probe_fetch":
        probe(msg.url);
        break;
      case "start":
      case "probe":
        break; // script worker messages (actors/_script_worker_entry.ts)
    }
  };
}

serve(self);
