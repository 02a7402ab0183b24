/**
 * `ostk top`: the frame layout at 80×24, the plain snapshot off a terminal, and the real thing
 * in a tmux pane — a session's row appears, the k key kills it, the row turns killed, q quits.
 */
import assert from "node:assert/strict";
import { renderTop, type TopModel } from "../../cli/top.ts";
import type { AuditRow } from "../../kernel/audit.ts";
import {
  type DaemonProcess,
  fakeAgent,
  killAgent,
  killDaemonProcess,
  ostk,
  type Project,
  startDaemonProcess,
  waitFor,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { OSTK_PERMISSIONS } from "../helpers/run_ostk.ts";

function model(sessions: number, selected: number): TopModel {
  const rows = Array.from({ length: sessions }, (_, i) => ({
    alias: `agent-${i + 1}`,
    pid: 100 + i,
    ppid: 1,
    pgid: 100 + i,
    sid: 100 + i,
    cpu: "command",
    state: i % 3 === 0 ? "finished" : "running",
    turns: i,
    last_seen: new Date(1_000_000).toISOString(),
    revival: "revive",
  }));
  const audit = Array.from({ length: 40 }, (_, i) => ({
    seq: i,
    ts: new Date(1_000_000 + i).toISOString(),
    event: "tool.file_edit",
    actor: `agent-${(i % sessions) + 1}`,
    path: "a/rather/long/path/to/some/file/that/does/not/fit/on/one/line.ts",
    gen: i,
    prev_hash: "0".repeat(64),
    sig: "x",
  })) as unknown as AuditRow[];
  return {
    root: "/some/project",
    pid: 42,
    uptimeMs: 61_000,
    rows,
    writes: new Map([["agent-2", 7]]),
    conflicts: new Map([["agent-2", 1]]),
    tokens: new Map([["agent-2", 123_456]]),
    audit,
    approvals: null,
    selected,
    message: "",
  };
}

Deno.test("top: a frame fits 80×24, keeps the selected session in view and says approvals n/a", () => {
  const lines = renderTop(model(30, 25), {
    width: 80,
    height: 24,
    color: false,
    keys: true,
    now: 1_005_000,
  });
  assert.ok(lines.length <= 24, `${lines.length} lines`);
  for (const l of lines) assert.ok([...l].length <= 80, `too wide: ${l}`);
  assert.ok(lines.some((l) => l.startsWith("> agent-26 ")), "the selected row is shown");
  assert.ok(lines.some((l) => l.includes("approvals: n/a")));
  assert.ok(lines.some((l) => l.includes("k kill")));
  assert.ok(!lines.join("").includes("\x1b"), "no escape codes without color");
  const head = lines.find((l) => l.includes("ALIAS"))!;
  assert.match(head, /ALIAS +CPU +STATE +TURNS +LAST SEEN +WRITES +CONFL +TOKENS/);

  const few = renderTop(model(3, 1), { width: 80, height: 24, color: true, keys: true });
  const row = few.find((l) => l.includes("agent-2 "))!;
  assert.match(row, /running/);
  assert.match(row, /\s7\s+1\s+123k/, "writes, conflicts and tokens of agent-2");
  assert.ok(few.join("").includes("\x1b[32mrunning"), "states are colored");
  assert.ok(few.some((l) => /tool\.file_edit/.test(l)), "the audit tail is shown");
});

let denoDir: string | undefined;
async function sharedDenoDir(): Promise<string> {
  if (denoDir) return denoDir;
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return denoDir = fromEnv;
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return denoDir = JSON.parse(new TextDecoder().decode(stdout)).denoDir as string;
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

async function tmux(socket: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const { success, stdout } = await new Deno.Command("tmux", {
    args: ["-L", socket, ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return { ok: success, out: new TextDecoder().decode(stdout) };
}

const hasTmux = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
  .output().then((r) => r.success, () => false);

async function spawnAgent(project: Project): Promise<string> {
  const r = await ostk(project, [
    "spawn",
    "agent",
    "--cpu",
    "command",
    "--json",
    "--",
    ...fakeAgent(600_000),
  ]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).alias as string;
}

Deno.test("top: off a terminal it prints one snapshot and exits", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let alias = "";
    try {
      daemon = await startDaemonProcess(project);
      alias = await spawnAgent(project);
      const r = await waitFor("top to show the session running", async () => {
        const r = await ostk(project, ["top"]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.includes(`> ${alias}`) && / running /.test(r.stdout) ? r : undefined;
      });
      assert.ok(!r.stdout.includes("\x1b"), "plain lines");
      assert.match(r.stdout, /session\.spawn/, "the audit tail");
      assert.match(r.stdout, /approvals: /);
    } finally {
      const ps = await ostk(project, ["ps", "--json"]);
      if (ps.code === 0) {
        for (const row of JSON.parse(ps.stdout)) await killAgent(row.pid, row.alias);
      }
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test({
  name: "top: in an 80×24 tmux pane the session's row appears, k kills it, q quits",
  ignore: !hasTmux,
  async fn() {
    await withProject(async (project) => {
      const socket = `ostk_top_${crypto.randomUUID().slice(0, 8)}`;
      let daemon: DaemonProcess | undefined;
      let pid: number | null = null;
      let alias = "";
      try {
        daemon = await startDaemonProcess(project);
        alias = await spawnAgent(project);
        const main = decodeURIComponent(new URL("../../main.ts", import.meta.url).pathname);
        const env = {
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          DENO_DIR: await sharedDenoDir(),
          DENO_NO_UPDATE_CHECK: "1",
          HOME: project.scratch.home,
          XDG_CONFIG_HOME: project.scratch.config,
          TERM: "xterm-256color",
          NO_COLOR: "1",
          ...project.env,
        };
        const command = [
          "cd",
          quote(project.root),
          "&&",
          "exec env -i",
          ...Object.entries(env).map(([k, v]) => quote(`${k}=${v}`)),
          quote(Deno.execPath()),
          "run",
          ...OSTK_PERMISSIONS,
          quote(main),
          "top",
          "--interval-ms",
          "200",
        ].join(" ");
        const started = await tmux(socket, [
          "new-session",
          "-d",
          "-x",
          "80",
          "-y",
          "24",
          "-s",
          "top",
          command,
        ]);
        assert.ok(started.ok, "tmux started");
        const screen = () => tmux(socket, ["capture-pane", "-p", "-t", "top"]).then((r) => r.out);
        const rowLine = (text: string) => text.split("\n").find((l) => l.startsWith(`> ${alias} `));
        const first = await waitFor("the session row running in top", async () => {
          const text = await screen();
          return rowLine(text)?.includes(" running ") ? text : undefined;
        });
        const lines = first.replace(/\n+$/, "").split("\n");
        assert.ok(lines.length <= 24, `${lines.length} lines`);
        for (const l of lines) assert.ok([...l].length <= 80, `too wide: ${l}`);
        assert.match(first, /ALIAS +CPU +STATE/);
        assert.match(first, /approvals: /);
        const ps = JSON.parse((await ostk(project, ["ps", "--json"])).stdout);
        pid = ps.find((r: { alias: string }) => r.alias === alias).pid;

        assert.ok((await tmux(socket, ["send-keys", "-t", "top", "k"])).ok);
        const after = await waitFor("the row to turn killed", async () => {
          const text = await screen();
          return rowLine(text)?.includes(" killed ") ? text : undefined;
        });
        assert.match(after, new RegExp(`killed|killing ${alias}`));
        const state = JSON.parse((await ostk(project, ["ps", "--json"])).stdout);
        assert.equal(state.find((r: { alias: string }) => r.alias === alias).state, "killed");

        assert.ok((await tmux(socket, ["send-keys", "-t", "top", "q"])).ok);
        await waitFor(
          "top to quit",
          async () => !(await tmux(socket, ["has-session", "-t", "top"])).ok,
        );
      } finally {
        await tmux(socket, ["kill-server"]);
        await killAgent(pid, alias);
        await killDaemonProcess(daemon);
      }
    });
  },
});
