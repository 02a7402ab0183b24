/**
 * Helpers for the MCP tests (not a test file): the official SDK client connected to the real
 * `ostk mcp` over stdio or HTTP, in a scratch project with its own operator key.
 */
// The SDK's "./*" export points types at `x.js.d.ts`; @ts-types names the real declarations.
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { Project } from "../helpers/daemon_fixture.ts";
import { OSTK_PERMISSIONS, ostkCommand } from "../helpers/run_ostk.ts";

export const MAIN = decodeURIComponent(new URL("../../main.ts", import.meta.url).pathname);

let denoDir: Promise<string> | undefined;

/** The deno cache this test runner uses, so children do not download npm packages again. */
export function sharedDenoDir(): Promise<string> {
  denoDir ??= (async () => {
    const fromEnv = Deno.env.get("DENO_DIR");
    if (fromEnv) return fromEnv;
    const { stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return JSON.parse(new TextDecoder().decode(stdout)).denoDir as string;
  })();
  return denoDir;
}

const REPO = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");

/** The fake MCP server the driver tests declare (see its header for its tools). */
export const FAKE_DRIVER = `${REPO}/tests/drivers/driver_fake_server.ts`;

/** How a test declares the fake server; every field has a default. */
export interface FakeDriverOptions {
  /** Its Deno cache (default: this runner's, so warm after the first start). */
  denoDir?: string;
  /** More `NAME=value` words for its environment (e.g. FAKE_PID_FILE). */
  env?: Record<string, string>;
  /** Its Deno permission flags. */
  permissions?: string[];
}

/**
 * The HUMANFILE line `mcp: fake …` that runs the fake server with this Deno, resolved through
 * the repository's config and lock (frozen, so a run never rewrites it). The kernel caches the
 * server's modules before it starts it; nothing here warms the cache.
 */
export async function fakeDriverLine(options: FakeDriverOptions = {}): Promise<string> {
  const env = { DENO_DIR: options.denoDir ?? await sharedDenoDir(), ...options.env };
  const permissions = options.permissions ?? ["--allow-env", "--allow-read", "--allow-write"];
  return [
    "mcp: fake",
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Deno.execPath(),
    "run",
    "--frozen",
    "--config",
    `${REPO}/deno.json`,
    ...permissions,
    FAKE_DRIVER,
  ].join(" ");
}

/**
 * The runner's network settings (proxies, CA bundles, npm registry): `ostk` children get a clean
 * environment, and a daemon that fetches a driver's modules needs what the operator's would have.
 */
export function networkEnv(): Record<string, string> {
  const names =
    /^(https?_proxy|no_proxy|all_proxy|ssl_cert_(file|dir)|node_extra_ca_certs|deno_cert|deno_tls_ca_store|npm_config_registry)$/i;
  return Object.fromEntries(Object.entries(Deno.env.toObject()).filter(([k]) => names.test(k)));
}

/** The environment `ostk` children of this project get (the same as run_ostk's). */
export async function childEnv(project: Project): Promise<Record<string, string>> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    DENO_DIR: await sharedDenoDir(),
    DENO_NO_UPDATE_CHECK: "1",
    XDG_CONFIG_HOME: project.scratch.config,
    HOME: project.scratch.home,
    NO_COLOR: "1",
    ...project.env,
  };
}

/** An SDK client connected to `ostk mcp` over stdio, started in the project root. */
export async function connectStdio(project: Project, clientName: string): Promise<Client> {
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: ["run", ...OSTK_PERMISSIONS, MAIN, "mcp"],
    cwd: project.root,
    env: await childEnv(project),
    stderr: "inherit",
  });
  const client = new Client({ name: clientName, version: "1.0.0" });
  await client.connect(transport);
  return client;
}

/** A running `ostk mcp --http` child and the URL it printed. */
export interface HttpServer {
  url: string;
  stop(): Promise<Deno.CommandStatus>;
}

/** Start `ostk mcp --http 127.0.0.1:0 <flags>` and wait for the URL it prints on stderr. */
export async function startHttp(project: Project, flags: string[] = []): Promise<HttpServer> {
  const command = await ostkCommand(
    project.scratch,
    ["mcp", "--http", "127.0.0.1:0", ...flags],
    { cwd: project.root, env: project.env },
  );
  const child = command.spawn();
  void child.stdout.cancel();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let url: string | undefined;
  while (!url) {
    const { value, done } = await reader.read();
    if (done) {
      await child.status;
      throw new Error(`ostk mcp --http exited before listening:\n${text}`);
    }
    text += value;
    url = /(http:\/\/\S+\/mcp)/.exec(text)?.[1];
  }
  // Keep draining stderr so the child never blocks on a full pipe.
  const drained = (async () => {
    for (;;) if ((await reader.read()).done) return;
  })();
  return {
    url,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch (err) {
        if (!(err instanceof TypeError)) throw err; // already gone
      }
      await drained;
      return await child.status;
    },
  };
}

/** The text of a tool result's content. */
export function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? "").join("\n");
}

/** A tool result's structuredContent. */
export function structured(result: unknown): Record<string, unknown> {
  return ((result as { structuredContent?: Record<string, unknown> }).structuredContent) ?? {};
}

/** The third-party servers the driver tests and the benchmark run, pinned. */
export const NPM_SERVERS = {
  "@modelcontextprotocol/server-everything": "2026.8.31",
  "@modelcontextprotocol/server-filesystem": "2026.8.31",
};
const CACHE_ROOT = "/tmp/ostk-test-npm";

let installed: Promise<string> | undefined;

/**
 * Install the servers once per version set into /tmp/ostk-test-npm/<key>/ and return its
 * node_modules. Installed into a temporary directory and renamed into place, so a run that
 * dies mid-install (or a concurrent run) never sees half a cache.
 */
export function npmServers(): Promise<string> {
  installed ??= (async () => {
    const key = Object.entries(NPM_SERVERS).map(([n, v]) => `${n.split("/").pop()}@${v}`).join("+");
    const dir = `${CACHE_ROOT}/${key}`;
    const done = `${dir}/node_modules/@modelcontextprotocol/server-everything/dist/index.js`;
    try {
      await Deno.stat(done);
      return `${dir}/node_modules`;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    await Deno.mkdir(CACHE_ROOT, { recursive: true });
    const tmp = await Deno.makeTempDir({ dir: CACHE_ROOT, prefix: "install-" });
    const specs = Object.entries(NPM_SERVERS).map(([n, v]) => `${n}@${v}`);
    const out = await new Deno.Command("npm", {
      args: ["install", "--prefix", tmp, "--no-audit", "--no-fund", "--loglevel=error", ...specs],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      await Deno.remove(tmp, { recursive: true });
      throw new Error(`npm install failed:\n${new TextDecoder().decode(out.stderr)}`);
    }
    try {
      await Deno.rename(tmp, dir);
    } catch (err) {
      await Deno.remove(tmp, { recursive: true });
      // Another run may have put its cache in place first; any other failure is real.
      await Deno.stat(done).catch(() => Promise.reject(err));
    }
    return `${dir}/node_modules`;
  })();
  return installed;
}
