/**
 * A SandboxPolicy as Deno permissions for a Worker (`new Worker(url, { deno: { permissions } })`),
 * so an in-process driver is bounded by the same policy as a sandboxed subprocess.
 */
import type { SandboxPolicy } from "./policy.ts";

/** Extra inputs decided per run. */
export interface DenoPermissionOptions {
  /** The private temp dir, granted read and write. */
  tmpdir?: string;
}

/**
 * Read: the read and write paths; write: the write paths; net: none, all, or the allowed ports
 * (connect as `localhost:P`, bind as `0.0.0.0:P`, Deno.listen's default host); no run, ffi,
 * env or sys — any of those would let a Worker step outside the policy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoPermissions } from "./deno_permissions.ts";
 * import { parsePolicy } from "./policy.ts";
 * const p = denoPermissions(parsePolicy({ read: ["/usr"], net: { connect: [80] } }));
 * assert.deepEqual(p.net, ["localhost:80"]);
 * assert.equal(p.run, false);
 * ```
 */
export function denoPermissions(
  policy: SandboxPolicy,
  opts: DenoPermissionOptions = {},
): Deno.PermissionOptionsObject {
  const write = [...policy.write, ...(opts.tmpdir ? [opts.tmpdir] : [])];
  return {
    read: [...new Set([...policy.read, ...write])],
    write,
    net: policy.net === "all" ? true : policy.net === "none" ? false : [
      ...new Set([
        ...policy.net.connect.map((p) => `localhost:${p}`),
        ...policy.net.bind.map((p) => `0.0.0.0:${p}`),
      ]),
    ],
    run: false,
    ffi: false,
    env: false,
    sys: false,
  };
}
