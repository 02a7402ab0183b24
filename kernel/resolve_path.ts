/**
 * The path gate of the write path: turn a user-supplied path into a real absolute path inside
 * the project root, or refuse with a reason a person can act on.
 *
 * Limit (TOCTOU): the answer is true at the moment it is computed. Between this check and the
 * caller's open or rename, another process may swap a directory for a symlink, and Deno offers
 * no `openat`/`O_NOFOLLOW` walk to close that gap. Callers resolve immediately before acting;
 * the sandbox (Landlock / Seatbelt) is the layer that still holds when this check is raced.
 */

import { OstkError, type OstkErrorCode } from "./errors.ts";

/** Longest path accepted, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest single component accepted, in UTF-8 bytes (NAME_MAX). */
export const MAX_COMPONENT_BYTES = 255;
/** Links followed before a walk counts as a loop (Linux MAXSYMLINKS). */
const MAX_SYMLINK_HOPS = 40;

/** Options for {@linkcode resolveProjectPath}. */
export interface ResolveOptions {
  /** Allow `.ostk/` itself and anything under it (the caller holds write-kernel). */
  allowKernel?: boolean;
}

/** A path proven to sit inside the project root. */
export interface ResolvedPath {
  /** Real absolute path: every symlink resolved, the root realpath'd. */
  abs: string;
  /** Root-relative posix form without a leading `./`; `.` for the root itself. */
  rel: string;
}

const encoder = new TextEncoder();

/**
 * Resolve `input` (relative to `root`, or absolute) to a real path inside the project root.
 * A path whose tail does not exist yet is accepted when its deepest existing ancestor resolves
 * inside the root, so callers can create files. Throws {@linkcode OstkError} with code
 * `permission` (escapes, kernel state) or `bad_input` (malformed paths, loops).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveProjectPath } from "./resolve_path.ts";
 * const root = await Deno.makeTempDir();
 * const { rel } = await resolveProjectPath(root, "./src/new.ts");
 * assert.equal(rel, "src/new.ts");
 * await assert.rejects(resolveProjectPath(root, "../etc"), { code: "permission" });
 * await assert.rejects(resolveProjectPath(root, ".ostk/audit.jsonl"), { code: "permission" });
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function resolveProjectPath(
  root: string,
  input: string,
  opts: ResolveOptions = {},
): Promise<ResolvedPath> {
  checkShape(input);
  const absolute = input.startsWith("/");
  // A relative path that climbs above the root is refused before touching the disk, even if it
  // would come back in (`../proj/x`): the rule stays simple to state and to audit.
  if (!absolute && lexicalParts(input).at(0) === "..") {
    refuse(input, "path escapes the project root", "permission");
  }
  const rootReal = await realRoot(root);
  const abs = await walk(input, absolute ? "/" : rootReal);
  const rel = relativeTo(rootReal, abs);
  if (rel === undefined) {
    // The walk result is authoritative; the lexical view only picks the clearer reason.
    const lexical = absolute ? "/" + lexicalParts(input).join("/") : rootReal;
    const lexicallyInside = relativeTo(rootReal, lexical) !== undefined ||
      relativeTo(normalizeAbs(root), lexical) !== undefined;
    refuse(
      input,
      lexicallyInside ? "symlink leads outside the project" : "path escapes the project root",
      "permission",
    );
  }
  if (encoder.encode(rel).length > MAX_PATH_BYTES) {
    refuse(input, `resolved path too long (${encoder.encode(rel).length} bytes > 4096)`);
  }
  if (!opts.allowKernel && isKernelPath(rel)) {
    refuse(input, ".ostk/ is kernel state (needs write-kernel)", "permission");
  }
  return { abs, rel };
}

/**
 * True when a root-relative path names `.ostk/` or something under it. Compared without case
 * because macOS's default filesystem maps `.OSTK` onto the same directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isKernelPath } from "./resolve_path.ts";
 * assert.ok(isKernelPath(".ostk/audit.jsonl"));
 * assert.ok(!isKernelPath("src/.ostk.ts"));
 * ```
 */
export function isKernelPath(rel: string): boolean {
  const lower = rel.toLowerCase();
  return lower === ".ostk" || lower.startsWith(".ostk/");
}

/** Refuse malformed input before any filesystem access. */
function checkShape(input: string): void {
  if (input.length === 0) refuse(input, "empty path");
  if (input.includes("\0")) refuse(input, "path contains NUL");
  const bytes = encoder.encode(input).length;
  if (bytes > MAX_PATH_BYTES) refuse(input, `path too long (${bytes} bytes > 4096)`);
  for (const part of input.split("/")) {
    const size = encoder.encode(part).length;
    if (size > MAX_COMPONENT_BYTES) {
      refuse(input, `path component too long (${size} bytes > 255)`);
    }
  }
}

async function realRoot(root: string): Promise<string> {
  try {
    return await Deno.realPath(root);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError("not_found", `project root ${JSON.stringify(root)} does not exist`);
    }
    throw new OstkError("io", `cannot resolve project root ${JSON.stringify(root)}: ${err}`);
  }
}

/**
 * Walk `input` one component at a time from `start`, resolving symlinks ourselves (as
 * realpath(3) does) so that `current` is always a real directory and `..` means its physical
 * parent. Stops at the first component that does not exist and appends the rest verbatim.
 */
async function walk(input: string, start: string): Promise<string> {
  const pending = input.split("/").reverse();
  let current = start;
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      current = parentOf(current);
      continue;
    }
    const next = joinAbs(current, part);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(next);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return appendMissing(input, next, pending);
      if (err instanceof Deno.errors.NotADirectory) {
        refuse(input, `${JSON.stringify(current)} is not a directory`);
      }
      throw new OstkError("io", `cannot resolve ${show(input)}: ${err}`);
    }
    if (!info.isSymlink) {
      current = next;
      continue;
    }
    // Each hop counts, so a→b→a and a→a both end here instead of spinning.
    if (++hops > MAX_SYMLINK_HOPS) {
      refuse(input, `symlink loop (more than ${MAX_SYMLINK_HOPS} links followed)`);
    }
    const target = await Deno.readLink(next);
    if (target.startsWith("/")) current = "/";
    pending.push(...target.split("/").reverse());
  }
  return current;
}

/** The tail of a path that does not exist yet: plain names only. */
function appendMissing(input: string, first: string, pending: string[]): string {
  let abs = first;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === "" || part === ".") continue;
    // `..` below a missing directory cannot be checked against the disk; the OS would fail
    // on it anyway, so refuse it here with a clear reason.
    if (part === "..") refuse(input, "'..' after a component that does not exist yet");
    abs = joinAbs(abs, part);
  }
  return abs;
}

/** Components of `path` with `.` dropped and `..` folded lexically; leading `..` kept. */
function lexicalParts(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && out.length > 0 && out.at(-1) !== "..") out.pop();
    else if (part === ".." && path.startsWith("/")) continue; // `/..` is `/`
    else out.push(part);
  }
  return out;
}

function normalizeAbs(path: string): string {
  return path.startsWith("/") ? "/" + lexicalParts(path).join("/") : path;
}

/** `abs` relative to `root`, or undefined when it lies outside. */
function relativeTo(root: string, abs: string): string | undefined {
  if (abs === root) return ".";
  if (root === "/") return abs.slice(1);
  return abs.startsWith(root + "/") ? abs.slice(root.length + 1) : undefined;
}

function parentOf(abs: string): string {
  const slash = abs.lastIndexOf("/");
  return slash <= 0 ? "/" : abs.slice(0, slash);
}

function joinAbs(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** Quote a path for a message, cut short so a 4 KiB path does not flood the terminal. */
function show(input: string): string {
  const quoted = JSON.stringify(input);
  return quoted.length > 80 ? `${quoted.slice(0, 77)}…"` : quoted;
}

function refuse(input: string, reason: string, code: OstkErrorCode = "bad_input"): never {
  throw new OstkError(code, `refusing path ${show(input)}: ${reason}`);
}
