/**
 * Daemon costs: (a) a kernel call over the socket against the same call in-process, (b) recovery
 * time for a project with a long audit log and many sessions the log says were running, (c) the
 * daemon's resident memory with many idle sessions. Prints figures; asserts nothing.
 *
 *   deno run --allow-read --allow-write --allow-env --allow-run --allow-net \
 *     --allow-sys=loadavg,hostname,osRelease --unstable-worker-options bench/daemon_bench.ts
 *   ... bench/daemon_bench.ts --calls 500 --sessions 20 --rows 10000   # quicker
 *
 * Everything runs in a scratch directory with a throwaway operator key (OSTK_IDENTITY). Every
 * daemon and session process this run starts is stopped, or killed, before it exits.
 */
import { parseArgs } from "node:util";
import { DaemonClient, RpcError } from "../actors/client.ts";
import { startDaemon } from "../actors/daemon.ts";
import { writeDrain } from "../actors/drain.ts";
import { RPC_ERRORS } from "../actors/protocol.ts";
import { MACHINE_VERSION } from "../actors/session_machine.ts";
import type { CpuSpec, Revival } from "../actors/session_schema.ts";
import { findSocketPath } from "../actors/socket_path.ts";
import { startInBackground } from "../cli/background.ts";
import type { PsRow } from "../cli/sessions.ts";
import { type AuditEntry, AuditLog } from "../kernel/audit.ts";
import { loadOrCreateOperatorKey, type OperatorKey } from "../kernel/identity.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { procStat, readProc } from "../kernel/proc.ts";
import { initProject } from "../kernel/project_init.ts";
import { Kernel, type ToolResponse } from "../kernel/tools.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    calls: { type: "string", default: "2000" },
    sessions: { type: "string", default: "100" },
    rows: { type: "string", default: "100000" },
  },
});
const CALLS = Number(values.calls);
const SESSIONS = Number(values.sessions);
const ROWS = Number(values.rows);
if (![CALLS, SESSIONS, ROWS].every((n) => Number.isInteger(n) && n > 0) || ROWS < SESSIONS) {
  console.error(
    "usage: daemon_bench.ts [--calls N] [--sessions N] [--rows N]  (positive integers, rows ≥ sessions)",
  );
  Deno.exit(2);
}

const ALIAS = "bench-1";
const WARMUP = 50;
const BATCH = 1000;
/** Rows hash the same fake content: the restore path never looks at it. */
const FAKE_HASH = "ab".repeat(32);

interface Stats {
  p50: number;
  p99: number;
  mean: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return {
    p50: rank(0.5),
    p99: rank(0.99),
    mean: sorted.reduce((s, x) => s + x, 0) / sorted.length,
  };
}

const num = (x: number, digits = 3) => x.toFixed(digits).padStart(9);
const line = (label: string, s: Stats) =>
  `  ${label.padEnd(56)}${num(s.p50)}${num(s.p99)}${num(s.mean)}`;
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Processes this run started, so a failure half-way still leaves none behind. */
const daemons = new Set<number>();
const groups = new Set<number>();

function killQuietly(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) console.error(`kill ${pid}: ${err}`);
  }
}

async function newProject(dir: string, key: OperatorKey): Promise<OstkPaths> {
  await Deno.mkdir(dir, { recursive: true });
  return (await initProject(dir, key)).paths;
}

function connect(paths: OstkPaths): Promise<DaemonClient> {
  return DaemonClient.connect(findSocketPath(paths));
}

async function list(client: DaemonClient): Promise<PsRow[]> {
  return ((await client.request("session/list", {})) as { sessions: PsRow[] }).sessions;
}

function expectOk(res: ToolResponse): void {
  if (!res.ok) throw new Error(`${res.tool}: ${res.error.code}: ${res.error.message}`);
}

/** A process that has exited (a zombie counts: it will never answer again). */
async function gone(pid: number): Promise<boolean> {
  const state = (await procStat(pid))?.[0];
  return state === undefined || state === "Z";
}

/** Ask a spawned daemon to stop; SIGKILL it if it has not gone within 30 s. */
async function stopSpawned(paths: OstkPaths, pid: number): Promise<void> {
  const client = await connect(paths);
  // The daemon may close the connection before its answer is flushed: both mean "stopping".
  await client.request("daemon/stop", {}).catch((err) => {
    if (!(err instanceof RpcError && err.code === RPC_ERRORS.closed)) throw err;
  });
  client.close();
  const deadline = Date.now() + 30_000;
  while (!(await gone(pid))) {
    if (Date.now() > deadline) {
      killQuietly(pid);
      break;
    }
    await sleep(20);
  }
  daemons.delete(pid);
}

async function startSpawned(root: string, extraArgs: string[] = []) {
  const t0 = performance.now();
  const { pid } = await startInBackground(root, { extraArgs });
  daemons.add(pid);
  return { pid, bootMs: performance.now() - t0 };
}

async function vmRssMb(pid: number): Promise<number> {
  const status = await readProc(pid, "status");
  const kb = Number(status?.match(/^VmRSS:\s+(\d+)\s+kB/m)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS for pid ${pid}`);
  return kb / 1024;
}

/** Time `calls` runs of each of `fns`, interleaved and rotating which goes first. */
async function interleaved(calls: number, fns: (() => Promise<unknown>)[]): Promise<number[][]> {
  const samples = fns.map(() => [] as number[]);
  for (let i = 0; i < WARMUP + calls; i++) {
    for (let k = 0; k < fns.length; k++) {
      const j = (i + k) % fns.length;
      const t0 = performance.now();
      await fns[j]();
      if (i >= WARMUP) samples[j].push(performance.now() - t0);
    }
  }
  return samples;
}

/** (a) kernel/call over the socket against `Kernel.call` in-process, on one project. */
async function transport(base: string, key: OperatorKey): Promise<number> {
  const paths = await newProject(`${base}/a`, key);
  await Deno.writeTextFile(`${paths.root}/small.txt`, "a small file of twenty lines\n".repeat(20));
  const args = { path: "small.txt", force: true };
  console.log(`(a) kernel/call round trip, ${CALLS} calls each, interleaved (ms)`);
  console.log(`  ${"".padEnd(56)}${"p50".padStart(9)}${"p99".padStart(9)}${"mean".padStart(9)}`);
  let bootMs = 0;
  let socketP50 = 0;
  for (const audited of [true, false]) {
    // The daemon reads OSTK_AUDIT_READS from the environment it inherits from this process.
    if (audited) Deno.env.delete("OSTK_AUDIT_READS");
    else Deno.env.set("OSTK_AUDIT_READS", "0");
    const daemon = await startSpawned(paths.root);
    if (audited) bootMs = daemon.bootMs;
    const client = await connect(paths);
    const kernel = new Kernel(paths, { signer: key.signer, auditReads: audited });
    try {
      const [socket, local] = await interleaved(CALLS, [
        async () =>
          expectOk(
            await client.request("kernel/call", {
              tool: "file:read",
              args,
              as: ALIAS,
            }) as ToolResponse,
          ),
        async () => expectOk(await kernel.call("file:read", args, { alias: ALIAS })),
      ]);
      const s = stats(socket);
      const l = stats(local);
      const how = audited ? "" : ", reads not audited";
      console.log(line(`file:read force, over the socket${how}`, s));
      console.log(line(`file:read force, in-process Kernel${how}`, l));
      console.log(`  ${"ratio socket / in-process (p50)".padEnd(56)}${num(s.p50 / l.p50, 2)}x`);
      if (audited) {
        socketP50 = s.p50;
        const [status] = await interleaved(CALLS, [() => client.request("daemon/status", {})]);
        console.log(line("daemon/status over the socket (no file work)", stats(status)));
      }
    } finally {
      kernel.close();
      client.close();
      await stopSpawned(paths, daemon.pid);
    }
  }
  Deno.env.delete("OSTK_AUDIT_READS");
  console.log(`  target: socket file:read p50 < 1 ms (reads audited): ${verdict(socketP50 < 1)}`);
  return bootMs;
}

/** A log of `ROWS` rows, ending with `SESSIONS` session.spawn rows, plus drain snapshots. */
async function buildRecoveryProject(
  dir: string,
  key: OperatorKey,
  revival: Revival,
  script: string,
): Promise<OstkPaths> {
  const paths = await newProject(dir, key);
  const log = new AuditLog(paths.audit, { signer: key.signer, headPath: paths.head });
  const alias = (i: number) => `agent-${i + 1}`;
  const cpu: CpuSpec = { kind: "script", script };
  try {
    const tools = ROWS - SESSIONS - 1; // os.init is the first row
    for (let i = 0; i < tools; i += BATCH) {
      const batch: AuditEntry[] = [];
      for (let j = i; j < Math.min(tools, i + BATCH); j++) {
        batch.push({
          event: "tool.file_read",
          actor: alias(j % SESSIONS),
          fields: {
            call_id: `${alias(j % SESSIONS)}:${Math.floor(j / SESSIONS)}:0`,
            path: `src/module_${j % 500}.ts`,
            gen: 1 + (j % 7),
            hash: FAKE_HASH,
            bytes: 4096,
            elided: false,
          },
        });
      }
      await log.appendBatch(batch);
    }
    // Last, so restoreFromLog's search for each spawn row walks the whole log (the worst case).
    await log.appendBatch(
      Array.from({ length: SESSIONS }, (_, i) => ({
        event: "session.spawn",
        actor: "operator",
        fields: { session: alias(i), alias: alias(i), cpu: cpu.kind, revival, spec: cpu },
      })),
    );
  } finally {
    log.close();
  }
  const history = [0, 1, 2].map((turn) => ({
    turn,
    calls: [{ tool: "file:read", ok: true, gen: 1 }],
    tokens: { in: 100, out: 30 },
  }));
  for (let i = 0; i < SESSIONS; i++) {
    await writeDrain(paths.drain, {
      version: 1,
      lineage: alias(i),
      anchor: "bench-anchor",
      ts: new Date().toISOString(),
      cpu,
      turns: history.length,
      tokens: { in: 300, out: 90 },
      history,
      revival,
      // The restore path reads turns, tokens and history; the machine snapshot is not revived.
      machine: null,
      machine_version: MACHINE_VERSION,
    });
  }
  return paths;
}

/** (b) start an in-process daemon on a built project; time until `session/list` shows all. */
async function recovery(base: string, key: OperatorKey, bootMs: number): Promise<void> {
  // Three turns done (matching the drains), then a long think: revived sessions stay idle.
  const script = `${base}/idle.jsonl`;
  await Deno.writeTextFile(script, '{"calls":[]}\n'.repeat(3) + '{"think_ms":600000,"calls":[]}\n');
  console.log(`\n(b) recovery: ${ROWS} audit rows, ${SESSIONS} sessions the log says were running`);
  for (const revival of ["ask", "revive"] as const) {
    const t0 = performance.now();
    const paths = await buildRecoveryProject(`${base}/b-${revival}`, key, revival, script);
    const buildS = (performance.now() - t0) / 1000;
    const start = performance.now();
    const daemon = await startDaemon(paths);
    let client: DaemonClient | undefined;
    try {
      client = await connect(paths);
      await client.request("daemon/status", {});
      const answered = performance.now() - start;
      let rows = await list(client);
      while (rows.length < SESSIONS) rows = await list(client);
      const listed = performance.now() - start;
      let settledNote = "";
      if (revival === "revive") {
        // Revived script sessions run in Workers; they are settled once none is still starting.
        const busy = (r: PsRow) => ["starting", "rehydrating", "spawning"].includes(r.state);
        while (rows.some(busy)) rows = await list(client);
        const settled = performance.now() - start;
        const states = [...new Set(rows.map((r) => r.state))].join("/");
        settledNote = `; all ${states} after ${settled.toFixed(0)} ms`;
      }
      console.log(
        `  revival "${revival}": socket answers ${answered.toFixed(0)} ms, ` +
          `session/list shows ${rows.length} after ${listed.toFixed(0)} ms${settledNote} ` +
          `(log built in ${buildS.toFixed(1)} s)`,
      );
      console.log(
        `    target < 2000 ms in-process: ${verdict(listed < 2000)}; ` +
          `with a spawned daemon's cold boot (~${bootMs.toFixed(0)} ms): ` +
          `${verdict(listed + bootMs < 2000)}`,
      );
    } finally {
      client?.close();
      daemon.stop();
      await daemon.done;
    }
  }
}

/** (c) RSS of a spawned daemon, idle, then with `SESSIONS` idle sessions of each CPU kind. */
async function memory(base: string, key: OperatorKey): Promise<void> {
  console.log(`\n(c) daemon resident memory (VmRSS), ${SESSIONS} idle sessions`);
  const script = `${base}/think.jsonl`;
  await Deno.writeTextFile(script, '{"think_ms":600000,"calls":[]}\n');
  const kinds: [string, CpuSpec][] = [
    ["command `sleep 3600`", { kind: "command", command: ["sleep", "3600"] }],
    ["script, think_ms 600000 (Workers)", { kind: "script", script }],
  ];
  for (const [label, cpu] of kinds) {
    const paths = await newProject(`${base}/c-${cpu.kind}`, key);
    const { pid } = await startSpawned(paths.root, ["--concurrency", String(SESSIONS)]);
    const client = await connect(paths);
    try {
      const idle = await vmRssMb(pid);
      for (let i = 0; i < SESSIONS; i++) {
        await client.request("session/spawn", { alias: `idle-${i + 1}`, cpu, revival: "reap" });
      }
      let rows = await list(client);
      const up = (r: PsRow) => r.state === "running" && (cpu.kind !== "command" || r.pid);
      while (!rows.every(up)) {
        await sleep(50);
        rows = await list(client);
      }
      for (const r of rows) if (cpu.kind === "command" && r.pid) groups.add(r.pid);
      await sleep(1000); // let allocations from the start-up burst settle
      const loaded = await vmRssMb(pid);
      console.log(
        `  ${label.padEnd(36)} idle daemon ${idle.toFixed(0)} MB, with ${SESSIONS} sessions ` +
          `${loaded.toFixed(0)} MB (${((loaded - idle) * 1024 / SESSIONS).toFixed(0)} kB/session)` +
          `; target < 150 MB: ${verdict(loaded < 150)}`,
      );
    } finally {
      client.close();
      await stopSpawned(paths, pid);
      // Command sessions lead their own process groups; make sure none outlives the bench.
      for (const pgid of groups) killQuietly(-pgid);
      groups.clear();
    }
  }
}

const base = await Deno.makeTempDir({ prefix: "ostk-daemon-bench-" });
Deno.env.set("OSTK_IDENTITY", `${base}/operator/identity.key`);
try {
  const key = await loadOrCreateOperatorKey();
  console.log(
    `daemon bench: ${navigator.hardwareConcurrency} cores, ${Deno.build.os}, scratch on ${base}`,
  );
  const bootMs = await transport(base, key);
  console.log(`  spawned daemon cold boot, empty project: ${bootMs.toFixed(0)} ms`);
  await recovery(base, key, bootMs);
  await memory(base, key);
} finally {
  for (const pgid of groups) killQuietly(-pgid);
  for (const pid of daemons) killQuietly(pid);
  await Deno.remove(base, { recursive: true });
}
