/**
 * What a sandbox costs per spawn: `true` run N times (default 200; `--n 50` to change) bare,
 * under the Landlock helper (`_sandbox-exec`, Deno startup included), under bubblewrap with a
 * comparable policy, and — for reference only, never shipped — under a minimal C Landlock
 * helper compiled on the fly when `cc` exists. Prints mean/p50/p95 per spawn and the targets.
 *
 *   deno run -A bench/sandbox_bench.ts [--n 200]
 */
import { parseArgs } from "node:util";
import {
  defaultPolicy,
  helperInvocation,
  landlockSupport,
  spawnSandboxed,
} from "../sandbox/mod.ts";

const { values } = parseArgs({ args: Deno.args, options: { n: { type: "string" } } });
const N = Number(values.n ?? 200);

interface Stats {
  mean: number;
  p50: number;
  p95: number;
}

function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p50: at(0.5), p95: at(0.95) };
}

async function measure(run: () => Promise<Deno.CommandStatus>): Promise<Stats> {
  await run(); // warm the page cache and Deno's module cache
  const ms: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const status = await run();
    ms.push(performance.now() - t0);
    if (!status.success) throw new Error(`run ${i} failed with ${status.code}`);
  }
  return stats(ms);
}

function command(exe: string, args: string[]): () => Promise<Deno.CommandStatus> {
  return () =>
    new Deno.Command(exe, { args, stdin: "null", stdout: "null", stderr: "inherit" }).output();
}

async function which(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if ((await Deno.stat(`${dir}/${name}`)).isFile) return `${dir}/${name}`;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return undefined;
}

/** A minimal Landlock exec helper in C: the floor a native helper would reach. */
const C_HELPER = `#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/types.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
struct attr { __u64 fs, net, scoped; };
struct beneath { __u64 allowed; __s32 fd; } __attribute__((packed));
static void rule(int rs, const char *path, __u64 access) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return;
  struct beneath b = { access, fd };
  if (syscall(445, rs, 1, &b, 0) < 0) { perror(path); _exit(1); }
  close(fd);
}
int main(int argc, char **argv) { /* helper WRITE_DIR CMD... */
  int abi = syscall(444, NULL, 0, 1);
  if (abi < 6 || argc < 3) { fprintf(stderr, "needs Landlock ABI 6\\n"); return 1; }
  struct attr a = { (1ULL << 16) - 1, 3, 3 };
  int rs = syscall(444, &a, sizeof a, 0);
  const char *ro[] = { "/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", 0 };
  for (int i = 0; ro[i]; i++) rule(rs, ro[i], 1 | 4 | 8);
  rule(rs, "/dev/null", 2 | 4);
  rule(rs, argv[1], (1ULL << 16) - 1);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(446, rs, 0)) { perror("landlock"); return 1; }
  execvp(argv[2], argv + 2);
  perror(argv[2]);
  return 127;
}
`;

const row = (name: string, s: Stats, bare: Stats) =>
  console.log(
    `${name.padEnd(38)} mean ${s.mean.toFixed(2).padStart(7)}  p50 ${
      s.p50.toFixed(2).padStart(7)
    }  p95 ${s.p95.toFixed(2).padStart(7)}  (+${(s.mean - bare.mean).toFixed(2)} ms over bare)`,
  );

if (import.meta.main) {
  const support = landlockSupport();
  const project = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_bench_" }));
  const scratch = await Deno.makeTempDir({ prefix: "ostk_bench_c_" });
  try {
    await Deno.mkdir(`${project}/.ostk`);
    await Deno.mkdir(`${project}/src`);
    const policy = { ...(await defaultPolicy(project)), tmp: false };
    console.log(
      `sandbox spawn bench: ${N} × true, ${navigator.hardwareConcurrency} cpus, ` +
        (support.supported ? `Landlock ABI ${support.abi}` : `no Landlock (${support.reason})`),
    );
    const bare = await measure(command("true", []));
    row("bare Deno.Command(true)", bare, bare);
    if (support.supported) {
      const spawn = (helper: string[]) => () =>
        spawnSandboxed(policy, ["true"], { helper, stdin: "null", stdout: "null" }).status;
      const light = await measure(spawn(helperInvocation()));
      row("landlock helper (deno run exec.ts)", light, bare);
      const [exe, ...rest] = helperInvocation();
      const main = new URL("../main.ts", import.meta.url).pathname;
      const viaMain = [exe, ...rest.slice(0, -2), main, "_sandbox-exec"];
      row("landlock helper (deno run main.ts)", await measure(spawn(viaMain)), bare);
      const cc = await which("cc");
      if (cc) {
        await Deno.writeTextFile(`${scratch}/helper.c`, C_HELPER);
        const built = await new Deno.Command(cc, {
          args: ["-O2", "-o", `${scratch}/helper`, `${scratch}/helper.c`],
        }).output();
        if (built.success) {
          const c = await measure(command(`${scratch}/helper`, [`${project}/src`, "true"]));
          row("reference: minimal C landlock helper", c, bare);
        }
      } else console.log("reference C helper: skipped (no cc)");
    }
    const bwrap = await which("bwrap");
    let bw: Stats | undefined;
    if (bwrap) {
      const ro = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc"].flatMap((
        d,
      ) => ["--ro-bind-try", d, d]);
      bw = await measure(command(bwrap, [
        ...ro,
        ...["--bind", project, project, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"],
        ...["--unshare-net", "--unshare-pid", "--die-with-parent", "--", "true"],
      ]));
      row("bubblewrap (ro sys, rw proj, no net)", bw, bare);
    } else console.log("bubblewrap: not installed (apt-get install bubblewrap)");
    console.log("targets: Landlock helper adds < 15 ms, and is no slower than bwrap (see report)");
  } finally {
    await Deno.remove(project, { recursive: true });
    await Deno.remove(scratch, { recursive: true });
  }
}
