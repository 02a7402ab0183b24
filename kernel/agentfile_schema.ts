/**
 * The one schema module for Agentfiles: the vocabulary (directives, limit keys, tool classes,
 * modes), the value schemas the parser checks each argument with, the AST of one file, the
 * resolved spec (profiles merged, every value with the file and line it came from) and lint
 * findings. Types are inferred from the schemas.
 */
import { z } from "zod";
import { MODEL_PROVIDERS } from "./model_spec.ts";

/** Directive keywords, as written (upper case). */
export const DIRECTIVES = [
  "FROM",
  "TASK",
  "LIMIT",
  "PIN",
  "TOOL",
  "ISOLATION",
  "FROM-PROFILE",
] as const;
export type DirectiveName = typeof DIRECTIVES[number];

/** What the approval chain sorts every tool call into. */
export const TOOL_CLASSES = [
  "FileRead",
  "FileEdit",
  "FileWrite",
  "ShellRead",
  "ShellWrite",
  "ShellExec",
  "ShellSecret",
  "KernelRead",
  "KernelWrite",
  "KernelSpawn",
  "KernelSecret",
] as const;
export const ToolClassSchema = z.enum(TOOL_CLASSES);
export type ToolClass = z.infer<typeof ToolClassSchema>;

/** Classes a TOOL line grants only to sessions running with `permissions autonomous`. */
export const PRIVILEGED_CLASSES: readonly ToolClass[] = [
  "ShellSecret",
  "KernelSecret",
  "KernelSpawn",
  "KernelWrite",
];

/** Classes that neither change nor run anything. */
export const READ_CLASSES: readonly ToolClass[] = ["FileRead", "ShellRead", "KernelRead"];

export const PermissionModeSchema = z.enum(["plan", "governed", "auto", "autonomous"]);
export type PermissionMode = z.infer<typeof PermissionModeSchema>;
export const IsolationSchema = z.enum(["none", "landlock", "seatbelt", "docker", "firecracker"]);
export type Isolation = z.infer<typeof IsolationSchema>;
export const RevivalPolicySchema = z.enum(["revive", "reap", "ask"]);
/** `LIMIT successor auto`: a model session that drains with a handoff is continued by a new one. */
export const SuccessorSchema = z.enum(["auto", "none"]);

/** `LIMIT <key>`: keys taking one number, one word, or a list. */
export const NUMERIC_LIMITS = ["budget_usd", "turns", "wall_clock", "tokens"] as const;
export const LIST_LIMITS = ["write-path", "read-path", "net"] as const;
export const LIMIT_KEYS = [
  ...NUMERIC_LIMITS,
  "permissions",
  ...LIST_LIMITS,
  "revival_policy",
  "successor",
] as const;
export type LimitKey = typeof LIMIT_KEYS[number];

// ---- value schemas: one argument (a string as written) → its value, or a message ----

const UNLIMITED = "'unlimited' is not a limit; leave the LIMIT line out for no limit";
const refuseUnlimited = (s: string) => s !== "unlimited";

/** A dollar amount above 0, e.g. `2.50`. */
export const BudgetValue = z.string()
  .refine(refuseUnlimited, UNLIMITED)
  .regex(/^-?\d+(\.\d+)?$/, "expected a dollar amount such as 2.50")
  .transform(Number)
  .refine((n) => n > 0, "must be above 0");

/** A whole number above 0 (turns, tokens). */
export const CountValue = z.string()
  .refine(refuseUnlimited, UNLIMITED)
  .regex(/^-?\d+$/, "expected a whole number such as 50")
  .transform(Number)
  .refine((n) => n > 0 && Number.isSafeInteger(n), "must be a whole number above 0");

const UNIT_MS = { "": 1000, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A duration: a number with unit `s`, `m` or `h` (a bare number is seconds) → milliseconds. */
export const WallClockValue = z.string()
  .refine(refuseUnlimited, UNLIMITED)
  .regex(/^\d+(\.\d+)?[smh]?$/, "expected a duration such as 30s, 10m or 2h")
  .transform((s) => {
    const unit = /[smh]$/.test(s) ? s.slice(-1) as keyof typeof UNIT_MS : "";
    return Math.round(Number(s.slice(0, s.length - unit.length)) * UNIT_MS[unit]);
  })
  .refine((ms) => ms > 0, "must be longer than 0");

/** A name that becomes a file name (profiles, pins): no separators, no leading dot. */
export const PlainNameValue = z.string().regex(
  /^[A-Za-z0-9_][A-Za-z0-9._-]*$/,
  "expected a plain name (letters, digits, '.', '_', '-')",
);

/** A read-path or write-path entry: relative to the project or absolute, never through `..`. */
export const PathValue = z.string()
  .min(1, "expected a path")
  .refine((p) => !p.split("/").includes(".."), "a path may not step through '..'");

/** A net entry: `host:port` (host a name, IPv4 or [IPv6]; port 1–65535), or `none`. */
export const NetValue = z.string().refine((entry) => {
  if (entry === "none") return true;
  const m = /^(\[[0-9A-Fa-f:.]+\]|\*\.[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$/
    .exec(entry);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}, "expected host:port (port 1-65535) or 'none'");

// ---- the AST of one file ----

/** Where something was written; columns and lines count from 1. */
export const SourceSchema = z.strictObject({
  file: z.string(),
  line: z.number().int().positive(),
  column: z.number().int().positive(),
});
export type Source = z.infer<typeof SourceSchema>;

/**
 * What runs the session. A `model` is any spec `ostk spawn --model` takes, read by the same
 * parser (kernel/model_spec.ts) and kept as written: the daemon parses it again to pick the
 * provider.
 */
export const FromSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("script"), script: z.string().min(1) }),
  z.strictObject({ kind: z.literal("command"), command: z.array(z.string()).min(1) }),
  z.strictObject({
    kind: z.literal("model"),
    provider: z.enum(MODEL_PROVIDERS),
    model: z.string().min(1).describe(
      "the spec as written: anthropic:<model>, openai/<model>, openai-compatible:<url>#<model>…",
    ),
  }),
]);
export type From = z.infer<typeof FromSchema>;

const positive = z.number().positive();
/** One `LIMIT` line. `wall_clock` is in milliseconds; `net` keeps `none` as an entry. */
export const LimitSchema = z.discriminatedUnion("key", [
  z.strictObject({ key: z.literal("budget_usd"), value: positive }),
  z.strictObject({ key: z.literal("turns"), value: positive.int() }),
  z.strictObject({ key: z.literal("tokens"), value: positive.int() }),
  z.strictObject({ key: z.literal("wall_clock"), value: positive.int() }),
  z.strictObject({ key: z.literal("permissions"), value: PermissionModeSchema }),
  z.strictObject({ key: z.literal("write-path"), value: z.array(z.string()).min(1) }),
  z.strictObject({ key: z.literal("read-path"), value: z.array(z.string()).min(1) }),
  z.strictObject({ key: z.literal("net"), value: z.array(z.string()).min(1) }),
  z.strictObject({ key: z.literal("revival_policy"), value: RevivalPolicySchema }),
  z.strictObject({ key: z.literal("successor"), value: SuccessorSchema }),
]);
export type Limit = z.infer<typeof LimitSchema>;

/** `TOOL Class(substring)`: a class, optionally only for calls whose path or command has it. */
export const ToolPatternSchema = z.strictObject({
  class: ToolClassSchema,
  substring: z.string().min(1).optional(),
});
export type ToolPattern = z.infer<typeof ToolPatternSchema>;

/** One directive as parsed; `source` is where its keyword stands. */
export const DirectiveSchema = z.discriminatedUnion("directive", [
  z.strictObject({ directive: z.literal("FROM"), source: SourceSchema, from: FromSchema }),
  z.strictObject({ directive: z.literal("TASK"), source: SourceSchema, text: z.string().min(1) }),
  z.strictObject({ directive: z.literal("LIMIT"), source: SourceSchema, limit: LimitSchema }),
  z.strictObject({ directive: z.literal("PIN"), source: SourceSchema, name: z.string() }),
  z.strictObject({ directive: z.literal("TOOL"), source: SourceSchema, tool: ToolPatternSchema }),
  z.strictObject({
    directive: z.literal("ISOLATION"),
    source: SourceSchema,
    isolation: IsolationSchema,
  }),
  z.strictObject({ directive: z.literal("FROM-PROFILE"), source: SourceSchema, name: z.string() }),
]);
export type Directive = z.infer<typeof DirectiveSchema>;

/** A parsed file: its directives in order. */
export const AgentfileAstSchema = z.strictObject({
  file: z.string(),
  directives: z.array(DirectiveSchema),
});
export type AgentfileAst = z.infer<typeof AgentfileAstSchema>;

// ---- the resolved spec ----

/** A value and where it was written. */
const sourced = <T extends z.ZodType>(value: T) => z.strictObject({ value, source: SourceSchema });

/**
 * An Agentfile with its profiles merged: the nearest file's directive wins for single values;
 * TOOL lines add up along the chain; list limits (write-path, read-path, net) add up within a
 * file and the nearest file that sets one replaces what profiles said.
 */
export const ResolvedSpecSchema = z.strictObject({
  file: z.string(),
  /** The Agentfile, then each inherited profile, nearest first. */
  chain: z.array(z.string()),
  from: sourced(FromSchema).optional(),
  task: sourced(z.string()).optional(),
  pin: sourced(z.string()).optional(),
  isolation: sourced(IsolationSchema).optional(),
  limits: z.strictObject({
    budget_usd: sourced(positive).optional(),
    turns: sourced(positive.int()).optional(),
    tokens: sourced(positive.int()).optional(),
    wall_clock: sourced(positive.int()).optional().describe("milliseconds"),
    permissions: sourced(PermissionModeSchema).optional(),
    revival_policy: sourced(RevivalPolicySchema).optional(),
    successor: sourced(SuccessorSchema).optional(),
    "write-path": z.array(sourced(z.string())).optional(),
    "read-path": z.array(sourced(z.string())).optional(),
    net: z.array(sourced(z.string())).optional(),
  }),
  tools: z.array(sourced(ToolPatternSchema)),
});
export type ResolvedSpec = z.infer<typeof ResolvedSpecSchema>;
export type Sourced<T> = { value: T; source: Source };

// ---- lint ----

export const FindingSchema = z.strictObject({
  rule: z.string(),
  severity: z.enum(["error", "warning"]),
  file: z.string(),
  line: z.number().int().nonnegative(),
  column: z.number().int().nonnegative(),
  message: z.string(),
});
export type Finding = z.infer<typeof FindingSchema>;
