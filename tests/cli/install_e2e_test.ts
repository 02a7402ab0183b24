/**
 * The first hour on a fresh machine: with an empty Deno cache, an empty config dir and no `deno`
 * on PATH, `npx -y deno@2.9.6 task install --root <tmp>` gives an `ostk` with which init, boot,
 * the daemon, spawn, ps, stop and an MCP client configured with `"command": "ostk"` all work;
 * then every line of the README's walk-through runs as written. After the install the network is
 * cut (a dead proxy), so everything after it runs from what the install cached.
 */
import assert from "node:assert/strict";
// The SDK's "./*" export points types at `x.js.d.ts`; @ts-types names the real declarations.
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { readLauncherInfo } from "../../cli/install.ts";
import { readProc } from "../../kernel/proc.ts";
import { whichAll } from "../../kernel/which.ts";
import { networkEnv } from "../drivers/mcp_fixture.ts";
import { waitFor } from "../helpers/daemon_fixture.ts";

const REPO = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");

/** Hang guards, never timing: a cold install downloads every npm package once. */
const INSTALL_GUARD_MS = 600_000;
const COMMAND_GUARD_MS = 60_000;

/** Where nothing listens: every download attempt after the install fails at once. */
const DEAD_PROXY = "http://127.0.0.1:9";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `cmd` to completion, killed (and failed) if it outlives `guardMs`. */
async function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; guardMs?: number },
): Promise<Result> {
  const guardMs = opts.guardMs ?? COMMAND_GUARD_MS;
  const signal = AbortSignal.timeout(guardMs);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      env: opts.env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).output();
  } catch (err) {
    if (signal.aborted) throw new Error(`${cmd} ${args.join(" ")}: no exit within ${guardMs} ms`);
    throw err;
  }
  const decoder = new TextDecoder();
  const result = {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
  if (signal.aborted) {
    throw new Error(`${cmd} ${args.join(" ")}: no exit within ${guardMs} ms: ${result.stderr}`);
  }
  return result;
}

function ok(what: string, r: Result): Result {
  assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** No stack trace, no uncaught error, no download chatter, no `Task ostk …` echo. */
function quiet(what: string, r: Result): void {
  assert.doesNotMatch(r.stderr, /Uncaught|Stack backtrace|^\s+at /m, `${what}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr + r.stdout, /\bDownload\b|\bTask\b/, `${what}: ${r.stderr}`);
}

/**
 * A bin dir with only `node` and `npx` in it, so the PATH the test builds finds npx but never a
 * `deno`, wherever node is installed on this machine.
 */
async function nodeOnlyBin(dir: string): Promise<string> {
  const bin = `${dir}/nodebin`;
  await Deno.mkdir(bin);
  for (const name of ["node", "npx"]) {
    const [path] = await whichAll(name);
    if (!path) throw new Error(`this test needs '${name}' on PATH (Node.js), as the README does`);
    await Deno.symlink(path, `${bin}/${name}`);
  }
  return bin;
}

/**
 * Stop a daemon a failed step left behind (and with it the sessions it drains). Only a daemon
 * that answers is ours for sure: a pid in an old anchor file may belong to anyone by now.
 */
async function stopLeftovers(ostk: (args: string[]) => Promise<Result>): Promise<void> {
  const status = await ostk(["status", "--json"]).catch(() => undefined);
  if (status?.code !== 0) return;
  const pid = JSON.parse(status.stdout).pid as number;
  const stop = await ostk(["stop"]).catch(() => undefined);
  if (stop?.code === 0) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * The README's walk-through: every line of each sh block that follows a `<!-- walkthrough`
 * marker, in order, but comments and the `cd your-project` the test does itself.
 */
function walkthroughLines(readme: string): string[] {
  const lines: string[] = [];
  for (const part of readme.split("<!-- walkthrough").slice(1)) {
    const block = /^[^\n]*-->\s*```sh\n([\s\S]*?)```/.exec(part);
    assert.ok(block, `no sh block right after a walkthrough marker: ${part.slice(0, 80)}`);
    lines.push(
      ...block[1].split("\n").map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#") && !/^cd /.test(l)),
    );
  }
  assert.ok(lines.length > 0, "README.md has no <!-- walkthrough --> blocks");
  return lines;
}

Deno.test("install e2e: a fresh machine gets an ostk that runs the first hour, offline", async (t) => {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_install_" }));
  const root = `${tmp}/root`;
  const denoDir = `${tmp}/deno_dir`;
  const config = `${tmp}/config`;
  const project = `${tmp}/project`;
  const walk = `${tmp}/walk`;
  for (const dir of [denoDir, config, project, walk]) await Deno.mkdir(dir);
  const nodeBin = await nodeOnlyBin(tmp);
  const systemPath = "/usr/bin:/bin";
  const node = Deno.env.get("NODE_EXTRA_CA_CERTS");
  const fresh = {
    // This machine's way out (proxies, CA bundles) is kept: a fresh machine has one too.
    ...networkEnv(),
    ...(node ? { NODE_EXTRA_CA_CERTS: node } : {}),
    HOME: Deno.env.get("HOME") ?? tmp, // npx keeps deno@2.9.6 in its own cache under HOME
    DENO_DIR: denoDir,
    XDG_CONFIG_HOME: config,
    NO_COLOR: "1",
  };
  // The same machine after the install, with the network gone and the launcher first on PATH.
  const after = {
    ...fresh,
    PATH: `${root}/bin:${nodeBin}:${systemPath}`,
    HTTPS_PROXY: DEAD_PROXY,
    HTTP_PROXY: DEAD_PROXY,
    ALL_PROXY: DEAD_PROXY,
  };
  const ostkIn = (cwd: string) => (args: string[]) => run("ostk", args, { cwd, env: after });
  const ostk = ostkIn(project);
  // A failed step leaves nothing for the next ones to stand on: stop at the first.
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!(await t.step(name, fn))) throw new Error(`stopped after the failed step '${name}'`);
  };
  try {
    await step("the PATH under test has npx and no deno", async () => {
      assert.deepEqual(await whichAll("deno", after.PATH), [], `deno on ${after.PATH}`);
      assert.equal((await whichAll("npx", after.PATH)).length, 1);
    });

    await step("npx -y deno@2.9.6 task install --root <tmp>", async () => {
      const r = ok(
        "install",
        await run("npx", ["-y", "deno@2.9.6", "task", "install", "--root", root], {
          cwd: REPO,
          env: { ...fresh, PATH: `${nodeBin}:${systemPath}` },
          guardMs: INSTALL_GUARD_MS,
        }),
      );
      assert.match(r.stdout, new RegExp(`launcher +${root}/bin/ostk`));
      // <root>/bin is not on the PATH the install ran with: it says which line to add.
      assert.ok(r.stdout.includes(`export PATH="${root}/bin:$PATH"`), r.stdout);
      const launcher = await Deno.readTextFile(`${root}/bin/ostk`);
      const info = readLauncherInfo(launcher);
      assert.ok(info, launcher);
      assert.equal(info.deno, `${root}/lib/ostk/deno-2.9.6/deno`);
      assert.equal(info.source, await Deno.realPath(REPO));
      assert.match(launcher, /--frozen/);
      assert.ok(launcher.includes(`--lock='${info.source}/deno.lock'`), launcher);
      assert.equal((await Deno.stat(`${root}/bin/ostk`)).mode! & 0o111, 0o111);
    });

    await step("ostk --version: quiet, through the pinned Deno, offline", async () => {
      const r = ok("--version", await ostk(["--version"]));
      assert.equal(r.stdout, "ostk 0.1.0\n");
      assert.equal(r.stderr, "");
    });

    await step("ostk init, boot", async () => {
      const init = ok("init", await ostk(["init"]));
      quiet("init", init);
      assert.match(init.stdout, /initialised/);
      const key = await Deno.stat(`${config}/ostk/identity.key`);
      assert.equal(key.mode! & 0o777, 0o600, "the key went to the empty XDG_CONFIG_HOME");
      const boot = ok("boot", await ostk(["boot"]));
      quiet("boot", boot);
      assert.match(boot.stdout, /POST 7\/7/);
      assert.match(boot.stdout, new RegExp(`root +${project}`));
    });

    await step("listen --background, spawn a script and a command agent, ps, stop", async () => {
      const listen = ok("listen", await ostk(["listen", "--background"]));
      quiet("listen", listen);
      const pid = Number(/daemon pid (\d+)/.exec(listen.stdout)?.[1]);
      assert.ok(pid > 0, listen.stdout);
      // The daemon was started the way the launcher starts ostk: its pinned Deno, cache only.
      const cmdline = (await readProc(pid, "cmdline") ?? "").split("\0");
      assert.ok(cmdline[0].startsWith(`${root}/lib/ostk/deno-`), cmdline.join(" "));
      assert.ok(
        cmdline.includes("--cached-only") && cmdline.includes("--frozen"),
        cmdline.join(" "),
      );
      await Deno.writeTextFile(
        `${project}/write.jsonl`,
        JSON.stringify({
          calls: [{ tool: "file:create", args: { path: "made.txt", content: "by a worker\n" } }],
        }) + "\n",
      );
      // A script agent runs in the daemon's Worker: its entry module came from the install cache.
      const script = ok(
        "spawn script",
        await ostk(["spawn", "writer", "--cpu", "script", "--script", "write.jsonl", "--json"]),
      );
      assert.equal(JSON.parse(script.stdout).alias, "writer-1");
      const command = ok(
        "spawn command",
        await ostk(["spawn", "napper", "--cpu", "command", "--json", "--", "sleep", "300"]),
      );
      assert.equal(JSON.parse(command.stdout).alias, "napper-1");
      const rows = await waitFor("writer-1 done and napper-1 running", async () => {
        const r = ok("ps --json", await ostk(["ps", "--json"]));
        const rows = JSON.parse(r.stdout) as { alias: string; state: string; pid: number }[];
        const writer = rows.find((x) => x.alias === "writer-1");
        const napper = rows.find((x) => x.alias === "napper-1");
        return writer && writer.state !== "running" && writer.state !== "spawning" &&
            napper?.state === "running"
          ? rows
          : undefined;
      }, COMMAND_GUARD_MS);
      assert.equal(await Deno.readTextFile(`${project}/made.txt`), "by a worker\n");
      const napper = rows.find((x) => x.alias === "napper-1")!;
      const ps = ok("ps", await ostk(["ps"]));
      quiet("ps", ps);
      assert.match(ps.stdout, /^PID +PPID/);
      assert.match(
        ps.stdout,
        new RegExp(`^${napper.pid} +${pid} .*napper-1 +command +running`, "m"),
      );
      const stop = ok("stop", await ostk(["stop"]));
      assert.match(stop.stdout, new RegExp(`stopped daemon pid ${pid}`));
      const status = await ostk(["status"]);
      assert.equal(status.code, 1, "no daemon after stop");
      assert.match(status.stdout, /not running/);
    });

    await step("an MCP client with command 'ostk' lists the tools and reads a file", async () => {
      await Deno.writeTextFile(`${project}/greeting.txt`, "hello from disk\n");
      const transport = new StdioClientTransport({
        command: "ostk",
        args: ["mcp"],
        cwd: project,
        env: after,
        stderr: "pipe",
      });
      const client = new Client({ name: "e2e-client", version: "1.0.0" });
      const guard = setTimeout(() => transport.close(), COMMAND_GUARD_MS);
      try {
        await client.connect(transport);
        const { tools } = await client.listTools();
        const names = tools.map((tool) => tool.name);
        for (const name of ["read", "edit", "write", "create"]) assert.ok(names.includes(name));
        const answer = await client.callTool({ name: "read", arguments: { path: "greeting.txt" } });
        assert.notEqual(answer.isError, true, JSON.stringify(answer));
        const text = (answer.content as { type: string; text: string }[])
          .map((c) => c.text).join("\n");
        assert.match(text, /hello from disk/);
      } finally {
        clearTimeout(guard);
        await client.close();
      }
    });

    await step("ostk doctor agrees with all of it", async () => {
      await Deno.writeTextFile(
        `${project}/.mcp.json`,
        JSON.stringify({ mcpServers: { ostk: { command: "ostk", args: ["mcp"] } } }),
      );
      const r = ok("doctor", await ostk(["doctor", "--json"]));
      const report = JSON.parse(r.stdout) as {
        ok: boolean;
        checks: { check: string; status: string; detail: string }[];
      };
      const byName = Object.fromEntries(report.checks.map((c) => [c.check, c]));
      assert.equal(report.ok, true, r.stdout);
      for (const name of ["path", "deno", "key", "project", "daemon", "mcp"]) {
        assert.equal(byName[name]?.status, "ok", `${name}: ${JSON.stringify(byName[name])}`);
      }
      assert.ok(byName.path.detail.startsWith(`${root}/bin/ostk: launcher for`));
      assert.match(byName.deno.detail, new RegExp(`pinned at ${root}/lib/ostk/deno-2.9.6/deno`));
    });

    await step("re-running the install replaces it cleanly", async () => {
      // The Deno copy of an older install must go; the launcher is rewritten in place.
      await Deno.mkdir(`${root}/lib/ostk/deno-0.0.1`);
      await Deno.writeTextFile(`${root}/lib/ostk/deno-0.0.1/deno`, "");
      await Deno.writeTextFile(`${root}/bin/ostk`, "#!/bin/sh\nexit 3\n");
      ok(
        "re-install",
        await run("npx", ["-y", "deno@2.9.6", "task", "install", "--root", root], {
          cwd: REPO,
          env: { ...fresh, PATH: `${nodeBin}:${systemPath}` },
          guardMs: INSTALL_GUARD_MS,
        }),
      );
      const names = async (dir: string) =>
        (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
      assert.deepEqual(await names(`${root}/bin`), ["ostk"]);
      assert.deepEqual(await names(`${root}/lib/ostk`), ["deno-2.9.6", "deno_dir"]);
      assert.deepEqual(await names(`${root}/lib/ostk/deno-2.9.6`), ["deno"]);
      assert.equal(ok("--version", await ostk(["--version"])).stdout, "ostk 0.1.0\n");
    });

    await step("every line of the README walk-through, as written", async () => {
      const lines = walkthroughLines(await Deno.readTextFile(`${REPO}/README.md`));
      const outputs: string[] = [];
      for (const line of lines) {
        const r = ok(line, await run("/bin/sh", ["-c", line], { cwd: walk, env: after }));
        quiet(line, r);
        outputs.push(r.stdout);
      }
      const all = outputs.join("");
      assert.match(all, /POST 7\/7/);
      assert.match(all, /greeter-1 /);
      assert.match(all, /napper-1 running/);
      assert.match(all, /hello from an Agentfile/);
      assert.match(all, /stopped daemon pid \d+/);
      assert.equal(await Deno.readTextFile(`${walk}/hello.txt`), "hello\n");
      const inspect = outputs[lines.findIndex((l) => l.startsWith("ostk inspect greeter-1"))];
      assert.match(inspect, /greeter-1/);
      const top = outputs[lines.findIndex((l) => l.startsWith("ostk top"))];
      assert.match(top, /napper-1/);
    });
  } finally {
    await stopLeftovers(ostk);
    await stopLeftovers(ostkIn(walk));
    await Deno.remove(tmp, { recursive: true });
  }
});
