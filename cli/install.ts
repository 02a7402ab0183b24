/**
 * `deno task install [--root DIR]`: put an `ostk` launcher in `DIR/bin` (default `~/.local/bin`)
 * that runs this checkout with a pinned Deno, the locked module graph and the `ostk` task's
 * permissions, and needs neither `deno` on PATH nor the network once installed.
 *
 * What lands where (DIR defaults to ~/.local):
 *   DIR/bin/ostk                    the launcher, a POSIX sh script
 *   DIR/lib/ostk/deno-<version>/deno  a copy of the Deno binary that ran the install
 *   DIR/lib/ostk/deno_dir/          the launcher's own DENO_DIR, filled at install time
 */
import manifest from "../deno.json" with { type: "json" };
import { atomicWrite } from "../kernel/atomic_write.ts";
import { OstkError } from "../kernel/errors.ts";
import { domainHash, toHex } from "../kernel/hash.ts";
import { err, EXIT, out, parseFlags, StdoutClosed } from "./command.ts";
import { describeFailure } from "./failure.ts";
import { shellQuote } from "./shell_quote.ts";
import { whichAll } from "../kernel/which.ts";

/** This checkout, as an absolute path without a trailing slash. */
/** This checkout: where main.ts, deno.json and deno.lock are. */
export const SOURCE = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(
  /\/$/,
  "",
);

/**
 * Every module the launcher may load, relative to the checkout: the CLI, and the Worker entries
 * the daemon starts lazily (a Worker's graph is not part of main.ts's). The launcher runs with
 * --cached-only, so one missing here fails the first spawn instead of downloading quietly;
 * tests/cli/install_e2e_test.ts checks this list against every `new Worker(...)` in the source.
 */
export const CACHE_ENTRIES = [
  "main.ts",
  "actors/_script_worker_entry.ts",
  "actors/llm/_model_worker_entry.ts",
] as const;

/** What a launcher runs; written into the launcher as one JSON comment line for `ostk doctor`. */
export interface LauncherInfo {
  /** ostk's version at install time. */
  version: string;
  /** The checkout the launcher runs. */
  source: string;
  /** The pinned Deno binary. */
  deno: string;
  /** The launcher's DENO_DIR. */
  denoDir: string;
  /** NPM_CONFIG_REGISTRY at install time, if set: Deno keys its npm cache by registry host. */
  npmRegistry?: string;
  /** `lockHash` of deno.lock at install time: a later pull may need modules not cached. */
  lockHash?: string;
}

const INFO_PREFIX = "# ostk-launcher ";

/**
 * The Deno flags of the `ostk` task in deno.json (`deno run <flags> main.ts`), so the launcher
 * grants exactly what `deno task ostk` grants and the list is written in one place.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskFlags } from "./install.ts";
 * assert.deepEqual(
 *   taskFlags('OSTK_CWD="$INIT_CWD" deno run --allow-read --allow-net main.ts'),
 *   ["--allow-read", "--allow-net"],
 * );
 * ```
 */
export function taskFlags(task: string): string[] {
  const words = task.trim().split(/\s+/);
  const run = words.findIndex((w, i) => w === "run" && words[i - 1] === "deno");
  const flags: string[] = [];
  let i = run + 1;
  for (; run >= 0 && i < words.length && words[i].startsWith("-"); i++) flags.push(words[i]);
  if (run < 0 || words[i] !== "main.ts" || i !== words.length - 1) {
    throw new OstkError(
      "bad_input",
      `the 'ostk' task in deno.json is not of the form 'deno run <flags> main.ts': ${task}`,
      {},
      "keep that form, or teach cli/install.ts the new one",
    );
  }
  return flags;
}

/**
 * The launcher script for `info`, running `main.ts` of `info.source` with `flags`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { launcherScript, readLauncherInfo } from "./install.ts";
 * const info = { version: "1.0.0", source: "/src", deno: "/opt/deno", denoDir: "/opt/cache" };
 * const text = launcherScript(info, ["--allow-read"]);
 * assert.deepEqual(readLauncherInfo(text), info);
 * assert.match(text, /exec '\/opt\/deno' run .*'--allow-read' '\/src\/main.ts' "\$@"/);
 * ```
 */
export function launcherScript(info: LauncherInfo, flags: string[]): string {
  const q = shellQuote;
  const run = [
    q(info.deno),
    "run",
    "--quiet",
    "--cached-only",
    `--lock=${q(`${info.source}/deno.lock`)}`,
    "--frozen",
    `--config=${q(`${info.source}/deno.json`)}`,
    ...flags.map(q),
    q(`${info.source}/main.ts`),
    '"$@"',
  ];
  return `#!/bin/sh
${INFO_PREFIX}${JSON.stringify(info)}
# Written by 'deno task install' in ${info.source}; run it again to update this file.
#
# Deno is a copy made at install time: the binary that ran the install lives in the npx cache,
# which 'npm cache clean' (or a newer npx) may delete at any time, and no 'deno' need be on PATH.
# DENO_DIR is this install's own module cache, filled at install time from deno.lock, so the
# first run works offline and neither 'deno clean' nor another DENO_DIR can take modules away;
# --cached-only makes a missing module an error rather than a download, and --frozen refuses a
# graph that does not match deno.lock.
# NPM_CONFIG_REGISTRY is what it was at install time, because Deno files npm packages in the
# cache under the registry's host name: another registry would find nothing cached.
# OSTK_CWD is unset so ostk acts on the directory it is run from (or -C), never on one inherited
# from a 'deno task ostk' further up the process tree.
unset OSTK_CWD
# OSTK_LAUNCHER tells ostk how to start itself again (its daemon, 'ostk mcp'): through this file.
case $0 in /*) OSTK_LAUNCHER=$0 ;; *) OSTK_LAUNCHER=$PWD/$0 ;; esac
export OSTK_LAUNCHER
${
    info.npmRegistry
      ? `NPM_CONFIG_REGISTRY=${q(info.npmRegistry)}\nexport NPM_CONFIG_REGISTRY`
      : "unset NPM_CONFIG_REGISTRY"
  }
DENO_DIR=${q(info.denoDir)}
DENO_NO_UPDATE_CHECK=1
export DENO_DIR DENO_NO_UPDATE_CHECK
exec ${run.join(" ")}
`;
}

/** The launcher's JSON comment line, or undefined when `text` is not an ostk launcher. */
export function readLauncherInfo(text: string): LauncherInfo | undefined {
  const line = text.split("\n", 3).find((l) => l.startsWith(INFO_PREFIX));
  if (!line) return undefined;
  try {
    const info = JSON.parse(line.slice(INFO_PREFIX.length));
    const fields = ["version", "source", "deno", "denoDir"] as const;
    const optional = ["npmRegistry", "lockHash"] as const;
    return fields.every((f) => typeof info?.[f] === "string") &&
        optional.every((f) => info[f] === undefined || typeof info[f] === "string")
      ? info
      : undefined;
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** The content hash of `<source>/deno.lock`, to tell whether it changed since an install. */
export async function lockHash(source: string): Promise<string> {
  return toHex(await domainHash("content", await Deno.readFile(`${source}/deno.lock`)));
}

/** What `install` did. */
export interface InstallResult {
  launcher: string;
  bin: string;
  info: LauncherInfo;
  /** Where the Deno binary was copied from. */
  copiedFrom: string;
  /** Another `ostk` found on PATH before this one, if any. */
  shadowedBy?: string;
  onPath: boolean;
}

/** Options for `install`; `deno` defaults to the running binary. */
export interface InstallOptions {
  root: string;
  deno?: string;
  /** Called with each step's one-line description. */
  progress?: (line: string) => void;
}

/**
 * Copy Deno, cache the module graph, write the launcher and check it starts. Re-running
 * replaces every file; nothing is half-written because each lands by rename.
 */
export async function install(options: InstallOptions): Promise<InstallResult> {
  const progress = options.progress ?? (() => {});
  const root = options.root.replace(/\/+$/, "") || "/";
  const bin = `${root}/bin`;
  const lib = `${root}/lib/ostk`;
  const source = await Deno.realPath(SOURCE);
  const from = options.deno ?? Deno.execPath();
  const flags = taskFlags(manifest.tasks.ostk);
  await mkdirs([bin, lib], root);
  const denoVersion = options.deno ? await versionOf(from) : Deno.version.deno;
  const info: LauncherInfo = {
    version: manifest.version,
    source,
    // Named exactly `deno`: the CLI tells "running from source" from "compiled binary" by that
    // name when it starts the daemon, the sandbox helper and `ostk mcp diag`.
    deno: `${lib}/deno-${denoVersion}/deno`,
    denoDir: `${lib}/deno_dir`,
  };
  info.lockHash = await lockHash(source);
  const registry = Deno.env.get("NPM_CONFIG_REGISTRY");
  if (registry) info.npmRegistry = registry;

  progress(`copying ${from} to ${info.deno}`);
  await mkdirs([info.deno.slice(0, info.deno.lastIndexOf("/"))], root);
  await replaceByCopy(from, info.deno);

  progress(`caching the module graph from deno.lock into ${info.denoDir} (downloads only once)`);
  await run(
    info.deno,
    [
      "cache",
      "--quiet",
      `--lock=${source}/deno.lock`,
      "--frozen",
      `--config=${source}/deno.json`,
      ...CACHE_ENTRIES.map((e) => `${source}/${e}`),
    ],
    { DENO_DIR: info.denoDir },
    "caching the module graph",
  );

  // The new launcher is started once under a temporary name before it replaces the old one, so
  // a launcher that cannot start never takes the place of one that could.
  const launcher = `${bin}/ostk`;
  const staged = `${bin}/.ostk.new`;
  await atomicWrite(staged, launcherScript(info, flags), { mode: 0o755 });
  // atomicWrite keeps an existing file's mode; a launcher must be executable whatever was there.
  await Deno.chmod(staged, 0o755);
  // Start it as a user would: proves it runs, and compiles main.ts's graph ahead of use.
  const version = await run(staged, ["--version"], {}, "starting the new launcher");
  if (version.trim() !== `ostk ${manifest.version}`) {
    throw new OstkError(
      "io",
      `the new launcher printed '${version.trim()}', expected 'ostk ${manifest.version}'`,
      { file: staged },
    );
  }
  await Deno.rename(staged, launcher);
  // Only now is the previous Deno copy unused by any launcher.
  await removeOtherDenos(lib, info.deno);
  const found = await whichAll("ostk");
  const real = await Deno.realPath(launcher);
  const first = found[0];
  return {
    launcher,
    bin,
    info,
    copiedFrom: from,
    onPath: found.includes(real),
    ...(first && first !== real ? { shadowedBy: first } : {}),
  };
}

async function mkdirs(dirs: string[], root: string): Promise<void> {
  for (const dir of dirs) {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err) {
      if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotADirectory) {
        throw new OstkError(
          "permission",
          `cannot create ${dir}: ${(err as Error).message}`,
          {},
          `pick another --root than ${root}`,
        );
      }
      throw err;
    }
  }
}

/** Copy `from` to `to` through a temp file and a rename, so a running copy is never truncated. */
async function replaceByCopy(from: string, to: string): Promise<void> {
  const tmp = `${to}.${Deno.pid}.tmp`;
  try {
    await Deno.copyFile(from, tmp);
    await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, to);
  } catch (err) {
    await Deno.remove(tmp).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError(
        "not_found",
        `no Deno binary at ${from}`,
        {},
        "run the install with Deno",
      );
    }
    throw err;
  }
}

/** Deno copies of earlier installs of another version. */
async function removeOtherDenos(lib: string, keep: string): Promise<void> {
  const keepDir = keep.slice(0, keep.lastIndexOf("/"));
  for await (const entry of Deno.readDir(lib)) {
    const path = `${lib}/${entry.name}`;
    if (entry.isDirectory && entry.name.startsWith("deno-") && path !== keepDir) {
      await Deno.remove(path, { recursive: true });
    }
  }
}

async function versionOf(deno: string): Promise<string> {
  const text = await run(deno, ["--version"], {}, `asking ${deno} its version`);
  const version = /^deno (\S+)/.exec(text)?.[1];
  if (!version) throw new OstkError("bad_input", `${deno} --version printed '${text.trim()}'`);
  return version;
}

/** Run a step to completion; its stderr becomes the error when it fails. */
async function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  what: string,
): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(cmd, {
    args,
    env: { DENO_NO_UPDATE_CHECK: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (code !== 0) {
    const tail = decoder.decode(stderr).trim().split("\n").slice(-3).join(" / ");
    throw new OstkError("io", `${what} failed (exit ${code}): ${tail || "no output"}`);
  }
  return decoder.decode(stdout);
}

const HELP = `usage: deno task install [--root DIR]

Put an 'ostk' launcher in DIR/bin (default ~/.local/bin). It runs this checkout's main.ts with
a copy of the Deno that ran the install (DIR/lib/ostk/deno-<version>/deno), the module graph
pinned by deno.lock and cached in DIR/lib/ostk/deno_dir, and the permissions of the 'ostk'
task. It needs no 'deno' on PATH and no network after the install. Run it again to update;
remove DIR/bin/ostk and DIR/lib/ostk to uninstall.

  --root DIR   install under DIR instead of ~/.local (relative to where you run the task)

exit codes: 0 installed · 1 failed (the reason is printed) · 2 usage`;

/** The `install` task: parse flags, install, say where things went. Returns the exit code. */
export async function installMain(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseFlags("install", argv, {
      root: { type: "string" },
    }, true);
    if (values.help) {
      out(HELP);
      return EXIT.ok;
    }
    if (positionals.length) {
      throw new OstkError("usage", `unexpected '${positionals.join(" ")}'`, {}, "see --help");
    }
    const cwd = Deno.env.get("OSTK_CWD") || Deno.cwd();
    const home = Deno.env.get("HOME");
    if (values.root === undefined && !home) {
      throw new OstkError("usage", "HOME is unset, so there is no ~/.local", {}, "pass --root DIR");
    }
    const given = values.root ?? `${home}/.local`;
    if (given === "") throw new OstkError("usage", "--root needs a directory", {}, "see --help");
    const root = given.startsWith("/") ? given : `${cwd}/${given}`;
    const result = await install({ root, progress: (line) => err(`install: ${line}`) });
    out(`ostk ${result.info.version} installed
  launcher  ${result.launcher}
  deno      ${result.info.deno} (copied from ${result.copiedFrom})
  modules   ${result.info.denoDir}
  source    ${result.info.source}`);
    if (!result.onPath) {
      out(`${result.bin} is not on PATH; add this line to ~/.profile (or your shell's rc):
  export PATH="${result.bin}:$PATH"`);
    } else if (result.shadowedBy) {
      out(`note: ${result.shadowedBy} comes first on PATH and hides this one`);
    }
    out(
      "next: cd your-project && ostk init && ostk boot   ('ostk doctor' checks the set-up)",
    );
    return EXIT.ok;
  } catch (e) {
    if (e instanceof StdoutClosed) return EXIT.ok;
    const failure = describeFailure(e, "install");
    err(failure.line.replace(/^ostk: /, "ostk install: "));
    if (failure.stack && Deno.env.get("OSTK_DEBUG") === "1") err(failure.stack);
    return failure.exit;
  }
}

if (import.meta.main) Deno.exit(await installMain(Deno.args));
