/**
 * The model CPU: an agent loop over a language model. Each turn is one model call with the
 * kernel tools; the tool calls run through the session's kernel port (call id
 * `alias:turn:index`), their results (masked of keys, with the digest) go back to the model,
 * and the loop ends when the model answers without tool calls. Tokens per turn come from the
 * provider's usage. The conversation lives in the sidecar (sidecar.ts), the pressure states
 * and budgets in lifecycle.ts, the handoff note in handoff.ts.
 */
import { findRoot } from "../../kernel/layout.ts";
import type { ToolResponse } from "../../kernel/tools.ts";
import { callIdFor, type Cpu, type CpuResult, type CpuRunContext } from "../cpu.ts";
import { summarizeCall } from "../cpu_script.ts";
import type { CallRecord, CpuSpec } from "../session_schema.ts";
import { ProviderError } from "./errors.ts";
import type { RetryInfo } from "./_http.ts";
import { HANDOFF_PROMPT, writeHandoff } from "./handoff.ts";
import { exceededLimit, nextPressure, type Pressure, type Spent } from "./lifecycle.ts";
import { costUsd, type ModelInfo, modelInfo, readPriceOverrides } from "./prices.ts";
import {
  type Message,
  type ModelProvider,
  parseModelSpec,
  providerFor,
  type ProviderOptions,
  type ToolCall,
  type ToolResult,
} from "./provider.ts";
import { maskSecrets } from "./secrets.ts";
import { appendSidecar, type FileTouch, loadSidecar, sidecarPath, touchFile } from "./sidecar.ts";
import { kernelTool, kernelToolDefs } from "./tool_defs.ts";
import { collectTurn } from "./turn.ts";

/** The `model` variant of a CPU spec. */
export type ModelCpuSpec = Extract<CpuSpec, { kind: "model" }>;

/** What a host may inject: the project root, a provider (tests, benches), hooks. */
export interface ModelCpuOptions {
  /** The project root; default: the nearest `.ostk/` above the working directory. */
  root?: string;
  provider?: ModelProvider;
  providerOptions?: ProviderOptions;
  /** Each retry of a model call (default: a line on the session's stderr). */
  onRetry?: (info: RetryInfo) => void | Promise<void>;
  /** Each change of pressure state, with the share of the window the last call used. */
  onPressure?: (state: Pressure, share: number) => void;
  /** PRICE overrides already read (a worker cannot read HUMANFILE); default: read from root. */
  priceOverrides?: Record<string, ModelInfo>;
  system?: string;
  maxTokens?: number;
  now?: () => number;
}

export const DEFAULT_SYSTEM = [
  "You are a coding agent working in a project run by ostk.",
  "Read and change files only with the tools. The kernel versions every file (gen): pass",
  "expected_gen when you edit what you read, and re-read when an edit is refused as stale.",
  "After each tool result a short digest says what moved in the project.",
  "When the task is done, reply with a short summary and no tool calls.",
].join("\n");

const DEFAULT_MAX_TOKENS = 8192;
const MAX_RESULT_CHARS = 64_000;
/** Marks a tool call whose arguments did not parse; kept in the call so a replay fails alike. */
const BAD_ARGS = "__ostk_bad_arguments";

/**
 * A model session's CPU.
 *
 * @example
 * ```ts ignore
 * const cpu = new ModelCpu({ kind: "model", model: "anthropic:claude-sonnet-4", task: "fix #12" });
 * await cpu.run(ctx);
 * ```
 */
export class ModelCpu implements Cpu {
  readonly kind = "model" as const;
  readonly spec: ModelCpuSpec;
  #options: ModelCpuOptions;

  constructor(spec: ModelCpuSpec, options: ModelCpuOptions = {}) {
    this.spec = spec;
    this.#options = options;
  }

  async run(ctx: CpuRunContext): Promise<CpuResult> {
    const { spec } = this;
    const opts = this.#options;
    const now = opts.now ?? Date.now;
    const root = opts.root ?? await findRoot();
    const info = modelInfo(
      parseModelSpec(spec.model),
      spec.context_window,
      opts.priceOverrides ?? readPriceOverrides(root),
    );
    const onRetry = opts.onRetry ?? ((r: RetryInfo) =>
      ctx.onOutput(
        "stderr",
        `[llm] retry ${r.attempt} (${r.reason}${
          r.status ? ` ${r.status}` : ""
        }) in ${r.delay_ms} ms`,
      ));
    const provider = opts.provider ?? providerFor(spec.model, {
      ...opts.providerOptions,
      humanfile: opts.providerOptions?.humanfile ?? await readHumanfile(root),
      onRetry,
    });
    const secrets = await provider.secrets();
    const mask = (text: string) => maskSecrets(text, secrets);
    const path = sidecarPath(root, ctx.alias);
    const saved = await loadSidecar(path, ctx.startTurn);
    if (saved.missingTurns > 0) {
      ctx.onOutput("stderr", `[llm] ${saved.missingTurns} earlier turns have no saved messages`);
    }
    if (info.priced === false && spec.limits?.budget_usd !== undefined) {
      ctx.onOutput(
        "stderr",
        `[llm] no price known for ${spec.model}; LIMIT budget_usd not enforced`,
      );
    }
    const messages: Message[] = saved.messages;
    const files = saved.files;
    const spent: Spent = {
      usd: saved.usd,
      tokens: saved.tokens,
      turns: ctx.startTurn,
      wallMs: saved.wallMs,
    };
    let pending = saved.pending;
    let pressure = saved.pressure;
    const setPressure = (next: Pressure, share: number) => {
      if (next === pressure) return;
      pressure = next;
      opts.onPressure?.(next, share);
      ctx.onOutput("stderr", `[llm] ${next} (context ${Math.round(share * 100)}%)`);
    };
    const handoff = async (reason: string, agentText?: string) => {
      const lastText = [...messages].reverse().find((m) => m.role === "assistant");
      const note = await writeHandoff(root, {
        alias: ctx.alias,
        model: spec.model,
        reason,
        task: spec.task ?? "",
        agentText,
        lastText: lastText?.role === "assistant" ? lastText.text : undefined,
        files,
        turns: spent.turns,
        tokens: spent.tokens,
        usd: spent.usd,
      });
      ctx.onOutput("stderr", `[llm] handoff written to ${note}`);
    };
    const tools = kernelToolDefs();
    ctx.onStart?.({});
    if (pressure === "dead") return { reason: "done" }; // its handoff is already written

    for (let turn = ctx.startTurn;; turn++) {
      if (ctx.signal.aborted) return { reason: "aborted" };
      const started = now();
      // Pressure before this turn decides it: a dying session's next turn is its last.
      const draining = pressure === "dying" || pressure === "draining";
      let added: Message[];
      let usage: { input_tokens: number; output_tokens: number };
      if (pending) {
        ({ messages: added, usage } = pending);
        pending = undefined;
      } else {
        const limit = exceededLimit(spec.limits ?? {}, spent);
        if (limit) {
          await handoff(limit);
          return { reason: "done" };
        }
        added = [];
        if (messages.length === 0) added.push({ role: "user", text: spec.task ?? "" });
        if (draining) {
          setPressure("draining", 1);
          added.push({ role: "user", text: HANDOFF_PROMPT });
        }
        let reply;
        try {
          reply = await collectTurn(
            provider.chat({
              system: opts.system ?? DEFAULT_SYSTEM,
              messages: [...messages, ...added],
              tools: draining ? [] : tools,
              maxTokens: opts.maxTokens ?? DEFAULT_MAX_TOKENS,
              signal: ctx.signal,
            }),
            provider.id,
          );
        } catch (err) {
          if (ctx.signal.aborted) return { reason: "aborted" };
          if (err instanceof ProviderError) {
            throw new ProviderError(err.code, mask(err.message), err.status);
          }
          throw err;
        }
        usage = reply.usage;
        const calls: ToolCall[] = reply.calls.map((c) => ({
          id: c.id,
          name: c.name,
          args: c.args ?? { [BAD_ARGS]: c.error ?? "unreadable arguments" },
        }));
        added.push({ role: "assistant", text: reply.text, tool_calls: calls });
        const usd = costUsd(info, usage);
        await appendSidecar(path, { v: 1, phase: "call", turn, messages: added, usage, usd });
        spent.usd += usd;
        spent.tokens += usage.input_tokens + usage.output_tokens;
      }
      const reply = added.at(-1);
      const calls = reply?.role === "assistant" ? reply.tool_calls : [];

      const records: CallRecord[] = [];
      const results: ToolResult[] = [];
      const touched: Record<string, FileTouch> = {};
      if (!draining) {
        for (const [index, call] of calls.entries()) {
          const outcome = await raceAbort(
            runTool(ctx, call, callIdFor(ctx.alias, turn, index), mask, touched),
            ctx.signal,
          );
          if (outcome === ABORTED) return { reason: "aborted" };
          records.push(outcome.record);
          results.push(outcome.result);
        }
      }
      const share = (usage.input_tokens + usage.output_tokens) / info.contextWindow;
      const used = usage.input_tokens + usage.output_tokens;
      setPressure(draining ? "dead" : nextPressure(pressure, used, info.contextWindow), share);
      const toolMessages: Message[] = results.length > 0 ? [{ role: "tool", results }] : [];
      const wallMs = now() - started;
      await appendSidecar(path, {
        v: 1,
        phase: "done",
        turn,
        messages: toolMessages,
        pressure,
        files: touched,
        wall_ms: wallMs,
      });
      messages.push(...added, ...toolMessages);
      for (const [file, t] of Object.entries(touched)) touchFile(files, file, t.gen, t.wrote);
      spent.wallMs += wallMs;
      spent.turns = turn + 1;
      const tokens = { in: usage.input_tokens, out: usage.output_tokens };
      const saved = await raceAbort(ctx.onTurn({ turn, calls: records, tokens }), ctx.signal);
      if (saved === ABORTED) return { reason: "aborted" };
      if (draining) {
        await handoff(
          `context window ${Math.round(share * 100)}% full`,
          reply?.role === "assistant" ? reply.text : "",
        );
        return { reason: "done" };
      }
      if (calls.length === 0) return { reason: "done" };
    }
  }
}

/** Run one tool call through the kernel; a call the kernel cannot take becomes an error result. */
async function runTool(
  ctx: CpuRunContext,
  call: ToolCall,
  callId: string,
  mask: (text: string) => string,
  touched: Record<string, FileTouch>,
): Promise<{ record: CallRecord; result: ToolResult }> {
  const tool = kernelTool(call.name);
  const refuse = (why: string) => ({
    record: { tool: tool ?? call.name, ok: false, error: why.slice(0, 200) },
    result: { id: call.id, name: call.name, content: `error: ${why}`, is_error: true },
  });
  if (!tool) return refuse(`unknown tool '${call.name}'`);
  if (BAD_ARGS in call.args) return refuse(String(call.args[BAD_ARGS]));
  const response = await ctx.kernel.call(tool, call.args, { callId });
  if (response.ok) {
    const { path, gen } = response.result;
    if (typeof path === "string" && typeof gen === "number") {
      touchFile(touched, path, gen, tool !== "file:read");
    }
  }
  const content = mask(renderResponse(response));
  return {
    record: summarizeCall(tool, response),
    result: { id: call.id, name: call.name, content, is_error: !response.ok },
  };
}

/** A kernel response as the model reads it: the result (text as text), then the digest. */
export function renderResponse(response: ToolResponse): string {
  let body: string;
  if (!response.ok) {
    const { code, message, hint, details } = response.error;
    body = `error ${code}: ${message}${hint ? ` (${hint})` : ""}${
      details ? `\n${JSON.stringify(details)}` : ""
    }`;
  } else if (response.result.replayed === true) {
    body =
      "this call already ran before a restart; its result was not kept. Re-read what you need.";
  } else {
    const { content, output, ...rest } = response.result;
    const text = typeof content === "string"
      ? content
      : typeof output === "string"
      ? output
      : undefined;
    body = text === undefined
      ? JSON.stringify(response.result)
      : `${JSON.stringify(rest)}\n${text}`;
  }
  if (body.length > MAX_RESULT_CHARS) {
    body = `${body.slice(0, MAX_RESULT_CHARS)}\n[… ${
      body.length - MAX_RESULT_CHARS
    } more characters cut]`;
  }
  return response.digest ? `${body}\n\n${response.digest}` : body;
}

export async function readHumanfile(root: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(`${root}/.ostk/HUMANFILE`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

const ABORTED = Symbol("aborted");

/** Settle with `promise`, or ABORTED as soon as `signal` fires (the promise runs on). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) {
    promise.catch(() => {}); // its outcome no longer matters; keep it from going unhandled
    return Promise.resolve(ABORTED);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) resolve(ABORTED);
        else reject(err);
      },
    );
  });
}
