/**
 * Run the real `ostk` CLI (main.ts under `deno run`) as a child process, in a scratch directory
 * whose config and home are private to one test, so no test can touch the operator's real key.
 */
import { DENO_RUN_FLAGS } from "../../cli/self.ts";

const MAIN = decodeURIComponent(new URL(import.meta.resolve("../../main.ts")).pathname);

/**
 * The permissions `deno task ostk` grants; the CLI must work with exactly these. The daemon's own
 * list is reused so the two cannot drift (tests/cli/install_test.ts ties it to deno.json).
 */
export const OSTK_PERMISSIONS: readonly string[] = DENO_RUN_FLAGS;

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
  /**
   * A hang guard: a child still running after this long is killed (SIGKILL) and the run fails
   * with `OstkHang`. It decides only "it hung", never how fast anything was.
   */
  timeoutMs?: number;
  /**
   * `"closed"`: stdout is a pipe whose reader is gone before ostk starts, so its first write
   * fails with EPIPE (as under `ostk log | head -0`); `stdout` of the result is then empty.
   */
  stdout?: "piped" | "closed";
}

/** A run that outlived its `timeoutMs` and was killed. */
export class OstkHang extends Error {
  constructor(args: string[], ms: number, partial: OstkResult) {
    super(
      `ostk ${args.join(" ")} did not end within ${ms} ms and was killed\n` +
        `stdout so far:\n${partial.stdout}\nstderr so far:\n${partial.stderr}`,
    );
    this.name = "OstkHang";
  }
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
    ...await childOptions(scratch, options),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function childOptions(scratch: Scratch, options: RunOptions) {
  return {
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
  };
}

/**
 * `sh` opens a FIFO for reading and writing, points stdout at it, drops its own reading end and
 * only then execs ostk: the reader is gone before ostk can write, with no race to lose.
 */
const CLOSED_STDOUT = `exec 4<>"$1"; exec 1>"$1"; exec 4<&-; shift; exec "$@"`;

/** The command for `ostk <args>` with a stdout nobody reads; `dir` holds the FIFO. */
async function closedStdoutCommand(
  scratch: Scratch,
  args: string[],
  options: RunOptions,
  dir: string,
): Promise<Deno.Command> {
  const fifo = `${dir}/stdout.fifo`;
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  if (!made.success) {
    throw new Error(`mkfifo ${fifo} failed: ${new TextDecoder().decode(made.stderr)}`);
  }
  return new Deno.Command("sh", {
    args: [
      "-c",
      CLOSED_STDOUT,
      "sh",
      fifo,
      Deno.execPath(),
      "run",
      ...OSTK_PERMISSIONS,
      MAIN,
      ...args,
    ],
    ...await childOptions(scratch, options),
    stdin: "null",
    stdout: "null",
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
  if (options.timeoutMs === undefined && options.stdout !== "closed") {
    const { code, stdout, stderr } = await (await ostkCommand(scratch, args, options)).output();
    const decoder = new TextDecoder();
    return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  }
  const fifoDir = options.stdout === "closed"
    ? await Deno.makeTempDir({ prefix: "ostk_fifo_" })
    : "";
  try {
    const command = options.stdout === "closed"
      ? await closedStdoutCommand(scratch, args, options, fifoDir)
      : await ostkCommand(scratch, args, options);
    return await guarded(command.spawn(), args, options.timeoutMs);
  } finally {
    if (fifoDir) await Deno.remove(fifoDir, { recursive: true });
  }
}

/** Collect a child's output; past `timeoutMs`, kill it and throw `OstkHang`. */
async function guarded(
  child: Deno.ChildProcess,
  args: string[],
  timeoutMs: number | undefined,
): Promise<OstkResult> {
  const result: OstkResult = { code: -1, stdout: "", stderr: "" };
  const readers: ReadableStreamDefaultReader<string>[] = [];
  const collect = async (stream: ReadableStream<Uint8Array> | null, key: "stdout" | "stderr") => {
    if (!stream) return;
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    readers.push(reader);
    for (let r = await reader.read(); !r.done; r = await reader.read()) result[key] += r.value;
  };
  const finished = Promise.all([
    collect(readable(child, "stdout"), "stdout"),
    collect(readable(child, "stderr"), "stderr"),
    child.status,
  ]).then(([, , status]) => status);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((resolve) => {
    if (timeoutMs !== undefined) timer = setTimeout(() => resolve("hung"), timeoutMs);
  });
  try {
    const first = await Promise.race([finished, hung]);
    if (first === "hung") {
      try {
        child.kill("SIGKILL");
      } catch (err) {
        // Exited on its own, but something it started still holds its output open.
        if (!(err instanceof TypeError)) throw err;
      }
      await child.status;
      // A process the child started may still hold the pipes: stop reading them.
      await Promise.all(readers.map((r) => r.cancel()));
      await finished.catch((err) => err);
      throw new OstkHang(args, timeoutMs!, result);
    }
    result.code = first.code;
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** A child's piped stream, or null when it was not piped (Deno throws on the getter then). */
function readable(child: Deno.ChildProcess, which: "stdout" | "stderr") {
  try {
    return child[which];
  } catch (err) {
    if (err instanceof TypeError) return null;
    throw err;
  }
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
