/**
 * A seccomp filter for what Landlock does not cover: file metadata. No Landlock ABI (up to 7)
 * restricts chmod, chown, utimes or extended attributes, so a sandboxed process could chmod or
 * touch any file its uid owns, anywhere. Seccomp cannot see paths, so this filter refuses the
 * path-based forms everywhere (EPERM) and keeps the descriptor-based forms (fchmod, fchown,
 * futimens, fsetxattr), which need a file opened through Landlock's checks first.
 * Internal to sandbox/.
 */

/** The syscalls denied, by architecture; aarch64 has only the `*at` forms. */
const DENIED: Record<"x86_64" | "aarch64", Record<string, number>> = {
  x86_64: {
    chmod: 90,
    chown: 92,
    lchown: 94,
    utime: 132,
    setxattr: 188,
    lsetxattr: 189,
    removexattr: 197,
    lremovexattr: 198,
    utimes: 235,
    fchownat: 260,
    futimesat: 261,
    fchmodat: 268,
    fchmodat2: 452,
    setxattrat: 463,
    removexattrat: 466,
  },
  aarch64: {
    setxattr: 5,
    lsetxattr: 6,
    removexattr: 14,
    lremovexattr: 15,
    fchmodat: 53,
    fchownat: 54,
    fchmodat2: 452,
    setxattrat: 463,
    removexattrat: 466,
  },
};

/** utimensat(fd, NULL, …) is futimens (allowed); with a path it is denied. */
const UTIMENSAT = { x86_64: 280, aarch64: 88 } as const;
/** AUDIT_ARCH_* of the native syscall ABI; anything else (i386 via int 0x80, arm32) is refused. */
const AUDIT_ARCH = { x86_64: 0xc000003e, aarch64: 0xc00000b7 } as const;
/** x32 syscalls on x86_64 carry this bit and would bypass the number checks. */
const X32_BIT = 0x40000000;

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const RET_K = 0x06;
export const RET_ALLOW = 0x7fff0000;
export const RET_EPERM = 0x00050000 | 1;

/** One BPF instruction before its jump labels are resolved. */
interface Op {
  code: number;
  k: number;
  jt?: string;
  jf?: string;
  label?: string;
}

/** The syscall names this filter denies on `arch` (for messages and tests). */
export function deniedSyscalls(arch: "x86_64" | "aarch64"): string[] {
  return [...Object.keys(DENIED[arch]), "utimensat (with a path)"];
}

/**
 * The filter as `struct sock_filter[]` bytes (8 bytes per instruction, little-endian).
 * Layout: check arch → load nr → (x86_64) refuse x32 → deny list → utimensat path check → allow.
 */
export function metadataFilter(arch: "x86_64" | "aarch64"): Uint8Array {
  const ops: Op[] = [
    { code: LD_W_ABS, k: 4 }, // seccomp_data.arch
    { code: JEQ_K, k: AUDIT_ARCH[arch], jt: "native", jf: "deny" },
    { code: LD_W_ABS, k: 0, label: "native" }, // seccomp_data.nr
  ];
  if (arch === "x86_64") ops.push({ code: JGE_K, k: X32_BIT, jt: "deny", jf: "next" });
  for (const nr of Object.values(DENIED[arch])) {
    ops.push({ code: JEQ_K, k: nr, jt: "deny", jf: "next" });
  }
  ops.push(
    { code: JEQ_K, k: UTIMENSAT[arch], jt: "utimensat", jf: "allow" },
    { code: LD_W_ABS, k: 24, label: "utimensat" }, // args[1] low word: the pathname pointer
    { code: JEQ_K, k: 0, jt: "high", jf: "deny" },
    { code: LD_W_ABS, k: 28, label: "high" }, // args[1] high word
    { code: JEQ_K, k: 0, jt: "allow", jf: "deny" },
    { code: RET_K, k: RET_ALLOW, label: "allow" },
    { code: RET_K, k: RET_EPERM, label: "deny" },
  );
  const at = new Map(ops.flatMap((op, i) => op.label ? [[op.label, i] as const] : []));
  const target = (from: number, label: string | undefined): number => {
    if (label === undefined || label === "next") return 0;
    const offset = at.get(label)! - from - 1;
    if (offset < 0 || offset > 255) throw new Error(`seccomp: bad jump to ${label}`);
    return offset;
  };
  const bytes = new Uint8Array(ops.length * 8);
  const view = new DataView(bytes.buffer);
  ops.forEach((op, i) => {
    view.setUint16(i * 8, op.code, true);
    view.setUint8(i * 8 + 2, target(i, op.jt));
    view.setUint8(i * 8 + 3, target(i, op.jf));
    view.setUint32(i * 8 + 4, op.k >>> 0, true);
  });
  return bytes;
}

/** `struct sock_fprog` for `filter`: u16 length, padding, pointer (16 bytes on 64-bit). */
export function sockFprog(filter: Uint8Array): Uint8Array {
  const prog = new Uint8Array(16);
  const view = new DataView(prog.buffer);
  view.setUint16(0, filter.length / 8, true);
  view.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(filter))), true);
  return prog;
}
