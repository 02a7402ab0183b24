/**
 * Run the real `ostk` CLI (main.ts under `deno run`) as a child process, in a scratch directory
 * whose config and home are private to one test, so no test can touch the operator's real key.
 */

const MAIN = decodeURIComponent(new URL(import.meta.resolve("../../main.ts")).pathname);

/** The permissions `deno task ostk` grants; the CLI must work with exactly these. */
export const OSTK_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys=loadavg,hostname,osRelease",
  "--allow-net",
  "--allow-ffi",
  "--unstable-worker-options",
] as const;

/** What one run printed and how it exited. */
export interface OstkResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A per-test scratch directory: `config/` is XDG_CONFIG_HOME, `home/` is HOME. */
export interface Scratch {
  /** Absolute, symlink-free path of the scratch directory. */
  dir: string;
  config: string;
  home: string;
  /** Where the operator key lands unless OSTK_IDENTITY says otherwise. */
  keyPath: string;
}

/** Where to run and what to add to the child's environment. */
export interface RunOptions {
  /** Working directory of the child; defaults to the scratch directory. */
  cwd?: string;
  /** Extra environment variables (OSTK_CWD, OSTK_IDENTITY, TMPDIR…). */
  env?: Record<string, string>;
}

let denoDir: Promise<string> | undefined;

/**
 * The deno cache the test runner itself uses. The child gets a scratch HOME, and deno would
 * otherwise put its cache (and download every npm dependency again) under that HOME.
 */
function sharedDenoDir(): Promise<string> {
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

/**
 * The `Deno.Command` for `ostk <args>`, with a clean environment (only PATH and the deno cache
 * survive from the test runner, so a stray OSTK_IDENTITY or OSTK_CWD cannot leak in).
 *
 * @example
 * ```ts ignore
 * const child = (await ostkCommand(scratch, ["log", "--follow"])).spawn();
 * ```
 */
export async function ostkCommand(
  scratch: Scratch,
  args: string[],
  options: RunOptions = {},
): Promise<Deno.Command> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...OSTK_PERMISSIONS, MAIN, ...args],
    cwd: options.cwd ?? scratch.dir,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENO_DIR: await sharedDenoDir(),
      DENO_NO_UPDATE_CHECK: "1",
      XDG_CONFIG_HOME: scratch.config,
      HOME: scratch.home,
      NO_COLOR: "1",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Run `ostk <args>` to completion.
 *
 * @example
 * ```ts ignore
 * const { code, stdout } = await runOstk(scratch, ["--version"]);
 * ```
 */
export async function runOstk(
  scratch: Scratch,
  args: string[],
  options: RunOptions = {},
): Promise<OstkResult> {
  const { code, stdout, stderr } = await (await ostkCommand(scratch, args, options)).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/**
 * Make a scratch directory (with empty `config/` and `home/`), run `fn`, and remove it after,
 * whether `fn` passed or not.
 */
export async function withScratch(fn: (scratch: Scratch) => Promise<void>): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_cli_" }));
  const scratch: Scratch = {
    dir,
    config: `${dir}/config`,
    home: `${dir}/home`,
    keyPath: `${dir}/config/ostk/identity.key`,
  };
  try {
    await Deno.mkdir(scratch.config);
    await Deno.mkdir(scratch.home);
    await fn(scratch);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
