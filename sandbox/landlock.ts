/**
 * Landlock through Deno FFI: ask the kernel which ABI it speaks, turn a SandboxPolicy into a
 * ruleset, and restrict the calling thread. The thread that calls `restrictSelf` must be the one
 * that then calls execve (exec.ts does both on the JS thread); other threads stay unrestricted.
 */
import { OstkError } from "../kernel/errors.ts";
import { errnoName, type Libc, openLibc } from "./_libc.ts";
import type { SandboxPolicy } from "./policy.ts";

/** Filesystem access rights (`LANDLOCK_ACCESS_FS_*`), with the ABI that introduced each. */
export const ACCESS_FS = {
  EXECUTE: 1 << 0,
  WRITE_FILE: 1 << 1,
  READ_FILE: 1 << 2,
  READ_DIR: 1 << 3,
  REMOVE_DIR: 1 << 4,
  REMOVE_FILE: 1 << 5,
  MAKE_CHAR: 1 << 6,
  MAKE_DIR: 1 << 7,
  MAKE_REG: 1 << 8,
  MAKE_SOCK: 1 << 9,
  MAKE_FIFO: 1 << 10,
  MAKE_BLOCK: 1 << 11,
  MAKE_SYM: 1 << 12,
  REFER: 1 << 13, // ABI 2: link/rename across directories
  TRUNCATE: 1 << 14, // ABI 3
  IOCTL_DEV: 1 << 15, // ABI 5
} as const;

/** Network rights (`LANDLOCK_ACCESS_NET_*`, ABI 4): TCP only; UDP and unix sockets are not covered. */
export const ACCESS_NET = { BIND_TCP: 1 << 0, CONNECT_TCP: 1 << 1 } as const;

/** IPC scopes (`LANDLOCK_SCOPE_*`, ABI 6): no reaching outside the domain. */
export const SCOPE = { ABSTRACT_UNIX_SOCKET: 1 << 0, SIGNAL: 1 << 1 } as const;

/** The only rights a rule on a regular file may carry; others make add_rule fail with EINVAL. */
export const FILE_RIGHTS = ACCESS_FS.EXECUTE | ACCESS_FS.WRITE_FILE | ACCESS_FS.READ_FILE |
  ACCESS_FS.TRUNCATE | ACCESS_FS.IOCTL_DEV;

/** What a `read` path grants: read and execute. */
export const READ_RIGHTS = ACCESS_FS.EXECUTE | ACCESS_FS.READ_FILE | ACCESS_FS.READ_DIR;

const LANDLOCK_CREATE_RULESET_VERSION = 1;
const RULE_PATH_BENEATH = 1;
const RULE_NET_PORT = 2;

/** The rights one ABI can handle: the ruleset must not name a right the kernel lacks. */
export interface AbiMasks {
  fs: number;
  net: number;
  scoped: number;
}

/**
 * The handled rights for a Landlock ABI version (0 = none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { abiMasks, ACCESS_FS } from "./landlock.ts";
 * assert.equal(abiMasks(1).fs & ACCESS_FS.REFER, 0); // REFER came with ABI 2
 * assert.equal(abiMasks(3).net, 0);
 * assert.equal(abiMasks(4).net, 3);
 * ```
 */
export function abiMasks(abi: number): AbiMasks {
  if (abi < 1) return { fs: 0, net: 0, scoped: 0 };
  let fs = (1 << 13) - 1; // EXECUTE .. MAKE_SYM
  if (abi >= 2) fs |= ACCESS_FS.REFER;
  if (abi >= 3) fs |= ACCESS_FS.TRUNCATE;
  if (abi >= 5) fs |= ACCESS_FS.IOCTL_DEV;
  const net = abi >= 4 ? ACCESS_NET.BIND_TCP | ACCESS_NET.CONNECT_TCP : 0;
  const scoped = abi >= 6 ? SCOPE.ABSTRACT_UNIX_SOCKET | SCOPE.SIGNAL : 0;
  return { fs, net, scoped };
}

/** What this kernel enforces, or why it enforces nothing. */
export type LandlockSupport =
  | { supported: true; abi: number; fs: boolean; net: boolean; scoped: boolean }
  | { supported: false; reason: string };

/**
 * Ask the kernel for its Landlock ABI. `OSTK_SANDBOX_FAKE_NO_LANDLOCK=1` makes this report
 * "unsupported" — a test-only switch to exercise the refusal path on a kernel that has Landlock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { landlockSupport } from "./landlock.ts";
 * const s = landlockSupport();
 * // Either an ABI with filesystem rules, or a reason a person can act on (never a throw).
 * if (s.supported) assert.ok(s.abi >= 1 && s.fs);
 * else assert.notEqual(s.reason, "");
 * ```
 */
export function landlockSupport(): LandlockSupport {
  if (Deno.env.get("OSTK_SANDBOX_FAKE_NO_LANDLOCK") === "1") {
    return {
      supported: false,
      reason: "Landlock disabled by OSTK_SANDBOX_FAKE_NO_LANDLOCK=1 (test)",
    };
  }
  if (Deno.build.os !== "linux") {
    return { supported: false, reason: `not Linux (${Deno.build.os})` };
  }
  if (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64") {
    return { supported: false, reason: `unsupported architecture ${Deno.build.arch}` };
  }
  let libc: Libc;
  try {
    libc = openLibc();
  } catch (e) {
    return { supported: false, reason: `cannot load libc via FFI: ${(e as Error).message}` };
  }
  try {
    const [abi, errno] = libc.createRuleset(null, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0) {
      const why = errno === 38
        ? "kernel built without Landlock"
        : errno === 95
        ? "Landlock not enabled at boot (add 'landlock' to the lsm= kernel parameter)"
        : `landlock_create_ruleset failed: ${errnoName(errno)}`;
      return { supported: false, reason: why };
    }
    return { supported: true, abi, fs: true, net: abi >= 4, scoped: abi >= 6 };
  } finally {
    libc.unload();
  }
}

/** One path_beneath rule: which path, whether it is a directory, and the rights it grants. */
export interface PathRule {
  path: string;
  dir: boolean;
  access: number;
}

/** How a path looks on disk, for planning; `missing` paths are skipped (less access, not more). */
export type PathKind = "dir" | "file" | "missing";

/**
 * The path rules a policy needs under one ABI. Pure (the filesystem is asked through `kind`),
 * so the masks can be tested without touching the kernel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planPathRules, READ_RIGHTS } from "./landlock.ts";
 * const rules = planPathRules({ read: ["/usr"], write: [] }, 1, () => "dir");
 * assert.equal(rules[0].access, READ_RIGHTS);
 * ```
 */
export function planPathRules(
  policy: Pick<SandboxPolicy, "read" | "write">,
  abi: number,
  kind: (path: string) => PathKind,
): PathRule[] {
  const { fs } = abiMasks(abi);
  const rules: PathRule[] = [];
  const add = (path: string, rights: number) => {
    const k = kind(path);
    if (k === "missing") return;
    const access = rights & fs & (k === "dir" ? ~0 : FILE_RIGHTS);
    if (access !== 0) rules.push({ path, dir: k === "dir", access });
  };
  for (const path of policy.read) add(path, READ_RIGHTS);
  for (const path of policy.write) add(path, fs);
  return rules;
}

/** What `restrictSelf` enforced. */
export interface RestrictReport {
  abi: number;
  handled: AbiMasks;
  rules: PathRule[];
}

/**
 * Restrict the calling thread (and everything it later execs) to `policy`. Sets no_new_privs
 * first, as Landlock requires of an unprivileged caller. `extraWrite` adds paths such as the
 * private temp dir. Throws an `io` OstkError naming the failing step; nothing is half-applied,
 * since the domain only exists once landlock_restrict_self succeeds.
 */
export function restrictSelf(
  policy: SandboxPolicy,
  abi: number,
  extraWrite: string[] = [],
  libc: Libc = openLibc(),
): RestrictReport {
  const masks = abiMasks(abi);
  const handled = {
    fs: masks.fs,
    net: policy.net === "all" ? 0 : masks.net,
    scoped: masks.scoped,
  };
  if (policy.net !== "all" && masks.net === 0) {
    throw new OstkError("permission", `Landlock ABI ${abi} cannot filter TCP (needs ABI 4)`);
  }
  const fail = (step: string, errno: number): never => {
    throw new OstkError("io", `Landlock ${step} failed: ${errnoName(errno)}`);
  };
  const [nnp, e0] = libc.setNoNewPrivs();
  if (nnp < 0) fail("prctl(PR_SET_NO_NEW_PRIVS)", e0);

  const attr = new Uint8Array(24);
  const view = new DataView(attr.buffer);
  view.setBigUint64(0, BigInt(handled.fs), true);
  view.setBigUint64(8, BigInt(handled.net), true);
  view.setBigUint64(16, BigInt(handled.scoped), true);
  // Pass only the struct size this ABI knows: older kernels reject unknown trailing fields.
  const size = abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
  const [ruleset, e1] = libc.createRuleset(attr.subarray(0, size), size, 0);
  if (ruleset < 0) fail("create_ruleset", e1);

  // Open every path first: the descriptor both says what the path is and pins it, so the rule
  // lands on the object that was planned even if the path is swapped meanwhile.
  const write = [...policy.write, ...extraWrite];
  const opened = new Map<string, { fd: number; dir: boolean }>();
  for (const path of new Set([...policy.read, ...write])) {
    const { fd, errno, dir } = libc.openPath(path);
    if (fd >= 0) opened.set(path, { fd, dir });
    else if (errno !== 2) fail(`open(${path})`, errno); // a missing path only grants less
  }
  const kind = (path: string): PathKind => {
    const o = opened.get(path);
    return o === undefined ? "missing" : o.dir ? "dir" : "file";
  };
  const rules = planPathRules({ read: policy.read, write }, abi, kind);
  const beneath = new Uint8Array(12); // struct landlock_path_beneath_attr is packed: u64 + s32
  const bv = new DataView(beneath.buffer);
  try {
    for (const rule of rules) {
      bv.setBigUint64(0, BigInt(rule.access), true);
      bv.setInt32(8, opened.get(rule.path)!.fd, true);
      const [r, e3] = libc.addRule(ruleset, RULE_PATH_BENEATH, beneath);
      if (r < 0) fail(`add_rule(${rule.path})`, e3);
    }
  } finally {
    for (const { fd } of opened.values()) libc.close(fd);
  }
  if (typeof policy.net === "object" && handled.net) {
    const portAttr = new Uint8Array(16);
    const pv = new DataView(portAttr.buffer);
    const grants: [number, number][] = [
      ...policy.net.connect.map((p): [number, number] => [ACCESS_NET.CONNECT_TCP, p]),
      ...policy.net.bind.map((p): [number, number] => [ACCESS_NET.BIND_TCP, p]),
    ];
    for (const [access, port] of grants) {
      pv.setBigUint64(0, BigInt(access), true);
      pv.setBigUint64(8, BigInt(port), true);
      const [r, e4] = libc.addRule(ruleset, RULE_NET_PORT, portAttr);
      if (r < 0) fail(`add_rule(tcp port ${port})`, e4);
    }
  }
  const [done, e5] = libc.restrictSelf(ruleset, 0);
  libc.close(ruleset);
  if (done < 0) fail("restrict_self", e5);
  return { abi, handled, rules };
}
