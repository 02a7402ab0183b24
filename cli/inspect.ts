/**
 * `ostk inspect`: the machines as diagrams (`inspect machines`), one session's machine live with
 * its recent trace (`inspect <alias>`, `--follow`), and a recorded trace replayed step by step
 * (`inspect <alias> --replay`).
 */
import type { StateValue } from "xstate";
import { type ExportFormat, exportMachine } from "../actors/inspect_export.ts";
import { serveInspectWeb } from "../actors/inspect_web.ts";
import { rootMachine } from "../actors/root_machine.ts";
import { sessionMachine } from "../actors/session_machine.ts";
import { type Replay, replayTrace } from "../actors/trace_replay.ts";
import { readTrace, type TraceEntry, tracePath, tracesDir } from "../actors/traces.ts";
import { OstkError } from "../kernel/errors.ts";
import { locateProject } from "../kernel/project.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import { tryConnect } from "./daemon_client.ts";

const MACHINES = { root: rootMachine, session: sessionMachine } as const;
const FOLLOW_POLL_MS = 200;

const FLAGS = {
  machine: { type: "string" },
  format: { type: "string" },
  json: { type: "boolean" },
  follow: { type: "boolean", short: "f" },
  events: { type: "string" },
  replay: { type: "boolean" },
  step: { type: "string" },
  web: { type: "boolean" },
  port: { type: "string" },
  host: { type: "string" },
} as const;

export const inspectCommand: Command = {
  name: "inspect",
  summary: "Export the machines as diagrams, or show a session's machine and its trace.",
  usage: "inspect machines [--machine root|session|all] [--format mermaid|dot|json]\n" +
    "       ostk inspect <alias> [--json] [--follow] [--events N]\n" +
    "       ostk inspect <alias> --replay [--step N] [--json]\n" +
    "       ostk inspect --web [<alias>] [--port N] [--host 127.0.0.1]",
  help: `machines       render the machines from their definitions: nested states, transitions
               (event [guard] / actions), invoked and spawned actors
  --machine M  root, session or all (default all; mermaid 'all' is Markdown with two blocks)
  --format F   mermaid (default), dot (Graphviz) or json

<alias>        the session's current state value, tags and counters (from the daemon, or its
               last drain snapshot) and its last events from .ostk/traces/<alias>.jsonl
  --events N   how many trace entries to show (default 20)
  --follow     keep printing trace entries as they are written (Ctrl-C to stop)
  --replay     feed the recorded events to a fresh session machine and print the state after
               each; on a terminal, n/p step and q quits
  --step N     print only the state after step N
  --json       JSON instead of text

--web          serve a live page on loopback (prints its URL; Ctrl-C stops): the session
               machine drawn with the chosen session's active state highlighted, its recent
               trace entries and the fleet to switch between; no external assets
  --port N     port to listen on (default 0: any free port)
  --host H     127.0.0.1 (default), localhost or ::1; other hosts are refused

Traces are on unless the daemon runs with OSTK_TRACES=0; each file rotates at 1 MiB
(OSTK_TRACE_MAX_BYTES), keeping one old file (<alias>.jsonl.1).`,
  flags: FLAGS,
  async run(ctx) {
    const { values, positionals } = parseFlags("inspect", ctx.argv, FLAGS, true);
    if (values.help) {
      out(helpText(inspectCommand));
      return EXIT.ok;
    }
    const usage = (m: string) => new OstkError("usage", m, {}, "see 'ostk inspect --help'");
    if (values.web) {
      if (positionals.length > 1) throw usage("--web takes at most one alias");
      const port = values.port === undefined ? 0 : count("--port", values.port);
      if (port > 65535) throw usage("--port must be at most 65535");
      const server = serveInspectWeb({
        paths: await locateProject(ctx.cwd),
        hostname: values.host ?? "127.0.0.1",
        port,
        format: (e) => formatEntry(e),
      });
      const alias = positionals[0];
      out(
        `ostk inspect: serving ${server.url}${alias ? `?alias=${encodeURIComponent(alias)}` : ""}`,
      );
      await server.finished;
      return EXIT.ok;
    }
    if (positionals.length !== 1) throw usage("expected 'machines' or one alias");
    if (positionals[0] === "machines") {
      out(renderMachines(values.machine ?? "all", values.format ?? "mermaid").trimEnd());
      return EXIT.ok;
    }
    const alias = positionals[0];
    const paths = await locateProject(ctx.cwd);
    const dir = tracesDir(paths);
    if (values.replay) {
      const replay = replayTrace(await readTrace(dir, alias));
      const step = values.step === undefined ? undefined : count("--step", values.step);
      if (step !== undefined && step >= replay.steps.length) {
        throw usage(`--step ${step}: the trace has steps 0..${replay.steps.length - 1}`);
      }
      if (values.json) outJson(step === undefined ? replay : replay.steps[step]);
      else if (step !== undefined) out(formatStep(replay, step));
      else if (Deno.stdin.isTerminal() && Deno.stdout.isTerminal()) await stepThrough(replay);
      else printReplay(replay);
      return EXIT.ok;
    }
    const limit = values.events === undefined ? 20 : count("--events", values.events);
    const live = await liveState(paths, alias);
    let entries: TraceEntry[] = [];
    try {
      entries = await readTrace(dir, alias);
    } catch (err) {
      if (!(err instanceof OstkError && err.code === "not_found") || !live) throw err;
    }
    const recent = limit === 0 ? [] : entries.slice(-limit);
    if (values.json) outJson({ alias, live: live ?? null, events: recent });
    else {
      out(live ? formatLive(live) : `${alias}: no daemon is running; recorded trace only`);
      if (recent.length) out("");
      for (const e of recent) out(formatEntry(e, values.json));
    }
    if (values.follow) await follow(tracePath(dir, alias), values.json === true);
    return EXIT.ok;
  },
};

function count(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new OstkError("usage", `${flag} needs an integer ≥ 0`);
  return n;
}

/** The machines `which` names, in `format`. */
export function renderMachines(which: string, format: string): string {
  if (!["mermaid", "dot", "json"].includes(format)) {
    throw new OstkError("usage", `--format must be mermaid, dot or json, not '${format}'`);
  }
  const names = which === "all" ? ["root", "session"] as const : [which];
  if (!names.every((n) => n in MACHINES)) {
    throw new OstkError("usage", `--machine must be root, session or all, not '${which}'`);
  }
  const f = format as ExportFormat;
  const parts = names.map((n) => ({
    name: n,
    text: exportMachine(MACHINES[n as keyof typeof MACHINES], f),
  }));
  if (parts.length === 1) return parts[0].text;
  if (f === "json") {
    return JSON.stringify(
      Object.fromEntries(parts.map((p) => [p.name, JSON.parse(p.text)])),
      null,
      2,
    );
  }
  // dot reads several graphs from one file; Mermaid has one diagram per block.
  if (f === "dot") return parts.map((p) => p.text).join("\n");
  return parts.map((p) => `## ${p.name}\n\n\`\`\`mermaid\n${p.text}\`\`\`\n`).join("\n");
}

interface LiveState {
  alias: string;
  state: string;
  source: string;
  value: StateValue | null;
  tags?: string[];
  context?: { turns: number; tokens: { in: number; out: number }; lastSeen?: number };
  actor?: string;
  children?: string[];
}

async function liveState(
  paths: Awaited<ReturnType<typeof locateProject>>,
  alias: string,
): Promise<LiveState | undefined> {
  const client = await tryConnect(paths);
  if (!client) return undefined;
  try {
    return await client.request("session/inspect", { alias }) as LiveState;
  } finally {
    client.close();
  }
}

/** `{live: "running"}` → `live.running`; parallel regions in braces. */
export function formatValue(value: StateValue | null | undefined): string {
  if (value === null || value === undefined) return "-";
  if (typeof value === "string") return value;
  const parts = Object.entries(value).map(([k, v]) =>
    v === undefined ? k : `${k}.${formatValue(v as StateValue)}`
  );
  return parts.length === 1 ? parts[0] : `{${parts.join(", ")}}`;
}

function formatLive(s: LiveState): string {
  const lines = [
    `${s.alias}  ${s.state}  ${formatValue(s.value)}  (from ${s.source})`,
  ];
  if (s.tags?.length) lines.push(`  tags      ${s.tags.join(", ")}`);
  if (s.context) {
    const c = s.context;
    lines.push(`  turns     ${c.turns}   tokens ${c.tokens.in} in / ${c.tokens.out} out`);
    if (c.lastSeen) lines.push(`  last seen ${new Date(c.lastSeen).toISOString()}`);
  }
  if (s.children?.length) lines.push(`  children  ${s.children.join(", ")}`);
  return lines.join("\n");
}

/** `session:ed-1:0a1b2c3d/cpu` → `cpu`; the session actor itself → `session`. */
function shortActor(id: string | null): string {
  if (id === null) return "daemon";
  const slash = id.indexOf("/");
  if (slash >= 0) return id.slice(slash + 1);
  return id.startsWith("session:") ? "session" : id;
}

function eventFields(event: Record<string, unknown>): string {
  return Object.entries(event)
    .filter(([k, v]) => k !== "type" && v !== undefined && typeof v !== "object")
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

/** One trace entry as a line: time, what happened, between whom. */
export function formatEntry(e: TraceEntry, json = false): string {
  if (json) return JSON.stringify(e);
  const time = new Date(e.ts).toISOString().slice(11, 23);
  const head = `${String(e.seq).padStart(6)}  ${time}`;
  switch (e.kind) {
    case "actor":
      return `${head}  + ${shortActor(e.actor)}  (${e.actor})`;
    case "stop":
      return `${head}  - ${shortActor(e.actor)}  stopped`;
    case "dropped":
      return `${head}  ! ${e.count} entries dropped (disk too slow)`;
    case "event": {
      const fields = eventFields(e.event);
      return `${head}  ${shortActor(e.source)} → ${shortActor(e.actor)}  ${e.event.type}${
        fields ? "  " + fields : ""
      }`;
    }
    case "snapshot":
      return `${head}  = ${shortActor(e.actor)}  ${
        e.value !== undefined ? formatValue(e.value) : e.status
      }${e.value !== undefined && e.status !== "active" ? ` (${e.status})` : ""}`;
  }
}

/** Print entries appended to `path` from now on; a rotation starts the new file from its top. */
async function follow(path: string, json: boolean): Promise<never> {
  let offset = await sizeOf(path);
  let pending = "";
  const decoder = new TextDecoder();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
    const size = await sizeOf(path);
    if (size < offset) {
      offset = 0;
      pending = "";
    }
    if (size === offset) continue;
    const file = await Deno.open(path, { read: true });
    try {
      await file.seek(offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(size - offset);
      let got = 0;
      while (got < buf.length) {
        const n = await file.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      offset += got;
      pending += decoder.decode(buf.subarray(0, got), { stream: true });
    } finally {
      file.close();
    }
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) out(formatEntry(JSON.parse(line), json));
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

/** The state after step `i`: `#i  event (source)  → value`, flagged when it differs. */
export function formatStep(replay: Replay, i: number): string {
  const s = replay.steps[i];
  const differs = s.recorded !== undefined &&
    JSON.stringify(s.recorded) !== JSON.stringify(s.value);
  return `#${String(s.n).padEnd(4)} ${s.event.padEnd(30)} ${shortActor(s.source).padEnd(8)} → ${
    formatValue(s.value)
  }  turns=${s.turns}${differs ? `  (recorded ${formatValue(s.recorded)})` : ""}`;
}

function printReplay(replay: Replay): void {
  out(`replay of ${replay.actor}: ${replay.steps.length} steps`);
  replay.steps.forEach((_, i) => out(formatStep(replay, i)));
  out(
    `final: ${formatValue(replay.final)}  (${replay.mismatches} steps differ from the recording)`,
  );
}

/** On a terminal: one step at a time; n/→/space next, p/← previous, q/Ctrl-C quit. */
async function stepThrough(replay: Replay): Promise<void> {
  out(`replay of ${replay.actor}: ${replay.steps.length} steps  (n next, p previous, q quit)`);
  let i = 0;
  out(formatStep(replay, i));
  Deno.stdin.setRaw(true);
  try {
    const buf = new Uint8Array(16);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) return;
      const key = new TextDecoder().decode(buf.subarray(0, n));
      if (key === "q" || key === "\x03") return;
      const next = key === "n" || key === " " || key === "\x1b[C"
        ? i + 1
        : key === "p" || key === "\x1b[D"
        ? i - 1
        : i;
      if (next === i || next < 0 || next >= replay.steps.length) continue;
      i = next;
      out(formatStep(replay, i));
    }
  } finally {
    Deno.stdin.setRaw(false);
    out(`final: ${formatValue(replay.final)}`);
  }
}
