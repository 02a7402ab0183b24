/**
 * Reading `strace -f -qq -yy` output into the paths and sockets a program touched. Internal to
 * sandbox/: `learn.ts` runs strace and is the public face.
 *
 * Why `-yy`: strace then annotates every descriptor with what it is, so `AT_FDCWD</proj>` names
 * the caller's working directory, `3</proj/src>` a directory descriptor, `= 3</proj/a.ts>` the
 * file an open really reached (symlinks resolved) and `3<TCP:[…]>` the socket's protocol. The
 * parser still tracks chdir/fchdir and clone (sharing the directory under CLONE_FS) for the
 * calls that take a bare relative path (mkdir, rename, unlink…).
 */

/** The syscalls traced: every path-taking one, plus what moves the cwd and the sockets. */
export const STRACE_FLAGS = [
  "-f",
  "-qq",
  "-yy",
  "-e",
  "signal=none",
  "-e",
  "trace=%file,fchdir,connect,bind,clone,clone3,fork,vfork",
] as const;

/** One path or socket the traced program used. `errno` is set when the call failed. */
export type TraceEvent =
  | { kind: "read"; pid: number; syscall: string; path: string; dir: boolean; errno?: string }
  | {
    kind: "write";
    pid: number;
    syscall: string;
    path: string;
    /** `parent`: the call creates or removes an entry, so it needs the directory holding it. */
    scope: "parent" | "self";
    errno?: string;
  }
  | {
    kind: "connect" | "bind";
    pid: number;
    syscall: string;
    family: "inet" | "inet6" | "unix";
    host: string;
    port: number;
    proto?: "tcp" | "udp" | "unix";
    errno?: string;
  };

interface Call {
  pid: number;
  name: string;
  args: string[];
  ret: string;
  retPath?: string;
  errno?: string;
}

interface Cell {
  cwd: string;
  known: boolean;
}

const WRITE_FLAGS = /\bO_(WRONLY|RDWR|CREAT|TRUNC|TMPFILE)\b/;
const SKIP_READ = /\bO_PATH\b/;
/** Path as the first (or only) path argument: syscall → [dirfd index or -1, path index]. */
const PARENT_ONE: Record<string, [number, number]> = {
  creat: [-1, 0],
  mkdir: [-1, 0],
  mkdirat: [0, 1],
  unlink: [-1, 0],
  unlinkat: [0, 1],
  rmdir: [-1, 0],
  link: [-1, 1],
  linkat: [2, 3],
  symlink: [-1, 1],
  symlinkat: [1, 2],
};
const SELF_ONE: Record<string, [number, number]> = {
  truncate: [-1, 0],
  chmod: [-1, 0],
  fchmodat: [0, 1],
  fchmodat2: [0, 1],
  chown: [-1, 0],
  lchown: [-1, 0],
  fchownat: [0, 1],
};

/**
 * Feeds strace output line by line and turns it into {@linkcode TraceEvent}s. Calls split by
 * other processes (`<unfinished ...>` … `<... name resumed>`) are joined first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StraceParser } from "./_strace.ts";
 * const p = new StraceParser("/p");
 * const [e] = p.push('7 mkdir("tmp/x", 0777) = 0');
 * assert.equal(e.kind, "write");
 * assert.equal(e.path, "/p/tmp/x");
 * assert.equal(e.scope, "parent");
 * ```
 */
export class StraceParser {
  #initial: string;
  #cells = new Map<number, Cell>();
  #pending = new Map<number, { name: string; head: string }>();
  /** Successful execve calls: zero means the program never started. */
  execs = 0;

  constructor(initialCwd: string) {
    this.#initial = initialCwd;
  }

  /** The events of one line (none for signals, exits, half calls and untracked syscalls). */
  push(line: string): TraceEvent[] {
    const m = /^(?:\[pid\s+)?(\d+)\]?\s+(.*)$/.exec(line.trimEnd()) ?? [line, "0", line.trimEnd()];
    const pid = Number(m[1]);
    let rest = m[2];
    if (rest.startsWith("---") || rest.startsWith("+++") || rest === "") return [];
    const resumed = /^<\.\.\. ([a-z0-9_]+) resumed>(.*)$/.exec(rest);
    if (resumed) {
      const head = this.#pending.get(pid);
      this.#pending.delete(pid);
      if (!head || head.name !== resumed[1]) return [];
      rest = head.head + resumed[2];
    } else if (rest.endsWith("<unfinished ...>")) {
      const name = /^([a-z0-9_]+)\(/.exec(rest)?.[1];
      if (name) this.#pending.set(pid, { name, head: rest.slice(0, -"<unfinished ...>".length) });
      return [];
    }
    const call = parseCall(pid, rest);
    return call ? this.#events(call) : [];
  }

  #cell(pid: number): Cell {
    let cell = this.#cells.get(pid);
    if (!cell) {
      // The first process seen is the one strace started, in the directory it was given.
      cell = { cwd: this.#initial, known: this.#cells.size === 0 };
      this.#cells.set(pid, cell);
    }
    return cell;
  }

  /** The directory a `*at` dirfd argument names (or the cwd for AT_FDCWD / a missing one). */
  #base(pid: number, arg: string | undefined): string {
    const cell = this.#cell(pid);
    if (arg === undefined) return cell.cwd;
    const note = annotation(arg);
    if (arg.startsWith("AT_FDCWD")) {
      if (note) Object.assign(cell, { cwd: note, known: true });
      return cell.cwd;
    }
    return note ?? cell.cwd;
  }

  #path(call: Call, dirfd: number, index: number): string | undefined {
    const raw = call.args[index];
    if (raw === undefined || !raw.startsWith('"')) return undefined;
    const text = cString(raw);
    if (text === "") return undefined;
    return resolvePath(this.#base(call.pid, dirfd < 0 ? undefined : call.args[dirfd]), text);
  }

  #events(c: Call): TraceEvent[] {
    const { pid, name: syscall, errno } = c;
    const failed = errno ? { errno } : {};
    const write = (path: string | undefined, scope: "parent" | "self"): TraceEvent[] =>
      path ? [{ kind: "write", pid, syscall, path, scope, ...failed }] : [];
    if (syscall === "open" || syscall === "openat" || syscall === "openat2") {
      const at = syscall === "open" ? -1 : 0;
      const flags = c.args[at + 2] ?? "";
      if (SKIP_READ.test(flags)) return [];
      let path = this.#path(c, at, at + 1);
      if (c.retPath !== undefined) {
        // A pipe, socket or anon inode reached through /dev/stdout and friends: not a file.
        if (!c.retPath.startsWith("/")) return [];
        path = c.retPath;
      }
      if (!path) return [];
      if (!WRITE_FLAGS.test(flags)) {
        return [{
          kind: "read",
          pid,
          syscall,
          path,
          dir: /\bO_DIRECTORY\b/.test(flags),
          ...failed,
        }];
      }
      const creates = /\bO_CREAT\b/.test(flags) && !/\bO_TMPFILE\b/.test(flags);
      return write(path, creates ? "parent" : "self");
    }
    if (syscall in PARENT_ONE) {
      const [at, index] = PARENT_ONE[syscall];
      return write(this.#path(c, at, index), "parent");
    }
    if (syscall in SELF_ONE) {
      const [at, index] = SELF_ONE[syscall];
      return write(this.#path(c, at, index), "self");
    }
    if (syscall === "rename" || syscall === "renameat" || syscall === "renameat2") {
      const two = syscall === "rename" ? [[-1, 0], [-1, 1]] : [[0, 1], [2, 3]];
      return two.flatMap(([at, index]) => write(this.#path(c, at, index), "parent"));
    }
    if (syscall === "execve" || syscall === "execveat") {
      if (!errno) this.execs++;
      const path = syscall === "execve" ? this.#path(c, -1, 0) : this.#path(c, 0, 1);
      return path ? [{ kind: "read", pid, syscall, path, dir: false, ...failed }] : [];
    }
    if (syscall === "chdir" || syscall === "fchdir") {
      const cell = this.#cell(pid);
      const to = syscall === "chdir" ? this.#path(c, -1, 0) : annotation(c.args[0] ?? "");
      if (!errno && to) Object.assign(cell, { cwd: to, known: true });
      return [];
    }
    if (["clone", "clone3", "fork", "vfork"].includes(syscall)) {
      const child = Number(c.ret);
      if (errno || !(child > 0)) return [];
      const parent = this.#cell(pid);
      const had = this.#cells.get(child);
      if (/\bCLONE_FS\b/.test(c.args.join(","))) this.#cells.set(child, parent);
      else if (!had?.known) this.#cells.set(child, { ...parent });
      return [];
    }
    if (syscall === "connect" || syscall === "bind") {
      const sock = parseSockaddr(c.args[1] ?? "");
      if (!sock) return [];
      const proto = /^\d+<(TCP|UDP|UNIX)/.exec(c.args[0] ?? "")?.[1].toLowerCase() as
        | "tcp"
        | "udp"
        | "unix"
        | undefined;
      return [{ kind: syscall, pid, syscall, ...sock, ...(proto ? { proto } : {}), ...failed }];
    }
    return [];
  }
}

/**
 * Every event of a whole strace output file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStrace } from "./_strace.ts";
 * const events = parseStrace('1 unlink("a") = -1 ENOENT (No such file)\n', "/p");
 * assert.equal(events[0].kind, "write");
 * assert.equal(events[0].errno, "ENOENT");
 * ```
 */
export function parseStrace(text: string, initialCwd: string): TraceEvent[] {
  const parser = new StraceParser(initialCwd);
  return text.split("\n").flatMap((line) => parser.push(line));
}

/** `name(args) = ret [ERRNO (text)]`, split into arguments at top-level commas. */
function parseCall(pid: number, text: string): Call | undefined {
  const name = /^([a-z0-9_]+)\(/.exec(text)?.[1];
  if (!name) return undefined;
  const args: string[] = [];
  const stack: string[] = [];
  let start = name.length + 1;
  let i = start;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (stack.at(-1) === "<") {
      // Inside an fd annotation everything is raw, except a nested <char 1:3> and escapes.
      if (ch === "\\") i++;
      else if (ch === "<") stack.push("<");
      else if (ch === ">") stack.pop();
      continue;
    }
    if (ch === '"') i = closeQuote(text, i);
    else if (ch === "<" && /[0-9A-Z_]/.test(text[i - 1] ?? "")) stack.push("<");
    else if (ch === "(" || ch === "[" || ch === "{") stack.push(ch);
    else if ((ch === "]" || ch === "}") && stack.length) stack.pop();
    else if (ch === ")" && stack.length) stack.pop();
    else if (ch === ")") break;
    else if (ch === "," && stack.length === 0) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (i >= text.length) return undefined;
  const last = text.slice(start, i).trim();
  if (last !== "" || args.length) args.push(last);
  const ret = /^\)\s*=\s*(-?\d+|\?)/.exec(text.slice(i));
  if (!ret) return undefined;
  let after = text.slice(i + ret[0].length);
  let retPath: string | undefined;
  if (after.startsWith("<")) {
    const end = closeAngle(after, 0);
    retPath = cleanPath(cString(after.slice(1, end), false));
    after = after.slice(end + 1);
  }
  const errno = Number(ret[1]) < 0 ? /^\s+(E[A-Z0-9]+)/.exec(after)?.[1] ?? "EUNKNOWN" : undefined;
  return {
    pid,
    name,
    args,
    ret: ret[1],
    ...(retPath ? { retPath } : {}),
    ...(errno ? { errno } : {}),
  };
}

/** The path an fd argument is annotated with (`3</a/b>`, `AT_FDCWD</a>`), or undefined. */
function annotation(arg: string): string | undefined {
  const open = arg.indexOf("<");
  if (open < 0 || !arg.endsWith(">")) return undefined;
  const inner = cleanPath(cString(arg.slice(open + 1, -1), false));
  return inner.startsWith("/") ? inner : undefined;
}

/** Drop strace's device suffix (`/dev/null<char 1:3>`) and a `(deleted)` mark. */
function cleanPath(path: string): string {
  return path.replace(/<(char|block) [^>]*>$/, "").replace(/ \(deleted\)$/, "");
}

function closeQuote(text: string, open: number): number {
  for (let k = open + 1; k < text.length; k++) {
    if (text[k] === "\\") k++;
    else if (text[k] === '"') return k;
  }
  return text.length;
}

function closeAngle(text: string, open: number): number {
  let depth = 0;
  for (let k = open; k < text.length; k++) {
    if (text[k] === "\\") k++;
    else if (text[k] === "<") depth++;
    else if (text[k] === ">" && --depth === 0) return k;
  }
  return text.length;
}

const ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, a: 7, b: 8 };

/**
 * Decode a C string as strace prints it (`"a\"b\303\251"`, with `...` when cut): octal and hex
 * escapes are bytes, so a UTF-8 name comes back whole.
 */
function cString(raw: string, quoted = true): string {
  let s = raw;
  if (quoted) s = s.slice(1, closeQuote(raw, 0));
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let k = 0; k < s.length; k++) {
    const ch = s[k];
    if (ch !== "\\") {
      bytes.push(...enc.encode(ch));
      continue;
    }
    const next = s[++k];
    const oct = /^[0-7]{1,3}/.exec(s.slice(k))?.[0];
    const hex = next === "x" ? /^[0-9a-fA-F]{1,2}/.exec(s.slice(k + 1))?.[0] : undefined;
    if (oct) {
      bytes.push(parseInt(oct, 8));
      k += oct.length - 1;
    } else if (hex) {
      bytes.push(parseInt(hex, 16));
      k += hex.length;
    } else bytes.push(ESCAPES[next] ?? next.charCodeAt(0));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** `{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}` and friends. */
function parseSockaddr(arg: string) {
  const port = Number(/port=htons\((\d+)\)/.exec(arg)?.[1] ?? "0");
  if (arg.includes("AF_INET6")) {
    const host = /inet_pton\(AF_INET6, "([^"]+)"/.exec(arg)?.[1];
    const mapped = host && /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host)?.[1];
    if (mapped) return { family: "inet" as const, host: mapped, port };
    return host ? { family: "inet6" as const, host, port } : undefined;
  }
  if (arg.includes("AF_INET")) {
    const host = /inet_addr\("([^"]+)"\)/.exec(arg)?.[1];
    return host ? { family: "inet" as const, host, port } : undefined;
  }
  const unix = /sun_path=(@?"(?:[^"\\]|\\.)*")/.exec(arg)?.[1];
  if (arg.includes("AF_UNIX") && unix) {
    const path = unix.startsWith("@") ? `@${cString(unix.slice(1))}` : cString(unix);
    return { family: "unix" as const, host: path, port: 0 };
  }
  return undefined;
}

/**
 * `path` made absolute against `base`, with `.`, `..` and doubled slashes folded lexically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolvePath } from "./_strace.ts";
 * assert.equal(resolvePath("/p/src/gen", "../../out/x"), "/p/out/x");
 * ```
 */
export function resolvePath(base: string, path: string): string {
  const parts: string[] = [];
  for (const part of (path.startsWith("/") ? path : `${base}/${path}`).split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return "/" + parts.join("/");
}
