/**
 * The script CPU inside a Deno Worker with narrowed permissions: it may read its transcript and
 * nothing else, and it cannot write files, run programs, open sockets or read the environment.
 * Every kernel call is a message round trip to the host, which makes the call. Needs
 * `--unstable-worker-options` (Deno 2.9: `Worker.deno.permissions` is still unstable).
 *
 * This module is also the one schema module of the host ↔ worker protocol; the entry
 * (`_script_worker_entry.ts`) imports the schemas from here.
 */
import { z } from "zod";
import { OstkError } from "../kernel/errors.ts";
import type { ToolResponse } from "../kernel/tools.ts";
import type { Cpu, CpuResult, CpuRunContext } from "./cpu.ts";
import { CpuSpecSchema, TurnRecordSchema } from "./session_schema.ts";

/** How long an aborted worker may take to wind down before it is terminated. */
const ABORT_GRACE_MS = 1000;

const id = z.number().int().nonnegative();

/** A kernel response as it crosses into the worker (checked loosely: the host made it). */
const ToolResponseSchema = z.union([
  z.object({
    ok: z.literal(true),
    tool: z.string(),
    result: z.record(z.string(), z.unknown()),
    digest: z.string(),
  }),
  z.object({
    ok: z.literal(false),
    tool: z.string(),
    error: z.looseObject({ code: z.string(), message: z.string() }),
    digest: z.string(),
  }),
]);

/** Host → worker. */
export const HostMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("start"),
    alias: z.string(),
    script: z.string(),
    start_turn: z.number().int().nonnegative(),
  }),
  z.strictObject({ type: z.literal("call_result"), id, response: ToolResponseSchema }),
  z.strictObject({ type: z.literal("call_failed"), id, message: z.string() }),
  z.strictObject({ type: z.literal("turn_saved"), id }),
  z.strictObject({ type: z.literal("turn_failed"), id, message: z.string() }),
  z.strictObject({ type: z.literal("abort") }),
  z.strictObject({ type: z.literal("probe"), write_path: z.string() }),
  /** Start the model CPU's loop (`actors/llm/_model_worker_entry.ts`); the host resolved the key. */
  z.strictObject({
    type: z.literal("start_model"),
    alias: z.string(),
    start_turn: z.number().int().nonnegative(),
    root: z.string(),
    spec: CpuSpecSchema,
    api_key: z.string().optional(),
    /** Only the base-URL variables the provider reads; the worker has no env access. */
    env: z.record(z.string(), z.string()),
    price_overrides: z.record(z.string(), z.unknown()),
  }),
  /** Ask a model worker to fetch `url` (the tests prove it may reach its provider only). */
  z.strictObject({ type: z.literal("probe_fetch"), url: z.string() }),
]);
export type HostMessage = z.infer<typeof HostMessageSchema>;

/** Worker → host. */
export const WorkerMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("ready"), turns: z.number().int().nonnegative() }),
  z.strictObject({
    type: z.literal("call"),
    id,
    tool: z.string(),
    args: z.unknown(),
    call_id: z.string(),
  }),
  z.strictObject({ type: z.literal("turn"), id, turn: TurnRecordSchema }),
  z.strictObject({ type: z.literal("done"), reason: z.enum(["done", "aborted"]) }),
  z.strictObject({
    type: z.literal("failed"),
    message: z.string(),
    code: z.string().optional(),
    file: z.string().optional(),
    line: z.number().int().optional(),
  }),
  z.strictObject({
    type: z.literal("probe_result"),
    permissions: z.record(z.string(), z.string()),
    write_error: z.string().nullable(),
    run_error: z.string().nullable(),
  }),
  z.strictObject({
    type: z.literal("output"),
    stream: z.enum(["stdout", "stderr"]),
    line: z.string(),
  }),
  z.strictObject({
    type: z.literal("retry"),
    info: z.strictObject({
      provider: z.string(),
      attempt: z.number().int(),
      reason: z.enum(["rate_limit", "server", "network"]),
      status: z.number().int().optional(),
      delay_ms: z.number(),
      detail: z.string(),
    }),
  }),
  z.strictObject({
    type: z.literal("probe_fetch_result"),
    permissions: z.record(z.string(), z.string()),
    fetch_error: z.string().nullable(),
  }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessageSchema>;
export type ProbeResult = Extract<WorkerMessage, { type: "probe_result" }>;

/** The permissions a script worker gets: read its transcript, nothing more. */
export function scriptWorkerPermissions(script: string): Deno.PermissionOptionsObject {
  return {
    read: [script],
    write: false,
    run: false,
    net: false,
    env: false,
    ffi: false,
    sys: false,
  };
}

/** Start a script worker for `script` (an absolute path). */
export function spawnScriptWorker(script: string): Worker {
  return new Worker(new URL("./_script_worker_entry.ts", import.meta.url), {
    type: "module",
    name: `ostk-script:${script}`,
    deno: { permissions: scriptWorkerPermissions(script) },
  });
}

/** The script CPU, run in a narrowed Worker (the daemon's default). */
export class WorkerScriptCpu implements Cpu {
  readonly kind = "script" as const;
  readonly script: string;

  constructor(spec: { script: string }) {
    this.script = absolute(spec.script);
  }

  run(ctx: CpuRunContext): Promise<CpuResult> {
    if (ctx.signal.aborted) return Promise.resolve({ reason: "aborted" });
    return runCpuWorker(spawnScriptWorker(this.script), ctx, {
      label: `script worker for ${this.script}`,
      start: { type: "start", alias: ctx.alias, script: this.script, start_turn: ctx.startTurn },
      failed: (msg) => new OstkError("bad_input", msg.message, { file: msg.file, line: msg.line }),
    });
  }
}

/** How one kind of CPU worker differs: its start message, its failures, its extra messages. */
export interface CpuWorkerRun {
  /** Names the worker in error messages. */
  label: string;
  start: HostMessage;
  failed(msg: Extract<WorkerMessage, { type: "failed" }>): Error;
  /** Messages beyond the shared protocol (a model worker's output and retries). */
  other?(msg: WorkerMessage): void;
}

/**
 * The host side of the CPU worker protocol, shared by the script and model CPUs: answer the
 * worker's kernel calls and turns through `ctx`, relay abort (terminating a worker that does not
 * answer within a grace), and settle with its outcome.
 */
export function runCpuWorker(
  worker: Worker,
  ctx: CpuRunContext,
  kind: CpuWorkerRun,
): Promise<CpuResult> {
  return new Promise<CpuResult>((resolve, reject) => {
    let settled = false;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const post = (msg: HostMessage) => {
      if (!settled) worker.postMessage(msg);
    };
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(graceTimer);
      ctx.signal.removeEventListener("abort", onAbort);
      worker.terminate();
      settle();
    };
    const fail = (err: Error) => finish(() => reject(err));
    const onAbort = () => {
      post({ type: "abort" });
      // A worker stuck in a synchronous loop never answers; terminate it after a grace.
      graceTimer = setTimeout(() => finish(() => resolve({ reason: "aborted" })), ABORT_GRACE_MS);
    };

    worker.onmessage = (e: MessageEvent) => {
      const parsed = WorkerMessageSchema.safeParse(e.data);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        fail(new OstkError("bad_input", `${kind.label} sent a bad message: ${issue.message}`));
        return;
      }
      const msg = parsed.data;
      switch (msg.type) {
        case "ready":
          ctx.onStart?.({});
          break;
        case "call":
          ctx.kernel.call(msg.tool, msg.args, { callId: msg.call_id }).then(
            (response) => post({ type: "call_result", id: msg.id, response: toWire(response) }),
            (err) => post({ type: "call_failed", id: msg.id, message: describe(err) }),
          );
          break;
        case "turn":
          ctx.onTurn(msg.turn).then(
            () => post({ type: "turn_saved", id: msg.id }),
            (err) => post({ type: "turn_failed", id: msg.id, message: describe(err) }),
          );
          break;
        case "done":
          finish(() => resolve({ reason: msg.reason }));
          break;
        case "failed":
          fail(kind.failed(msg));
          break;
        default:
          kind.other?.(msg);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault(); // handled here; do not let it take the host down
      fail(new Error(`${kind.label} failed: ${e.message}`));
    };
    worker.onmessageerror = () => fail(new Error(`${kind.label} sent an unreadable message`));
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    post(kind.start);
  });
}

/**
 * Ask a script worker, started exactly as a CPU's would be, what it may do: its permission
 * states, and what happened when it tried to write `writePath` and to run a program. For
 * `ostk inspect` and for the tests that prove the narrowing.
 */
export function probeScriptWorker(script: string, writePath: string): Promise<ProbeResult> {
  const worker = spawnScriptWorker(absolute(script));
  return new Promise<ProbeResult>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent) => {
      const parsed = WorkerMessageSchema.safeParse(e.data);
      if (parsed.success && parsed.data.type === "probe_result") {
        worker.terminate();
        resolve(parsed.data);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`script worker probe failed: ${e.message}`));
    };
    worker.postMessage({ type: "probe", write_path: writePath } satisfies HostMessage);
  });
}

type WireToolResponse = z.infer<typeof ToolResponseSchema>;

/** Narrow a checked response back to the kernel's type (the schema is looser on `code`). */
export function asToolResponse(response: WireToolResponse): ToolResponse {
  return response as ToolResponse;
}

/** A kernel response as the wire schema types it (ToolError has no index signature). */
export function toWire(response: ToolResponse): WireToolResponse {
  return response as WireToolResponse;
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
