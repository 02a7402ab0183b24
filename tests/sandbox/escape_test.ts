/**
 * A real sandboxed shell (`spawnSandboxed` → `_sandbox-exec` → Landlock + seccomp → execve)
 * tries to get out, one `sh -c` per attempt. Every attempt must fail and leave everything
 * outside the grants (and `.ostk/`) byte-for-byte, mode-for-mode, mtime-for-mtime unchanged;
 * every allowed write must succeed.
 */
import assert from "node:assert/strict";
import {
  defaultPolicy,
  landlockSupport,
  type SandboxPolicy,
  spawnSandboxed,
} from "../../sandbox/mod.ts";

const support = landlockSupport();
const ignore = !support.supported;
const abi = support.supported ? support.abi : 0;
const decoder = new TextDecoder();

interface World {
  base: string;
  proj: string;
  out: string;
  home: string;
  tmpOut: string;
  policy: SandboxPolicy;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_escape_" }));
  const proj = `${base}/proj`, out = `${base}/outside`, home = `${base}/home`;
  const tmpOut = `/tmp/ostk_escape_probe_${crypto.randomUUID()}`;
  try {
    await Deno.mkdir(`${proj}/.ostk/agents`, { recursive: true });
    await Deno.mkdir(`${proj}/src`);
    await Deno.mkdir(`${proj}/docs`);
    await Deno.writeTextFile(`${proj}/.ostk/audit.jsonl`, '{"seq":0}\n');
    await Deno.writeTextFile(`${proj}/src/a.txt`, "inside\n");
    await Deno.writeTextFile(`${proj}/README.md`, "readme\n");
    await Deno.mkdir(`${out}/emptydir`, { recursive: true });
    await Deno.writeTextFile(`${out}/victim.txt`, "orig\n", { mode: 0o644 });
    await Deno.chmod(`${out}/victim.txt`, 0o644);
    await Deno.utime(`${out}/victim.txt`, 1_000_000, 1_000_000);
    await Deno.writeTextFile(`${out}/tool.sh`, "#!/bin/sh\necho ran\n", { mode: 0o755 });
    await Deno.mkdir(home);
    await fn({ base, proj, out, home, tmpOut, policy: await defaultPolicy(proj) });
  } finally {
    await Deno.remove(base, { recursive: true });
    await Deno.remove(tmpOut, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function sandboxed(w: World, script: string, policy = w.policy, extraEnv = {}): Promise<Run> {
  const child = spawnSandboxed(policy, ["sh", "-c", script], {
    cwd: w.proj,
    env: { HOME: w.home, P: w.proj, OUT: w.out, TMPOUT: w.tmpOut, ...extraEnv },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Everything under `root`: type, mode, size, mtime, content or link target. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const rows: Record<string, string> = {};
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      const st = await Deno.lstat(path);
      const body = e.isFile
        ? await Deno.readTextFile(path)
        : e.isSymlink
        ? await Deno.readLink(path)
        : "";
      rows[path.slice(root.length)] = `${
        st.mode?.toString(8)
      } ${st.uid}:${st.gid} ${st.size} ${st.mtime?.getTime()} ${body}`;
      if (e.isDirectory) await walk(path);
    }
  };
  await walk(root);
  return rows;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

const PY = "/usr/bin/python3";
const hasPython = await exists(PY);

/** Escape attempts: each must exit non-zero and change nothing outside the grants. */
const ATTEMPTS: { name: string; script: string; ignore?: boolean }[] = [
  { name: "plain write", script: 'echo pwned > "$OUT/victim.txt"' },
  { name: "append", script: 'echo pwned >> "$OUT/victim.txt"' },
  { name: "create a new file", script: 'echo x > "$OUT/new.txt"' },
  { name: "rename out of the grant", script: 'mv "$P/src/a.txt" "$OUT/moved.txt"' },
  { name: "rename into the grant", script: 'mv "$OUT/victim.txt" "$P/src/stolen.txt"' },
  { name: "hard link inside → outside", script: 'ln "$P/src/a.txt" "$OUT/link.txt"' },
  {
    name: "hard link outside → inside, then write",
    script: 'ln "$OUT/victim.txt" "$P/src/hl.txt" && echo pwned > "$P/src/hl.txt"',
  },
  {
    name: "symlink inside, write through it",
    script: 'ln -s "$OUT/victim.txt" "$P/src/sl" && echo pwned > "$P/src/sl"',
  },
  {
    name: "symlink to a new outside file, write through it",
    script: 'ln -s "$OUT/fresh.txt" "$P/src/sl2" && echo pwned > "$P/src/sl2"',
  },
  { name: "symlink created outside", script: 'ln -s /etc/passwd "$OUT/sl"' },
  { name: "mkdir", script: 'mkdir "$OUT/d"' },
  { name: "rmdir", script: 'rmdir "$OUT/emptydir"' },
  { name: "unlink", script: 'rm -f "$OUT/victim.txt"' },
  { name: "truncate", script: 'truncate -s 0 "$OUT/victim.txt"' },
  { name: "chmod", script: 'chmod 777 "$OUT/victim.txt"' },
  { name: "chown", script: 'chown 1:1 "$OUT/victim.txt"' },
  { name: "utimes (touch -d)", script: 'touch -d 2001-01-01 "$OUT/victim.txt"' },
  { name: "mkfifo", script: 'mkfifo "$OUT/fifo"' },
  { name: "mknod", script: 'mknod "$OUT/null" c 1 3' },
  {
    name: "unix socket bind outside",
    script:
      `${PY} -c 'import socket,os; socket.socket(socket.AF_UNIX).bind(os.environ["OUT"]+"/sock")'`,
    ignore: !hasPython,
  },
  { name: "execute a program outside the grants", script: '"$OUT/tool.sh"' },
  { name: "write via /proc/self/root", script: 'echo pwned > "/proc/self/root$OUT/victim.txt"' },
  { name: "append to .ostk/audit.jsonl", script: 'echo "{}" >> "$P/.ostk/audit.jsonl"' },
  { name: "create in .ostk/agents", script: 'echo x > "$P/.ostk/agents/evil.Agentfile"' },
  { name: "rename .ostk away", script: 'mv "$P/.ostk" "$P/src/stolen_ostk"' },
  { name: "remove .ostk", script: 'rm -r "$P/.ostk"' },
  { name: "child of a child", script: `sh -c 'sh -c "echo pwned > \\"\\$OUT/victim.txt\\""'` },
  { name: "/tmp outside the private TMPDIR", script: 'echo x > "$TMPOUT"' },
  { name: "$HOME", script: 'echo x > "$HOME/.bashrc"' },
  { name: "new top-level entry (denied by design)", script: 'echo x > "$P/newtop"' },
];

Deno.test({ name: "sandbox: escape attempts are denied and change nothing", ignore }, async (t) => {
  await withWorld(async (w) => {
    for (const attempt of ATTEMPTS) {
      await t.step({
        name: attempt.name,
        ignore: attempt.ignore ?? false,
        fn: async () => {
          const before = { out: await snapshot(w.out), ostk: await snapshot(`${w.proj}/.ostk`) };
          const r = await sandboxed(w, attempt.script);
          assert.notEqual(r.code, 0, `escape succeeded: ${attempt.script}\n${r.stderr}`);
          assert.deepEqual(await snapshot(w.out), before.out, "outside changed");
          assert.deepEqual(await snapshot(`${w.proj}/.ostk`), before.ostk, ".ostk changed");
          assert.equal(await exists(w.tmpOut), false);
          assert.equal(await exists(`${w.home}/.bashrc`), false);
          assert.equal(await exists(`${w.proj}/newtop`), false);
          assert.equal(await Deno.readTextFile(`${w.proj}/src/a.txt`), "inside\n");
        },
      });
    }
  });
});

Deno.test(
  { name: "sandbox: a double-forked, setsid'd process stays confined", ignore },
  async () => {
    await withWorld(async (w) => {
      const script = `setsid sh -c 'sleep 0.2; echo pwned > "$OUT/late.txt";
      echo "rc=$?" > "$P/src/late_done"' </dev/null >/dev/null 2>&1 & exit 0`;
      assert.equal((await sandboxed(w, script)).code, 0);
      // Wait for the orphan to report, not for a fixed time.
      const deadline = Date.now() + 20_000;
      while (!(await exists(`${w.proj}/src/late_done`))) {
        assert.ok(Date.now() < deadline, "the orphan never reported");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(await Deno.readTextFile(`${w.proj}/src/late_done`), /^rc=[1-9]/);
      assert.equal(await exists(`${w.out}/late.txt`), false);
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

Deno.test({
  name: "sandbox: processes outside the domain cannot be signalled or inspected",
  ignore: ignore || abi < 6,
}, async () => {
  await withWorld(async (w) => {
    const victim = new Deno.Command("sleep", { args: ["60"], env: { SECRET: "s3cret" } }).spawn();
    try {
      const kill = await sandboxed(w, `kill -TERM ${victim.pid}`);
      assert.notEqual(kill.code, 0, "signal reached a process outside the sandbox");
      const environ = await sandboxed(w, `cat /proc/${victim.pid}/environ`);
      assert.notEqual(environ.code, 0);
      assert.doesNotMatch(environ.stdout, /s3cret/);
    } finally {
      victim.kill("SIGKILL");
      await victim.status;
    }
  });
});

Deno.test(
  { name: "sandbox: TCP is denied unless the port is granted", ignore: ignore || abi < 4 },
  async () => {
    await withWorld(async (w) => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      const accepted: Deno.Conn[] = [];
      const serving = (async () => {
        for await (const conn of listener) accepted.push(conn);
      })();
      try {
        const connect = `exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected`;
        const denied = await sandboxed(w, `bash -c '${connect}'`);
        assert.notEqual(denied.code, 0, "TCP connect escaped the sandbox");
        const granted = { ...w.policy, net: { connect: [port], bind: [] } };
        const allowed = await sandboxed(w, `bash -c '${connect}'`, granted);
        assert.equal(allowed.code, 0, allowed.stderr);
        assert.equal(allowed.stdout.trim(), "connected");
        if (hasPython) {
          const bind = `${PY} -c 'import socket; socket.socket().bind(("127.0.0.1", 0))'`;
          assert.notEqual((await sandboxed(w, bind)).code, 0, "TCP bind escaped the sandbox");
        }
      } finally {
        listener.close();
        await serving;
        for (const conn of accepted) conn.close();
      }
    });
  },
);
