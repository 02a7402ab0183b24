/**
 * The model CPU inside a Deno Worker with narrowed permissions: it may open a socket to its
 * provider's host:port only, read and write its sidecar (`.ostk/drain`) and handoff
 * (`.ostk/handoff`) directories only, and it cannot read the environment, run programs or load
 * libraries. The host resolves the API key, the base URL and the PRICE lines before it starts
 * the worker. Every kernel call and every finished turn is a message round trip to the host, as
 * for the script CPU (the protocol's schemas live in `../cpu_worker.ts`). Needs
 * `--unstable-worker-options`.
 */
import { findRoot } from "../../kernel/layout.ts";
import type { Cpu, CpuResult, CpuRunContext } from "../cpu.ts";
import {
  describe,
  type HostMessage,
  runCpuWorker,
  type WorkerMessage,
  WorkerMessageSchema,
} from "../cpu_worker.ts";
import type { RetryInfo } from "./_http.ts";
import type { ModelCpuSpec } from "./cpu_model.ts";
import { readHumanfile } from "./cpu_model.ts";
import { readPriceOverrides } from "./prices.ts";
import { BASE_URL_VARS, parseModelSpec, providerBaseUrl } from "./provider.ts";
import { keySourceFor } from "./secrets.ts";

/** What the host resolved for one model worker. */
export interface ModelWorkerPlan {
  root: string;
  /** `host:port` of the provider's base URL: the only address the worker may reach. */
  net: string;
  start: Omit<Extract<HostMessage, { type: "start_model" }>, "alias" | "start_turn">;
}

/** `host:port` of a URL (the scheme's default port when it names none). */
export function hostPort(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return `${u.hostname}:${port}`;
}

/** Resolve, on the host, everything the worker may not look up itself (the key among it). */
export async function planModelWorker(
  spec: ModelCpuSpec,
  options: { root?: string; env?: { get(name: string): string | undefined } } = {},
): Promise<ModelWorkerPlan> {
  const hostEnv = options.env ?? Deno.env;
  const root = absolute(options.root ?? await findRoot());
  const parsed = parseModelSpec(spec.model);
  const env: Record<string, string> = {};
  for (const name of BASE_URL_VARS) {
    const value = hostEnv.get(name);
    if (value !== undefined) env[name] = value;
  }
  const humanfile = await readHumanfile(root);
  const apiKey = await keySourceFor(parsed.provider, { env: hostEnv, humanfile }).get();
  return {
    root,
    net: hostPort(providerBaseUrl(parsed, hostEnv)),
    start: {
      type: "start_model",
      root,
      spec,
      ...(apiKey === undefined ? {} : { api_key: apiKey }),
      env,
      price_overrides: readPriceOverrides(root),
    },
  };
}

/** The permissions a model worker gets. */
export function modelWorkerPermissions(root: string, net: string): Deno.PermissionOptionsObject {
  const dirs = [`${root}/.ostk/drain`, `${root}/.ostk/handoff`];
  return { read: dirs, write: dirs, net: [net], env: false, run: false, ffi: false, sys: false };
}

/** Start a model worker narrowed to `root`'s sidecar/handoff dirs and `net`. */
export function spawnModelWorker(root: string, net: string): Worker {
  return new Worker(new URL("./_model_worker_entry.ts", import.meta.url), {
    type: "module",
    name: `ostk-model:${net}`,
    deno: { permissions: modelWorkerPermissions(root, net) },
  });
}

/** The model CPU, run in a narrowed Worker (the daemon's default). */
export class WorkerModelCpu implements Cpu {
  readonly kind = "model" as const;
  readonly spec: ModelCpuSpec;
  #options: { root?: string; onRetry?: (info: RetryInfo) => void | Promise<void> };

  constructor(
    spec: ModelCpuSpec,
    options: { root?: string; onRetry?: (info: RetryInfo) => void | Promise<void> } = {},
  ) {
    this.spec = spec;
    this.#options = options;
  }

  async run(ctx: CpuRunContext): Promise<CpuResult> {
    if (ctx.signal.aborted) return { reason: "aborted" };
    const plan = await planModelWorker(this.spec, { root: this.#options.root });
    if (ctx.signal.aborted) return { reason: "aborted" };
    const onRetry = this.#options.onRetry;
    return await runCpuWorker(spawnModelWorker(plan.root, plan.net), ctx, {
      label: `model worker for ${this.spec.model}`,
      start: { ...plan.start, alias: ctx.alias, start_turn: ctx.startTurn },
      failed: (msg) => new Error(msg.message),
      other: (msg) => {
        if (msg.type === "output") ctx.onOutput(msg.stream, msg.line);
        else if (msg.type === "retry") {
          if (onRetry) {
            Promise.resolve(onRetry(msg.info)).catch((err) =>
              ctx.onOutput("stderr", `[llm] retry hook failed: ${describe(err)}`)
            );
          } else {
            const r = msg.info;
            ctx.onOutput(
              "stderr",
              `[llm] retry ${r.attempt} (${r.reason}${
                r.status ? ` ${r.status}` : ""
              }) in ${r.delay_ms} ms`,
            );
          }
        }
      },
    });
  }
}

/** What a model worker reported when asked to fetch a URL. */
export type FetchProbeResult = Extract<WorkerMessage, { type: "probe_fetch_result" }>;

/**
 * Start a model worker exactly as a CPU's would be (for `spec` under `root`) and ask it to
 * fetch `url`: its permission states, and the error the fetch met (null if it went through).
 */
export async function probeModelWorker(
  spec: ModelCpuSpec,
  root: string,
  url: string,
): Promise<FetchProbeResult> {
  const plan = await planModelWorker(spec, { root });
  const worker = spawnModelWorker(plan.root, plan.net);
  return await new Promise<FetchProbeResult>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent) => {
      const parsed = WorkerMessageSchema.safeParse(e.data);
      if (parsed.success && parsed.data.type === "probe_fetch_result") {
        worker.terminate();
        resolve(parsed.data);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`model worker probe failed: ${e.message}`));
    };
    worker.postMessage({ type: "probe_fetch", url } satisfies HostMessage);
  });
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}
