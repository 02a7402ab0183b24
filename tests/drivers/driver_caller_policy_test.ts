/**
 * A driver runs under the sandbox policy of its caller: a session whose policy grants write on
 * `out/` gets a driver process that may write there; the operator (no session) gets another
 * process under the default policy, where the project is read-only.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import {
  call,
  closeClient,
  connect,
  fakeAgent,
  killDaemonProcess,
  type Project,
  startDaemonProcess,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { fakeDriverLine } from "./mcp_fixture.ts";

const REPO = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");

async function declareFake(project: Project): Promise<void> {
  await Deno.writeTextFile(project.paths.humanfile, (await fakeDriverLine()) + "\n", {
    append: true,
  });
}

interface CallAnswer {
  pid: number | null;
  result: { content: { text: string }[]; isError?: boolean };
}

function callFake(
  client: DaemonClient,
  tool: string,
  args: Record<string, unknown>,
  as?: string,
): Promise<CallAnswer> {
  return call<CallAnswer>(client, "driver/call", {
    name: "fake",
    tool,
    args,
    ...(as ? { as } : {}),
  });
}

Deno.test("daemon: a driver runs under the calling session's sandbox policy", async () => {
  await withProject(async (project) => {
    await declareFake(project);
    await Deno.mkdir(`${project.root}/out`);
    const target = `${project.root}/out/x.txt`;
    const daemon = await startDaemonProcess(project);
    let client: DaemonClient | undefined;
    try {
      client = await connect(project);
      await call(client, "session/spawn", {
        alias: "writer",
        cpu: { kind: "command", command: fakeAgent(60_000) },
        revival: "reap",
        sandbox: { isolation: "landlock", read: [REPO], write: ["out"] },
      });
      // The session's policy grants write on out/: its driver process may write there.
      const granted = await callFake(
        client,
        "write",
        { path: target, text: "from writer" },
        "writer",
      );
      assert.equal(granted.result.isError, undefined, JSON.stringify(granted));
      assert.equal(await Deno.readTextFile(target), "from writer");
      // The operator has no session: the default policy, the project read-only.
      const denied = await callFake(client, "write", { path: target, text: "from operator" });
      assert.equal(denied.result.isError, true, JSON.stringify(denied));
      assert.match(denied.result.content[0].text, /PermissionDenied|denied/i);
      assert.equal(await Deno.readTextFile(target), "from writer");
      // Two processes, one per effective policy; each caller keeps reusing its own.
      assert.ok(granted.pid !== null && denied.pid !== null);
      assert.notEqual(granted.pid, denied.pid);
      const again = await callFake(client, "pid", {}, "writer");
      assert.equal(Number(again.result.content[0].text), granted.pid);
      const operator = await callFake(client, "pid", {});
      assert.equal(Number(operator.result.content[0].text), denied.pid);
      const { drivers } = await call<{ drivers: { name: string; policy: string; pid: number }[] }>(
        client,
        "driver/list",
        {},
      );
      assert.deepEqual(
        drivers.filter((d) => d.name === "fake").map((d) => [d.policy, d.pid]).sort(),
        [["default", denied.pid], ["session", granted.pid]],
      );
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
    }
  });
});
