/**
 * `ostk driver` end to end against real third-party MCP servers from npm
 * (@modelcontextprotocol/server-everything and server-filesystem, installed once into a shared
 * cache keyed by version) and a fake server of our own that crashes or hangs on demand.
 */
import assert from "node:assert/strict";
import {
  auditRows,
  ostk,
  processGone,
  type Project,
  waitFor,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { ostkCommand } from "../helpers/run_ostk.ts";
import { fakeDriverLine, npmServers } from "./mcp_fixture.ts";

/** Declare every, fs, fake and a built-in in the project's HUMANFILE; returns the pid file. */
async function declare(project: Project): Promise<string> {
  const modules = await npmServers();
  const pidFile = `${project.scratch.dir}/fake.pid`;
  const lines = [
    `mcp: every node ${modules}/@modelcontextprotocol/server-everything/dist/index.js`,
    `mcp: fs node ${modules}/@modelcontextprotocol/server-filesystem/dist/index.js ${project.root}`,
    await fakeDriverLine({
      env: { FAKE_PID_FILE: pidFile },
      permissions: ["--allow-env", "--allow-write"],
    }),
    "DRIVER files",
  ];
  await Deno.writeTextFile(project.paths.humanfile, lines.join("\n") + "\n", { append: true });
  return pidFile;
}

async function fakePid(pidFile: string): Promise<number> {
  return Number((await Deno.readTextFile(pidFile)).trim());
}

Deno.test("driver list / tools: declared servers, their state and tool counts", async () => {
  await withProject(async (project) => {
    await declare(project);
    const list = await ostk(project, ["driver", "list", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as {
      name: string;
      state: string;
      tools: number | null;
      kind: string;
      command: string;
    }[];
    assert.deepEqual(rows.map((r) => r.name), ["every", "fs", "fake", "files"]);
    assert.ok(rows.every((r) => r.state === "declared"));
    assert.equal(rows[3].command, "(built-in)");
    const tools = await ostk(project, ["driver", "tools", "every", "--json"]);
    assert.equal(tools.code, 0, tools.stderr);
    const names = (JSON.parse(tools.stdout) as { name: string }[]).map((t) => t.name);
    assert.ok(names.includes("echo"), names.join(","));
    const after = JSON.parse((await ostk(project, ["driver", "list", "--json"])).stdout);
    assert.equal(after[0].tools, names.length, "the tool count is remembered");
  });
});

Deno.test("driver call: server-everything echo and server-filesystem read, audited", async () => {
  await withProject(async (project) => {
    await declare(project);
    await Deno.writeTextFile(`${project.root}/hello.txt`, "hello from the project\n");
    const echo = await ostk(project, ["driver", "call", "every", "echo", '{"message":"hi ostk"}']);
    assert.equal(echo.code, 0, echo.stderr);
    assert.match(echo.stdout, /Echo: hi ostk/);
    const read = await ostk(project, [
      "driver",
      "call",
      "fs",
      "read_text_file",
      JSON.stringify({ path: `${project.root}/hello.txt` }),
      "--json",
    ]);
    assert.equal(read.code, 0, read.stderr);
    const answer = JSON.parse(read.stdout);
    assert.equal(answer.via, "spawn");
    assert.match(answer.result.content[0].text, /hello from the project/);
    const calls = (await auditRows(project)).filter((r) => r.event === "driver.call");
    assert.deepEqual(calls.map((r) => [r.server, r.tool, r.ok]), [["every", "echo", true], [
      "fs",
      "read_text_file",
      true,
    ]]);
    for (const row of calls) {
      assert.equal(row.actor, "operator");
      assert.equal(typeof row.duration_ms, "number");
      assert.ok((row.bytes as number) > 0);
    }
    assert.equal((await ostk(project, ["os", "audit"])).code, 0, "the chain still verifies");
  });
});

Deno.test("driver call: a server that exits mid-call is a clear error and leaves nothing running", async () => {
  await withProject(async (project) => {
    const pidFile = await declare(project);
    const ok = await ostk(project, ["driver", "call", "fake", "echo", '{"text":"x"}']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /echo: x/);
    const crash = await ostk(project, ["driver", "call", "fake", "crash"]);
    assert.equal(crash.code, 1);
    assert.match(crash.stderr, /^ostk: driver 'fake' exited during the call to 'crash'/);
    assert.match(crash.stderr, /crashing on purpose/, "the server's last words are shown");
    const pid = await fakePid(pidFile);
    await waitFor(`fake server ${pid} to be gone`, () => processGone(pid), 10_000);
    const row = (await auditRows(project)).findLast((r) => r.event === "driver.call");
    assert.equal(row?.ok, false);
    assert.match(String(row?.error), /exited/);
    const list = JSON.parse((await ostk(project, ["driver", "list", "--json"])).stdout);
    assert.equal(list.find((r: { name: string }) => r.name === "fake").state, "failed");
  });
});

Deno.test("driver call: a server that never answers is stopped at --timeout, even ignoring SIGTERM", async () => {
  await withProject(async (project) => {
    const pidFile = await declare(project);
    const hang = await ostk(project, ["driver", "call", "fake", "hang", "--timeout", "500"]);
    assert.equal(hang.code, 1);
    assert.match(hang.stderr, /driver 'fake' did not answer the call to 'hang' within 500 ms/);
    const pid = await fakePid(pidFile);
    await waitFor(`fake server ${pid} to be gone`, () => processGone(pid), 10_000);
  });
});

Deno.test("driver call: unknown driver, built-in without command, bad args are refused clearly", async () => {
  await withProject(async (project) => {
    await declare(project);
    const unknown = await ostk(project, ["driver", "call", "nope", "x"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no driver 'nope'.*declared: every, fs, fake, files/);
    const builtin = await ostk(project, ["driver", "call", "files", "x"]);
    assert.equal(builtin.code, 1);
    assert.match(builtin.stderr, /HUMANFILE:\d+: driver 'files' has no command/);
    const badJson = await ostk(project, ["driver", "call", "every", "echo", "{nope"]);
    assert.equal(badJson.code, 2);
    const noTool = await ostk(project, ["driver", "call", "every", "no_such_tool"]);
    assert.equal(noTool.code, 1);
    assert.match(noTool.stderr, /no_such_tool/);
  });
});

/** Start `ostk driver serve <name>` and wait until `driver list` says it is running. */
async function startServe(project: Project, name: string) {
  const child = (await ostkCommand(project.scratch, ["driver", "serve", name], {
    cwd: project.root,
    env: project.env,
  })).spawn();
  const stderr = new Response(child.stderr).text();
  void child.stdout.cancel();
  let gone = false;
  const status = child.status.finally(() => (gone = true));
  await waitFor(
    `driver ${name} to be served`,
    async () => {
      if (gone) throw new Error(`driver serve exited early:\n${await stderr}`);
      const rows = JSON.parse((await ostk(project, ["driver", "list", "--json"])).stdout);
      return rows.find((r: { name: string }) => r.name === name)?.state === "running";
    },
    30_000,
    100,
  );
  return { child, status, stderr };
}

Deno.test("driver serve: calls reuse the served server; SIGTERM stops it, a dying server ends it", async () => {
  await withProject(async (project) => {
    await declare(project);
    const every = await startServe(project, "every");
    try {
      const call = await ostk(project, [
        "driver",
        "call",
        "every",
        "echo",
        '{"message":"again"}',
        "--json",
      ]);
      assert.equal(call.code, 0, call.stderr);
      const answer = JSON.parse(call.stdout);
      assert.equal(answer.via, "serve");
      assert.equal(answer.result.content[0].text, "Echo: again");
    } finally {
      every.child.kill("SIGTERM");
    }
    assert.equal((await every.status).code, 0, await every.stderr);
    await assert.rejects(
      Deno.stat(`${project.paths.dir}/drivers/every.sock`),
      Deno.errors.NotFound,
    );

    const fake = await startServe(project, "fake");
    const crash = await ostk(project, ["driver", "call", "fake", "crash"]);
    assert.equal(crash.code, 1);
    assert.match(crash.stderr, /driver 'fake' exited during the call to 'crash'/);
    assert.equal((await fake.status).code, 1, "serving ends when its server dies");
    assert.match(await fake.stderr, /driver 'fake' exited during serve/);
    const events = (await auditRows(project)).map((r) => r.event);
    assert.ok(events.includes("driver.serve") && events.includes("driver.stop"));
  });
});
