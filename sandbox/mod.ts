/**
 * The sandbox: one policy, enforced by Landlock on Linux (the exec helper), Seatbelt on macOS,
 * and Deno permissions for Workers. Other folders import from here only.
 */
export {
  defaultPolicy,
  DEVICE_WRITE,
  type Grants,
  parsePolicy,
  type SandboxPolicy,
  type SandboxPolicyInput,
  SandboxPolicySchema,
  SYSTEM_READ,
  withGrants,
} from "./policy.ts";
export {
  abiMasks,
  ACCESS_FS,
  ACCESS_NET,
  FILE_RIGHTS,
  type LandlockSupport,
  landlockSupport,
  planPathRules,
  READ_RIGHTS,
  restrictSelf,
  SCOPE,
} from "./landlock.ts";
export {
  helperInvocation,
  parseHelperArgs,
  runSandboxExec,
  spawnSandboxed,
  type SpawnSandboxedOptions,
} from "./exec.ts";
export { deniedSyscalls, metadataFilter } from "./_seccomp.ts";
export { type SeatbeltOptions, seatbeltProfile } from "./seatbelt.ts";
export { denoPermissions } from "./deno_permissions.ts";
