/**
 * Drivers through a real daemon: started on first `driver call` and kept for the next one (same
 * pid, no second cold start), stopped after the idle time, restarted with backoff after a crash
 * (audited as driver.crash), and run in the sandbox: the project is readable but not writable.
 */
import assert from "node:assert/strict";
import {
  auditRows,
  killDaemonProcess,
  ostk,
  processGone,
  type Project,
  startDaemonProcess,
  waitFor,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { fakeDriverLine } from "./mcp_fixture.ts";

async function declareFake(project: Project): Promise<void> {
  await Deno.writeTextFile(project.paths.humanfile, (await fakeDriverLine()) + "\n", {
    append: true,
  });
}

interface CallAnswer {
  via: string;
  pid: number | null;
  result: { content: { text: string }[]; isError?: boolean };
}

async function callFake(project: Project, tool: string, args = {}): Promise<CallAnswer> {
  const r = await ostk(project, ["driver", "call", "fake", tool, JSON.stringify(args), "--json"]);
  assert.ok(r.code === 0 || r.code === 1, `${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as CallAnswer;
}

async function listFake(project: Project): Promise<{ state: string; tools: number | null }> {
  const r = await ostk(project, ["driver", "list", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const row = (JSON.parse(r.stdout) as { name: string; state: string; tools: number | null }[])
    .find((d) => d.name === "fake")!;
  return { state: row.state, tools: row.tools };
}

Deno.test("daemon: demand-spawned driver is reused (same pid), then stopped when idle", async () => {
  await withProject(async (project) => {
    await declareFake(project);
    const daemon = await startDaemonProcess(project, ["--driver-idle-ms", "1500"]);
    try {
      assert.equal((await listFake(project)).state, "declared");
      const first = await callFake(project, "pid");
      assert.equal(first.via, "daemon", JSON.stringify(first));
      const pid = Number(first.result.content[0].text);
      assert.equal(first.pid, pid, "the sandbox helper execs in place: one pid");
      assert.deepEqual(await listFake(project), { state: "running", tools: 6 });
      const second = await callFake(project, "pid");
      assert.equal(Number(second.result.content[0].text), pid, "the same server answered");
      const echo = await callFake(project, "echo", { text: "hi" });
      assert.equal(echo.result.content[0].text, "echo: hi");
      // Idle: the server is stopped without a call and the list says so.
      await waitFor("the idle driver to stop", () => processGone(pid), 15_000);
      assert.equal((await listFake(project)).state, "declared");
      const rows = await auditRows(project);
      const calls = rows.filter((r) => r.event === "driver.call");
      assert.equal(calls.length, 3);
      assert.ok(calls.every((r) => r.via === "daemon" && r.ok === true));
      assert.equal(rows.filter((r) => r.event === "driver.start").length, 1);
      const stop = rows.find((r) => r.event === "driver.stop");
      assert.equal(stop?.reason, "idle");
      // The next call starts it again.
      const again = await callFake(project, "pid");
      assert.notEqual(Number(again.result.content[0].text), pid);
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("daemon: a crashed driver is audited and restarted with backoff", async () => {
  await withProject(async (project) => {
    await declareFake(project);
    const daemon = await startDaemonProcess(project);
    try {
      const pid = Number((await callFake(project, "pid")).result.content[0].text);
      const crash = await ostk(project, ["driver", "call", "fake", "crash", "--json"]);
      assert.equal(crash.code, 1, crash.stdout);
      assert.match(crash.stderr, /exited|closed/i);
      const row = await waitFor(
        "a driver.crash row",
        async () => (await auditRows(project)).find((r) => r.event === "driver.crash"),
      );
      assert.deepEqual(
        { server: row?.server, code: row?.code, restarts: row?.restarts },
        { server: "fake", code: 3, restarts: 1 },
      );
      // Restarted on its own (after the 0.5 s backoff), with a new pid.
      const restarted = await waitFor("the restarted driver", async () => {
        const starts = (await auditRows(project)).filter((r) => r.event === "driver.start");
        return starts.length === 2 ? starts[1] : undefined;
      });
      assert.equal(restarted.restarts, 1);
      assert.notEqual(restarted.pid, pid);
      assert.ok(await processGone(pid));
      const after = await callFake(project, "pid");
      assert.equal(Number(after.result.content[0].text), restarted.pid);
      const client = await ostk(project, ["driver", "list", "--json"]);
      assert.equal(client.code, 0);
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("daemon: a driver runs sandboxed: reads the project, cannot write it", async () => {
  await withProject(async (project) => {
    await declareFake(project);
    await Deno.mkdir(`${project.root}/src`);
    await Deno.writeTextFile(`${project.root}/src/a.txt`, "hello\n");
    const daemon = await startDaemonProcess(project);
    try {
      const read = await callFake(project, "read", { path: `${project.root}/src/a.txt` });
      assert.equal(read.result.isError, undefined, JSON.stringify(read));
      assert.equal(read.result.content[0].text, "hello\n");
      for (const path of [`${project.root}/src/a.txt`, `${project.root}/src/new.txt`]) {
        const write = await callFake(project, "write", { path, text: "pwned" });
        assert.equal(write.result.isError, true, `${path}: ${JSON.stringify(write)}`);
        assert.match(write.result.content[0].text, /PermissionDenied|denied/i);
      }
      assert.equal(await Deno.readTextFile(`${project.root}/src/a.txt`), "hello\n");
      await assert.rejects(Deno.stat(`${project.root}/src/new.txt`), Deno.errors.NotFound);
      // Its private TMPDIR is writable, and it is not the project.
      const tmp = await callFake(project, "write", { path: "$TMPDIR/scratch.txt", text: "x" });
      assert.equal(tmp.result.isError, undefined, JSON.stringify(tmp));
      assert.ok(!tmp.result.content[0].text.startsWith(project.root));
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});
