/**
 * What an Agentfile's LIMIT lines (and its PIN, TOOL and ISOLATION lines) become inside the
 * daemon: a session's settings, the counters it is stopped at (turns, tokens, wall clock,
 * budget), and the sandbox its shells and command CPU run under (the project's default policy
 * plus the read-path, write-path and net grants).
 */
import type { z } from "zod";
import { isolationSupport } from "../kernel/agentfile_lint.ts";
import type { PermissionMode, ToolClass, ToolPattern } from "../kernel/agentfile_schema.ts";
import type { ShellSpawner } from "../kernel/shell.ts";
import {
  defaultPolicy,
  helperInvocation,
  landlockSupport,
  type SandboxPolicy,
  spawnSandboxed,
  withGrants,
} from "../sandbox/mod.ts";
import { METHODS, type SessionLimitsSchema, type SessionSandboxSchema } from "./protocol.ts";
import { costUsd, type ModelInfo, modelInfo } from "./llm/prices.ts";
import { parseModelSpec } from "./llm/provider.ts";
import type { CpuSpec } from "./session_schema.ts";

export type SessionLimits = z.infer<typeof SessionLimitsSchema>;
export type SessionSandbox = z.infer<typeof SessionSandboxSchema>;

/** The Agentfile-derived part of `session/spawn`, as sent and as kept in the spawn audit row. */
export const SettingsInputSchema = METHODS["session/spawn"].pick({
  limits: true,
  permissions: true,
  tools: true,
  pin: true,
  sandbox: true,
});
export type SettingsInput = z.infer<typeof SettingsInputSchema>;

/** Script and command CPUs call no model, so each turn costs nothing; model CPUs will report. */
export const SCRIPTED_SPEND_USD = 0;

/**
 * USD a session has spent: for a model CPU its tokens at the model's list price
 * (actors/llm/prices.ts; an unpriced model counts 0), for script and command CPUs nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spendUsd } from "./limits.ts";
 * const cpu = { kind: "model" as const, model: "anthropic:claude-sonnet-4" };
 * assert.equal(spendUsd(cpu, { in: 1_000_000, out: 0 }), 3);
 * assert.equal(spendUsd({ kind: "script", script: "t.jsonl" }, { in: 9, out: 9 }), 0);
 * ```
 */
export function spendUsd(
  cpu: CpuSpec,
  tokens: { in: number; out: number },
  prices: Readonly<Record<string, ModelInfo>> = {},
): number {
  if (cpu.kind !== "model") return SCRIPTED_SPEND_USD;
  let info;
  try {
    info = modelInfo(parseModelSpec(cpu.model), cpu.context_window, prices);
  } catch {
    return 0; // a spec the provider layer refuses never ran a call
  }
  return costUsd(info, { input_tokens: tokens.in, output_tokens: tokens.out });
}

/** What the daemon holds for one session besides its machine. */
export interface SessionSettings {
  permissions: PermissionMode;
  /**
   * False for a session spawned without settings (no Agentfile): it runs `autonomous`, as
   * sessions did before the approval chain, and its routine allows are not audited.
   */
  explicit: boolean;
  tools: ToolPattern[];
  pin?: string;
  /** Classes the operator answered "a" for; lives as long as this daemon's table entry. */
  approveAll: Set<ToolClass>;
  limits: SessionLimits;
  sandbox?: SessionSandbox;
  /** What shells and a command CPU run under; undefined means unsandboxed (ISOLATION none). */
  policy?: SandboxPolicy;
  /** Milliseconds since the epoch: when the lineage was spawned (wall_clock counts from here). */
  startedAt: number;
}

/**
 * A session's settings from its spawn params. Without `permissions` the session is the
 * operator's own kind (`autonomous`, not `explicit`); with an Agentfile `ostk run` always sends
 * one.
 */
export async function settingsFor(
  root: string,
  input: SettingsInput,
  startedAt: number,
): Promise<SessionSettings> {
  return {
    permissions: input.permissions ?? "autonomous",
    explicit: input.permissions !== undefined,
    tools: input.tools ?? [],
    pin: input.pin,
    approveAll: new Set(),
    limits: input.limits ?? {},
    sandbox: input.sandbox,
    policy: await sessionPolicy(root, input.sandbox),
    startedAt,
  };
}

/** The settings a `session.spawn` row recorded; a row from before settings reads as none. */
export function settingsFromRow(
  root: string,
  row: Record<string, unknown>,
): Promise<SessionSettings> {
  const given = SettingsInputSchema.safeParse({
    limits: row.limits,
    permissions: row.permissions,
    tools: row.tools,
    pin: row.pin,
    sandbox: row.sandbox,
  });
  const spawnedAt = Date.parse(String(row.ts));
  return settingsFor(
    root,
    given.success ? given.data : {},
    Number.isNaN(spawnedAt) ? Date.now() : spawnedAt,
  );
}

/** The settings fields a spawn audit row records (only those given, so old rows stay alike). */
export function settingsFields(input: SettingsInput): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const key of ["limits", "permissions", "tools", "pin", "sandbox"] as const) {
    if (input[key] !== undefined) fields[key] = input[key];
  }
  return fields;
}

/** The sandbox policy for `sandbox` in project `root`; undefined when nothing is isolated. */
export async function sessionPolicy(
  root: string,
  sandbox: SessionSandbox | undefined,
): Promise<SandboxPolicy | undefined> {
  if (!sandbox || sandbox.isolation === "none") return undefined;
  const abs = (p: string) => {
    const joined = p.startsWith("/") ? p : `${root}/${p}`;
    return joined.replace(/\/(\.\/)+/g, "/").replace(/\/\.$/, "").replace(/(.)\/+$/, "$1");
  };
  return withGrants(await defaultPolicy(root), {
    read: (sandbox.read ?? []).map(abs),
    write: (sandbox.write ?? []).map(abs),
    // Landlock filters TCP by port, never by host: `host:port` grants the port.
    connect: (sandbox.net ?? []).filter((n) => n !== "none").map((n) =>
      Number(n.slice(n.lastIndexOf(":") + 1))
    ),
    allowUnsandboxed: sandbox.allow_unsandboxed ?? false,
  });
}

/**
 * Why this machine cannot run a session under `sandbox`, or undefined when it can. A kernel
 * without Landlock is refused unless the operator opted in (`allow_unsandboxed`); it is never a
 * silent downgrade.
 */
export function sandboxRefusal(sandbox: SessionSandbox | undefined): string | undefined {
  if (!sandbox || sandbox.isolation === "none") return undefined;
  const os = isolationSupport(sandbox.isolation);
  if (!os.supported) return os.reason;
  if (sandbox.isolation !== "landlock" || sandbox.allow_unsandboxed) return undefined;
  const support = landlockSupport();
  if (!support.supported) {
    return `ISOLATION landlock: this kernel has no Landlock (${support.reason}); ` +
      "pass --allow-unsandboxed to run without a sandbox";
  }
  if (!support.net) {
    return `ISOLATION landlock: Landlock ABI ${support.abi} cannot restrict the network; ` +
      "pass --allow-unsandboxed to run with an open network";
  }
  return undefined;
}

/**
 * A shell spawner that confines each command to `policy` (the Kernel's `sandboxFor`).
 * `spawnSandboxed` has no `detached` option, and the shell tool needs the command to lead its
 * own process group (a timeout signals the group), so the helper is started through `setsid`:
 * the child Deno spawns is not a group leader, so setsid(1) calls setsid() and execs in place,
 * and the pid the shell tool holds stays the command's own all the way to the target.
 */
export function sandboxedShell(policy: SandboxPolicy): ShellSpawner {
  return {
    spawn: (cmd, opts) =>
      spawnSandboxed(policy, cmd, {
        cwd: opts.cwd,
        stdin: opts.stdin,
        stdout: opts.stdout,
        stderr: opts.stderr,
        helper: ["setsid", ...helperInvocation()],
      }),
  };
}

/**
 * The argv that runs a command CPU's agent under `policy`: the exec helper restricts itself and
 * execs `command`, so the pid the command CPU started (its group leader) is the agent's own.
 * `tmpdir` becomes the agent's private TMPDIR; the caller makes it and removes it.
 */
export function sandboxedArgv(
  policy: SandboxPolicy,
  command: string[],
  tmpdir: string | undefined,
): string[] {
  return [
    ...helperInvocation(),
    ...(tmpdir ? ["--tmpdir", tmpdir] : []),
    JSON.stringify(policy),
    "--",
    ...command,
  ];
}

/** The counters a session can be stopped at. */
export type LimitName = "turns" | "tokens" | "wall_clock" | "budget_usd";

/** A limit a session met: which, the value it reached, and the maximum. */
export interface LimitHit {
  limit: LimitName;
  value: number;
  max: number;
}

/** What a session has used so far: its machine's counters and when it was spawned. */
export interface Usage {
  turns: number;
  tokens: { in: number; out: number };
  /** USD spent so far (see {@linkcode spendUsd}); absent = a scripted CPU's nothing per turn. */
  usd?: number;
}

/**
 * The first limit `usage` has hit. `over` (checked after each turn) counts a limit exceeded, so
 * a session that uses exactly its allowance of turns or tokens ends normally; `reached`
 * (checked before a kernel call) also counts one met exactly: with `LIMIT turns 2` the first
 * call of a third turn is refused and the session stopped. A wall clock is hit once it is met.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { limitHit } from "./limits.ts";
 * const session = { limits: { turns: 2 }, startedAt: Date.now() };
 * const usage = { turns: 2, tokens: { in: 10, out: 5 } };
 * assert.equal(limitHit(session, usage, "over"), undefined);
 * assert.equal(limitHit(session, usage, "reached")?.limit, "turns");
 * ```
 */
export function limitHit(
  session: Pick<SessionSettings, "limits" | "startedAt">,
  usage: Usage,
  mode: "over" | "reached",
  now: number = Date.now(),
): LimitHit | undefined {
  const { limits } = session;
  const checks: [LimitName, number, number | undefined][] = [
    ["turns", usage.turns, limits.turns],
    ["tokens", usage.tokens.in + usage.tokens.out, limits.tokens],
    ["wall_clock", now - session.startedAt, limits.wall_clock_ms],
    ["budget_usd", usage.usd ?? SCRIPTED_SPEND_USD * usage.turns, limits.budget_usd],
  ];
  for (const [limit, value, max] of checks) {
    if (max === undefined) continue;
    const met = value === max && (mode === "reached" || limit === "wall_clock");
    if (value > max || met) return { limit, value, max };
  }
  return undefined;
}

/** A private TMPDIR for one life of a sandboxed command agent (removed by `removeAgentTmp`). */
export function makeAgentTmp(): string {
  return Deno.realPathSync(Deno.makeTempDirSync({ prefix: "ostk-agent-" }));
}

/** Remove a TMPDIR made by `makeAgentTmp`; one already gone is fine. */
export function removeAgentTmp(dir: string | undefined): void {
  if (!dir) return;
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
