/**
 * The one schema module for sessions: what a CPU is (`CpuSpec`), what a turn leaves behind
 * (`TurnRecord`), the events a session actor accepts, and the drain snapshot written to
 * `.ostk/drain/<lineage>.json`. Types are inferred from the schemas; parse at the edge, then trust.
 */
import { z } from "zod";
import { SESSION_OUTCOMES } from "../kernel/session_outcome.ts";

/** How many turns of history a drain snapshot keeps (the newest ones). */
export const HISTORY_LIMIT = 200;

/** Agent aliases as the kernel accepts them; also a safe file name under `drain/`. */
export const AliasSchema = z.string().regex(
  /^[a-z][a-z0-9_-]{0,63}$/,
  "an alias is lower-case letters, digits, '_' and '-', starting with a letter",
);

const count = z.number().int().nonnegative();

/** Tokens spent, in and out. */
export const TokensSchema = z.strictObject({ in: count, out: count });

/**
 * What a session runs: a transcript replayed in a Worker, an external agent program, or a
 * language model driven by the agent loop of actors/llm/cpu_model.ts.
 */
export const CpuSpecSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("script"),
    script: z.string().min(1).describe("path to a transcript (.jsonl)"),
  }),
  z.strictObject({
    kind: z.literal("command"),
    command: z.array(z.string()).min(1).describe("argv; the first element is the program"),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    graceMs: count.optional().describe("SIGTERM → SIGKILL delay on abort (default 5000)"),
  }),
  z.strictObject({
    kind: z.literal("model"),
    model: z.string().min(1).describe(
      "anthropic:<model>, openai:<model>, ollama:<model> or openai-compatible:<base-url>#<model>",
    ),
    task: z.string().optional().describe("the first user message"),
    successor: z.literal("auto").optional().describe(
      "LIMIT successor auto: after a drain with a handoff, a new session continues the task",
    ),
    context_window: count.optional().describe("tokens; overrides actors/llm/prices.ts"),
    limits: z.strictObject({
      budget_usd: z.number().positive().optional(),
      tokens: count.optional(),
      turns: count.optional(),
      wall_clock_ms: count.optional(),
    }).optional().describe("checked before each model call (actors/llm/lifecycle.ts)"),
  }),
]);

/** One kernel call as a turn remembers it. */
export const CallRecordSchema = z.strictObject({
  tool: z.string(),
  ok: z.boolean(),
  gen: count.optional(),
  error: z.string().optional(),
});

/** One finished turn: its 0-based number, its calls and its tokens. */
export const TurnRecordSchema = z.strictObject({
  turn: count,
  calls: z.array(CallRecordSchema),
  tokens: TokensSchema,
});

/** What to do with a session found orphaned (after a crash of its CPU or of the daemon). */
export const RevivalSchema = z.enum(["revive", "reap", "ask"]);

/** How a CPU's run ended. */
export const CpuExitReasonSchema = z.enum(["done", "aborted", "exited"]);

/** How a session ended: the names of the session machine's final states. */
export const SessionOutcomeSchema = z.enum(SESSION_OUTCOMES);

/** A session's end as its machine decided it: the outcome and a short reason for people. */
export const SessionEndingSchema = z.strictObject({
  outcome: SessionOutcomeSchema,
  reason: z.string(),
});

/** Input of the session machine. `startTurn`, `tokens`, `history` carry a lineage forward. */
export const SessionInputSchema = z.strictObject({
  alias: AliasSchema,
  cpu: CpuSpecSchema,
  revival: RevivalSchema,
  startTurn: count.optional(),
  tokens: TokensSchema.optional(),
  history: z.array(TurnRecordSchema).optional(),
});

/**
 * Every event a session actor accepts. The daemon parses what arrives from the socket or the
 * scheduler with this schema before `actor.send`.
 */
export const SessionEventSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("session.started"), at: count, pid: count.optional() }),
  z.strictObject({ type: z.literal("session.turn_done"), turn: TurnRecordSchema, at: count }),
  z.strictObject({ type: z.literal("session.heartbeat"), at: count }),
  /** The operator stops the session: it ends `killed`. */
  z.strictObject({ type: z.literal("session.kill"), reason: z.string().optional() }),
  /** One of the session's LIMITs was reached: it stops and ends `limited`. */
  z.strictObject({
    type: z.literal("session.limit"),
    limit: z.string(),
    value: z.number(),
    max: z.number(),
  }),
  /** An orphan is not revived (policy reap, revival budget spent, operator): it ends `crashed`. */
  z.strictObject({ type: z.literal("session.reap"), reason: z.string() }),
  z.strictObject({
    type: z.literal("session.cpu_exit"),
    reason: CpuExitReasonSchema,
    code: z.number().int().optional(),
    /** The signal that ended a command agent, when one did (e.g. `SIGKILL`). */
    signal: z.string().optional(),
  }),
  z.strictObject({ type: z.literal("session.orphan"), reason: z.string().optional() }),
  z.strictObject({ type: z.literal("session.revive") }),
  z.strictObject({ type: z.literal("session.stale"), at: count.optional() }),
  z.strictObject({ type: z.literal("session.crashed"), error: z.string() }),
]);

/**
 * The drain snapshot: enough to revive a lineage after any crash. `machine` is the session
 * actor's `getPersistedSnapshot()`; `machine_version` says which machine wrote it.
 */
export const DrainSnapshotSchema = z.strictObject({
  version: z.literal(1),
  lineage: AliasSchema,
  anchor: z.string().min(1).describe("the daemon anchor id that wrote this snapshot"),
  ts: z.string().describe("ISO 8601"),
  cpu: CpuSpecSchema,
  turns: count,
  tokens: TokensSchema,
  history: z.array(TurnRecordSchema).max(HISTORY_LIMIT),
  revival: RevivalSchema,
  machine: z.unknown(),
  machine_version: z.number().int().positive(),
});

export type Tokens = z.infer<typeof TokensSchema>;
export type CpuSpec = z.infer<typeof CpuSpecSchema>;
export type CallRecord = z.infer<typeof CallRecordSchema>;
export type TurnRecord = z.infer<typeof TurnRecordSchema>;
export type Revival = z.infer<typeof RevivalSchema>;
export type CpuExitReason = z.infer<typeof CpuExitReasonSchema>;
export type SessionOutcome = z.infer<typeof SessionOutcomeSchema>;
export type SessionEnding = z.infer<typeof SessionEndingSchema>;
export type SessionInput = z.infer<typeof SessionInputSchema>;
export type SessionEvent = z.infer<typeof SessionEventSchema>;
export type DrainSnapshot = z.infer<typeof DrainSnapshotSchema>;

/** Input of the `cpuRunner` child: which CPU to run, for whom. */
export interface CpuRunnerInput {
  alias: string;
  cpu: CpuSpec;
}

/** Events the session machine sends to its `cpuRunner` child. */
export type CpuRunnerEvent =
  | { type: "cpu.start"; startTurn: number }
  | { type: "cpu.stop" }
  | { type: "cpu.turn_saved"; turn: number };

/** Input of the `drainWriter` child: which lineage, and why it is being written. */
export interface DrainWriterInput {
  alias: string;
  reason: "turn" | "final";
}

/** Input of the `rehydrator` child: what the last CPU of this lineage was. */
export interface RehydratorInput {
  alias: string;
  cpu: CpuSpec;
  pid?: number;
  turns: number;
}
