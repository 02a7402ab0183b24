/**
 * The few libc calls the sandbox needs, through Deno FFI. Internal to sandbox/.
 *
 * Every symbol is called synchronously (`nonblocking: false`, the default), so the call runs on
 * the JS thread itself. That matters: Landlock and no_new_privs bind the calling thread only, so
 * the thread that restricts itself must be the one that calls execve.
 */

const SYMBOLS = {
  // glibc's syscall() is variadic, but on x86_64 and aarch64 Linux integer varargs travel in the
  // same registers as fixed ones, so each Landlock call gets its own fixed signature.
  create_ruleset: { name: "syscall", parameters: ["i64", "buffer", "usize", "u32"], result: "i64" },
  add_rule: { name: "syscall", parameters: ["i64", "i32", "u32", "buffer", "u32"], result: "i64" },
  restrict_self: { name: "syscall", parameters: ["i64", "i32", "u32"], result: "i64" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  capset: { parameters: ["buffer", "buffer"], result: "i32" },
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  signal: { parameters: ["i32", "pointer"], result: "pointer" },
  sigprocmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** Landlock syscall numbers; new syscalls share one number on every Linux architecture. */
export const SYS = { create_ruleset: 444n, add_rule: 445n, restrict_self: 446n } as const;

/** open(2) flags, identical on x86_64 and aarch64 (asm-generic values). */
export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000;
/** O_DIRECTORY is one of the few flags aarch64 numbers differently from x86_64. */
export const O_DIRECTORY = Deno.build.arch === "aarch64" ? 0o40000 : 0o200000;
export const PR_SET_NO_NEW_PRIVS = 38;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  7: "E2BIG",
  8: "ENOEXEC",
  9: "EBADF",
  13: "EACCES",
  14: "EFAULT",
  20: "ENOTDIR",
  22: "EINVAL",
  38: "ENOSYS",
  40: "ELOOP",
  95: "EOPNOTSUPP",
};

/** An errno number with its name, e.g. `EACCES (13)`. */
export function errnoName(errno: number): string {
  return `${ERRNO_NAMES[errno] ?? "errno"} (${errno})`;
}

/** The opened libc with typed wrappers; `close()` it unless the process is about to exec. */
export interface Libc {
  /** Raw syscall result (-1 on failure) and errno read right after. */
  createRuleset(attr: Uint8Array | null, size: number, flags: number): [number, number];
  addRule(rulesetFd: number, ruleType: number, attr: Uint8Array): [number, number];
  restrictSelf(rulesetFd: number, flags: number): [number, number];
  setNoNewPrivs(): [number, number];
  /**
   * Drop every capability: the bounding set (needs CAP_SETPCAP, so a no-op for non-root),
   * ambient, then effective/permitted/inheritable. With no_new_privs, root cannot regain them
   * at execve. Returns capset's result.
   */
  dropCapabilities(): [number, number];
  /** prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog): binds the calling thread, like Landlock. */
  setSeccompFilter(prog: Uint8Array): [number, number];
  /**
   * An O_PATH|O_CLOEXEC descriptor for `path` (follows symlinks) and whether it is a directory.
   * Done through libc, not Deno's fs API, which demands --allow-all for /proc and /dev.
   */
  openPath(path: string): { fd: number; errno: number; dir: boolean };
  close(fd: number): void;
  /** Put back what the Deno runtime changed and a new program expects: SIGPIPE, signal mask. */
  resetSignals(): void;
  /** Replace this process; returns the errno only if execve failed. */
  execve(path: string, argv: string[], env: Record<string, string>): number;
  unload(): void;
}

const encoder = new TextEncoder();

function cstr(s: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(s);
  const buf = new Uint8Array(bytes.length + 1);
  buf.set(bytes);
  return buf;
}

/** Open libc; throws when this is not a glibc/musl Linux a Deno FFI call can reach. */
export function openLibc(): Libc {
  let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
  let lastError: unknown;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      lib = Deno.dlopen(name, SYMBOLS);
      break;
    } catch (e) {
      lastError = e;
    }
  }
  if (!lib) throw lastError;
  const s = lib.symbols;
  const errno = () => new Deno.UnsafePointerView(s.__errno_location()!).getInt32();
  const checked = (r: number | bigint): [number, number] => {
    const n = Number(r);
    return [n, n < 0 ? errno() : 0];
  };
  return {
    createRuleset: (attr, size, flags) =>
      checked(s.create_ruleset(SYS.create_ruleset, attr, BigInt(size), flags)),
    addRule: (fd, type, attr) => checked(s.add_rule(SYS.add_rule, fd, type, attr, 0)),
    restrictSelf: (fd, flags) => checked(s.restrict_self(SYS.restrict_self, fd, flags)),
    setNoNewPrivs: () => checked(s.prctl(PR_SET_NO_NEW_PRIVS, 1n, 0n, 0n, 0n)),
    dropCapabilities() {
      for (let cap = 0; cap < 64; cap++) {
        // PR_CAPBSET_DROP: EINVAL past the last capability; EPERM without CAP_SETPCAP.
        if (s.prctl(24, BigInt(cap), 0n, 0n, 0n) < 0 && errno() !== 1) break;
      }
      s.prctl(47, 4n, 0n, 0n, 0n); // PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
      const header = new Uint8Array(8);
      new DataView(header.buffer).setUint32(0, 0x20080522, true); // _LINUX_CAPABILITY_VERSION_3
      return checked(s.capset(header, new Uint8Array(24)));
    },
    setSeccompFilter: (prog) =>
      checked(
        s.prctl(22, 2n, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(prog))), 0n, 0n),
      ),
    openPath(path) {
      // Ask for a directory first and let ENOTDIR say "file": act, then handle, no stat race.
      const [dirFd, e1] = checked(s.open(cstr(path), O_PATH | O_CLOEXEC | O_DIRECTORY, 0));
      if (dirFd >= 0) return { fd: dirFd, errno: 0, dir: true };
      if (e1 !== 20) return { fd: -1, errno: e1, dir: false };
      const [fd, e2] = checked(s.open(cstr(path), O_PATH | O_CLOEXEC, 0));
      return { fd, errno: e2, dir: false };
    },
    close: (fd) => void s.close(fd),
    resetSignals() {
      // Rust's runtime (so Deno) ignores SIGPIPE; an ignored signal survives execve, and
      // `yes | head` would then see EPIPE instead of dying quietly. Blocked signals survive too.
      s.signal(13, null);
      s.sigprocmask(2, /* SIG_SETMASK */ new Uint8Array(128), null);
    },
    execve(path, argv, env) {
      const keep: Uint8Array[] = [];
      const table = (items: string[]) => {
        const ptrs = new BigUint64Array(items.length + 1);
        items.forEach((item, i) => {
          const buf = cstr(item);
          keep.push(buf);
          ptrs[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
        });
        return new Uint8Array(ptrs.buffer);
      };
      const argvTable = table(argv);
      const envTable = table(Object.entries(env).map(([k, v]) => `${k}=${v}`));
      s.execve(cstr(path), argvTable, envTable);
      const e = errno();
      keep.length = 0; // the buffers had to live until execve returned
      return e;
    },
    unload: () => lib.close(),
  };
}
