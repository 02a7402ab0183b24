/** Facts about other processes, read from /proc on Linux. */

/**
 * Read `/proc/<pid>/<name>` (Linux), or undefined when the process is gone. Deno 2.9 lets only
 * `--allow-all` read `/proc/<pid>/…` directly, so without it the file is read through `cat`
 * (the daemon has `--allow-run` anyway).
 */
export async function readProc(pid: number, name: string): Promise<string | undefined> {
  const path = `/proc/${pid}/${name}`;
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    if (!(err instanceof Deno.errors.NotCapable)) throw err;
  }
  const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
    .output();
  return out.success ? new TextDecoder().decode(out.stdout) : undefined;
}

/** The fields of `/proc/<pid>/stat` after the command name (state, ppid, pgrp, session, …). */
export async function procStat(pid: number): Promise<string[] | undefined> {
  const stat = await readProc(pid, "stat");
  // The command name (field 2) is in parentheses and may hold spaces; fields resume after ')'.
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Whether `pid` is a live process; undefined where /proc does not exist (macOS). */
export async function processAlive(pid: number): Promise<boolean | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  return (await procStat(pid)) !== undefined;
}

/**
 * Signal every process in group `pgid`. A group that is already gone is not an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { killGroup } from "./proc.ts";
 * assert.equal(killGroup(2 ** 22 + 12345, "SIGTERM"), false); // no such group, and no throw
 * ```
 */
export function killGroup(pgid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false; // ESRCH: nothing left to signal
    throw err;
  }
}

/** The process group of `pid` from `/proc/<pid>/stat`, or undefined if it is gone. */
export async function processGroupOf(pid: number): Promise<number | undefined> {
  const fields = await procStat(pid);
  return fields === undefined ? undefined : Number(fields[2]); // state, ppid, pgrp
}
