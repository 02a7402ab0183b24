/**
 * `ostk inspect --web`: a loopback-only HTTP server with one self-contained page (inline CSS,
 * JS and SVG; no external assets). The page draws the session machine from its exported graph
 * (inspect_export.ts) as nested boxes, highlights the chosen session's active states, lists its
 * recent trace entries and the fleet, and updates live from Server-Sent Events. The server polls
 * the daemon (`session/list`, `session/inspect`) and tails `.ostk/traces/<alias>.jsonl`; with no
 * daemon running it shows what the traces recorded.
 */
import type { AnyStateMachine } from "xstate";
import { OstkError } from "../kernel/errors.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { DaemonClient } from "./client.ts";
import { type MachineGraph, machineGraph, type StateInfo } from "./inspect_export.ts";
import { sessionMachine } from "./session_machine.ts";
import { findSocketPath } from "./socket_path.ts";
import { readTrace, type TraceEntry, tracesDir } from "./traces.ts";

/** Hosts the server may bind: loopback only. */
export const LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"] as const;

/** A box of the diagram, in SVG user units. */
export interface Box {
  id: string;
  key: string;
  type: StateInfo["type"];
  x: number;
  y: number;
  w: number;
  h: number;
  depth: number;
}

const PAD = 10;
const TITLE = 22;
const GAP = 12;
const LEAF_H = 34;
const CHAR_W = 7.5;

/**
 * Lay the machine's states out as nested rectangles: a leaf is sized by its name; a compound
 * state puts its children in a grid of ⌈√n⌉ columns (a parallel one in a single row) under
 * its title.
 */
export function layoutMachine(graph: MachineGraph): { boxes: Box[]; w: number; h: number } {
  const kids = new Map<string, StateInfo[]>();
  for (const s of graph.states) {
    if (s.parent === null) continue;
    const list = kids.get(s.parent) ?? [];
    list.push(s);
    kids.set(s.parent, list);
  }
  const size = new Map<string, { w: number; h: number; cols: number }>();
  const measure = (s: StateInfo): { w: number; h: number } => {
    const children = kids.get(s.id) ?? [];
    const label = Math.max(80, s.key.length * CHAR_W + 2 * PAD);
    if (!children.length) {
      const r = { w: label, h: LEAF_H, cols: 0 };
      size.set(s.id, r);
      return r;
    }
    const sizes = children.map(measure);
    const cols = s.type === "parallel" ? children.length : Math.ceil(Math.sqrt(children.length));
    const colW: number[] = [];
    const rowH: number[] = [];
    sizes.forEach((c, i) => {
      const col = i % cols, row = Math.floor(i / cols);
      colW[col] = Math.max(colW[col] ?? 0, c.w);
      rowH[row] = Math.max(rowH[row] ?? 0, c.h);
    });
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const w = Math.max(label, sum(colW) + GAP * (colW.length - 1) + 2 * PAD);
    const h = TITLE + sum(rowH) + GAP * (rowH.length - 1) + PAD;
    const r = { w, h, cols };
    size.set(s.id, r);
    return r;
  };
  const boxes: Box[] = [];
  const place = (s: StateInfo, x: number, y: number, depth: number) => {
    const me = size.get(s.id)!;
    boxes.push({ id: s.id, key: s.key, type: s.type, x, y, w: me.w, h: me.h, depth });
    const children = kids.get(s.id) ?? [];
    if (!children.length) return;
    const colW: number[] = [];
    const rowH: number[] = [];
    children.forEach((c, i) => {
      const cs = size.get(c.id)!;
      const col = i % me.cols, row = Math.floor(i / me.cols);
      colW[col] = Math.max(colW[col] ?? 0, cs.w);
      rowH[row] = Math.max(rowH[row] ?? 0, cs.h);
    });
    children.forEach((c, i) => {
      const col = i % me.cols, row = Math.floor(i / me.cols);
      let cx = x + PAD, cy = y + TITLE;
      for (let k = 0; k < col; k++) cx += colW[k] + GAP;
      for (let k = 0; k < row; k++) cy += rowH[k] + GAP;
      place(c, cx, cy, depth + 1);
    });
  };
  const root = graph.states.find((s) => s.parent === null);
  if (!root) return { boxes, w: 0, h: 0 };
  const total = measure(root);
  place(root, 0, 0, 0);
  return { boxes, w: total.w, h: total.h };
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The machine as an SVG: one `<g data-state="<id>">` per state, transitions in `<title>`s. */
export function machineSvg(graph: MachineGraph): string {
  const { boxes, w, h } = layoutMachine(graph);
  const out = [
    `<svg id="diagram" xmlns="http://www.w3.org/2000/svg" viewBox="-2 -2 ${w + 4} ${
      h + 4
    }" width="${w + 4}" height="${h + 4}">`,
  ];
  for (const b of boxes) {
    const leaf = !graph.states.some((s) => s.parent === b.id);
    const on = graph.transitions.filter((t) => t.source === b.id).map((t) =>
      `${t.label}${t.guard ? ` [${t.guard}]` : ""} → ${
        t.targets.map((x) => x.split(".").pop()).join(", ") || "(self)"
      }`
    );
    const title = [b.id, ...on].join("\n");
    out.push(
      `<g class="state ${leaf ? "leaf" : "compound"} ${b.type}" data-state="${esc(b.id)}">` +
        `<title>${esc(title)}</title>` +
        `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="${leaf ? 8 : 4}"/>` +
        `<text x="${b.x + (leaf ? b.w / 2 : PAD)}" y="${b.y + (leaf ? b.h / 2 + 4 : 15)}"${
          leaf ? ' text-anchor="middle"' : ""
        }>${esc(b.key)}${b.type === "final" ? " ◉" : ""}</text></g>`,
    );
  }
  out.push("</svg>");
  return out.join("\n");
}

const CSS = `
body{font:13px system-ui,sans-serif;margin:0;display:grid;grid-template-columns:190px 1fr 420px;
height:100vh;color:#222}
aside,main,section{overflow:auto;padding:10px;border-right:1px solid #ddd}
h2{font-size:13px;margin:4px 0 8px;text-transform:uppercase;color:#666}
#fleet a{display:block;padding:4px 6px;border-radius:4px;color:#222;text-decoration:none}
#fleet a.sel{background:#1f6feb;color:#fff}
#fleet small{float:right;opacity:.7}
.state rect{fill:#fff;stroke:#888;stroke-width:1}
.state.compound>rect{fill:#f6f8fa}
.state.final>rect{stroke-width:2.5}
.state text{font:12px system-ui,sans-serif;fill:#333}
.state.active-parent>rect{stroke:#1f6feb;stroke-width:2}
.state.active>rect{fill:#1f6feb;stroke:#0b3d91;stroke-width:2}
.state.active>text{fill:#fff;font-weight:600}
#status{margin:8px 0;font-family:monospace}
#events{font:11px monospace;white-space:pre;margin:0}
#events div.new{background:#fff3b0}
`;

const SCRIPT = `
const $ = (id) => document.getElementById(id);
let alias = new URLSearchParams(location.search).get("alias") || "";
let source;
function activeIds(value, prefix) {
  if (value === null || value === undefined) return [];
  if (typeof value === "string") return [prefix + "." + value];
  const ids = [];
  for (const [k, v] of Object.entries(value)) {
    ids.push(prefix + "." + k, ...activeIds(v, prefix + "." + k));
  }
  return ids;
}
function paint(value) {
  const root = document.querySelector("#diagram g.state").dataset.state;
  const ids = new Set(activeIds(value, root));
  if (ids.size) ids.add(root);
  let leaf = "";
  for (const g of document.querySelectorAll("#diagram g.state")) {
    const on = ids.has(g.dataset.state);
    const isLeaf = g.classList.contains("leaf");
    g.classList.toggle("active", on && isLeaf);
    g.classList.toggle("active-parent", on && !isLeaf);
    if (on && isLeaf) leaf = g.dataset.state;
  }
  $("diagram").dataset.active = leaf;
}
function fleet(rows) {
  const box = $("fleet");
  box.textContent = "";
  for (const r of rows) {
    const a = document.createElement("a");
    a.href = "?alias=" + encodeURIComponent(r.alias);
    a.dataset.alias = r.alias;
    a.className = r.alias === alias ? "sel" : "";
    a.textContent = r.alias;
    const s = document.createElement("small");
    s.textContent = r.state;
    a.append(s);
    a.onclick = (ev) => { ev.preventDefault(); choose(r.alias); };
    box.append(a);
  }
}
let seen = 0;
function events(lines) {
  const box = $("events");
  box.textContent = "";
  for (const e of lines) {
    const d = document.createElement("div");
    d.textContent = e.text;
    if (e.seq > seen && seen) d.className = "new";
    box.prepend(d);
  }
  seen = lines.length ? lines[lines.length - 1].seq : seen;
}
function update(msg) {
  fleet(msg.sessions);
  if (!alias && msg.alias) alias = msg.alias;
  const s = msg.inspect;
  $("title").textContent = alias || "(no session)";
  $("status").textContent = s
    ? s.state + "  " + JSON.stringify(s.value) + "  (from " + s.source + ")" +
      (s.context ? "  turns=" + s.context.turns : "")
    : (msg.error || (msg.daemon ? "" : "no daemon running; recorded traces only"));
  $("status").dataset.state = s ? s.state : "";
  paint(s ? s.value : null);
  events(msg.events || []);
}
function choose(next) {
  alias = next;
  seen = 0;
  history.replaceState(null, "", alias ? "?alias=" + encodeURIComponent(alias) : "?");
  if (source) source.close();
  source = new EventSource("events?alias=" + encodeURIComponent(alias));
  source.onmessage = (m) => update(JSON.parse(m.data));
}
choose(alias);
`;

/** The whole page: nothing it shows is fetched from anywhere but this server. */
export function inspectPage(machine: AnyStateMachine = sessionMachine): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>ostk inspect</title><style>${CSS}</style></head>
<body>
<aside><h2>Fleet</h2><nav id="fleet"></nav></aside>
<main><h2>Session <span id="title"></span></h2><div id="status"></div>
${machineSvg(machineGraph(machine))}
</main>
<section><h2>Recent events</h2><div id="events"></div></section>
<script>${SCRIPT}</script>
</body></html>`;
}

/** What each Server-Sent Event carries. */
export interface WebUpdate {
  daemon: boolean;
  alias: string | null;
  sessions: { alias: string; state: string }[];
  inspect: { state: string; value: unknown; source: string; context?: { turns: number } } | null;
  events: { seq: number; text: string }[];
  error?: string;
}

export interface InspectWebOptions {
  paths: OstkPaths;
  hostname?: string;
  port?: number;
  /** How often each open page's stream polls the daemon and the trace. */
  pollMs?: number;
  /** Trace entries per update (default 30). */
  events?: number;
  /** One trace entry as a line (cli/inspect.ts passes its own formatter). */
  format?: (e: TraceEntry) => string;
}

export interface InspectWebServer {
  url: string;
  port: number;
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** Serve the page and its event stream on loopback; any other host is refused. */
export function serveInspectWeb(opts: InspectWebOptions): InspectWebServer {
  const hostname = opts.hostname ?? "127.0.0.1";
  if (!(LOOPBACK_HOSTS as readonly string[]).includes(hostname)) {
    throw new OstkError(
      "usage",
      `inspect --web serves loopback only, not '${hostname}'`,
      {},
      "it shows session state to anyone who can connect; use 127.0.0.1",
    );
  }
  const page = inspectPage();
  const pollMs = opts.pollMs ?? 250;
  const streams = new Set<AbortController>();
  const server = Deno.serve(
    { hostname, port: opts.port ?? 0, onListen: () => {} },
    (req) => {
      const url = new URL(req.url);
      if (req.method !== "GET") return new Response("method not allowed", { status: 405 });
      if (url.pathname === "/") {
        return new Response(page, {
          headers: {
            "content-type": "text/html; charset=utf-8",
            "content-security-policy":
              "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'",
          },
        });
      }
      if (url.pathname === "/events") {
        const abort = new AbortController();
        streams.add(abort);
        abort.signal.addEventListener("abort", () => streams.delete(abort));
        req.signal.addEventListener("abort", () => abort.abort());
        const body = eventStream(opts, url.searchParams.get("alias") || null, pollMs, abort);
        return new Response(body, {
          headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
        });
      }
      return new Response("not found", { status: 404 });
    },
  );
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    url: `http://${host}:${addr.port}/`,
    port: addr.port,
    finished: server.finished,
    async shutdown() {
      for (const s of streams) s.abort();
      await server.shutdown();
    },
  };
}

function eventStream(
  opts: InspectWebOptions,
  chosen: string | null,
  pollMs: number,
  abort: AbortController,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let client: DaemonClient | undefined;
  let last = "";
  let traceKey = "";
  let traceLines: WebUpdate["events"] = [];
  let traceState: WebUpdate["inspect"] = null;
  const limit = opts.events ?? 30;
  const format = opts.format ?? ((e: TraceEntry) => JSON.stringify(e));
  const dir = tracesDir(opts.paths);

  const connect = async () => {
    if (client) return client;
    try {
      client = await DaemonClient.connect(findSocketPath(opts.paths));
      client.done.catch(() => undefined).finally(() => (client = undefined));
      return client;
    } catch (err) {
      if (err instanceof OstkError && err.code === "not_found") return undefined;
      throw err;
    }
  };
  const tracedAliases = async () => {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.name.endsWith(".jsonl")) names.push(e.name.slice(0, -6));
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return names.sort().map((alias) => ({ alias, state: "traced" }));
  };
  const traceTail = async (alias: string) => {
    let key = "";
    try {
      const st = await Deno.stat(`${dir}/${alias}.jsonl`);
      key = `${st.size}:${st.mtime?.getTime()}`;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    if (key === traceKey) return traceLines;
    traceKey = key;
    try {
      const entries = await readTrace(dir, alias);
      traceLines = entries.slice(-limit).map((e) => ({ seq: e.seq, text: format(e) }));
      const snap = entries.findLast((e) => e.kind === "snapshot" && e.value !== undefined);
      traceState = snap?.kind === "snapshot"
        ? { state: snap.status, value: snap.value, source: "trace", context: snap.context }
        : null;
    } catch (err) {
      if (!(err instanceof OstkError)) throw err;
      traceLines = [];
      traceState = null;
    }
    return traceLines;
  };
  const poll = async (): Promise<WebUpdate> => {
    const c = await connect();
    let sessions: WebUpdate["sessions"] = [];
    let inspect: WebUpdate["inspect"] = null;
    let error: string | undefined;
    if (c) {
      try {
        const list = await c.request("session/list", {}) as { sessions: WebUpdate["sessions"] };
        sessions = list.sessions.map((r) => ({ alias: r.alias, state: r.state }));
      } catch (err) {
        error = (err as Error).message;
      }
    } else sessions = await tracedAliases();
    const alias = chosen ?? sessions.at(-1)?.alias ?? null;
    if (c && alias) {
      try {
        inspect = await c.request("session/inspect", { alias }) as WebUpdate["inspect"];
      } catch (err) {
        error = (err as Error).message;
      }
    }
    const events = alias ? await traceTail(alias) : [];
    if (!c && alias) inspect = traceState;
    return { daemon: c !== undefined, alias, sessions, inspect, events, error };
  };

  return new ReadableStream<Uint8Array>({
    async start(controller) {
      try {
        while (!abort.signal.aborted) {
          const update = JSON.stringify(await poll());
          if (update !== last) {
            last = update;
            controller.enqueue(enc.encode(`data: ${update}\n\n`));
          }
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, pollMs);
            abort.signal.addEventListener("abort", () => {
              clearTimeout(t);
              resolve();
            }, { once: true });
          });
        }
        controller.close();
      } catch {
        // The page went away mid-write, or the stream was cancelled.
      } finally {
        client?.close();
      }
    },
    cancel() {
      abort.abort();
    },
  });
}
