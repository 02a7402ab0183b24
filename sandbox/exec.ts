/**
 * The sandboxed exec helper (`ostk _sandbox-exec <policy-json> -- <cmd>…`) and `spawnSandboxed`,
 * which starts it for callers in the kernel.
 *
 * Landlock binds only the calling thread, and Deno spawns subprocesses from other threads, so the
 * helper never spawns: on the JS thread it sets no_new_privs, restricts itself, and replaces
 * itself with the target through execve. The target inherits the domain, and its exit status and
 * signals reach the caller unchanged because it *is* the child the caller spawned.
 */
import { OstkError } from "../kernel/errors.ts";
import { errnoName, type Libc, openLibc } from "./_libc.ts";
import { metadataFilter, sockFprog } from "./_seccomp.ts";
import { landlockSupport, restrictSelf } from "./landlock.ts";
import { parsePolicy, type SandboxPolicy, type SandboxPolicyInput } from "./policy.ts";
import { seatbeltProfile } from "./seatbelt.ts";

/** The helper's arguments after `_sandbox-exec`. */
export interface HelperArgs {
  policy: SandboxPolicy;
  /** The private temp dir to use (the caller owns its removal); made here when absent. */
  tmpdir?: string;
  /** Variables the helper needed for itself and removes before exec (e.g. DENO_DIR). */
  unsetEnv: string[];
  cmd: string[];
}

/**
 * Parse `[--tmpdir DIR] [--unset-env NAME]… <policy-json> -- <cmd> [args…]`; throws a `usage`
 * OstkError.
 */
export function parseHelperArgs(argv: string[]): HelperArgs {
  const sep = argv.indexOf("--");
  const head = sep < 0 ? argv : argv.slice(0, sep);
  const cmd = sep < 0 ? [] : argv.slice(sep + 1);
  let tmpdir: string | undefined;
  const unsetEnv: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < head.length; i++) {
    if (head[i] === "--tmpdir") tmpdir = head[++i];
    else if (head[i] === "--unset-env" && i + 1 < head.length) unsetEnv.push(head[++i]);
    else rest.push(head[i]);
  }
  if (rest.length !== 1 || cmd.length === 0 || (tmpdir !== undefined && !tmpdir.startsWith("/"))) {
    throw new OstkError(
      "usage",
      "expected [--tmpdir /abs/dir] [--unset-env NAME]… <policy-json> -- <command> [args…]",
      {},
      "this is an internal command; use 'ostk sandbox exec'",
    );
  }
  return { policy: parsePolicy(rest[0]), tmpdir, unsetEnv, cmd };
}

const encoder = new TextEncoder();
function warn(line: string): void {
  Deno.stderr.writeSync(encoder.encode(`ostk sandbox: ${line}\n`));
}

/**
 * Run the helper: returns an exit code only when it could not exec the target (1 refused or
 * failed, 126 not executable, 127 not found); on success it never returns.
 */
export function runSandboxExec(args: HelperArgs): number {
  const { policy, cmd } = args;
  const env = Deno.env.toObject();
  for (const name of args.unsetEnv) delete env[name];
  // Without --tmpdir the helper makes the dir itself and nobody removes it after the exec;
  // spawnSandboxed and `ostk sandbox exec` always pass one they own.
  const makeTmp = () => {
    if (!policy.tmp) return undefined;
    env.TMPDIR = args.tmpdir ?? Deno.makeTempDirSync({ prefix: "ostk-sandbox-" });
    return env.TMPDIR;
  };
  if (Deno.build.os === "darwin") return execSeatbelt(policy, makeTmp(), cmd, env);

  const support = landlockSupport();
  if (!support.supported) {
    if (!policy.allow_unsandboxed) {
      warn(`refusing to run: no Landlock (${support.reason})`);
      warn("pass --allow-unsandboxed (policy allow_unsandboxed) to run without a sandbox");
      return 1;
    }
    warn(`WARNING: running WITHOUT a sandbox: ${support.reason}`);
  } else if (policy.net !== "all" && !support.net) {
    if (!policy.allow_unsandboxed) {
      warn(`refusing to run: Landlock ABI ${support.abi} cannot restrict the network (needs 4)`);
      return 1;
    }
    warn(`WARNING: network NOT restricted (Landlock ABI ${support.abi} < 4)`);
  }
  const tmpdir = makeTmp();
  const libc = openLibc();
  try {
    if (support.supported) {
      // Reaching here without net support means the operator opted in to an open network.
      const effective = support.net ? policy : { ...policy, net: "all" as const };
      restrictSelf(effective, support.abi, tmpdir ? [tmpdir] : [], libc);
    } else if (libc.setNoNewPrivs()[0] < 0) throw new OstkError("io", "prctl(NO_NEW_PRIVS) failed");
    if (!policy.allow_metadata) denyMetadata(libc);
    // Root keeps its capabilities inside a Landlock domain, and CAP_SYS_PTRACE alone would let
    // it read other processes' /proc/<pid>/environ; CAP_SYS_MODULE would be worse.
    const [caps, errno] = libc.dropCapabilities();
    if (caps < 0) throw new OstkError("io", `capset failed: ${errnoName(errno)}`);
  } catch (e) {
    warn(`refusing to run: ${(e as Error).message}`);
    return 1;
  }
  libc.resetSignals();
  // Resolve through PATH the way execvp does, but after the restriction: try each candidate and
  // let execve decide, so a binary the sandbox may not execute is skipped, never half-run.
  const candidates = cmd[0].includes("/")
    ? [cmd[0]]
    : (env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":").map((d) => `${d || "."}/${cmd[0]}`);
  let denied: number | undefined;
  for (const path of candidates) {
    const errno = libc.execve(path, cmd, env);
    if (errno === 13) denied = errno;
    else if (errno !== 2 && errno !== 20) {
      warn(`cannot exec ${path}: ${errnoName(errno)}`);
      return 126;
    }
  }
  if (denied !== undefined) {
    warn(`cannot exec ${cmd[0]}: ${errnoName(denied)}`);
    return 126;
  }
  warn(`${cmd[0]}: command not found`);
  return 127;
}

/** Install the seccomp filter that stops chmod/chown/utimes/xattrs by path (see _seccomp.ts). */
function denyMetadata(libc: Libc): void {
  const arch = Deno.build.arch;
  if (arch !== "x86_64" && arch !== "aarch64") {
    warn(`WARNING: file metadata (chmod, chown, utimes) NOT restricted on ${arch}`);
    return;
  }
  const filter = metadataFilter(arch);
  const [r, errno] = libc.setSeccompFilter(sockFprog(filter));
  if (r < 0) throw new OstkError("io", `seccomp filter failed: ${errnoName(errno)}`);
  void filter.length; // the program pointed into `filter`; keep it alive past the call
}

function execSeatbelt(
  policy: SandboxPolicy,
  tmpdir: string | undefined,
  cmd: string[],
  env: Record<string, string>,
): number {
  const profile = seatbeltProfile(policy, { tmpdir: tmpdir && Deno.realPathSync(tmpdir) });
  const { code } = new Deno.Command("/usr/bin/sandbox-exec", {
    args: ["-p", profile, ...cmd],
    env,
    clearEnv: true,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).outputSync();
  return code;
}

/** Options for `spawnSandboxed`; stdio defaults to `inherit`. */
export interface SpawnSandboxedOptions {
  cwd?: string;
  /** Added to (not replacing) the caller's environment. */
  env?: Record<string, string>;
  stdin?: "piped" | "inherit" | "null";
  stdout?: "piped" | "inherit" | "null";
  stderr?: "piped" | "inherit" | "null";
  /** The argv prefix that runs `_sandbox-exec`; defaults to `helperInvocation()`. */
  helper?: string[];
}

const HELPER_PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];

/**
 * How to start `_sandbox-exec`: the compiled `ostk` binary itself (`ostk _sandbox-exec`) when
 * this process is one; under Deno, this module as the entry point (`deno run <perms>
 * sandbox/exec.ts _sandbox-exec`), which runs the same code as `main.ts _sandbox-exec` but
 * starts in half the time because it does not load the whole CLI.
 */
export function helperInvocation(): string[] {
  const exe = Deno.execPath();
  const base = exe.slice(exe.lastIndexOf("/") + 1);
  if (!/^deno(\.exe)?$/.test(base)) return [exe, "_sandbox-exec"];
  const self = decodeURIComponent(new URL(import.meta.url).pathname);
  const config = decodeURIComponent(new URL("../deno.json", import.meta.url).pathname);
  return [exe, "run", "--quiet", ...HELPER_PERMISSIONS, "--config", config, self, "_sandbox-exec"];
}

/**
 * Start `cmd` under `policy` and return the child; its status is the command's own. With
 * `tmp`, a private temp dir is made here and removed when the child exits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultPolicy, landlockSupport, spawnSandboxed } from "./mod.ts";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.mkdir(`${root}/.ostk`);
 * await Deno.mkdir(`${root}/src`);
 * // Where no sandbox can be built the helper refuses to run the command at all.
 * if (Deno.build.os === "darwin" || landlockSupport().supported) {
 *   const script = "echo ok > src/a.txt; echo forged > .ostk/audit.jsonl";
 *   const child = spawnSandboxed(await defaultPolicy(root), ["sh", "-c", script], {
 *     cwd: root,
 *     stderr: "null",
 *   });
 *   assert.notEqual((await child.status).code, 0); // the write into .ostk/ failed
 *   assert.equal(await Deno.readTextFile(`${root}/src/a.txt`), "ok\n");
 *   // The kernel's state is out of reach: nothing landed in .ostk/.
 *   await assert.rejects(Deno.stat(`${root}/.ostk/audit.jsonl`), Deno.errors.NotFound);
 * }
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function spawnSandboxed(
  policy: SandboxPolicy | SandboxPolicyInput,
  cmd: string[],
  opts: SpawnSandboxedOptions = {},
): Deno.ChildProcess {
  const parsed = parsePolicy(policy);
  if (cmd.length === 0) throw new OstkError("usage", "spawnSandboxed needs a command");
  const tmpdir = parsed.tmp
    ? Deno.realPathSync(Deno.makeTempDirSync({ prefix: "ostk-sandbox-" }))
    : undefined;
  const [exe, ...pre] = opts.helper ?? helperInvocation();
  // A `deno run` helper finds its module cache through HOME; a caller that gives the command
  // another HOME would make it fetch every dependency again. Pin the cache, unset it at exec.
  const pin = pre[0] === "run" && !opts.env?.DENO_DIR && !Deno.env.get("DENO_DIR");
  const denoDir = pin ? defaultDenoDir() : undefined;
  const command = new Deno.Command(exe, {
    args: [
      ...pre,
      ...(tmpdir ? ["--tmpdir", tmpdir] : []),
      ...(denoDir ? ["--unset-env", "DENO_DIR"] : []),
      JSON.stringify(parsed),
      "--",
      ...cmd,
    ],
    cwd: opts.cwd,
    env: { DENO_NO_UPDATE_CHECK: "1", ...opts.env, ...(denoDir ? { DENO_DIR: denoDir } : {}) },
    stdin: opts.stdin ?? "inherit",
    stdout: opts.stdout ?? "inherit",
    stderr: opts.stderr ?? "inherit",
  });
  let child: Deno.ChildProcess;
  try {
    child = command.spawn();
  } catch (e) {
    if (tmpdir) removeTree(tmpdir);
    throw e;
  }
  if (tmpdir) {
    const cleanup = () => removeTree(tmpdir);
    child.status.then(cleanup, cleanup);
  }
  return child;
}

/** Where this Deno keeps its cache when DENO_DIR is unset (Deno's own default rule). */
function defaultDenoDir(): string | undefined {
  const home = Deno.env.get("HOME");
  if (Deno.build.os === "darwin") return home && `${home}/Library/Caches/deno`;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  return xdg ? `${xdg}/deno` : home && `${home}/.cache/deno`;
}

function removeTree(dir: string): void {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) warn(`could not remove ${dir}: ${e}`);
  }
}

if (import.meta.main) {
  // `deno run sandbox/exec.ts _sandbox-exec …`: the helper without loading the whole CLI,
  // with the CLI's exit codes (2 usage, 1 refused).
  try {
    Deno.exit(runSandboxExec(parseHelperArgs(Deno.args.slice(1))));
  } catch (e) {
    if (!(e instanceof OstkError)) throw e;
    warn(e.toLine());
    Deno.exit(e.code === "usage" ? 2 : 1);
  }
}
