/** Where a project's parts live, and how a command finds its project. */
import { OstkError } from "./errors.ts";

/** Absolute paths of every part of a project's `.ostk/`. */
export interface OstkPaths {
  root: string;
  dir: string;
  humanfile: string;
  audit: string;
  head: string;
  genTable: string;
  genLock: string;
  shadows: string;
  drain: string;
  pins: string;
  defaultPin: string;
  agents: string;
  identityPub: string;
  anchorLock: string;
  socket: string;
  gitignore: string;
}

/** The paths for a project rooted at `root` (an absolute path). */
export function ostkPaths(root: string): OstkPaths {
  const dir = `${root === "/" ? "" : root}/.ostk`;
  return {
    root,
    dir,
    humanfile: `${dir}/HUMANFILE`,
    audit: `${dir}/audit.jsonl`,
    head: `${dir}/audit.head`,
    genTable: `${dir}/gen_table.jsonl`,
    genLock: `${dir}/gen_table.lock`,
    shadows: `${dir}/shadows`,
    drain: `${dir}/drain`,
    pins: `${dir}/pins`,
    defaultPin: `${dir}/pins/default/pin.caps`,
    agents: `${dir}/agents`,
    identityPub: `${dir}/identity.pub`,
    anchorLock: `${dir}/anchor.lock`,
    socket: `${dir}/ostk.sock`,
    gitignore: `${dir}/.gitignore`,
  };
}

/**
 * Walk up from `start` to the nearest directory holding `.ostk/`, as git does with `.git/`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findRoot } from "./layout.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/.ostk`);
 * await Deno.mkdir(`${dir}/a/b`, { recursive: true });
 * assert.equal(await findRoot(`${dir}/a/b`), await Deno.realPath(dir));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function findRoot(start: string = Deno.cwd()): Promise<string> {
  let dir = await Deno.realPath(start);
  for (;;) {
    try {
      if ((await Deno.stat(`${dir === "/" ? "" : dir}/.ostk`)).isDirectory) return dir;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) {
        throw err;
      }
    }
    if (dir === "/") break;
    dir = dir.slice(0, dir.lastIndexOf("/")) || "/";
  }
  throw new OstkError(
    "not_found",
    `not inside an ostk project (no .ostk/ in ${start} or any parent)`,
    {},
    "run 'ostk init' here to start one, or pass -C <dir>",
  );
}
