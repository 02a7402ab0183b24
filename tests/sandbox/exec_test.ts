/**
 * The exec helper as callers see it: exit codes and signals pass through, PATH lookup, the
 * state the target inherits, the refusal without Landlock, and the `ostk sandbox` CLI.
 */
import assert from "node:assert/strict";
import {
  helperInvocation,
  landlockSupport,
  parsePolicy,
  type SandboxPolicyInput,
  spawnSandboxed,
} from "../../sandbox/mod.ts";
import { runOstk, withScratch } from "../helpers/run_ostk.ts";

const ignore = !landlockSupport().supported;
const decoder = new TextDecoder();
const SYSTEM = ["/usr", "/lib", "/lib64", "/bin", "/etc", "/proc"];

async function inDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_exec_" }));
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function run(policy: SandboxPolicyInput, cmd: string[], env: Record<string, string> = {}) {
  const child = spawnSandboxed(policy, cmd, {
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const r = await child.output();
  return { ...r, out: decoder.decode(r.stdout), err: decoder.decode(r.stderr) };
}

Deno.test({ name: "exec: exit codes and signals are the command's own", ignore }, async () => {
  const policy = { read: SYSTEM };
  assert.equal((await run(policy, ["sh", "-c", "exit 42"])).code, 42);
  const killed = await run(policy, ["sh", "-c", "kill -TERM $$"]);
  assert.equal(killed.signal, "SIGTERM");
  assert.equal(killed.code, 143);
});

Deno.test(
  { name: "exec: PATH lookup, not found (127), not executable (126)", ignore },
  async () => {
    await inDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/script`, "#!/bin/sh\necho hi\n", { mode: 0o644 });
      const policy = { read: [...SYSTEM, dir] };
      const ok = await run(policy, ["echo", "found"]);
      assert.equal(ok.out, "found\n");
      const missing = await run(policy, ["no-such-command-ostk"]);
      assert.equal(missing.code, 127);
      assert.match(missing.err, /no-such-command-ostk: command not found/);
      const noexec = await run(policy, [`${dir}/script`]);
      assert.equal(noexec.code, 126);
      assert.match(noexec.err, /EACCES/);
    });
  },
);

Deno.test(
  { name: "exec: the target starts clean: no privileges, SIGPIPE default", ignore },
  async () => {
    const r = await run({ read: SYSTEM }, ["cat", "/proc/self/status"]);
    const field = (name: string) => r.out.match(new RegExp(`^${name}:\\s*(\\S+)`, "m"))?.[1];
    assert.equal(field("NoNewPrivs"), "1");
    assert.equal(field("Seccomp"), "2");
    assert.equal(field("CapEff"), "0000000000000000");
    assert.equal(field("CapBnd"), "0000000000000000");
    assert.equal(BigInt(`0x${field("SigBlk")}`), 0n);
    assert.equal(BigInt(`0x${field("SigIgn")}`) & (1n << 12n), 0n, "SIGPIPE must not be ignored");
  },
);

Deno.test({ name: "exec: chmod in the grant needs allow_metadata", ignore }, async () => {
  await inDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "", { mode: 0o644 });
    const policy = { read: SYSTEM, write: [dir], tmp: false };
    assert.notEqual((await run(policy, ["chmod", "+x", `${dir}/f`])).code, 0);
    assert.equal((await Deno.stat(`${dir}/f`)).mode! & 0o777, 0o644);
    const r = await run({ ...policy, allow_metadata: true }, ["chmod", "+x", `${dir}/f`]);
    assert.equal(r.code, 0, r.err);
    assert.equal((await Deno.stat(`${dir}/f`)).mode! & 0o777, 0o755);
  });
});

Deno.test("exec: without Landlock the helper refuses unless allow_unsandboxed", async () => {
  await inDir(async (dir) => {
    const fake = { OSTK_SANDBOX_FAKE_NO_LANDLOCK: "1" };
    const policy = { read: SYSTEM, tmp: false };
    const refused = await run(policy, ["sh", "-c", `echo x > ${dir}/f`], fake);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /refusing to run: no Landlock .*OSTK_SANDBOX_FAKE_NO_LANDLOCK/);
    assert.match(refused.err, /--allow-unsandboxed/);
    await assert.rejects(Deno.stat(`${dir}/f`), Deno.errors.NotFound);
    const opted = await run({ ...policy, allow_unsandboxed: true }, [
      "sh",
      "-c",
      `echo x > ${dir}/f`,
    ], fake);
    assert.equal(opted.code, 0);
    assert.match(opted.err, /WARNING: running WITHOUT a sandbox/);
    assert.equal(await Deno.readTextFile(`${dir}/f`), "x\n", "really unsandboxed, as warned");
  });
});

Deno.test("exec: the helper rejects malformed arguments", async () => {
  const [exe, ...pre] = helperInvocation();
  const helper = (args: string[]) =>
    new Deno.Command(exe, { args: [...pre, ...args], stdout: "null", stderr: "piped" }).output();
  const noCmd = await helper([JSON.stringify(parsePolicy({}))]);
  assert.equal(noCmd.code, 2);
  assert.match(decoder.decode(noCmd.stderr), /expected \[--tmpdir/);
  const badPolicy = await helper(['{"read":["relative"]}', "--", "true"]);
  assert.equal(badPolicy.code, 1);
  assert.match(decoder.decode(badPolicy.stderr), /read\.0: expected an absolute path/);
});

Deno.test(
  { name: "cli: sandbox exec runs in the project policy with extra grants", ignore },
  async () => {
    await withScratch(async (scratch) => {
      const proj = `${scratch.dir}/proj`, extra = `${scratch.dir}/extra`;
      await Deno.mkdir(`${proj}/.ostk`, { recursive: true });
      await Deno.mkdir(`${proj}/src`);
      await Deno.mkdir(extra);
      const ostk = (args: string[]) =>
        runOstk(scratch, ["sandbox", "exec", ...args], { cwd: proj });
      assert.equal((await ostk(["--", "sh", "-c", "echo a > src/a; exit 3"])).code, 3);
      assert.equal(await Deno.readTextFile(`${proj}/src/a`), "a\n");
      // Denied means the file never appeared and the shell said why; the same command with
      // --write is the control that shows it would have.
      const denied = await ostk(["--", "sh", "-c", `echo b > ${extra}/b`]);
      await assert.rejects(Deno.stat(`${extra}/b`), Deno.errors.NotFound, "escaped the grant");
      assert.match(denied.stderr, /Permission denied/);
      assert.notEqual(denied.code, 0);
      assert.equal(
        (await ostk(["--write", extra, "--", "sh", "-c", `echo b > ${extra}/b`])).code,
        0,
      );
      assert.equal(await Deno.readTextFile(`${extra}/b`), "b\n");
      const noKernel = await ostk(["--", "sh", "-c", "echo x > .ostk/x"]);
      await assert.rejects(Deno.stat(`${proj}/.ostk/x`), Deno.errors.NotFound, "wrote .ostk/");
      assert.match(noKernel.stderr, /Permission denied/);
      assert.notEqual(noKernel.code, 0);
      const kernelGranted = await ostk([
        "--write",
        `${proj}/.ostk`,
        "--",
        "sh",
        "-c",
        "echo x > .ostk/x",
      ]);
      assert.equal(kernelGranted.code, 0, kernelGranted.stderr);
      assert.equal(
        await Deno.readTextFile(`${proj}/.ostk/x`),
        "x\n",
        "control: .ostk/ with a grant",
      );
      const usage = await ostk(["--write", `${scratch.dir}/missing`, "--", "true"]);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /no such file or directory/);
      const outside = await runOstk(scratch, ["sandbox", "exec", "--", "true"], { cwd: extra });
      assert.equal(outside.code, 1);
      assert.match(outside.stderr, /not inside an ostk project/);
    });
  },
);

Deno.test("cli: sandbox check reports Landlock; the helper is hidden from help", async () => {
  await withScratch(async (scratch) => {
    const check = await runOstk(scratch, ["sandbox", "check", "--json"]);
    const report = JSON.parse(check.stdout);
    assert.equal(report.landlock.supported, landlockSupport().supported);
    assert.equal(check.code, report.usable ? 0 : 1);
    assert.ok("bwrap" in report && "seatbelt" in report);
    const help = await runOstk(scratch, ["--help"]);
    assert.match(help.stdout, /sandbox exec/);
    assert.match(help.stdout, /sandbox check/);
    assert.doesNotMatch(help.stdout, /_sandbox-exec/);
  });
});
