/**
 * What session traces cost: file edits per second through the daemon with XState inspection
 * and trace files on, against the same daemon build with `traces: false` (what OSTK_TRACES=0
 * does), in the same run. Each edit is a `kernel/call` made as a running session's alias, so it
 * drives that session's machine (heartbeat, turn done, drain) and so the inspection observer.
 * Rounds alternate between the two daemons; prints figures, asserts nothing. Target: on is at
 * most 10% slower.
 *
 *   deno run --allow-read --allow-write --allow-env --allow-run --allow-net --allow-ffi \
 *     --allow-sys=loadavg,hostname,osRelease --unstable-worker-options bench/inspect_bench.ts
 *   ... bench/inspect_bench.ts --edits 200 --rounds 4 --clients 4   # quicker
 *
 * Everything runs in a scratch directory with a throwaway operator key (OSTK_IDENTITY); both
 * daemons run in this process and their session processes are killed before it exits.
 */
import { parseArgs } from "node:util";
import { DaemonClient } from "../actors/client.ts";
import { type RunningDaemon, startDaemon } from "../actors/daemon.ts";
import { findSocketPath } from "../actors/socket_path.ts";
import { tracesDir } from "../actors/traces.ts";
import type { PsRow } from "../cli/sessions.ts";
import { loadOrCreateOperatorKey } from "../kernel/identity.ts";
import { initProject } from "../kernel/project_init.ts";
import type { ToolResponse } from "../kernel/tools.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    edits: { type: "string", default: "500" },
    rounds: { type: "string", default: "6" },
    clients: { type: "string", default: "4" },
  },
});
const EDITS = Number(values.edits);
const ROUNDS = Number(values.rounds);
const CLIENTS = Number(values.clients);
if (![EDITS, ROUNDS, CLIENTS].every((n) => Number.isInteger(n) && n > 0)) {
  console.error(
    "usage: inspect_bench.ts [--edits N] [--rounds N] [--clients N]  (positive integers)",
  );
  Deno.exit(2);
}

interface Side {
  name: string;
  daemon: RunningDaemon;
  clients: DaemonClient[];
  alias: string;
  pid: number | null;
  next: number[];
  seconds: number;
  edits: number;
}

async function side(base: string, name: string, traces: boolean): Promise<Side> {
  const dir = `${base}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  const key = await loadOrCreateOperatorKey(`${base}/identity.key`);
  const { paths } = await initProject(dir, key);
  for (let c = 0; c < CLIENTS; c++) await Deno.writeTextFile(`${dir}/f${c}.txt`, "x=0\n");
  const daemon = await startDaemon(paths, { traces, tickMs: 1000 });
  const clients: DaemonClient[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    clients.push(await DaemonClient.connect(findSocketPath(paths)));
  }
  const spawned = await clients[0].request("session/spawn", {
    name: "bench",
    cpu: { kind: "command", command: ["sleep", "3600"], cwd: dir },
  }) as { alias: string };
  let pid: number | null = null;
  for (let i = 0; i < 500 && pid === null; i++) {
    const rows = (await clients[0].request("session/list", {}) as { sessions: PsRow[] }).sessions;
    const row = rows.find((r) => r.alias === spawned.alias);
    if (row?.state === "running") pid = row.pid;
    else await new Promise((r) => setTimeout(r, 10));
  }
  if (pid === null) throw new Error(`${name}: the bench session never ran`);
  return {
    name,
    daemon,
    clients,
    alias: spawned.alias,
    pid,
    next: clients.map(() => 0),
    seconds: 0,
    edits: 0,
  };
}

/** `EDITS` edits spread over the side's clients, each client on its own file. */
async function round(s: Side): Promise<void> {
  const per = Math.ceil(EDITS / CLIENTS);
  const t0 = performance.now();
  await Promise.all(s.clients.map(async (client, c) => {
    for (let i = 0; i < per; i++) {
      const n = s.next[c]++;
      const res = await client.request("kernel/call", {
        tool: "file:edit",
        args: { path: `f${c}.txt`, old: `x=${n}\n`, new: `x=${n + 1}\n` },
        as: s.alias,
      }) as ToolResponse;
      if (!res.ok) throw new Error(`${s.name}: file:edit: ${res.error.code}: ${res.error.message}`);
    }
  }));
  s.seconds += (performance.now() - t0) / 1000;
  s.edits += per * CLIENTS;
}

async function close(s: Side): Promise<void> {
  // A clean kill first: a session killed behind the daemon's back would be revived.
  await s.clients[0].request("session/kill", { alias: s.alias }).catch((err) => {
    console.error(`${s.name}: session/kill: ${err.message}`);
    try {
      if (s.pid) Deno.kill(-s.pid, "SIGKILL");
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) console.error(`kill ${s.pid}: ${e}`);
    }
  });
  for (const c of s.clients) c.close();
  s.daemon.stop();
  await s.daemon.done;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile) total += (await Deno.stat(`${dir}/${e.name}`)).size;
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return total;
}

const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_inspect_bench_" }));
Deno.env.set("OSTK_IDENTITY", `${base}/identity.key`);
const sides: Side[] = [];
try {
  sides.push(await side(base, "off", false));
  sides.push(await side(base, "on", true));
  // Warm both up, then alternate which goes first.
  for (const s of sides) await round(s);
  for (const s of sides) Object.assign(s, { seconds: 0, edits: 0 });
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of r % 2 ? [...sides].reverse() : sides) await round(s);
  }
  console.log(
    `file:edit over the socket as a running session: ${ROUNDS} rounds × ${EDITS} edits, ${CLIENTS} clients`,
  );
  const rate = (s: Side) => s.edits / s.seconds;
  for (const s of sides) {
    console.log(
      `  traces ${s.name.padEnd(4)} ${
        rate(s).toFixed(0).padStart(8)
      } edits/s   (${s.edits} edits in ${s.seconds.toFixed(2)} s)`,
    );
  }
  const [off, on] = sides;
  const slower = (1 - rate(on) / rate(off)) * 100;
  const traces = tracesDir(on.daemon.context.paths);
  const traceBytes = await dirBytes(traces);
  console.log(
    `  traces on is ${slower.toFixed(1)}% slower (target ≤ 10%: ${
      slower <= 10 ? "met" : "NOT met"
    })`,
  );
  console.log(
    `  trace files: ${(traceBytes / 1024).toFixed(0)} KiB (rotating at 1 MiB, one old file kept)`,
  );
} finally {
  for (const s of sides) await close(s).catch((err) => console.error(`close ${s.name}: ${err}`));
  await Deno.remove(base, { recursive: true });
}
