/**
 * Cache a Deno-script driver's modules before it runs sandboxed. A driver declared as
 * `deno run … server.ts` resolves and loads its npm and remote modules when it starts; in the
 * sandbox it has no network, so on a machine whose Deno cache lacks any of them it dies in
 * start-up ("Failed loading https://registry.npmjs.org/…: Permission denied"). The kernel runs
 * `deno cache` first, unsandboxed, with the driver's own Deno, resolution flags (config, lock,
 * import map, node_modules mode…), environment and working directory, so the sandboxed run finds
 * everything it resolves. `deno cache` fetches code without running any of it (npm lifecycle
 * scripts are never allowed here).
 */
// The SDK's "./*" export points types at `x.js.d.ts`; @ts-types names the real declarations.
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { OstkError } from "../kernel/errors.ts";
import type { DriverEntry } from "./driver_registry.ts";

/** `deno run` flags that take the next word as their value (unless written `--flag=value`). */
const VALUE_FLAGS = new Set([
  "-c",
  "--config",
  "--import-map",
  "--lock", // Deno takes the next word as the lock file, as `deno run --lock x.ts` shows
  "--ext",
  "--cert",
  "--node-modules-linker",
  "--min-dep-age",
  "--inspect-publish-uid",
  "--location",
  "--seed",
  "--preload",
  "--require",
  "--conditions",
  "-L",
  "--log-level",
]);

/** Flags that change what the module graph resolves to; `deno cache` takes each of them. */
const GRAPH_FLAGS = new Set([
  "-c",
  "--config",
  "--no-config",
  "--import-map",
  "--lock",
  "--no-lock",
  "--frozen",
  "--frozen-lockfile",
  "--node-modules-dir",
  "--vendor",
  "--node-modules-linker",
  "--no-npm",
  "--no-remote",
  "--cert",
  "--unsafely-ignore-certificate-errors",
  "--min-dep-age",
  "-I",
  "--allow-import",
  "--deny-import",
  "--ext",
  "-q",
  "--quiet",
]);

/**
 * The kernel's variables a fetch needs (proxies, registries, certificates). Deliberately not
 * DENO_AUTH_TOKENS or npm tokens: an agent that can edit the project's .npmrc or import map can
 * choose where this fetch goes.
 */
const FETCH_ENV = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "ALL_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "all_proxy",
  "no_proxy",
  "NPM_CONFIG_REGISTRY",
  "npm_config_registry",
  "DENO_CERT",
  "DENO_TLS_CA_STORE",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
] as const;

/** Flags whose value is one more module that runs (so it must be cached too). */
const MODULE_FLAGS = new Set(["--preload", "--require"]);

/**
 * The `deno cache` command that fetches what `command` (a `deno run … script [args]` argv) will
 * load, or undefined when `command` is not a Deno script run. Permission, runtime and watch
 * flags are dropped; the script's own arguments are not modules.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoCacheArgv } from "./deno_precache.ts";
 * assert.deepEqual(
 *   denoCacheArgv(["/opt/deno", "run", "-A", "--config", "/p/deno.json", "/p/s.ts", "--port", "1"]),
 *   ["/opt/deno", "cache", "--config", "/p/deno.json", "/p/s.ts"],
 * );
 * assert.equal(denoCacheArgv(["node", "server.js"]), undefined);
 * ```
 */
export function denoCacheArgv(command: string[]): string[] | undefined {
  const [exe, sub, ...rest] = command;
  const base = exe?.slice(exe.lastIndexOf("/") + 1) ?? "";
  if (!/^deno(\.exe)?$/.test(base) || sub !== "run") return undefined;
  const flags: string[] = [];
  const modules: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i];
    if (word === "--") continue;
    if (!word.startsWith("-")) {
      modules.push(word); // the script: what follows is its own argv
      return [exe, "cache", ...flags, ...modules];
    }
    const eq = word.indexOf("=");
    const name = eq < 0 ? word : word.slice(0, eq);
    const separate = eq < 0 && VALUE_FLAGS.has(name);
    const value = separate ? rest[++i] : eq < 0 ? "" : word.slice(eq + 1);
    if (value === undefined) return undefined; // a flag missing its value: deno run fails too
    if (MODULE_FLAGS.has(name)) modules.push(value);
    else if (GRAPH_FLAGS.has(name) || name.startsWith("--unstable")) {
      flags.push(...(separate ? [word, value] : [word]));
    }
  }
  return undefined; // `deno run` with no script: nothing to cache, and it fails on its own
}

/**
 * A hang guard, not a call timeout: a first fetch of a large npm graph over a slow link takes
 * minutes, and a warm cache answers in milliseconds.
 */
export const PRECACHE_TIMEOUT_MS = 10 * 60_000;

/**
 * Run `deno cache` for a Deno-script driver (a no-op for any other program), in `cwd` and with
 * the environment the driver itself gets, so both use the same Deno cache. Throws an OstkError
 * naming the driver and Deno's last words when caching fails.
 */
export async function precacheDenoDriver(
  entry: DriverEntry,
  cwd: string,
  timeoutMs = PRECACHE_TIMEOUT_MS,
): Promise<void> {
  const argv = denoCacheArgv(entry.command);
  if (!argv) return;
  // The driver gets only the SDK's default variables and its own; the fetch also needs ours
  // for proxies, registries and certificates, and nothing else: this process runs outside the
  // sandbox on files an agent may have written, so no token or key of the operator's goes in.
  const env: Record<string, string> = {};
  for (const name of FETCH_ENV) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, getDefaultEnvironment(), entry.env, { NO_COLOR: "1" });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    // No such Deno: starting the driver fails the same way, and says so in its own words.
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  let out: Deno.CommandOutput;
  try {
    out = await child.output();
  } finally {
    clearTimeout(timer);
  }
  if (out.success) return;
  // With RUST_BACKTRACE set (inherited from the operator's shell) Deno ends with a backtrace
  // that names nothing; the reason is the lines before it.
  const said = new TextDecoder().decode(out.stderr).split("\n").map((l) => l.trim());
  const cut = said.indexOf("Stack backtrace:");
  const last = (cut < 0 ? said : said.slice(0, cut)).filter(Boolean).slice(-2).join(" | ");
  const why = out.signal ? `was stopped after ${timeoutMs} ms` : `exited with ${out.code}`;
  throw new OstkError(
    "io",
    `driver '${entry.name}': caching its Deno modules before sandboxing failed: '${
      argv.join(" ")
    }' ${why}${last ? ` (${last.slice(-400)})` : ""}`,
    {},
    "run that command by hand to see why; the sandboxed driver has no network to fetch them",
  );
}
