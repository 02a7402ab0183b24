/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Entry of the script CPU's Worker (started by `cpu_worker.ts` with read access to one
 * transcript and nothing else). It parses the transcript and runs the turn loop; each kernel
 * call and each finished turn is a request to the host, answered by id.
 */
import { OstkError } from "../kernel/errors.ts";
import { parseTranscript, runTurns } from "./cpu_script.ts";
import {
  asToolResponse,
  type HostMessage,
  HostMessageSchema,
  type WorkerMessage,
} from "./cpu_worker.ts";

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** Wire the worker's global scope to the protocol. State lives in this closure only. */
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

  const run = async (msg: Extract<HostMessage, { type: "start" }>) => {
    try {
      const turns = parseTranscript(await Deno.readTextFile(msg.script), msg.script);
      post({ type: "ready", turns: turns.length });
      const reason = await runTurns(turns, {
        alias: msg.alias,
        startTurn: msg.start_turn,
        signal: controller.signal,
        call: (tool, args, callId) =>
          request((id) => ({ type: "call", id, tool, args, call_id: callId })),
        onTurn: (turn) => request((id) => ({ type: "turn", id, turn })),
      });
      post({ type: "done", reason });
    } catch (err) {
      if (err instanceof OstkError) {
        post({ type: "failed", message: err.message, code: err.code, ...err.site });
      } else {
        post({ type: "failed", message: err instanceof Error ? err.message : String(err) });
      }
    }
  };

  const probe = async (writePath: string) => {
    const permissions: Record<string, string> = {};
    for (const name of ["read", "write", "run", "net", "env", "ffi", "sys"] as const) {
      permissions[name] = (await Deno.permissions.query({ name })).state;
    }
    let writeError: string | null = null;
    try {
      await Deno.writeTextFile(writePath, "a script worker must not be able to write this\n");
    } catch (err) {
      writeError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    let runError: string | null = null;
    try {
      await new Deno.Command("true").output();
    } catch (err) {
      runError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    post({ type: "probe_result", permissions, write_error: writeError, run_error: runError });
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
      case "start":
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
      case "probe":
        probe(msg.write_path);
        break;
      case "start_model":
      case "probe_fetch":
        break; // model worker messages (actors/llm/_model_worker_entry.ts)
    }
  };
}

serve(self);
