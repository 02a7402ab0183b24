/**
 * The script CPU: replays a transcript (`fixtures/agents/*.jsonl`, one turn per line) against
 * the kernel. Deterministic: the same transcript and start turn make the same calls in the same
 * order with the same call ids. The loop here is shared by the in-process CPU below and by the
 * Worker entry (`_script_worker_entry.ts`), which is what the daemon runs by default.
 */
import { z } from "zod";
import { OstkError } from "../kernel/errors.ts";
import type { ToolResponse } from "../kernel/tools.ts";
import { callIdFor, type Cpu, type CpuResult, type CpuRunContext } from "./cpu.ts";
import type { CallRecord, TurnRecord } from "./session_schema.ts";

/** One transcript line. */
export const TranscriptTurnSchema = z.strictObject({
  think_ms: z.number().int().nonnegative().max(600_000).optional(),
  calls: z.array(z.strictObject({ tool: z.string().min(1), args: z.unknown() })),
  tokens: z.strictObject({
    in: z.number().int().nonnegative(),
    out: z.number().int().nonnegative(),
  }).optional(),
});
export type TranscriptTurn = z.infer<typeof TranscriptTurnSchema>;

/** Longest error text kept in a turn's history. */
const MAX_ERROR_CHARS = 200;

/**
 * Parse a transcript. Blank lines are skipped but still counted, so errors name the line a
 * person sees in an editor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTranscript } from "./cpu_script.ts";
 * const turns = parseTranscript('{"calls":[]}\n\n{"think_ms":5,"calls":[]}\n', "t.jsonl");
 * assert.equal(turns.length, 2);
 * assert.equal(turns[1].think_ms, 5);
 * ```
 */
export function parseTranscript(text: string, file: string): TranscriptTurn[] {
  const turns: TranscriptTurn[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const site = { file, line: i + 1 };
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (err) {
      const why = err instanceof SyntaxError ? err.message : String(err);
      throw new OstkError("bad_input", `${file}:${i + 1}: not JSON: ${why}`, site);
    }
    const parsed = TranscriptTurnSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.length ? issue.path.join(".") : "(line)";
      throw new OstkError(
        "bad_input",
        `${file}:${i + 1}: ${where}: ${issue.message}`,
        site,
        'expected {"think_ms"?: n, "calls": [{"tool": "...", "args": {...}}], "tokens"?: {...}}',
      );
    }
    turns.push(parsed.data);
  }
  return turns;
}

/** What the turn loop needs: the kernel, the session's turn hook, and the abort signal. */
export interface TurnLoopPort {
  alias: string;
  startTurn: number;
  signal: AbortSignal;
  call(tool: string, args: unknown, callId: string): Promise<ToolResponse>;
  onTurn(turn: TurnRecord): Promise<void>;
}

/**
 * Run `turns` from `port.startTurn`: think, make the turn's calls in order, then hand the turn
 * to `onTurn` and wait for it. An abort ends the loop at once; the unfinished turn is not
 * reported, so a revived session replays it (the daemon skips calls it already audited).
 */
export async function runTurns(
  turns: readonly TranscriptTurn[],
  port: TurnLoopPort,
): Promise<"done" | "aborted"> {
  const { signal } = port;
  // The gen each path had when this agent last saw it, for `"expected_gen": "seen"` in a
  // transcript: the agent claims to edit what it read, so a change in between goes to Hot PR.
  const seen = new Map<string, number>();
  for (let n = port.startTurn; n < turns.length; n++) {
    const turn = turns[n];
    if (!(await sleep(turn.think_ms ?? 0, signal))) return "aborted";
    const calls: CallRecord[] = [];
    for (const [index, call] of turn.calls.entries()) {
      const callId = callIdFor(port.alias, n, index);
      const args = withSeenGen(call.args, seen);
      const response = await untilAborted(port.call(call.tool, args, callId), signal);
      if (response === ABORTED) return "aborted";
      noteSeen(response, seen);
      calls.push(summarizeCall(call.tool, response));
    }
    const record = { turn: n, calls, tokens: turn.tokens ?? { in: 0, out: 0 } };
    if ((await untilAborted(port.onTurn(record), signal)) === ABORTED) return "aborted";
  }
  return "done";
}

/** Replace `"expected_gen": "seen"` by the gen last seen for the path (or drop it if none). */
function withSeenGen(args: unknown, seen: Map<string, number>): unknown {
  if (typeof args !== "object" || args === null || !("expected_gen" in args)) return args;
  const { expected_gen: expected, ...rest } = args as Record<string, unknown>;
  if (expected !== "seen") return args;
  const gen = typeof rest.path === "string" ? seen.get(rest.path) : undefined;
  return gen === undefined ? rest : { ...rest, expected_gen: gen };
}

function noteSeen(response: ToolResponse, seen: Map<string, number>): void {
  if (!response.ok) return;
  const { path, gen } = response.result;
  if (typeof path === "string" && typeof gen === "number" && gen > 0) seen.set(path, gen);
}

/** A kernel response as a turn's history keeps it: the tool, ok, the new gen or the error. */
export function summarizeCall(tool: string, response: ToolResponse): CallRecord {
  if (response.ok) {
    const gen = response.result.gen;
    return typeof gen === "number" ? { tool, ok: true, gen } : { tool, ok: true };
  }
  const error = `${response.error.code}: ${response.error.message}`;
  return { tool, ok: false, error: error.slice(0, MAX_ERROR_CHARS) };
}

/** Wait `ms`; true when the time passed, false when `signal` aborted first. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

const ABORTED = Symbol("aborted");

/** Settle with `promise`, or with ABORTED as soon as `signal` fires (the promise runs on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
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

/**
 * The script CPU in the host's own thread, with the host's permissions. The daemon uses the
 * Worker variant (`cpu_worker.ts`); this one is the fallback and what unit tests of the loop use.
 */
export class ScriptCpu implements Cpu {
  readonly kind = "script" as const;
  readonly script: string;

  constructor(spec: { script: string }) {
    this.script = spec.script;
  }

  async run(ctx: CpuRunContext): Promise<CpuResult> {
    const turns = parseTranscript(await Deno.readTextFile(this.script), this.script);
    ctx.onStart?.({});
    const reason = await runTurns(turns, {
      alias: ctx.alias,
      startTurn: ctx.startTurn,
      signal: ctx.signal,
      call: (tool, args, callId) => ctx.kernel.call(tool, args, { callId }),
      onTurn: (turn) => ctx.onTurn(turn),
    });
    return { reason };
  }
}
