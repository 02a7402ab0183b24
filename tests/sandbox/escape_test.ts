/**
 * A real sandboxed shell (`spawnSandboxed` → `_sandbox-exec` → Landlock + seccomp → execve)
 * tries to get out, one test per attempt. An exit code decides nothing: an attempt has escaped
 * when something outside the grants (or in `.ostk/`) changed, as the test sees it from outside.
 * It has been held only when nothing changed AND the attempt is shown to have run:
 *
 * - a positive control: the same program, run with a grant that allows it (or with no sandbox,
 *   where the block is a dropped capability that no grant gives back), changes what the test
 *   watches, so the watch can see this attempt's effect and the program is not broken;
 * - the sandboxed program writes a marker inside its grant before the attempt, reports the
 *   attempt's exit status after it, and its stderr names the refusal (EACCES, EPERM, EXDEV).
 *
 * A helper that crashes before running anything fails every test here.
 */
import assert from "node:assert/strict";
import { landlockSupport, type SandboxPolicy } from "../../sandbox/mod.ts";
import {
  bare,
  effects,
  exists,
  granted,
  observe,
  type Run,
  sandboxed,
  withWorld,
  type World,
} from "../helpers/sandbox_world.ts";

const support = landlockSupport();
const ignore = !support.supported;
const abi = support.supported ? support.abi : 0;

/** Words the tools print for a refused syscall: EACCES, EPERM, EXDEV (Landlock's REFER). */
const REFUSAL = /Permission denied|Operation not permitted|Invalid cross-device link/;

/** Marker first (proves the program started), then the attempt, then its exit status. */
function wrap(script: string): string {
  return `echo started > "$P/src/attempt_started"\n(\n${script}\n)\necho "attempt rc=$?"`;
}

function attemptStatus(r: Run): number | undefined {
  const m = r.stdout.match(/^attempt rc=(\d+)$/m);
  return m ? Number(m[1]) : undefined;
}

const PY = "/usr/bin/python3";
const hasPython = await exists(PY);
/** A file this process makes is owned by its uid (Deno.uid() would need --allow-sys=uid). */
async function runningAsRoot(): Promise<boolean> {
  const probe = await Deno.makeTempFile({ prefix: "ostk_uid_" });
  try {
    return (await Deno.stat(probe)).uid === 0;
  } finally {
    await Deno.remove(probe);
  }
}
const isRoot = await runningAsRoot();
/** perl-base is Essential in Debian, so this is on every Debian-like machine. */
const PERL = "/usr/bin/perl";
const hasPerl = await exists(PERL);

type Control = (w: World) => SandboxPolicy | "bare";
const writeOut: Control = (w) => granted(w, { write: [w.out] });

interface Attempt {
  name: string;
  script: string;
  /** A policy under which the script does what it tries, or "bare" for no sandbox at all. */
  control: Control;
  ignore?: boolean;
}

const ATTEMPTS: Attempt[] = [
  { name: "plain write", script: 'echo pwned > "$OUT/victim.txt"', control: writeOut },
  { name: "append", script: 'echo pwned >> "$OUT/victim.txt"', control: writeOut },
  { name: "create a new file", script: 'echo x > "$OUT/new.txt"', control: writeOut },
  {
    name: "rename out of the grant",
    script: 'mv "$P/src/a.txt" "$OUT/moved.txt"',
    control: writeOut,
  },
  {
    name: "rename into the grant",
    script: 'mv "$OUT/victim.txt" "$P/src/stolen.txt"',
    control: writeOut,
  },
  {
    name: "hard link inside → outside",
    script: 'ln "$P/src/a.txt" "$OUT/link.txt"',
    control: writeOut,
  },
  {
    name: "hard link outside → inside, then write",
    script: 'ln "$OUT/victim.txt" "$P/src/hl.txt" && echo pwned > "$P/src/hl.txt"',
    control: writeOut,
  },
  {
    name: "symlink inside, write through it",
    script: 'ln -s "$OUT/victim.txt" "$P/src/sl" && echo pwned > "$P/src/sl"',
    control: writeOut,
  },
  {
    name: "symlink to a new outside file, write through it",
    script: 'ln -s "$OUT/fresh.txt" "$P/src/sl2" && echo pwned > "$P/src/sl2"',
    control: writeOut,
  },
  { name: "symlink created outside", script: 'ln -s /etc/passwd "$OUT/sl"', control: writeOut },
  { name: "mkdir", script: 'mkdir "$OUT/d"', control: writeOut },
  { name: "rmdir", script: 'rmdir "$OUT/emptydir"', control: writeOut },
  { name: "unlink", script: 'rm -f "$OUT/victim.txt"', control: writeOut },
  { name: "truncate", script: 'truncate -s 0 "$OUT/victim.txt"', control: writeOut },
  // truncate(1) opens the file for writing first, so WRITE_FILE stops it; truncate(2) by path
  // opens nothing and only Landlock's TRUNCATE right (ABI 3) stands in its way.
  {
    name: "truncate(2) by path, no open",
    script: `${PERL} -e 'truncate($ARGV[0], 0) or die "truncate: $!\\n"' "$OUT/victim.txt"`,
    control: writeOut,
    ignore: !hasPerl || abi < 3,
  },
  {
    name: "chmod",
    script: 'chmod 777 "$OUT/victim.txt"',
    control: (w) => granted(w, { write: [w.out], allowMetadata: true }),
  },
  // The sandbox drops CAP_CHOWN for everyone, and no policy gives it back: control unsandboxed.
  // Without root the control cannot chown either, so the attempt would show nothing.
  {
    name: "chown (needs root)",
    script: 'chown 1:1 "$OUT/victim.txt"',
    control: () => "bare",
    ignore: !isRoot,
  },
  {
    name: "utimes (touch -d)",
    script: 'touch -d 2001-01-01 "$OUT/victim.txt"',
    control: (w) => granted(w, { write: [w.out], allowMetadata: true }),
  },
  { name: "mkfifo", script: 'mkfifo "$OUT/fifo"', control: writeOut },
  // CAP_MKNOD is dropped too.
  {
    name: "mknod (needs root)",
    script: 'mknod "$OUT/null" c 1 3',
    control: () => "bare",
    ignore: !isRoot,
  },
  {
    name: "unix socket bind outside",
    script:
      `${PY} -c 'import socket,os; socket.socket(socket.AF_UNIX).bind(os.environ["OUT"]+"/sock")'`,
    control: writeOut,
    ignore: !hasPython,
  },
  {
    name: "execute a program outside the grants",
    script: '"$OUT/tool.sh"',
    control: (w) => granted(w, { read: [w.out] }),
  },
  {
    name: "write via /proc/self/root",
    script: 'echo pwned > "/proc/self/root$OUT/victim.txt"',
    control: writeOut,
  },
  {
    name: "append to .ostk/audit.jsonl",
    script: 'echo "{}" >> "$P/.ostk/audit.jsonl"',
    control: (w) => granted(w, { write: [`${w.proj}/.ostk`] }),
  },
  {
    name: "create in .ostk/agents",
    script: 'echo x > "$P/.ostk/agents/evil.Agentfile"',
    control: (w) => granted(w, { write: [`${w.proj}/.ostk`] }),
  },
  {
    name: "rename .ostk away",
    script: 'mv "$P/.ostk" "$P/src/stolen_ostk"',
    control: (w) => granted(w, { write: [w.proj] }),
  },
  {
    name: "remove .ostk",
    script: 'rm -r "$P/.ostk"',
    control: (w) => granted(w, { write: [w.proj] }),
  },
  {
    name: "child of a child",
    script: `sh -c 'sh -c "echo pwned > \\"\\$OUT/victim.txt\\""'`,
    control: writeOut,
  },
  {
    name: "/tmp outside the private TMPDIR",
    script: 'echo x > "$TMPOUT"',
    control: (w) => granted(w, { write: ["/tmp"] }),
  },
  {
    name: "$HOME",
    script: 'echo x > "$HOME/.bashrc"',
    control: (w) => granted(w, { write: [w.home] }),
  },
  {
    name: "new top-level entry (denied by design)",
    script: 'echo x > "$P/newtop"',
    control: (w) => granted(w, { write: [w.proj] }),
  },
];

for (const attempt of ATTEMPTS) {
  Deno.test({
    name: `sandbox escape: ${attempt.name}`,
    ignore: ignore || (attempt.ignore ?? false),
    fn: async () => {
      const script = wrap(attempt.script);
      await withWorld(async (w) => {
        const policy = attempt.control(w);
        const before = await observe(w);
        const r = policy === "bare" ? await bare(w, script) : await sandboxed(w, script, policy);
        assert.equal(attemptStatus(r), 0, `the control run failed:\n${r.stderr}`);
        assert.notDeepEqual(
          effects(before, await observe(w)),
          [],
          "the control changed nothing the test watches, so an escape would go unseen",
        );
      });
      await withWorld(async (w) => {
        const before = await observe(w);
        const r = await sandboxed(w, script);
        assert.deepEqual(effects(before, await observe(w)), [], `ESCAPED: ${attempt.script}`);
        assert.ok(await exists(`${w.proj}/src/attempt_started`), `never started:\n${r.stderr}`);
        const status = attemptStatus(r);
        assert.ok(status !== undefined, `the attempt did not finish:\n${r.stderr}`);
        assert.notEqual(status, 0, "the attempt reported success but changed nothing");
        assert.match(r.stderr, REFUSAL, "the attempt failed, but not by a refusal");
        assert.equal(await Deno.readTextFile(`${w.proj}/src/a.txt`), "inside\n");
      });
    },
  });
}

/** Reads: the effect is what the sandboxed program printed, which the test reads. */
const READS: { name: string; script: string; leak: RegExp }[] = [
  { name: "read a file outside the grants", script: 'cat "$OUT/secret.txt"', leak: /top-secret/ },
  { name: "list a directory outside the grants", script: 'ls "$OUT"', leak: /secret\.txt/ },
];

for (const attempt of READS) {
  Deno.test({ name: `sandbox escape: ${attempt.name}`, ignore }, async () => {
    const script = wrap(attempt.script);
    await withWorld(async (w) => {
      const r = await sandboxed(w, script, granted(w, { read: [w.out] }));
      assert.equal(attemptStatus(r), 0, `the control run failed:\n${r.stderr}`);
      assert.match(r.stdout, attempt.leak, "control: with a read grant the program sees it");
    });
    await withWorld(async (w) => {
      const r = await sandboxed(w, script);
      assert.doesNotMatch(r.stdout, attempt.leak, `ESCAPED: ${attempt.script}`);
      assert.ok(await exists(`${w.proj}/src/attempt_started`), `never started:\n${r.stderr}`);
      const status = attemptStatus(r);
      assert.ok(status !== undefined, `the attempt did not finish:\n${r.stderr}`);
      assert.notEqual(status, 0, "the attempt reported success but printed nothing secret");
      assert.match(r.stderr, REFUSAL, "the attempt failed, but not by a refusal");
    });
  });
}

/** Start a detached orphan that writes outside after its parent is gone; wait for its report. */
async function orphanWrite(w: World, policy: SandboxPolicy): Promise<string> {
  const script = `setsid sh -c 'sleep 0.2; echo pwned > "$OUT/late.txt";
  echo "rc=$?" > "$P/src/late_done"' </dev/null >/dev/null 2>&1 & exit 0`;
  const r = await sandboxed(w, script, policy);
  assert.equal(r.code, 0, r.stderr);
  // Wait for the orphan to report, not for a fixed time; the deadline only guards a hang.
  const deadline = Date.now() + 20_000;
  while (!(await exists(`${w.proj}/src/late_done`))) {
    assert.ok(Date.now() < deadline, "the orphan never reported");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return await Deno.readTextFile(`${w.proj}/src/late_done`);
}

Deno.test(
  { name: "sandbox escape: a double-forked, setsid'd process stays confined", ignore },
  async () => {
    await withWorld(async (w) => {
      assert.equal(await orphanWrite(w, granted(w, { write: [w.out] })), "rc=0\n");
      assert.equal(await Deno.readTextFile(`${w.out}/late.txt`), "pwned\n", "control");
    });
    await withWorld(async (w) => {
      assert.match(await orphanWrite(w, w.policy), /^rc=[1-9]/);
      assert.equal(await exists(`${w.out}/late.txt`), false, "ESCAPED: the orphan wrote outside");
    });
  },
);

Deno.test({ name: "sandbox: allowed writes succeed", ignore }, async () => {
  await withWorld(async (w) => {
    const r = await sandboxed(
      w,
      `set -e
       echo ok > "$P/src/new.txt"
       echo more >> "$P/README.md"
       mv "$P/src/new.txt" "$P/docs/moved.txt"
       mkdir "$P/src/d" && rmdir "$P/src/d"
       ln -s moved.txt "$P/docs/link"
       echo private > "$TMPDIR/t" && cat "$TMPDIR/t"
       echo "$TMPDIR"
       echo x > /dev/null`,
    );
    assert.equal(r.code, 0, r.stderr);
    const [line, tmpdir] = r.stdout.trim().split("\n");
    assert.equal(line, "private");
    assert.match(tmpdir, /^\/tmp\/ostk-sandbox-/);
    assert.equal(await exists(tmpdir), false, "the private TMPDIR is removed after the run");
    assert.equal(await Deno.readTextFile(`${w.proj}/docs/moved.txt`), "ok\n");
    assert.equal(await Deno.readTextFile(`${w.proj}/README.md`), "readme\nmore\n");
  });
});
