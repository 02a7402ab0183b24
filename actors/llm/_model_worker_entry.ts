/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Entry of the model CPU's Worker (started by `cpu_model_worker.ts`, narrowed to its provider's
 * host:port and its sidecar/handoff directories). It runs `ModelCpu` with the key and base URLs
 * the host resolved; each kernel call and each finished turn is a request to the host, answered
 * by id; output lines and retries are relayed.
 */
import type { ToolResponse } from "../../kernel/tools.ts";
import type { HostMessage } from "../cpu_worker.ts";
import { errorText, permissionStates, serveWorker, type WorkerPort } from "../_worker_port.ts";
import { ModelCpu } from "./cpu_model.ts";
import { ProviderError } from "./errors.ts";
import type { ModelInfo } from "./prices.ts";

async function run(
  msg: Extract<HostMessage, { type: "start_model" }>,
  port: WorkerPort,
): Promise<void> {
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
      onRetry: (info) => port.post({ type: "retry", info }),
    });
    const result = await cpu.run({
      alias: msg.alias,
      startTurn: msg.start_turn,
      signal: port.signal,
      kernel: {
        call: (tool, args, opts) =>
          port.request<ToolResponse>((id) => ({
            type: "call",
            id,
            tool,
            args,
            call_id: opts?.callId ?? "",
          })),
      },
      onTurn: (turn) => port.request((id) => ({ type: "turn", id, turn })),
      onOutput: (stream, line) => port.post({ type: "output", stream, line }),
      onStart: () => port.post({ type: "ready", turns: 0 }),
    });
    port.post({ type: "done", reason: result.reason === "aborted" ? "aborted" : "done" });
  } catch (err) {
    if (err instanceof ProviderError) {
      port.post({ type: "failed", message: err.message, code: err.code });
    } else port.fail(err);
  }
}

async function probe(url: string, port: WorkerPort): Promise<void> {
  const permissions = await permissionStates();
  let fetchError: string | null = null;
  try {
    const res = await fetch(url);
    await res.body?.cancel();
  } catch (err) {
    fetchError = errorText(err);
  }
  port.post({ type: "probe_fetch_result", permissions, fetch_error: fetchError });
}

let started = false;
serveWorker(self, (msg, port) => {
  if (msg.type === "start_model" && !started) {
    started = true;
    run(msg, port);
  } else if (msg.type === "probe_fetch") {
    probe(msg.url, port);
  }
  // start / probe belong to the script worker (actors/_script_worker_entry.ts).
});
