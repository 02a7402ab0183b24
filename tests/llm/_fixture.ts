/**
 * Shared test scaffolding for the model CPU: a scratch project with an in-process kernel
 * behind a KernelPort, a recording run context, and instant retries (tests never sleep).
 */
import { loadOrCreateOperatorKey } from "../../kernel/identity.ts";
import { type OstkPaths, ostkPaths } from "../../kernel/layout.ts";
import { initProject } from "../../kernel/project_init.ts";
import { Kernel } from "../../kernel/tools.ts";
import type { CpuRunContext, KernelPort, TurnRecord } from "../../actors/cpu.ts";
import type { RetryInfo, RetryPolicy } from "../../actors/llm/_http.ts";
import { anthropicWire } from "./servers/anthropic.ts";
import { ollamaWire } from "./servers/ollama.ts";
import { openAiCompatibleWire, openAiWire } from "./servers/openai.ts";

export const WIRES = [anthropicWire, openAiWire, openAiCompatibleWire, ollamaWire];

/** Retries that wait for nothing but still report the delay they would have waited. */
export function instantRetry(maxRetries = 3): Partial<RetryPolicy> {
  return { maxRetries, sleep: () => Promise.resolve(), random: () => 1 };
}

/** A read-only env for `providerFor` (tests never touch the process env). */
export function envOf(vars: Record<string, string>): { get(name: string): string | undefined } {
  return { get: (name) => vars[name] };
}

export interface Project {
  root: string;
  paths: OstkPaths;
  kernel: Kernel;
  port(alias: string, hook?: (tool: string, callId?: string) => void): KernelPort;
}

/** A fresh project with an operator key under a scratch dir, removed afterwards. */
export async function withProject(fn: (p: Project) => Promise<void>): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_llm_" });
  let kernel: Kernel | undefined;
  try {
    const key = await loadOrCreateOperatorKey(`${scratch}/key/identity.key`);
    await Deno.mkdir(`${scratch}/proj`);
    await initProject(`${scratch}/proj`, key);
    const root = await Deno.realPath(`${scratch}/proj`);
    const paths = ostkPaths(root);
    kernel = new Kernel(paths, { signer: key.signer, pin: "default", auditReads: true });
    const k = kernel;
    await fn({
      root,
      paths,
      kernel: k,
      port: (alias, hook) => ({
        call: (tool, args, opts) => {
          hook?.(tool, opts?.callId);
          return k.call(tool, args, { alias, callId: opts?.callId });
        },
      }),
    });
  } finally {
    kernel?.close();
    await Deno.remove(scratch, { recursive: true });
  }
}

/** A run context that records turns and output. */
export function runContext(
  kernel: KernelPort,
  overrides: Partial<CpuRunContext> = {},
): { ctx: CpuRunContext; turns: TurnRecord[]; output: string[] } {
  const turns: TurnRecord[] = [];
  const output: string[] = [];
  const ctx: CpuRunContext = {
    alias: "model-1",
    kernel,
    startTurn: 0,
    signal: AbortSignal.timeout(20_000),
    onTurn: (turn) => {
      turns.push(turn);
      return Promise.resolve();
    },
    onOutput: (stream, line) => output.push(`${stream}: ${line}`),
    ...overrides,
  };
  return { ctx, turns, output };
}

/** Collects retry reports. */
export function retryLog(): { infos: RetryInfo[]; onRetry(info: RetryInfo): void } {
  const infos: RetryInfo[] = [];
  return { infos, onRetry: (info) => void infos.push(info) };
}
