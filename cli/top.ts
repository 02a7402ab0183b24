/**
 * `ostk top`: the fleet at a glance, refreshed from the daemon's socket. One row per session
 * (state and turns from `session/list`, tokens from `session/inspect`, writes and conflicts
 * folded from the audit rows `client/subscribe` streams), the newest audit rows below, and keys
 * to select, attach, kill and answer approvals. Off a terminal (or with --once) it prints one
 * snapshot as plain lines and exits.
 */
import type { DaemonClient } from "../actors/client.ts";
import { RPC_ERRORS } from "../actors/protocol.ts";
import type { AuditRow } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import { WRITE_EVENTS } from "../kernel/fold.ts";
import { locateProject } from "../kernel/project.ts";
import { isOutcome } from "../kernel/session_outcome.ts";
import { type Command, EXIT, helpText, out, parseFlags } from "./command.ts";
import { connectOrFail } from "./daemon_client.ts";
import type { PsRow } from "./sessions.ts";

/** A question waiting for the operator (`session/approvals`). */
interface Pending {
  request_id: string;
  alias: string;
  class: string;
  summary: string;
}

/** Everything one frame shows. */
export interface TopModel {
  root: string;
  pid: number;
  uptimeMs: number;
  rows: PsRow[];
  /** Per alias: writes and conflicts folded from the audit log, tokens from the session. */
  writes: Map<string, number>;
  conflicts: Map<string, number>;
  tokens: Map<string, number>;
  /** The newest audit rows, oldest first. */
  audit: AuditRow[];
  /** Pending approvals, or null when the daemon has no approval methods. */
  approvals: Pending[] | null;
  selected: number;
  message: string;
}

const AUDIT_KEEP = 50;

function age(iso: string | null, now: number): string {
  if (!iso) return "-";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120
    ? `${s}s ago`
    : s < 7200
    ? `${Math.round(s / 60)}m ago`
    : `${Math.round(s / 3600)}h ago`;
}

function compact(n: number): string {
  if (n < 10_000) return String(n);
  if (n < 10_000_000) return `${Math.round(n / 1000)}k`;
  return `${Math.round(n / 1_000_000)}M`;
}

const STATE_COLOR: Record<string, string> = {
  running: "32",
  spawning: "36",
  stale: "33",
  orphaned: "31",
  draining: "35",
  // How a session ended (kernel/session_outcome.ts): grey when it was meant to, red when not.
  finished: "90",
  killed: "90",
  limited: "33",
  failed: "31",
  crashed: "31",
};

/**
 * Lay out one frame: at most `height` lines, none wider than `width`. `color` adds ANSI colors
 * (the caller passes false under NO_COLOR or off a terminal); the selected row is marked `>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderTop } from "./top.ts";
 * const model = { root: "/p", pid: 1, uptimeMs: 0, rows: [], writes: new Map(),
 *   conflicts: new Map(), tokens: new Map(), audit: [], approvals: null, selected: 0,
 *   message: "" };
 * const lines = renderTop(model, { width: 80, height: 24, color: false, keys: false });
 * assert.equal(lines[0], "ostk top  /p  pid 1  up 0s");
 * assert.ok(lines.includes("  (no sessions; start one with 'ostk spawn')"));
 * const small = renderTop(model, { width: 20, height: 3, color: false, keys: false });
 * assert.ok(small.length <= 3);
 * assert.ok(small.every((l) => l.length <= 20));
 * ```
 */
export function renderTop(
  m: TopModel,
  opts: { width: number; height: number; color: boolean; keys: boolean; now?: number },
): string[] {
  const now = opts.now ?? Date.now();
  const fit = (s: string) => (s.length > opts.width ? s.slice(0, opts.width - 1) + "…" : s);
  const counts = new Map<string, number>();
  for (const r of m.rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  const summary = [...counts].map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const head = [
    fit(`ostk top  ${m.root}  pid ${m.pid}  up ${Math.round(m.uptimeMs / 1000)}s`),
    fit(`sessions: ${summary}`),
    "",
  ];
  const cols = ["ALIAS", "CPU", "STATE", "TURNS", "LAST SEEN", "WRITES", "CONFL", "TOKENS"];
  const table = m.rows.map((r) => [
    r.alias,
    r.cpu,
    r.state,
    String(r.turns),
    age(r.last_seen, now),
    String(m.writes.get(r.alias) ?? 0),
    String(m.conflicts.get(r.alias) ?? 0),
    compact(m.tokens.get(r.alias) ?? 0),
  ]);
  const widths = cols.map((c, i) => Math.max(c.length, ...table.map((r) => r[i].length)));
  const right = new Set([3, 5, 6, 7]);
  const line = (cells: string[]) =>
    cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ");
  const approvals = m.approvals === null
    ? "approvals: n/a"
    : m.approvals.length === 0
    ? "approvals: none pending"
    : `approvals: ${m.approvals.length} pending — ${m.approvals[0].alias}: ${
      m.approvals[0].class
    } ${m.approvals[0].summary}`;
  const foot = [
    fit(approvals),
    ...(m.message ? [fit(m.message)] : []),
    ...(opts.keys ? [fit("↑↓ select  a attach  k kill  y/n approve  q quit")] : []),
  ];
  // Rows for sessions: what is left after the header, the footer and a few audit lines.
  const auditMin = Math.min(m.audit.length, 3);
  const room = Math.max(
    1,
    opts.height - head.length - 1 - foot.length - (auditMin ? auditMin + 1 : 0),
  );
  const first = Math.min(Math.max(0, m.selected - room + 1), Math.max(0, table.length - room));
  const shown = table.slice(first, first + room).map((cells, k) => {
    const i = first + k;
    const text = fit(`${i === m.selected ? ">" : " "} ${line(cells)}`);
    if (!opts.color) return text;
    const code = STATE_COLOR[cells[2]];
    const colored = code ? text.replace(cells[2], `\x1b[${code}m${cells[2]}\x1b[0m`) : text;
    return i === m.selected ? `\x1b[1m${colored}\x1b[0m` : colored;
  });
  if (table.length === 0) shown.push("  (no sessions; start one with 'ostk spawn')");
  const body = [...head, fit(`  ${line(cols)}`), ...shown];
  const auditRoom = opts.height - body.length - foot.length - 1;
  const audit = auditRoom > 0 && m.audit.length
    ? ["", ...m.audit.slice(-auditRoom + 1).map((r) => fit(auditLine(r)))].slice(0, auditRoom)
    : [];
  return [...body, ...audit, ...foot].slice(0, opts.height);
}

/** `seq hh:mm:ss actor event key=value…`: an audit row short enough for a narrow screen. */
function auditLine(row: AuditRow): string {
  const { seq, ts, event, actor, prev_hash: _p, sig: _s, hash: _h, ...fields } = row;
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${String(seq).padStart(5)} ${ts.slice(11, 19)} ${actor} ${event}${
    extra ? " " + extra : ""
  }`;
}

/** Keeps a TopModel current from one daemon connection. */
class Feed {
  model: TopModel;
  #client: DaemonClient;

  constructor(client: DaemonClient) {
    this.#client = client;
    this.model = {
      root: "",
      pid: 0,
      uptimeMs: 0,
      rows: [],
      writes: new Map(),
      conflicts: new Map(),
      tokens: new Map(),
      audit: [],
      approvals: null,
      selected: 0,
      message: "",
    };
    client.onEvent((event) => {
      if (event.kind === "audit") this.#fold(event.row as AuditRow);
    });
  }

  /** Fold the whole log once (from seq 0), then each new row as it is appended. */
  async subscribe(): Promise<void> {
    await this.#client.request("client/subscribe", { from_seq: 0 });
  }

  #fold(row: AuditRow): void {
    const m = this.model;
    if (WRITE_EVENTS.has(row.event)) m.writes.set(row.actor, (m.writes.get(row.actor) ?? 0) + 1);
    if (row.event === "tool.conflict") {
      m.conflicts.set(row.actor, (m.conflicts.get(row.actor) ?? 0) + 1);
    }
    m.audit.push(row);
    if (m.audit.length > AUDIT_KEEP) m.audit.splice(0, m.audit.length - AUDIT_KEEP);
  }

  async refresh(): Promise<void> {
    const m = this.model;
    const status = await this.#client.request("daemon/status", {}) as {
      pid: number;
      root: string;
      uptime_ms: number;
    };
    m.root = status.root;
    m.pid = status.pid;
    m.uptimeMs = status.uptime_ms;
    m.rows = ((await this.#client.request("session/list", {})) as { sessions: PsRow[] }).sessions;
    m.selected = Math.min(m.selected, Math.max(0, m.rows.length - 1));
    // An ended session's tokens no longer change: ask once.
    await Promise.all(
      m.rows.filter((r) => !isOutcome(r.state) || !m.tokens.has(r.alias)).map(
        async (r) => {
          const s = await this.#client.request("session/inspect", { alias: r.alias }).catch(
            () => undefined,
          ) as { context?: { tokens?: { in: number; out: number } } } | undefined;
          const t = s?.context?.tokens;
          if (t) m.tokens.set(r.alias, t.in + t.out);
        },
      ),
    );
    try {
      const answer = await this.#client.request("session/approvals", {}) as { pending: Pending[] };
      m.approvals = answer.pending;
    } catch (err) {
      if ((err as { code?: number }).code !== RPC_ERRORS.methodNotFound) throw err;
      m.approvals = null;
    }
  }

  selectedAlias(): string | undefined {
    return this.model.rows[this.model.selected]?.alias;
  }

  /** Act on a key; returns false to quit. */
  async key(key: string): Promise<boolean> {
    const m = this.model;
    const alias = this.selectedAlias();
    if (key === "q" || key === "\x03") return false;
    if (key === "\x1b[A") m.selected = Math.max(0, m.selected - 1);
    else if (key === "\x1b[B") m.selected = Math.min(m.rows.length - 1, m.selected + 1);
    else if (key === "a" && alias) m.message = `attach: ostk attach ${alias}  (Ctrl-C detaches)`;
    else if (key === "k" && alias) {
      m.message = `killing ${alias}…`;
      this.#client.request("session/kill", { alias }).then(
        () => (m.message = `${alias} killed`),
        (err) => (m.message = `kill ${alias}: ${(err as Error).message}`),
      );
    } else if ((key === "y" || key === "n") && m.approvals !== null) {
      const ask = m.approvals.find((p) => p.alias === alias) ?? m.approvals[0];
      if (!ask) m.message = "no approval is waiting";
      else {
        await this.#client.request("session/approve", {
          alias: ask.alias,
          request_id: ask.request_id,
          answer: key,
        }).then(
          () => (m.message = `${key === "y" ? "approved" : "denied"}: ${ask.alias} ${ask.summary}`),
          (err) => (m.message = `approve: ${(err as Error).message}`),
        );
      }
    }
    return true;
  }
}

export const topCommand: Command = {
  name: "top",
  summary: "A live view of the sessions: state, turns, writes, conflicts, tokens, audit tail.",
  usage: "top [--once] [--interval-ms N]",
  help: `Keys: ↑/↓ select a session, a shows how to attach to it, k kills it, y/n answers its
(or the oldest) pending approval, q quits. When stdout is not a terminal, or with --once,
prints one snapshot as plain lines and exits. NO_COLOR turns colors off.

  --once           print one snapshot and exit
  --interval-ms N  refresh period (default 500)`,
  async run(ctx) {
    const { values } = parseFlags("top", ctx.argv, {
      once: { type: "boolean" },
      "interval-ms": { type: "string" },
    });
    if (values.help) {
      out(helpText(topCommand));
      return EXIT.ok;
    }
    const interval = Number(values["interval-ms"] ?? 500);
    if (!Number.isInteger(interval) || interval < 50) {
      throw new OstkError("usage", "--interval-ms needs an integer ≥ 50");
    }
    const client = await connectOrFail(await locateProject(ctx.cwd));
    try {
      const feed = new Feed(client);
      await feed.subscribe();
      await feed.refresh();
      const tty = Deno.stdout.isTerminal() && Deno.stdin.isTerminal();
      if (values.once || !tty) {
        const { columns, rows } = tty ? Deno.consoleSize() : { columns: 200, rows: 1000 };
        for (
          const l of renderTop(feed.model, {
            width: columns,
            height: rows,
            color: false,
            keys: false,
          })
        ) {
          out(l);
        }
        return EXIT.ok;
      }
      await interactive(feed, interval, !Deno.env.get("NO_COLOR"));
      return EXIT.ok;
    } finally {
      client.close();
    }
  },
};

const encoder = new TextEncoder();
function write(text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/** The full-screen loop: alternate screen, raw keys, a redraw per refresh and per key. */
async function interactive(feed: Feed, interval: number, color: boolean): Promise<void> {
  const draw = () => {
    const { columns, rows } = Deno.consoleSize();
    const lines = renderTop(feed.model, { width: columns, height: rows, color, keys: true });
    write("\x1b[H" + lines.map((l) => l + "\x1b[K").join("\r\n") + "\x1b[J");
  };
  let running = true;
  write("\x1b[?1049h\x1b[?25l");
  Deno.stdin.setRaw(true);
  try {
    draw();
    const keys = (async () => {
      const buf = new Uint8Array(16);
      while (running) {
        const n = await Deno.stdin.read(buf);
        if (n === null) break;
        if (!(await feed.key(new TextDecoder().decode(buf.subarray(0, n))))) break;
        draw();
      }
      running = false;
    })();
    while (running) {
      await Promise.race([new Promise((r) => setTimeout(r, interval)), keys]);
      if (!running) break;
      try {
        await feed.refresh();
      } catch (err) {
        feed.model.message = `daemon: ${(err as Error).message}`;
        if ((err as { code?: number }).code === RPC_ERRORS.closed) running = false;
      }
      draw();
    }
  } finally {
    Deno.stdin.setRaw(false);
    write("\x1b[?25h\x1b[?1049l");
  }
}
