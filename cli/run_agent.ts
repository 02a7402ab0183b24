/**
 * `ostk run <Agentfile>`: lint the file, then print the plan (`--dry-run`) or run the worker as
 * a daemon session, follow it like `ostk attach`, and exit with its outcome.
 *
 * With no daemon running, `ostk run` starts one inside its own process for the length of the
 * run (and stops it after); Ctrl-C then kills the session. With a daemon running, Ctrl-C only
 * detaches and the session goes on.
 */
import type { DaemonClient } from "../actors/client.ts";
import { type RunningDaemon, startDaemon } from "../actors/daemon.ts";
import {
  sandboxRefusal,
  type SessionLimits,
  sessionPolicy,
  type SessionSandbox,
} from "../actors/limits.ts";
import type { MethodParams } from "../actors/protocol.ts";
import type { CpuSpec, Revival } from "../actors/session_schema.ts";
import { checkAgentfile, formatFinding } from "../kernel/agentfile_lint.ts";
import type { PermissionMode, ResolvedSpec, ToolPattern } from "../kernel/agentfile_schema.ts";
import type { AuditRow } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import { outcomeOfExit } from "../kernel/session_outcome.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { locateProject } from "../kernel/project.ts";
import { landlockSupport, type SandboxPolicy } from "../sandbox/mod.ts";
import { type ApprovalQuestion, terminalApprover } from "./approve.ts";
import { type Command, err, EXIT, helpText, intFlag, out, outJson, parseFlags } from "./command.ts";
import { tryConnect } from "./daemon_client.ts";
import { resolveFrom } from "./init.ts";
import { formatRow } from "./log.ts";

/** Everything `ostk run` would send the daemon, and what it found out on the way. */
export interface RunPlan {
  agentfile: string;
  chain: string[];
  name: string;
  cpu: CpuSpec;
  task: string;
  limits: SessionLimits;
  revival: Revival;
  permissions: PermissionMode;
  tools: ToolPattern[];
  pin: string;
  sandbox: SessionSandbox;
  policy: SandboxPolicy | null;
  isolation: { name: string; from: "Agentfile" | "default"; refused?: string };
  /** What this machine enforces (Landlock ABI), for the record. */
  support: ReturnType<typeof landlockSupport>;
}

export const runAgentCommand: Command = {
  name: "run",
  summary: "Run a worker from an Agentfile as a daemon session and follow it to its end.",
  usage:
    "run <Agentfile> [--dry-run] [--allow-unsandboxed] [--json] [--approval-timeout-ms N] [--profiles DIR]",
  help: `Lints the Agentfile (errors: exit 1, one file:line:col line each), then spawns the worker
as a session of the project's daemon and streams its output and audit rows until it ends.
With no daemon running, one is started inside this process for the run.

FROM script:<path> replays a transcript, FROM command:<argv> runs an agent program, and a model
(anthropic/<model>, openai/<model>, ollama/<model>, or the forms 'ostk spawn --model' takes)
runs the agent loop of actors/llm/ against that provider. Relative paths (FROM script:<path>,
LIMIT read-path / write-path) are taken from the project root. Defaults: permissions
governed, revival reap, PIN default, ISOLATION landlock (Linux) or seatbelt (macOS).

Exit 0 when the worker finished (script or model loop done, command exit 0) and none of its
calls was denied; 1 when it was refused, failed (its exit code is named), was killed, crashed,
hit a LIMIT (the limit is named), had a call denied (the first is named), or needed an
approval nobody could give.

Approvals: on a terminal, the session's questions are asked here and answered with one key:
y (yes, this call), n (no), a (yes to this call and to every call of its class for the rest
of the session, the ones already waiting included; a dangerous command still asks each time).
Without a terminal (or with --json) nobody can answer here, so the first question ends the run
(exit 1, the session is killed) unless --approval-timeout-ms gives a wait: questions then wait
that long for 'ostk approve <alias>' from elsewhere, and are denied after it.

  --dry-run             print the resolved plan (cpu, task, limits, permissions, pin, sandbox
                        policy, isolation support) and exit 0
  --allow-unsandboxed   run even where the OS cannot enforce the sandbox (loud warning)
  --json                JSON lines: each event, then {"alias","outcome","reason",...}; outcome
                        is the session's (finished, failed, killed, crashed, limited), or
                        denied, needs_approval, orphaned, detached, interrupted, lost
  --approval-timeout-ms N
                        let each approval question wait up to N ms for an answer (here on a
                        terminal, or 'ostk approve'); without a terminal, the only way to wait
  --profiles DIR        where FROM-PROFILE looks (default .ostk/profiles of the project)`,
  async run(ctx) {
    const { values, positionals } = parseFlags("run", ctx.argv, {
      "dry-run": { type: "boolean" },
      "allow-unsandboxed": { type: "boolean" },
      json: { type: "boolean" },
      "approval-timeout-ms": { type: "string" },
      profiles: { type: "string" },
    }, true);
    if (values.help) {
      out(helpText(runAgentCommand));
      return EXIT.ok;
    }
    if (positionals.length !== 1) {
      throw new OstkError("usage", "expected one Agentfile", {}, "see 'ostk run --help'");
    }
    const approvalTimeoutMs = intFlag("--approval-timeout-ms", values["approval-timeout-ms"], 1);
    const file = resolveFrom(ctx.cwd, positionals[0]);
    const { findings, spec } = await checkAgentfile({ path: file }, {
      profilesDir: values.profiles ? resolveFrom(ctx.cwd, values.profiles) : undefined,
    });
    const errors = findings.filter((f) => f.severity === "error");
    for (const f of findings) err(`ostk: ${formatFinding(f)}`);
    if (errors.length > 0 || !spec) return EXIT.refused;
    const paths = await locateProject(ctx.cwd);
    const plan = await planRun(spec, paths.root, values["allow-unsandboxed"] ?? false);
    if (values["dry-run"]) {
      if (values.json) outJson(plan);
      else printPlan(plan);
      return EXIT.ok;
    }
    if (plan.isolation.refused) throw new OstkError("permission", plan.isolation.refused);
    return await runPlan(paths, plan, { json: values.json ?? false, approvalTimeoutMs });
  },
};

/** Turn a linted spec into what the daemon is sent. */
export async function planRun(
  spec: ResolvedSpec,
  root: string,
  allowUnsandboxed: boolean,
): Promise<RunPlan> {
  const from = spec.from!;
  const task = spec.task?.value ?? "";
  let cpu: CpuSpec;
  if (from.value.kind === "model") {
    // The model CPU runs the agent loop itself (actors/llm/); the provider is chosen by prefix.
    cpu = {
      kind: "model",
      model: from.value.model,
      task,
      ...(spec.limits.successor?.value === "auto" ? { successor: "auto" as const } : {}),
    };
  } else if (from.value.kind === "script") {
    cpu = { kind: "script", script: resolveFrom(root, from.value.script) };
  } else {
    cpu = { kind: "command", command: from.value.command, cwd: root, env: { OSTK_TASK: task } };
  }
  const l = spec.limits;
  const limits: SessionLimits = {
    ...(l.turns ? { turns: l.turns.value } : {}),
    ...(l.tokens ? { tokens: l.tokens.value } : {}),
    ...(l.wall_clock ? { wall_clock_ms: l.wall_clock.value } : {}),
    ...(l.budget_usd ? { budget_usd: l.budget_usd.value } : {}),
  };
  const isolation = spec.isolation?.value ??
    (Deno.build.os === "darwin" ? "seatbelt" : "landlock");
  const sandbox: SessionSandbox = {
    // docker and firecracker are refused below; the wire only knows what can run.
    isolation: isolation === "none" || isolation === "seatbelt" ? isolation : "landlock",
    ...(l["read-path"] ? { read: l["read-path"].map((p) => p.value) } : {}),
    ...(l["write-path"] ? { write: l["write-path"].map((p) => p.value) } : {}),
    ...(l.net ? { net: l.net.map((p) => p.value) } : {}),
    ...(allowUnsandboxed ? { allow_unsandboxed: true } : {}),
  };
  const refused = isolation === "docker" || isolation === "firecracker"
    ? `ISOLATION ${isolation} is not supported yet; use landlock (Linux) or seatbelt (macOS)`
    : sandboxRefusal(sandbox);
  return {
    agentfile: spec.file,
    chain: spec.chain,
    name: sessionName(spec.file),
    cpu,
    task,
    limits,
    revival: l.revival_policy?.value ?? "reap",
    permissions: l.permissions?.value ?? "governed",
    tools: spec.tools.map((t) => t.value),
    pin: spec.pin?.value ?? "default",
    sandbox,
    policy: refused ? null : (await sessionPolicy(root, sandbox)) ?? null,
    isolation: {
      name: isolation,
      from: spec.isolation ? "Agentfile" : "default",
      ...(refused ? { refused } : {}),
    },
    support: landlockSupport(),
  };
}

/** A session name from the file name: `fix-parser.Agentfile` → `fix_parser`. */
function sessionName(file: string): string {
  const base = file.slice(file.lastIndexOf("/") + 1).replace(/\.Agentfile$/i, "");
  const name = base.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^[^a-z]+/, "");
  return (name || "agent").slice(0, 40);
}

function printPlan(plan: RunPlan): void {
  const limits = Object.entries(plan.limits).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const row = (k: string, v: string) => out(`${k.padEnd(12)} ${v}`);
  row("agentfile", [plan.agentfile, ...plan.chain.slice(1)].join(" <- "));
  const cpu = plan.cpu;
  row(
    "cpu",
    cpu.kind === "script"
      ? `script ${cpu.script}`
      : cpu.kind === "command"
      ? `command ${cpu.command.join(" ")}`
      : cpu.kind,
  );

  row("task", plan.task.replaceAll("\n", " / "));
  row("limits", `${limits}${plan.limits.budget_usd ? " (script/command CPUs spend $0)" : ""}`);
  row("revival", plan.revival);
  row("permissions", plan.permissions);
  const tools = plan.tools.map((t) =>
    t.substring === undefined ? t.class : `${t.class}(${t.substring})`
  );
  row("tools", tools.join(", ") || "none");
  row("pin", plan.pin);
  const s = plan.support;
  row(
    "isolation",
    `${plan.isolation.name} (${plan.isolation.from}); ${
      s.supported
        ? `Landlock ABI ${s.abi}, net ${s.net ? "yes" : "no"}`
        : `no Landlock: ${s.reason}`
    }${plan.isolation.refused ? `; REFUSED: ${plan.isolation.refused}` : ""}`,
  );
  const p = plan.policy;
  if (!p) {
    row(
      "sandbox",
      plan.isolation.refused ? "none (refused)" : "none: shells and commands run unsandboxed",
    );
  } else {
    row("sandbox", `read ${p.read.join(" ")}`);
    row("", `write ${p.write.join(" ")}`);
    row(
      "",
      `net ${
        typeof p.net === "string"
          ? p.net
          : `connect ${p.net.connect.join(",") || "-"} bind ${
            p.net.bind.join(",") || "-"
          } (by port; hosts are not filtered)`
      }`,
    );
    row("", `tmp ${p.tmp ? "private" : "none"}${p.allow_unsandboxed ? "; allow_unsandboxed" : ""}`);
  }
}

/** Spawn the plan's session and follow it to its end; returns the exit code. */
async function runPlan(
  paths: OstkPaths,
  plan: RunPlan,
  opts: { json: boolean; approvalTimeoutMs?: number },
): Promise<number> {
  let client = await tryConnect(paths);
  let daemon: RunningDaemon | undefined;
  if (!client) {
    daemon = await startDaemon(paths);
    if (!opts.json) err(`ostk run: no daemon was running; started one in this process`);
    client = await tryConnect(paths);
    if (!client) throw new OstkError("io", "the daemon started for this run does not answer");
  }
  const params: MethodParams<"session/spawn"> = {
    name: plan.name,
    cpu: plan.cpu,
    revival: plan.revival,
    limits: plan.limits,
    permissions: plan.permissions,
    tools: plan.tools,
    pin: plan.pin,
    sandbox: plan.sandbox,
    ...(opts.approvalTimeoutMs ? { approval_timeout_ms: opts.approvalTimeoutMs } : {}),
  };
  try {
    return await follow(client, params, {
      json: opts.json,
      inProcess: daemon !== undefined,
      canWait: opts.approvalTimeoutMs !== undefined,
    });
  } finally {
    client.close();
    if (daemon) {
      daemon.stop();
      await daemon.done;
    }
  }
}

interface Outcome {
  code: number;
  line: string;
  json: Record<string, unknown>;
}

/** What `follow` learns from the session's audit rows on the way to its end. */
interface Seen {
  alias?: string;
  early: AuditRow[];
  limit?: AuditRow;
  /** `approval.decide` rows that denied one of the session's calls. */
  denied: AuditRow[];
}

async function follow(
  client: DaemonClient,
  params: MethodParams<"session/spawn">,
  opts: { json: boolean; inProcess: boolean; canWait: boolean },
): Promise<number> {
  // Rows that arrive before the spawn answers wait here until the alias is known.
  const seen: Seen = { early: [], denied: [] };
  let finish!: (o: Outcome) => void;
  const ended = new Promise<Outcome>((resolve) => finish = resolve);
  // Set when this run gives up on the session itself; its own exit row then changes nothing.
  let givingUp = false;
  let onSigint = () => {};
  const approver = !opts.json && Deno.stdin.isTerminal()
    ? terminalApprover(client, { onInterrupt: () => onSigint() })
    : undefined;
  const onRow = (row: AuditRow) => {
    const alias = seen.alias!;
    if (row.actor !== alias && row.session !== alias && row.alias !== alias) return;
    if (opts.json) outJson({ kind: "audit", row });
    else out(formatRow(row));
    if (row.event === "session.limit") seen.limit = row;
    if (row.event === "approval.decide" && row.decision === "deny") seen.denied.push(row);
    if (givingUp) return;
    if (row.event === "session.exit") finish(outcomeOf(alias, row, seen));
    if (row.event === "session.orphan" && params.revival === "ask") {
      finish(
        failed(alias, `orphaned (${row.reason}); decide with 'ostk lineage resolve'`, "orphaned"),
      );
    }
  };
  /** Nobody can answer an approval question: end the session now rather than wait for "no". */
  const unanswerable = (q: ApprovalQuestion) => {
    if (givingUp) return;
    givingUp = true;
    const alias = seen.alias!;
    const why = opts.json ? "--json turns the terminal prompt off" : "stdin is not a terminal";
    const outcome: Outcome = {
      code: 1,
      line: `${alias} was killed: it needs approval and nobody can answer (${why}). ` +
        `Asked: ${q.summary}. To go on: allow it in the Agentfile (TOOL ${q.class}, or a ` +
        `wider LIMIT permissions), run in a terminal, or pass --approval-timeout-ms N and ` +
        `answer with 'ostk approve ${alias} --yes'`,
      json: {
        outcome: "needs_approval",
        reason: `nobody can answer: ${why}`,
        request_id: q.request_id,
        class: q.class,
        summary: q.summary,
      },
    };
    const reason = `ostk run: needs approval for ${q.class} and nobody can answer (${why})`;
    client.request("session/kill", { alias, reason: reason.slice(0, 300) }).then(
      () => finish(outcome),
      (e) => finish({ ...outcome, line: `${outcome.line} (the kill failed: ${e.message})` }),
    );
  };
  client.onEvent((event) => {
    if (event.kind === "audit") {
      if (seen.alias) onRow(event.row as AuditRow);
      else seen.early.push(event.row as AuditRow);
    } else if (event.alias !== seen.alias) return;
    else if (opts.json) {
      outJson(event);
      if (event.kind === "approval" && !opts.canWait) unanswerable(event);
    } else if (event.kind === "output") out(`${event.alias} ${event.stream}: ${event.line}`);
    else if (event.kind === "approval" && approver) approver.ask(event);
    else if (event.kind === "approval" && !opts.canWait) unanswerable(event);
    else if (event.kind === "approval") {
      err(`${event.alias} waits for approval ${event.request_id}: ${event.summary}`);
      err(`  answer with 'ostk approve ${event.alias} --yes|--no|--all'`);
    }
  });
  // Subscribed before the spawn, so not one of the session's rows can be missed.
  await client.request("client/subscribe", {});
  let alias: string;
  try {
    alias = (await client.request("session/spawn", params) as { alias: string }).alias;
  } catch (e) {
    approver?.close();
    throw e;
  }
  seen.alias = alias;
  await client.request("client/attach", { alias, name: "ostk run" });
  for (const row of seen.early.splice(0)) onRow(row);
  const interrupted = new Promise<Outcome>((resolve) => {
    // A daemon started by this run dies with it, so its session is killed; otherwise the
    // session goes on without us, as after `ostk attach`.
    onSigint = () => {
      if (!opts.inProcess) {
        return resolve(
          failed(alias, `detached; the session goes on ('ostk attach ${alias}')`, "detached"),
        );
      }
      client.request("session/kill", { alias }).catch(() => undefined)
        .then(() => resolve(failed(alias, "interrupted; the session was killed", "interrupted")));
    };
  });
  Deno.addSignalListener("SIGINT", onSigint);
  const lost = client.done.then(() => failed(alias, "the daemon went away", "lost"));
  let outcome: Outcome;
  try {
    outcome = await Promise.race([ended, interrupted, lost]);
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    approver?.close();
  }
  if (opts.json) outJson({ alias, ...outcome.json });
  else if (outcome.code === 0) out(outcome.line);
  else err(`ostk run: ${outcome.line}`);
  return outcome.code;
}

/** The run's outcome from the session's exit row (and the denials and limit seen before it). */
function outcomeOf(alias: string, exit: AuditRow, seen: Seen): Outcome {
  const outcome = outcomeOfExit(exit) ?? "crashed";
  const reason = String(exit.reason ?? outcome);
  const turns = `after ${exit.turns} turn(s)`;
  const base = {
    outcome,
    reason,
    turns: exit.turns,
    ...(typeof exit.code === "number" ? { code: exit.code } : {}),
    ...(seen.denied.length ? { denied: seen.denied.length } : {}),
  };
  switch (outcome) {
    case "finished": {
      if (seen.denied.length === 0) {
        return { code: 0, line: `${alias} finished ${turns}`, json: base };
      }
      // The agent ran to its end, but not all of its work was allowed: not a success.
      const first = seen.denied[0];
      const n = seen.denied.length;
      return {
        code: 1,
        line: `${alias} finished ${turns}, but ${n} of its call(s) ${
          n === 1 ? "was" : "were"
        } denied; the first: ${first.tool} [${first.class}] at step ${first.step}: ${first.reason}`,
        json: { ...base, outcome: "denied", first_denied: denialOf(first) },
      };
    }
    case "limited": {
      const limit = seen.limit;
      const name = limit ? String(limit.limit) : String(exit.limit ?? reason);
      const detail = limit ? ` (${limit.value} of ${limit.max})` : "";
      return {
        code: 1,
        line: `${alias} stopped: LIMIT ${name} reached${detail} ${turns}`,
        json: {
          ...base,
          limit: name,
          ...(limit ? { value: limit.value, max: limit.max } : {}),
        },
      };
    }
    case "failed":
      return { code: 1, line: `${alias} failed: ${reason} ${turns}`, json: base };
    case "killed":
      return { code: 1, line: `${alias} was killed (${reason}) ${turns}`, json: base };
    case "crashed":
      return { code: 1, line: `${alias} crashed: ${reason}`, json: base };
  }
}

function denialOf(row: AuditRow): Record<string, unknown> {
  return { tool: row.tool, class: row.class, step: row.step, reason: row.reason };
}

/** An end `follow` saw other than the session's exit row (detached, interrupted, orphaned…). */
function failed(alias: string, why: string, outcome = "failed"): Outcome {
  return { code: 1, line: `${alias} ${why}`, json: { outcome, reason: why } };
}
