/**
 * The one schema for what a sandboxed process may touch, and the default policy for a project.
 * The same policy renders as Landlock rules (landlock.ts), a Seatbelt profile (seatbelt.ts) and
 * Deno Worker permissions (deno_permissions.ts).
 */
import { z } from "zod";
import { OstkError } from "../kernel/errors.ts";
import { exists } from "../kernel/exists.ts";

const absPath = z.string().refine((p) => p.startsWith("/") && !p.includes("\0"), {
  message: "expected an absolute path without NUL bytes",
});
const port = z.number().int().min(0).max(65535);

/** TCP ports a process may connect to and bind; Landlock filters by port, never by host. */
export const NetPortsSchema = z.object({
  connect: z.array(port).default([]),
  bind: z.array(port).default([]),
}).strict();

/**
 * What a sandboxed process may do. Anything not granted is denied.
 *
 * - `read`: read and execute, recursively (directories) or exactly (files).
 * - `write`: read, write, create, remove, rename, truncate, recursively.
 * - `net`: `"none"` (no TCP), `"all"` (unfiltered), or the TCP ports allowed.
 * - `tmp`: give the process a private temp dir, made per run and exported as `TMPDIR`.
 * - `allow_metadata`: let the process chmod, chown, utime and set xattrs by path. Landlock
 *   cannot confine these to the write grants, so by default a seccomp filter refuses them
 *   everywhere; tools that set modes or times when unpacking (tar, npm, pip) need this.
 * - `allow_unsandboxed`: run anyway (with a loud warning) where the OS cannot enforce the
 *   policy; without it, an unenforceable policy is refused, never silently dropped.
 */
export const SandboxPolicySchema = z.object({
  read: z.array(absPath).default([]),
  write: z.array(absPath).default([]),
  net: z.union([z.literal("none"), z.literal("all"), NetPortsSchema]).default("none"),
  tmp: z.boolean().default(true),
  allow_metadata: z.boolean().default(false),
  allow_unsandboxed: z.boolean().default(false),
}).strict();

/** A parsed policy, every field filled in. */
export type SandboxPolicy = z.output<typeof SandboxPolicySchema>;
/** A policy as written by a caller (defaults may be left out). */
export type SandboxPolicyInput = z.input<typeof SandboxPolicySchema>;

/**
 * Parse a policy from JSON text or a value; a bad one is a `bad_input` error naming the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePolicy } from "./policy.ts";
 * const p = parsePolicy('{"read":["/usr"],"write":["/tmp/x"]}');
 * assert.equal(p.net, "none");
 * assert.equal(p.tmp, true);
 * ```
 */
export function parsePolicy(input: string | unknown): SandboxPolicy {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw new OstkError("bad_input", `sandbox policy is not JSON: ${(e as Error).message}`);
    }
  }
  const parsed = SandboxPolicySchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join(".") : "(policy)";
    throw new OstkError(
      "bad_input",
      `sandbox policy: ${where}: ${issue.message}`,
      {},
      'expected {"read":[...],"write":[...],"net":"none"|"all"|{"connect":[],"bind":[]},"tmp":true}',
    );
  }
  return parsed.data;
}

/**
 * System directories a shell and its tools need to start; only those that exist are granted.
 * `/proc` is safe to read: Landlock denies ptrace-class access (environ, mem) to processes
 * outside the domain.
 */
export const SYSTEM_READ = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc"];

/** macOS keeps its libraries and the dyld cache in /System and /Library; /etc is a symlink. */
const DARWIN_READ = ["/System", "/Library", "/private/etc"];

/** Device files every shell writes to (`> /dev/null`); harmless to grant. */
export const DEVICE_WRITE = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/**
 * The default policy for a project: read+exec on the system dirs and the project; write on the
 * project except `.ostk/`; a private temp dir; no network.
 *
 * Landlock rules only allow, and a grant on a directory covers everything beneath it, so write
 * on the root would also grant `.ostk/` (the audit log, pins, Agentfiles). Write is therefore
 * granted on each existing top-level entry except `.ostk`. The price: the sandboxed process
 * cannot create, remove or rename entries directly in the project root (a new `README.md` or
 * `build/` at the top level is denied; `src/new.ts` is fine). Top-level symlinks are skipped so
 * a link pointing out of the project cannot widen the grant. A caller who needs a new top-level
 * entry creates it before the run (or adds `--write` for it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultPolicy } from "./policy.ts";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.mkdir(`${dir}/.ostk`);
 * await Deno.mkdir(`${dir}/src`);
 * const p = await defaultPolicy(dir);
 * assert.ok(p.write.includes(`${dir}/src`));
 * assert.ok(!p.write.includes(`${dir}/.ostk`));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function defaultPolicy(projectRoot: string): Promise<SandboxPolicy> {
  const read: string[] = [];
  const system = Deno.build.os === "darwin" ? [...SYSTEM_READ, ...DARWIN_READ] : SYSTEM_READ;
  for (const dir of system) {
    // Deno wants --allow-all to stat /proc; on Linux it is always there.
    if ((dir === "/proc" && Deno.build.os === "linux") || await exists(dir)) read.push(dir);
  }
  read.push(projectRoot);
  const write: string[] = [];
  // Deno refuses to stat most of /dev without --allow-all; the rule builder skips a missing one.
  write.push(...DEVICE_WRITE);
  const children: string[] = [];
  for await (const entry of Deno.readDir(projectRoot)) {
    if (entry.name === ".ostk" || entry.isSymlink) continue;
    children.push(`${projectRoot === "/" ? "" : projectRoot}/${entry.name}`);
  }
  write.push(...children.sort());
  return { read, write, net: "none", tmp: true, allow_metadata: false, allow_unsandboxed: false };
}

/** Extra grants on top of a policy (from CLI flags). */
export interface Grants {
  read?: string[];
  write?: string[];
  connect?: number[];
  bind?: number[];
  netAll?: boolean;
  allowMetadata?: boolean;
  allowUnsandboxed?: boolean;
}

/**
 * A policy with more granted; ports merge into the port lists, `netAll` opens the network.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePolicy, withGrants } from "./policy.ts";
 * const p = withGrants(parsePolicy({}), { connect: [8080] });
 * assert.deepEqual(p.net, { connect: [8080], bind: [] }); // "none" widened to one port only
 * ```
 */
export function withGrants(policy: SandboxPolicy, grants: Grants): SandboxPolicy {
  let net = policy.net;
  if (grants.netAll) net = "all";
  else if (grants.connect?.length || grants.bind?.length) {
    const base = typeof net === "object" ? net : { connect: [], bind: [] };
    if (net !== "all") {
      net = {
        connect: unique([...base.connect, ...(grants.connect ?? [])]),
        bind: unique([...base.bind, ...(grants.bind ?? [])]),
      };
    }
  }
  return parsePolicy({
    read: unique([...policy.read, ...(grants.read ?? [])]),
    write: unique([...policy.write, ...(grants.write ?? [])]),
    net,
    tmp: policy.tmp,
    allow_metadata: policy.allow_metadata || (grants.allowMetadata ?? false),
    allow_unsandboxed: policy.allow_unsandboxed || (grants.allowUnsandboxed ?? false),
  });
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
