/**
 * How this ostk starts ostk again (the background daemon, `ostk mcp` for a diagnosis): the way
 * it was itself started, so a daemon started from the installed launcher runs with the
 * launcher's pinned Deno, module cache, lock and flags, not a second, looser command line.
 */

/** The permissions ostk runs with from source (the same as `deno task ostk`). */
export const DENO_RUN_FLAGS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-ffi",
  "--allow-sys=loadavg,hostname,osRelease",
  "--unstable-worker-options",
];

/** Set by the installed launcher to its own absolute path. */
export const LAUNCHER_ENV = "OSTK_LAUNCHER";

/**
 * The argv prefix that runs ostk: the launcher that started this process when there is one;
 * else `deno run <flags> main.ts` from source; else this compiled binary.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selfArgv } from "./self.ts";
 * const argv = selfArgv();
 * assert.equal(argv[0], Deno.env.get("OSTK_LAUNCHER") ?? Deno.execPath());
 * ```
 */
export function selfArgv(): string[] {
  const launcher = Deno.env.get(LAUNCHER_ENV);
  if (launcher?.startsWith("/") && isFile(launcher)) return [launcher];
  const main = new URL("../main.ts", import.meta.url);
  // A compiled binary has its flags and main module baked in.
  const fromSource = main.protocol === "file:" && /deno$/.test(Deno.execPath());
  return fromSource
    ? [Deno.execPath(), "run", ...DENO_RUN_FLAGS, decodeURIComponent(main.pathname)]
    : [Deno.execPath()];
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (err) {
    // A launcher removed since it started us: fall back to how this process runs.
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
