/**
 * MCP costs, both directions. Prints figures; asserts nothing.
 *
 * (1) Inbound: one `read` through `ostk mcp` (the SDK client over stdio, JSON-RPC both ways, the
 *     in-process kernel behind it) against the same `file:read` called on the Kernel API.
 * (2) Outbound: `ostk driver call every echo` starting server-everything for each call, against
 *     the same call reusing one `ostk driver serve every`. Each figure is one whole CLI run
 *     (deno start-up included) and, apart, the call's own duration_ms from its audit row.
 *
 *   deno run --allow-read --allow-write --allow-env --allow-run --allow-net --allow-ffi \
 *     --allow-sys=loadavg,hostname,osRelease --unstable-worker-options bench/mcp_bench.ts \
 *     [--reads 300] [--calls 8]
 *
 * Needs node and npm (the servers are installed once into /tmp/ostk-test-npm).
 */
import { parseArgs } from "node:util";
// The SDK's "./*" export points types at `x.js.d.ts`; @ts-types names the real declarations.
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { DENO_RUN_FLAGS } from "../cli/self.ts";
import { loadOrCreateOperatorKey } from "../kernel/identity.ts";
import { initProject } from "../kernel/project_init.ts";
import { Kernel } from "../kernel/tools.ts";
import { npmServers } from "../tests/drivers/mcp_fixture.ts";

const MAIN = decodeURIComponent(new URL("../main.ts", import.meta.url).pathname);

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return { p50: rank(0.5), p95: rank(0.95), n: sorted.length };
}

const row = (label: string, s: { p50: number; p95: number; n: number }) =>
  `${label.padEnd(46)}${s.p50.toFixed(3).padStart(10)}${s.p95.toFixed(3).padStart(10)}${
    String(s.n).padStart(6)
  }`;

async function ostk(cwd: string, env: Record<string, string>, args: string[]) {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...DENO_RUN_FLAGS, MAIN, ...args],
    cwd,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wall = performance.now() - started;
  if (!out.success) {
    throw new Error(`ostk ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return { wall, stdout: new TextDecoder().decode(out.stdout) };
}

async function inbound(root: string, env: Record<string, string>, reads: number) {
  const key = await loadOrCreateOperatorKey(env.OSTK_IDENTITY);
  const kernel = new Kernel((await initProject(root, key)).paths, { signer: key.signer });
  const client = new Client({ name: "bench", version: "1" });
  await client.connect(
    new StdioClientTransport({
      command: Deno.execPath(),
      args: ["run", ...DENO_RUN_FLAGS, MAIN, "mcp"],
      cwd: root,
      env,
      stderr: "inherit",
    }),
  );
  const args = { path: "data.txt", force: true };
  const viaMcp: number[] = [];
  const direct: number[] = [];
  // Warm both paths (module loading, JIT, the alias issue on the first MCP call).
  for (let i = 0; i < 10; i++) {
    await client.callTool({ name: "read", arguments: args });
    await kernel.call("file:read", args, { alias: "bench-direct" });
  }
  // Interleaved, so both sides see the same disk and audit-log conditions.
  for (let i = 0; i < reads; i++) {
    let t = performance.now();
    const result = await client.callTool({ name: "read", arguments: args });
    viaMcp.push(performance.now() - t);
    if (result.isError) throw new Error(JSON.stringify(result));
    t = performance.now();
    await kernel.call("file:read", args, { alias: "bench-direct" });
    direct.push(performance.now() - t);
  }
  await client.close();
  kernel.close();
  const mcp = stats(viaMcp);
  const api = stats(direct);
  console.log(
    `\n(1) read of a 4 KiB file, ms${"p50".padStart(23)}${"p95".padStart(10)}${"n".padStart(6)}`,
  );
  console.log(row("ostk mcp (SDK client, stdio) round trip", mcp));
  console.log(row("Kernel.call('file:read') in-process", api));
  console.log(`    MCP overhead at p50: ${(mcp.p50 - api.p50).toFixed(3)} ms`);
}

async function outbound(root: string, env: Record<string, string>, calls: number) {
  const modules = await npmServers();
  const server = `${modules}/@modelcontextprotocol/server-everything/dist/index.js`;
  await Deno.writeTextFile(`${root}/.ostk/HUMANFILE`, `mcp: every node ${server}\n`, {
    append: true,
  });
  const call = ["driver", "call", "every", "echo", '{"message":"bench"}', "--json"];
  const measure = async () => {
    const walls: number[] = [];
    const inner: number[] = [];
    for (let i = 0; i < calls; i++) {
      const { wall, stdout } = await ostk(root, env, call);
      walls.push(wall);
      inner.push(JSON.parse(stdout).duration_ms);
    }
    return { walls: stats(walls), inner: stats(inner) };
  };
  await ostk(root, env, call); // warm the caches
  const cold = await measure();
  const serve = new Deno.Command(Deno.execPath(), {
    args: ["run", ...DENO_RUN_FLAGS, MAIN, "driver", "serve", "every"],
    cwd: root,
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = serve.stderr.pipeThrough(new TextDecoderStream()).getReader();
  for (let text = ""; !text.includes("serving");) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`driver serve exited: ${text}`);
    text += value;
  }
  let warm;
  try {
    warm = await measure();
  } finally {
    serve.kill("SIGTERM");
    await reader.cancel();
    await serve.status;
  }
  console.log(
    `\n(2) ostk driver call every echo, ms${"p50".padStart(16)}${"p95".padStart(10)}${
      "n".padStart(6)
    }`,
  );
  console.log(row("cold: start server-everything per call (wall)", cold.walls));
  console.log(row("served: reuse 'driver serve' (wall)", warm.walls));
  console.log(row("cold: the call itself (duration_ms)", cold.inner));
  console.log(row("served: the call itself (duration_ms)", warm.inner));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { reads: { type: "string", default: "300" }, calls: { type: "string", default: "8" } },
  });
  const scratch = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_mcp_bench_" }));
  try {
    const root = `${scratch}/p`;
    await Deno.mkdir(root);
    await Deno.writeTextFile(`${root}/data.txt`, "0123456789abcdef\n".repeat(256));
    const env = {
      ...Deno.env.toObject(),
      OSTK_IDENTITY: `${scratch}/identity.key`,
      NO_COLOR: "1",
    };
    delete (env as Record<string, string>).OSTK_CWD;
    await inbound(root, env, Number(values.reads));
    await outbound(root, env, Number(values.calls));
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}
