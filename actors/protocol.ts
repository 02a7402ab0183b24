/**
 * The socket protocol: JSON-RPC 2.0, one message per line. The one module both the daemon and
 * its clients import; every inbound message is parsed here before anything acts on it.
 */
import { z } from "zod";
import { PermissionModeSchema, ToolClassSchema } from "../kernel/agentfile_schema.ts";
import type { OstkErrorCode } from "../kernel/errors.ts";

/** Lines longer than this are refused (configurable per daemon). */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

export const RpcId = z.union([z.string().max(200), z.number().int()]);
export type RpcId = z.infer<typeof RpcId>;

export const RpcRequest = z.strictObject({
  jsonrpc: z.literal("2.0"),
  id: RpcId.optional(),
  method: z.string().min(1).max(100),
  params: z.record(z.string(), z.unknown()).optional(),
});
export type RpcRequest = z.infer<typeof RpcRequest>;

const alias = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, "expected an agent alias");
const revival = z.enum(["revive", "reap", "ask"]);

export const CpuSpecSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("script"), script: z.string().min(1) }),
  z.strictObject({
    kind: z.literal("command"),
    command: z.array(z.string()).min(1),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    graceMs: z.number().int().nonnegative().optional(),
  }),
  z.strictObject({
    kind: z.literal("model"),
    model: z.string().min(1).max(500),
    task: z.string().max(100_000).optional(),
    context_window: z.number().int().nonnegative().optional(),
    limits: z.strictObject({
      budget_usd: z.number().positive().optional(),
      tokens: z.number().int().nonnegative().optional(),
      turns: z.number().int().nonnegative().optional(),
      wall_clock_ms: z.number().int().nonnegative().optional(),
    }).optional(),
    /** `LIMIT successor auto`: start a successor from a context-full handoff. */
    successor: z.literal("auto").optional(),
  }),
]);

/** Counters a session is stopped at (from an Agentfile's LIMIT lines); see actors/limits.ts. */
export const SessionLimitsSchema = z.strictObject({
  turns: z.number().int().positive().optional(),
  tokens: z.number().int().positive().optional(),
  wall_clock_ms: z.number().int().positive().optional(),
  budget_usd: z.number().positive().optional(),
});

/**
 * Where a session's shells and command CPU run: `isolation` picks the OS sandbox; `read`,
 * `write` (paths, relative to the project root or absolute) and `net` (`host:port`) are granted
 * on top of the project's default policy.
 */
export const SessionSandboxSchema = z.strictObject({
  isolation: z.enum(["none", "landlock", "seatbelt"]),
  read: z.array(z.string().min(1)).max(100).optional(),
  write: z.array(z.string().min(1)).max(100).optional(),
  net: z.array(z.string().min(1)).max(100).optional(),
  allow_unsandboxed: z.boolean().optional(),
});

/** An answer to an approval request: yes once, no, or yes to the whole class from now on. */
export const ApprovalAnswerSchema = z.enum(["y", "n", "a"]);

/** Params of every method the daemon serves. */
export const METHODS = {
  "kernel/call": z.strictObject({
    tool: z.string(),
    args: z.unknown(),
    as: alias.optional(),
    call_id: z.string().max(200).optional(),
    budget: z.strictObject({ used: z.number(), limit: z.number() }).optional(),
  }),
  "session/spawn": z.strictObject({
    name: z.string().regex(/^[a-z][a-z0-9_]*$/).optional(),
    alias: alias.optional(),
    cpu: CpuSpecSchema,
    revival: revival.optional(),
    limits: SessionLimitsSchema.optional(),
    permissions: PermissionModeSchema.optional(),
    tools: z.array(z.strictObject({
      class: ToolClassSchema,
      substring: z.string().min(1).max(1000).optional(),
    })).max(200).optional(),
    pin: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/).optional(),
    sandbox: SessionSandboxSchema.optional(),
    /** How long this session's approval questions wait for an answer (default: the daemon's). */
    // setTimeout fires at once for a longer delay, which would deny every question unread.
    approval_timeout_ms: z.number().int().positive().max(2_147_483_647).optional(),
  }),
  "session/approve": z.strictObject({
    alias,
    request_id: z.string().max(100).optional(),
    answer: ApprovalAnswerSchema,
  }),
  "session/approvals": z.strictObject({ alias: alias.optional() }),
  "session/kill": z.strictObject({
    alias,
    // Why, in the operator's words, for the exit row (e.g. `ostk run` giving up on an approval).
    reason: z.string().min(1).max(300).optional(),
  }),
  "session/list": z.strictObject({}),
  "session/inspect": z.strictObject({ alias }),
  "lineage/resolve": z.strictObject({ alias, action: z.enum(["revive", "reap"]) }),
  "client/attach": z.strictObject({
    alias: alias.optional(),
    name: z.string().max(100).optional(),
  }),
  "client/detach": z.strictObject({}),
  "client/subscribe": z.strictObject({
    from_seq: z.number().int().nonnegative().optional(),
    alias: alias.optional(),
    event_prefix: z.string().max(100).optional(),
  }),
  "driver/call": z.strictObject({
    name: z.string().min(1).max(100),
    tool: z.string().min(1).max(200),
    args: z.record(z.string(), z.unknown()).optional(),
    as: alias.optional(),
    timeout_ms: z.number().int().positive().optional(),
  }),
  "driver/list": z.strictObject({}),
  "daemon/status": z.strictObject({}),
  "daemon/stop": z.strictObject({}),
} as const;

export type MethodName = keyof typeof METHODS;
export type MethodParams<M extends MethodName> = z.infer<(typeof METHODS)[M]>;

/** JSON-RPC error codes: the standard ones, then ours in the server range. */
export const RPC_ERRORS = {
  parse: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  refused: -32000,
  notFound: -32001,
  conflict: -32002,
  permission: -32003,
  integrity: -32004,
  tooLarge: -32005,
  closed: -32006,
} as const;

/** The wire code for a local kernel error (two vocabularies, one mapping). */
export function rpcCodeFor(code: OstkErrorCode): number {
  switch (code) {
    case "not_found":
      return RPC_ERRORS.notFound;
    case "conflict":
      return RPC_ERRORS.conflict;
    case "permission":
      return RPC_ERRORS.permission;
    case "integrity":
      return RPC_ERRORS.integrity;
    case "usage":
      return RPC_ERRORS.invalidParams;
    // "bad_input" from a handler is content that failed a check after the params parsed (a
    // transcript, a model spec, a drain file): a well-formed request, refused. It falls to
    // `refused`; malformed params never reach a handler (the listener answers invalidParams).
    default:
      return RPC_ERRORS.refused;
  }
}

export interface RpcErrorBody {
  code: number;
  message: string;
  data?: unknown;
}

export type RpcResponse =
  | { jsonrpc: "2.0"; id: RpcId | null; result: unknown }
  | { jsonrpc: "2.0"; id: RpcId | null; error: RpcErrorBody };

/** A server → client notification (no id): audit rows, session output, state changes. */
export interface RpcNotification {
  jsonrpc: "2.0";
  method: "event";
  params:
    | { kind: "audit"; row: Record<string, unknown> }
    | {
      kind: "output";
      alias: string;
      stream: "stdout" | "stderr";
      line: string;
    }
    | { kind: "session"; alias: string; state: string }
    | {
      kind: "approval";
      alias: string;
      request_id: string;
      class: string;
      summary: string;
      /** A dangerous command: asked each time, whatever "a" answers were given before. */
      dangerous?: boolean;
      /** One line for clients that print every event as `<alias> → <state>` (ostk attach). */
      state: string;
    };
}

/** Response schema for clients (validate at the edge, both ways). */
export const RpcInbound = z.union([
  z.object({ jsonrpc: z.literal("2.0"), id: RpcId.nullable(), result: z.unknown() }),
  z.object({
    jsonrpc: z.literal("2.0"),
    id: RpcId.nullable(),
    error: z.object({ code: z.number(), message: z.string(), data: z.unknown().optional() }),
  }),
  z.object({ jsonrpc: z.literal("2.0"), method: z.literal("event"), params: z.unknown() }),
]);

export function ok(id: RpcId | null, result: unknown): RpcResponse {
  return { jsonrpc: "2.0", id, result };
}

export function fail(id: RpcId | null, code: number, message: string, data?: unknown): RpcResponse {
  return { jsonrpc: "2.0", id, error: { code, message, ...(data !== undefined ? { data } : {}) } };
}
