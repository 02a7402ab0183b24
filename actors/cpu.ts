/**
 * The one CPU interface: what a session runs. A CPU is either a transcript replayed inside a
 * narrowed Deno Worker (`script`) or an external agent program in its own process group
 * (`command`). This file also holds `cpuRunnerLogic`, the default `cpuRunner` actor the daemon
 * provides to the session machine: it owns the CPU's I/O so the machine has none.
 */
import { fromCallback, fromPromise } from "xstate";
import type { ToolResponse } from "../kernel/tools.ts";
import { killGroup } from "../kernel/proc.ts";
import { CommandCpu, isAgentLeader } from "./cpu_command.ts";
import { ScriptCpu } from "./cpu_script.ts";
import { WorkerScriptCpu } from "./cpu_worker.ts";
import { ModelCpu } from "./llm/mod.ts";
import { WorkerModelCpu } from "./llm/cpu_model_worker.ts";
import type { RetryInfo } from "./llm/_http.ts";
import type {
  CpuExitReason,
  CpuRunnerEvent,
  CpuRunnerInput,
  CpuSpec as CpuSpecData,
  RehydratorInput,
  TurnRecord as TurnRecordData,
} from "./session_schema.ts";

/** Where a CPU's kernel calls go. `callId` lets the daemon skip calls replayed after a crash. */
export interface KernelPort {
  call(tool: string, args: unknown, opts?: { callId?: string }): Promise<ToolResponse>;
}

/** One finished turn (schema: `TurnRecordSchema` in session_schema.ts). */
export type TurnRecord = TurnRecordData;

/** What a session runs (schema: `CpuSpecSchema` in session_schema.ts). */
export type CpuSpec = CpuSpecData;

/** Everything a CPU may touch while it runs. */
export interface CpuRunContext {
  alias: string;
  kernel: KernelPort;
  /** First turn to run, 0-based: the session's `turns` count. */
  startTurn: number;
  signal: AbortSignal;
  /** The session writes its drain snapshot here; a turn counts as done only after this resolves. */
  onTurn(turn: TurnRecord): Promise<void>;
  onOutput(stream: "stdout" | "stderr", line: string): void;
  /** Called once the CPU is up (a command CPU passes its pid). */
  onStart?(info: { pid?: number }): void;
}

/** How a run ended; `code` is the exit status of a command CPU, `signal` what ended it. */
export interface CpuResult {
  reason: CpuExitReason;
  code?: number;
  signal?: string;
}

/** A CPU: run it once per session life; a revived session gets a new one. */
export interface Cpu {
  readonly kind: "script" | "command" | "model";
  run(ctx: CpuRunContext): Promise<CpuResult>;
}

/** What `createCpu` needs from its host. */
export interface CpuDeps {
  /** The daemon's socket, handed to command CPUs as `OSTK_SOCKET`. Required for `command`. */
  socketPath?: string;
  /**
   * Where a script or model CPU's loop runs. `worker` (the default) needs
   * `--unstable-worker-options`;
   * `in-process` is for hosts that cannot narrow a Worker's permissions.
   */
  scriptIsolation?: "worker" | "in-process";
  /** The project root, where a model CPU keeps its messages and handoff (default: found from cwd). */
  projectRoot?: string;
  /** Each retry of a model CPU's provider call (default: a line on the session's stderr). */
  onRetry?: (info: RetryInfo) => void | Promise<void>;
}

/**
 * The kernel call id for the `index`-th call of `turn`: the key the daemon dedupes replays by.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { callIdFor } from "./cpu.ts";
 * assert.equal(callIdFor("editor-1", 3, 0), "editor-1:3:0");
 * ```
 */
export function callIdFor(alias: string, turn: number, index: number): string {
  return `${alias}:${turn}:${index}`;
}

/**
 * Build the CPU a spec describes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCpu } from "./cpu.ts";
 * import { ScriptCpu } from "./cpu_script.ts";
 * import { WorkerScriptCpu } from "./cpu_worker.ts";
 * const script = { kind: "script" as const, script: "fixtures/agents/writer_1.jsonl" };
 * assert.ok(createCpu(script, {}) instanceof WorkerScriptCpu); // a transcript runs in a Worker
 * assert.ok(createCpu(script, { scriptIsolation: "in-process" }) instanceof ScriptCpu);
 * const command = { kind: "command" as const, command: ["sh"] };
 * assert.throws(() => createCpu(command, {}), /needs deps.socketPath/); // nowhere to call back
 * ```
 */
export function createCpu(spec: CpuSpec, deps: CpuDeps): Cpu {
  if (spec.kind === "command") {
    if (!deps.socketPath) throw new Error("createCpu: a command CPU needs deps.socketPath");
    return new CommandCpu(spec, { socketPath: deps.socketPath });
  }
  if (spec.kind === "model") {
    const options = { root: deps.projectRoot, onRetry: deps.onRetry };
    return deps.scriptIsolation === "in-process"
      ? new ModelCpu(spec, options)
      : new WorkerModelCpu(spec, options);
  }
  return deps.scriptIsolation === "in-process" ? new ScriptCpu(spec) : new WorkerScriptCpu(spec);
}

/** What the default `cpuRunner` needs from the daemon. */
export interface CpuRunnerDeps extends CpuDeps {
  /** The kernel port for one alias (the daemon's in-process kernel, with callId dedupe). */
  kernel(alias: string): KernelPort;
  /** Milliseconds since the epoch; a test clock in tests. */
  now(): number;
  /** Where a CPU's output lines go (the daemon logs or streams them). */
  onOutput?(alias: string, stream: "stdout" | "stderr", line: string): void;
  /** Each retry of a model session's provider call (the daemon audits it as `model.retry`). */
  onModelRetry?(alias: string, info: RetryInfo): void | Promise<void>;
}

/**
 * The default `cpuRunner` actor for the session machine. It waits for `cpu.start` (so a
 * session restored from a persisted snapshot does not start a CPU on its own), runs the CPU,
 * and reports back: `session.started`, `session.heartbeat` at each kernel call,
 * `session.turn_done` (then holds the CPU until `cpu.turn_saved`), and finally
 * `session.cpu_exit` or `session.crashed`. `cpu.stop` and the actor's cleanup abort the CPU.
 */
export function cpuRunnerLogic(deps: CpuRunnerDeps) {
  return fromCallback<CpuRunnerEvent, CpuRunnerInput>(({ input, sendBack, receive }) => {
    const controller = new AbortController();
    const saved = new Map<number, { resolve(): void; reject(err: unknown): void }>();
    let started = false;

    const launch = (startTurn: number) => {
      const { alias } = input;
      const kernel = deps.kernel(alias);
      const port: KernelPort = {
        call(tool, args, opts) {
          sendBack({ type: "session.heartbeat", at: deps.now() });
          return kernel.call(tool, args, opts);
        },
      };
      let cpu: Cpu;
      try {
        const onModelRetry = deps.onModelRetry;
        cpu = createCpu(
          input.cpu,
          onModelRetry ? { ...deps, onRetry: (info) => onModelRetry(alias, info) } : deps,
        );
      } catch (err) {
        sendBack({ type: "session.crashed", error: describe(err) });
        return;
      }
      cpu.run({
        alias,
        kernel: port,
        startTurn,
        signal: controller.signal,
        onStart: ({ pid }) => sendBack({ type: "session.started", at: deps.now(), pid }),
        onTurn: (turn) =>
          new Promise<void>((resolve, reject) => {
            // Registered before sending: the machine may answer within this very call.
            saved.set(turn.turn, { resolve, reject });
            sendBack({ type: "session.turn_done", turn, at: deps.now() });
          }),
        onOutput: (stream, line) => deps.onOutput?.(alias, stream, line),
      }).then(
        (result) => sendBack({ type: "session.cpu_exit", ...result }),
        (err) => sendBack({ type: "session.crashed", error: describe(err) }),
      );
    };

    receive((event) => {
      if (event.type === "cpu.start" && !started) {
        started = true;
        launch(event.startTurn);
      } else if (event.type === "cpu.stop") {
        controller.abort();
      } else if (event.type === "cpu.turn_saved") {
        saved.get(event.turn)?.resolve();
        saved.delete(event.turn);
      }
    });

    return () => {
      controller.abort();
      for (const waiter of saved.values()) {
        waiter.reject(new DOMException("session left its running state", "AbortError"));
      }
      saved.clear();
    };
  });
}

/**
 * The default `rehydrator` actor: before a revived command session spawns its agent again, end
 * what is left of the previous one (after a daemon crash the detached agent may still run).
 * The pid is only signalled when it still leads its own group and carries this alias.
 */
export function rehydratorLogic() {
  return fromPromise<void, RehydratorInput>(async ({ input }) => {
    if (input.cpu.kind !== "command" || input.pid === undefined) return;
    if (await isAgentLeader(input.pid, input.alias)) killGroup(input.pid, "SIGKILL");
  });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
