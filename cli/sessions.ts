/** `ostk ps`, `pstree`, `spawn`, `kill`, `lineage resolve`: sessions through the daemon. */
import { OstkError } from "../kernel/errors.ts";
import { locateProject } from "../kernel/project.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import { connectOrFail } from "./daemon_client.ts";
import { resolveFrom } from "./init.ts";

/** One row of the process table as the daemon reports it. */
export interface PsRow {
  alias: string;
  pid: number | null;
  ppid: number | null;
  pgid: number | null;
  sid: number | null;
  cpu: string;
  /**
   * queued, starting, spawning, running, stale, draining, orphaned, rehydrating, or how it
   * ended: finished, failed, killed, crashed, limited (kernel/session_outcome.ts).
   */
  state: string;
  turns: number;
  last_seen: string | null;
  revival: string;
  /** Why it is in that state (how it ended, why it is orphaned or waits); null while it runs. */
  reason?: string | null;
  /** Model sessions: USD spent so far (tokens × list price); 0 for script and command CPUs. */
  spend_usd?: number;
}

const STATES_HELP =
  `STATE is queued, starting, spawning, running, stale, draining, orphaned or rehydrating
while a session lives, and how it ended once it has:
  finished   it did its work and stopped by itself (a command exited 0)
  failed     a command agent exited by itself with another code (REASON has it)
  killed     the operator stopped it (ostk kill, Ctrl-C on ostk run)
  crashed    it died unexpectedly and was not revived (REASON says why)
  limited    one of its LIMITs stopped it (REASON names it)
REASON says how it ended, why it is orphaned or stale, or what it waits for.`;

async function withDaemon<T>(
  cwd: string,
  fn: (c: Awaited<ReturnType<typeof connectOrFail>>) => Promise<T>,
) {
  const client = await connectOrFail(await locateProject(cwd));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export const psCommand: Command = {
  name: "ps",
  summary: "List sessions: pid, ppid, pgid, sid, alias, cpu, state, turns, last seen, reason.",
  usage: "ps [--json]",
  help: `${STATES_HELP}

  --json   the rows as a JSON array`,
  async run(ctx) {
    const { values } = parseFlags("ps", ctx.argv, { json: { type: "boolean" } });
    if (values.help) {
      out(helpText(psCommand));
      return EXIT.ok;
    }
    const rows = await withDaemon(
      ctx.cwd,
      async (c) => ((await c.request("session/list", {})) as { sessions: PsRow[] }).sessions,
    );
    if (values.json) {
      outJson(rows);
      return EXIT.ok;
    }
    const head = [
      "PID",
      "PPID",
      "PGID",
      "SID",
      "ALIAS",
      "CPU",
      "STATE",
      "TURNS",
      "LAST SEEN",
      "REASON",
    ];
    const table = rows.map((r) => [
      String(r.pid ?? "-"),
      String(r.ppid ?? "-"),
      String(r.pgid ?? "-"),
      String(r.sid ?? "-"),
      r.alias,
      r.cpu,
      r.state,
      String(r.turns),
      r.last_seen ? `${Math.round((Date.now() - Date.parse(r.last_seen)) / 1000)}s ago` : "-",
      r.reason ?? "-",
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
    for (const row of [head, ...table]) {
      out(row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
    }
    return EXIT.ok;
  },
};

export const pstreeCommand: Command = {
  name: "pstree",
  summary: "Show the daemon and its sessions as a tree.",
  usage: "pstree [--json]",
  help: `${STATES_HELP}

  --json   {"daemon": {"pid", "root"}, "sessions": [the rows of 'ostk ps --json']}`,
  async run(ctx) {
    const { values } = parseFlags("pstree", ctx.argv, { json: { type: "boolean" } });
    if (values.help) {
      out(helpText(pstreeCommand));
      return EXIT.ok;
    }
    await withDaemon(ctx.cwd, async (c) => {
      const status = await c.request("daemon/status", {}) as { pid: number; root: string };
      const rows = ((await c.request("session/list", {})) as { sessions: PsRow[] }).sessions;
      if (values.json) {
        outJson({ daemon: { pid: status.pid, root: status.root }, sessions: rows });
        return;
      }
      out(`ostk listen (${status.pid}) ${status.root}`);
      rows.forEach((r, i) => {
        const branch = i === rows.length - 1 ? "└─" : "├─";
        out(
          `${branch} ${r.alias} [${r.cpu}] ${r.state}${
            r.pid ? ` (${r.pid})` : ""
          } turns=${r.turns}${r.reason ? `: ${r.reason}` : ""}`,
        );
      });
    });
    return EXIT.ok;
  },
};

export const spawnCommand: Command = {
  name: "spawn",
  summary: "Start a session: a script transcript or an external agent command.",
  usage:
    "spawn <name|alias> --cpu script --script FILE | --cpu command -- CMD [ARGS...] | --cpu model --model PROVIDER:MODEL [--task TEXT]",
  help:
    `The first argument is a name (an alias <name>-<n> is issued) or, with --alias, the exact alias.

  --cpu script|command|model   what the session runs
  --script FILE          transcript for --cpu script (fixtures/agents/*.jsonl format)
  --model SPEC           for --cpu model: anthropic:<model>, openai:<model>, ollama:<model>
                         or openai-compatible:<base-url>#<model>
  --task TEXT            for --cpu model: the first user message
  --revival POLICY       revive (default), reap or ask: what to do after a crash
  --alias                treat the first argument as the exact alias
  --json                 print {"alias": ..., "state": ...}

The daemon checks the CPU before it answers: a --script that is missing or does not parse, a
command whose program is not on the daemon's PATH (or not executable), a --model no provider
takes are refused (exit 1) and nothing is spawned.`,
  async run(ctx) {
    const dash = ctx.argv.indexOf("--");
    const own = dash >= 0 ? ctx.argv.slice(0, dash) : ctx.argv;
    const command = dash >= 0 ? ctx.argv.slice(dash + 1) : [];
    const { values, positionals } = parseFlags("spawn", own, {
      cpu: { type: "string" },
      script: { type: "string" },
      model: { type: "string" },
      task: { type: "string" },
      revival: { type: "string" },
      alias: { type: "boolean" },
      json: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(spawnCommand));
      return EXIT.ok;
    }
    const [who, ...extra] = positionals;
    const usage = (m: string) => new OstkError("usage", m, {}, "see 'ostk spawn --help'");
    if (!who || extra.length) throw usage("expected one name or alias");
    let cpu;
    if (values.cpu === "script") {
      if (!values.script) throw usage("--cpu script needs --script FILE");
      cpu = { kind: "script" as const, script: resolveFrom(ctx.cwd, values.script) };
    } else if (values.cpu === "command") {
      if (command.length === 0) throw usage("--cpu command needs '-- CMD [ARGS...]'");
      cpu = { kind: "command" as const, command, cwd: ctx.cwd };
    } else if (values.cpu === "model") {
      // Whether the spec names a provider is the daemon's check (exit 1, with the forms).
      if (!values.model) {
        throw usage("--cpu model needs --model PROVIDER:MODEL (e.g. anthropic:claude-sonnet-4)");
      }
      cpu = {
        kind: "model" as const,
        model: values.model,
        ...(values.task !== undefined ? { task: values.task } : {}),
      };
    } else throw usage("--cpu must be 'script', 'command' or 'model'");
    if (values.cpu !== "model" && (values.model !== undefined || values.task !== undefined)) {
      throw usage("--model and --task go with --cpu model");
    }
    const revival = values.revival;
    if (revival !== undefined && !["revive", "reap", "ask"].includes(revival)) {
      throw usage("--revival must be revive, reap or ask");
    }
    const result = await withDaemon(ctx.cwd, (c) =>
      c.request("session/spawn", {
        ...(values.alias ? { alias: who } : { name: who }),
        cpu,
        ...(revival ? { revival: revival as "revive" } : {}),
      })) as { alias: string; state: string };
    if (values.json) outJson(result);
    else out(`${result.alias} ${result.state}`);
    return EXIT.ok;
  },
};

export const killCommand: Command = {
  name: "kill",
  summary: "Stop a session (SIGTERM to a command's process group, SIGKILL after a grace period).",
  usage: "kill <alias> [--json]",
  help: "  --json   print the final state",
  async run(ctx) {
    const { values, positionals } = parseFlags(
      "kill",
      ctx.argv,
      { json: { type: "boolean" } },
      true,
    );
    if (values.help) {
      out(helpText(killCommand));
      return EXIT.ok;
    }
    if (positionals.length !== 1) {
      throw new OstkError("usage", "expected one alias", {}, "see 'ostk ps'");
    }
    const result = await withDaemon(
      ctx.cwd,
      (c) => c.request("session/kill", { alias: positionals[0] }),
    );
    if (values.json) outJson(result);
    else out(`${positionals[0]} ${(result as { state: string }).state}`);
    return EXIT.ok;
  },
};

export const lineageCommand: Command = {
  name: "lineage resolve",
  summary: "Decide an orphaned session's fate: --revive or --reap.",
  usage: "lineage resolve <alias> --revive|--reap",
  help: "For sessions with revival policy 'ask' that were running when the daemon died.",
  async run(ctx) {
    const { values, positionals } = parseFlags("lineage resolve", ctx.argv, {
      revive: { type: "boolean" },
      reap: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(lineageCommand));
      return EXIT.ok;
    }
    if (positionals.length !== 1 || values.revive === values.reap) {
      throw new OstkError("usage", "expected one alias and exactly one of --revive, --reap");
    }
    const result = await withDaemon(
      ctx.cwd,
      (c) =>
        c.request("lineage/resolve", {
          alias: positionals[0],
          action: values.revive ? "revive" : "reap",
        }),
    );
    out(`${positionals[0]} ${(result as { state: string }).state}`);
    return EXIT.ok;
  },
};
