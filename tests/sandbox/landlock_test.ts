import assert from "node:assert/strict";
import {
  abiMasks,
  ACCESS_FS,
  deniedSyscalls,
  FILE_RIGHTS,
  landlockSupport,
  metadataFilter,
  parsePolicy,
  planPathRules,
  READ_RIGHTS,
} from "../../sandbox/mod.ts";

const BASE_FS = (1 << 13) - 1; // EXECUTE .. MAKE_SYM, ABI 1

Deno.test("landlock: handled rights grow with the ABI and never name a right the ABI lacks", () => {
  const table: [number, number, number, number][] = [
    // abi, fs, net, scoped
    [0, 0, 0, 0],
    [1, BASE_FS, 0, 0],
    [2, BASE_FS | ACCESS_FS.REFER, 0, 0],
    [3, BASE_FS | ACCESS_FS.REFER | ACCESS_FS.TRUNCATE, 0, 0],
    [4, BASE_FS | ACCESS_FS.REFER | ACCESS_FS.TRUNCATE, 3, 0],
    [5, (1 << 16) - 1, 3, 0],
    [6, (1 << 16) - 1, 3, 3],
    [7, (1 << 16) - 1, 3, 3],
  ];
  for (const [abi, fs, net, scoped] of table) {
    assert.deepEqual(abiMasks(abi), { fs, net, scoped }, `ABI ${abi}`);
  }
});

Deno.test("landlock: rules on files carry only file rights; missing paths grant nothing", () => {
  const kinds: Record<string, "dir" | "file" | "missing"> = {
    "/usr": "dir",
    "/etc/hosts": "file",
    "/p/src": "dir",
    "/p/README.md": "file",
    "/gone": "missing",
  };
  const policy = parsePolicy({
    read: ["/usr", "/etc/hosts", "/gone"],
    write: ["/p/src", "/p/README.md", "/gone"],
  });
  for (const abi of [1, 3, 5, 7]) {
    const fs = abiMasks(abi).fs;
    const rules = planPathRules(policy, abi, (p) => kinds[p]);
    assert.deepEqual(rules, [
      { path: "/usr", dir: true, access: READ_RIGHTS },
      { path: "/etc/hosts", dir: false, access: READ_RIGHTS & FILE_RIGHTS },
      { path: "/p/src", dir: true, access: fs },
      { path: "/p/README.md", dir: false, access: fs & FILE_RIGHTS },
    ], `ABI ${abi}`);
  }
  const [, , , file] = planPathRules(policy, 3, (p) => kinds[p]);
  assert.equal(file.access & ACCESS_FS.TRUNCATE, ACCESS_FS.TRUNCATE, "ABI 3 can grant truncate");
  assert.equal(file.access & ACCESS_FS.MAKE_REG, 0, "a file rule cannot hold MAKE_REG");
});

Deno.test("landlock: support is reported, and the test-only override reports none", () => {
  const real = landlockSupport();
  if (real.supported) {
    assert.ok(real.abi >= 1);
    assert.equal(real.net, real.abi >= 4);
    assert.equal(real.scoped, real.abi >= 6);
  } else assert.ok(real.reason.length > 0);
  Deno.env.set("OSTK_SANDBOX_FAKE_NO_LANDLOCK", "1");
  try {
    const fake = landlockSupport();
    assert.equal(fake.supported, false);
    assert.match(fake.supported ? "" : fake.reason, /OSTK_SANDBOX_FAKE_NO_LANDLOCK/);
  } finally {
    Deno.env.delete("OSTK_SANDBOX_FAKE_NO_LANDLOCK");
  }
});

// --- the seccomp filter for metadata, run through a small classic-BPF interpreter -----------

const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;
const ARCH = { x86_64: 0xc000003e, aarch64: 0xc00000b7, i386: 0x40000003 };

function runBpf(filter: Uint8Array, arch: number, nr: number, args: bigint[] = []): number {
  const prog = new DataView(filter.buffer, filter.byteOffset, filter.byteLength);
  const data = new DataView(new ArrayBuffer(64));
  data.setUint32(0, nr >>> 0, true);
  data.setUint32(4, arch >>> 0, true);
  args.forEach((a, i) => data.setBigUint64(16 + 8 * i, a, true));
  let acc = 0;
  for (let pc = 0, steps = 0; steps < 1000; steps++) {
    const code = prog.getUint16(pc * 8, true);
    const jt = prog.getUint8(pc * 8 + 2), jf = prog.getUint8(pc * 8 + 3);
    const k = prog.getUint32(pc * 8 + 4, true);
    if (code === 0x20) {
      acc = data.getUint32(k, true);
      pc++;
    } else if (code === 0x15) pc += 1 + (acc === k ? jt : jf);
    else if (code === 0x35) pc += 1 + (acc >= k ? jt : jf);
    else if (code === 0x06) return k;
    else throw new Error(`unexpected BPF op ${code.toString(16)} at ${pc}`);
  }
  throw new Error("BPF program did not return");
}

Deno.test("seccomp: path-based metadata calls are refused, descriptor-based ones pass", () => {
  const x86 = metadataFilter("x86_64");
  const cases: [string, number, bigint[], number][] = [
    ["chmod", 90, [], EPERM],
    ["fchmodat", 268, [], EPERM],
    ["fchmodat2", 452, [], EPERM],
    ["chown", 92, [], EPERM],
    ["fchownat", 260, [], EPERM],
    ["setxattr", 188, [], EPERM],
    ["utimes", 235, [], EPERM],
    ["utimensat with a path", 280, [3n, 0x7fff_0000_1000n], EPERM],
    ["utimensat with a path above 4 GiB only", 280, [3n, 0x1_0000_0000n], EPERM],
    ["utimensat(fd, NULL) = futimens", 280, [3n, 0n], ALLOW],
    ["fchmod", 91, [], ALLOW],
    ["fchown", 93, [], ALLOW],
    ["fsetxattr", 190, [], ALLOW],
    ["read", 0, [], ALLOW],
    ["execve", 59, [], ALLOW],
    ["x32 chmod", 0x40000000 | 90, [], EPERM],
  ];
  for (const [name, nr, args, want] of cases) {
    assert.equal(runBpf(x86, ARCH.x86_64, nr, args), want, name);
  }
  assert.equal(runBpf(x86, ARCH.i386, 3, []), EPERM, "i386 syscalls via int 0x80");

  const arm = metadataFilter("aarch64");
  assert.equal(runBpf(arm, ARCH.aarch64, 53, []), EPERM, "fchmodat");
  assert.equal(runBpf(arm, ARCH.aarch64, 52, []), ALLOW, "fchmod");
  assert.equal(runBpf(arm, ARCH.aarch64, 88, [3n, 0x1000n]), EPERM, "utimensat with a path");
  assert.equal(runBpf(arm, ARCH.aarch64, 88, [3n, 0n]), ALLOW, "futimens");
  assert.equal(runBpf(arm, ARCH.x86_64, 53, []), EPERM, "foreign arch");
  assert.ok(deniedSyscalls("x86_64").includes("chmod"));
});
