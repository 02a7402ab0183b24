/**
 * A scratch world for sandbox escape tests: a project (`proj/`, with `.ostk/`), a directory
 * outside every grant (`outside/`), a private HOME and a path in the shared /tmp. A test runs a
 * program sandboxed inside it and reads what changed from outside: `effects` lists every
 * change in the places the sandbox must not reach, so "escaped" is decided by what happened,
 * never by an exit code.
 */
import {
  defaultPolicy,
  type SandboxPolicy,
  spawnSandboxed,
  withGrants,
} from "../../sandbox/mod.ts";

const decoder = new TextDecoder();

/** The content of `outside/secret.txt`: if a sandboxed program prints it, it read outside. */
export const SECRET = "top-secret-outside-the-grants\n";

/** Paths of one world; all absolute and symlink-free. */
export interface World {
  base: string;
  proj: string;
  out: string;
  home: string;
  /** A file path directly in the shared /tmp (outside the private TMPDIR). */
  tmpOut: string;
  /** Written by `outside/tool.sh` when it runs. */
  toolRan: string;
  /** The project's default policy. */
  policy: SandboxPolicy;
}

/** A world made for `fn` and removed after it, whatever `fn` did to it. */
export async function withWorld<T>(fn: (w: World) => Promise<T>): Promise<T> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_escape_" }));
  const proj = `${base}/proj`, out = `${base}/outside`, home = `${base}/home`;
  const tmpOut = `/tmp/ostk_escape_probe_${crypto.randomUUID()}`;
  try {
    await Deno.mkdir(`${proj}/.ostk/agents`, { recursive: true });
    await Deno.mkdir(`${proj}/src`);
    await Deno.mkdir(`${proj}/docs`);
    await Deno.writeTextFile(`${proj}/.ostk/audit.jsonl`, '{"seq":0}\n');
    await Deno.writeTextFile(`${proj}/src/a.txt`, "inside\n");
    await Deno.writeTextFile(`${proj}/README.md`, "readme\n");
    await Deno.mkdir(`${out}/emptydir`, { recursive: true });
    await Deno.writeTextFile(`${out}/victim.txt`, "orig\n");
    await Deno.writeTextFile(`${out}/secret.txt`, SECRET);
    await Deno.chmod(`${out}/victim.txt`, 0o644);
    await Deno.utime(`${out}/victim.txt`, 1_000_000, 1_000_000);
    const toolRan = `${proj}/src/tool_ran`;
    await Deno.writeTextFile(`${out}/tool.sh`, `#!/bin/sh\necho ran > '${toolRan}'\n`);
    await Deno.chmod(`${out}/tool.sh`, 0o755);
    await Deno.mkdir(home);
    const policy = await defaultPolicy(proj);
    return await fn({ base, proj, out, home, tmpOut, toolRan, policy });
  } finally {
    await Deno.remove(base, { recursive: true });
    await Deno.remove(tmpOut, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}

/** The world's policy with more granted: the positive control of an attempt. */
export function granted(
  w: World,
  grants: { write?: string[]; read?: string[]; allowMetadata?: boolean },
): SandboxPolicy {
  return withGrants(w.policy, grants);
}

/** How a sandboxed (or bare) run ended, and what it printed. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment every program in a world sees: where things are. */
function worldEnv(w: World): Record<string, string> {
  return { HOME: w.home, P: w.proj, OUT: w.out, TMPOUT: w.tmpOut };
}

/** Run `sh -c script` in the project under `policy`. */
export async function sandboxed(
  w: World,
  script: string,
  policy: SandboxPolicy = w.policy,
  extraEnv: Record<string, string> = {},
): Promise<Run> {
  const child = spawnSandboxed(policy, ["sh", "-c", script], {
    cwd: w.proj,
    env: { ...worldEnv(w), ...extraEnv },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Run `sh -c script` with no sandbox at all, for controls whose block has no grant. */
export async function bare(w: World, script: string): Promise<Run> {
  const { code, stdout, stderr } = await new Deno.Command("sh", {
    args: ["-c", script],
    cwd: w.proj,
    env: worldEnv(w),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Everything under `root`: type, mode, owner, size, mtime, content or link target. */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const rows: Record<string, string> = {};
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      const st = await Deno.lstat(path);
      const body = e.isFile
        ? await Deno.readTextFile(path)
        : e.isSymlink
        ? await Deno.readLink(path)
        : "";
      rows[path.slice(root.length)] = `${
        st.mode?.toString(8)
      } ${st.uid}:${st.gid} ${st.size} ${st.mtime?.getTime()} ${body}`;
      if (e.isDirectory) await walk(path);
    }
  };
  try {
    await walk(root);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    rows["(root)"] = "missing";
  }
  return rows;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The state of every place outside the grants, as the test sees it from outside. */
export interface Observed {
  outside: Record<string, string>;
  ostk: Record<string, string>;
  /** Files that must never appear: a path in shared /tmp, $HOME/.bashrc, a new top-level entry, `tool.sh`'s trace. */
  appeared: string[];
}

export async function observe(w: World): Promise<Observed> {
  const watched = [w.tmpOut, `${w.home}/.bashrc`, `${w.proj}/newtop`, w.toolRan];
  const appeared: string[] = [];
  for (const path of watched) if (await exists(path)) appeared.push(path);
  return {
    outside: await snapshot(w.out),
    ostk: await snapshot(`${w.proj}/.ostk`),
    appeared,
  };
}

/** What changed between two observations, one line per path; empty when nothing did. */
export function effects(before: Observed, after: Observed): string[] {
  const changes: string[] = [];
  const diff = (where: string, a: Record<string, string>, b: Record<string, string>) => {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (a[key] !== b[key]) {
        changes.push(`${where}${key}: ${a[key] ?? "(absent)"} -> ${b[key] ?? "(absent)"}`);
      }
    }
  };
  diff("outside", before.outside, after.outside);
  diff(".ostk", before.ostk, after.ostk);
  for (const path of after.appeared) {
    if (!before.appeared.includes(path)) changes.push(`${path}: appeared`);
  }
  return changes;
}
