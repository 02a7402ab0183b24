/**
 * `ostk learn`: the strace parser on recorded traces (fixtures/learn/strace_*.txt, recorded in
 * /tmp/ostk-learn-rec/proj), the reduction to LIMIT lines, the Agentfile rewrite, and the CLI
 * end to end on real programs under real strace.
 */
import assert from "node:assert/strict";
import { parseAgentfile } from "../../kernel/agentfile_parse.ts";
import { AuditLog } from "../../kernel/audit.ts";
import { ephemeralSigner } from "../../kernel/identity.ts";
import { procStat } from "../../kernel/proc.ts";
import {
  findStrace,
  limitLines,
  parseStrace,
  reduceEvents,
  rewriteLimits,
  StraceParser,
  type TraceEvent,
} from "../../sandbox/learn.ts";
import { runOstk, type Scratch, withScratch } from "../helpers/run_ostk.ts";

const FIXTURES = decodeURIComponent(new URL("../../fixtures/learn/", import.meta.url).pathname);
const REC = "/tmp/ostk-learn-rec/proj";
const fixture = (name: string) => Deno.readTextFile(`${FIXTURES}${name}`);
/** The recorded project is gone; these were its directories. */
const recDirs = new Set(
  ["src/gen", "out", "tmp", "tmp/x", "tmp/m", "src"].map((d) => `${REC}/${d}`),
);
const isDir = (abs: string) => recDirs.has(abs);

const noStrace = await findStrace().then(() => false, (e: Error) => e.message);
if (noStrace) console.warn(`learn_test: skipping the end-to-end tests: ${noStrace}`);

const paths = (events: TraceEvent[], kind: string) =>
  events.flatMap((e) => e.kind === kind && "path" in e && !e.errno ? [e.path] : []);

Deno.test("strace parser: the fixture agent's writes, reads, rename and connect", async () => {
  const events = parseStrace(await fixture("strace_agent.txt"), REC);
  const writes = paths(events, "write").filter((p) => p.startsWith(REC));
  assert.deepEqual(writes, [
    `${REC}/src/gen/a.ts`,
    `${REC}/src/gen/b.ts`,
    `${REC}/tmp/x`,
    `${REC}/out/log.tmp`,
    `${REC}/out/log.tmp`, // renameat2: both ends
    `${REC}/out/log.txt`,
    `${REC}/out/log.txt`, // "../../out/log.txt" after chdir into src/gen
    `${REC}/.ostk/learn-probe`,
  ]);
  const reads = paths(events, "read").filter((p) => p.startsWith(REC));
  assert.deepEqual(reads, [`${REC}/fixtures/learn/agent.sh`, `${REC}/README.md`]);
  const tty = events.find((e) => "path" in e && e.path === "/dev/tty");
  assert.deepEqual(tty && { kind: tty.kind, errno: tty.errno }, { kind: "write", errno: "ENXIO" });
  const connects = events.filter((e) => e.kind === "connect");
  assert.deepEqual(connects.map((e) => "host" in e && `${e.host}:${e.port}:${e.proto}`), [
    "127.0.0.1:41234:tcp",
  ]);
});

Deno.test("strace parser: split calls are joined and escaped names decoded", async () => {
  const events = parseStrace(await fixture("strace_parallel.txt"), REC);
  const writes = paths(events, "write").filter((p) => p.startsWith(`${REC}/out/`));
  assert.deepEqual(writes.sort(), [
    `${REC}/out/nl\nx.txt`,
    ...[1, 2, 3, 4, 5, 6].map((i) => `${REC}/out/p${i}.txt`),
    `${REC}/out/sp ace "q" é.txt`,
  ]);
  assert.equal(paths(events, "read").filter((p) => p === `${REC}/README.md`).length, 6);
});

Deno.test("strace parser: every write-like syscall, sockets, and failed calls", async () => {
  const events = parseStrace(await fixture("strace_misc.txt"), REC);
  const seen = events.flatMap((e) =>
    e.kind === "write"
      ? [`${e.syscall} ${e.path.replace(REC, "")} ${e.scope}${e.errno ? ` ${e.errno}` : ""}`]
      : []
  );
  assert.deepEqual(seen, [
    "mkdir /tmp/m parent",
    "openat /out/new.txt parent",
    "openat /out/new.txt self",
    "truncate /out/new.txt self",
    "chmod /out/new.txt self",
    "symlink /out/link parent",
    "link /out/hard parent",
    "unlink /out/link parent",
    "unlink /out/hard parent",
    "rename /out/new.txt parent",
    "rename /tmp/m/moved.txt parent",
    "rmdir /tmp/x parent",
    "mkdir /src parent EEXIST",
    "openat /proc/version parent",
    // A thread (CLONE_FS) did chdir("src") and then opened gen/c.ts.
    "openat /src/gen/c.ts parent",
  ]);
  const sockets = events.flatMap((e) =>
    e.kind === "connect" || e.kind === "bind"
      ? [`${e.kind} ${e.family} ${e.host} ${e.port} ${e.proto} ${e.errno ?? "ok"}`]
      : []
  );
  assert.deepEqual(sockets, [
    "connect inet6 ::1 41235 tcp ECONNREFUSED",
    "connect inet 127.0.0.1 41236 tcp ECONNREFUSED",
    "connect inet 127.0.0.53 53 udp ok",
    "connect unix /run/nothing.sock 0 unix ENOENT",
    "bind inet 127.0.0.1 0 tcp ok",
  ]);
});

Deno.test("strace parser: cwd follows chdir, is shared under CLONE_FS and copied on fork", () => {
  const p = new StraceParser("/p");
  const lines = [
    '10 chdir("a") = 0',
    "10 clone3({flags=CLONE_VM|CLONE_FS|CLONE_THREAD, exit_signal=0} => {parent_tid=[11]}, 88) = 11",
    "10 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x1) = 12",
    '11 chdir("b") = 0', // moves thread 10 too, not the forked 12
    '10 mkdir("x", 0777) = 0',
    '12 unlink("y") = 0',
    '12 openat(AT_FDCWD</q>, "z", O_WRONLY|O_TRUNC) = -1 EACCES (Permission denied)',
    '12 rmdir("w") = 0', // AT_FDCWD</q> above told us 12's cwd is /q
    '13 openat(AT_FDCWD, "f", O_RDONLY|O_PATH) = 3</p/f>', // O_PATH: not a read
    '13 openat(AT_FDCWD, "/dev/stdout", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3<pipe:[9]>',
  ];
  const got = lines.flatMap((l) => p.push(l)).map((e) =>
    "path" in e ? `${e.kind} ${e.path}${e.errno ? ` ${e.errno}` : ""}` : e.kind
  );
  assert.deepEqual(got, ["write /p/a/b/x", "write /p/a/y", "write /q/z EACCES", "write /q/w"]);
});

Deno.test("reduce: the fixture agent's run gives exactly the expected LIMIT lines", async () => {
  const events = parseStrace(await fixture("strace_agent.txt"), REC);
  const learned = reduceEvents(events, { root: REC, tmpdir: "/tmp/ostk-learn-rec/tmpdir", isDir });
  assert.deepEqual(limitLines(learned), [
    "LIMIT write-path out/ src/gen/ tmp/",
    "LIMIT read-path README.md fixtures/learn/agent.sh out/ src/gen/ tmp/",
    "LIMIT net 127.0.0.1:41234",
  ]);
  assert.deepEqual(learned.ignored.map((i) => i.reason), [
    "in the run's private TMPDIR",
    "under .ostk/, which is never granted",
  ]);
  assert.deepEqual(learned.failed, []); // /dev/tty's ENXIO is not intent
});

Deno.test("reduce: failed intent kept, EEXIST dropped, UDP and unix ignored, binds kept", async () => {
  const events = parseStrace(await fixture("strace_misc.txt"), REC);
  const learned = reduceEvents(events, { root: REC, isDir });
  assert.deepEqual(learned["write-path"], ["out/", "src/gen/", "tmp/", "/proc/"]);
  assert.deepEqual(learned.net, ["127.0.0.1:41236", "[::1]:41235"]);
  assert.deepEqual(learned.binds, []); // port 0: nothing to grant
  assert.deepEqual(learned.ignored.map((i) => i.path), ["127.0.0.53:53", "/run/nothing.sock"]);
  const failedWrite = { kind: "write" as const, pid: 1, syscall: "openat", scope: "self" as const };
  const more = reduceEvents([
    { ...failedWrite, path: `${REC}/docs/a.md`, errno: "EACCES" },
    { ...failedWrite, path: `${REC}/docs/b.md`, errno: "EISDIR" },
    { kind: "read", pid: 1, syscall: "openat", path: `${REC}/lib/x`, dir: false, errno: "ENOENT" },
    { kind: "read", pid: 1, syscall: "openat", path: `${REC}/my file#1`, dir: false },
    { kind: "bind", pid: 1, syscall: "bind", family: "inet", host: "127.0.0.1", port: 8080 },
  ], { root: REC, isDir });
  assert.deepEqual(more.binds, ["127.0.0.1:8080"]);
  assert.deepEqual(more.net, []);
  assert.deepEqual(more["write-path"], ["docs/a.md"]);
  assert.deepEqual(more.failed.map((f) => f.errno), ["EACCES"]);
  assert.deepEqual(limitLines(more)[1], 'LIMIT read-path docs/a.md "my file#1"');
});

Deno.test("rewrite: LIMIT path and net lines replaced, comments and the rest kept", async () => {
  const text = await fixture("agent.Agentfile");
  const learned = { "write-path": ["out/"], "read-path": ["out/", "README.md"], net: [] };
  const next = rewriteLimits(text, "a.Agentfile", learned);
  const want = text.replace(
    "LIMIT write-path src/ \\\n                 docs/\nLIMIT net registry.npmjs.org:443\n",
    "LIMIT write-path out/\nLIMIT read-path out/ README.md\nLIMIT net none\n",
  );
  assert.notEqual(want, text);
  assert.equal(next, want);
  // Nothing written seen: the old write-path stays (no path value means "none").
  const kept = rewriteLimits(text, "a", { "write-path": [], "read-path": ["x"], net: ["h:1"] });
  assert.match(kept, /LIMIT write-path src\/ \\\n {17}docs\/\n/);
  // No LIMIT lines at all: appended at the end.
  const bare = rewriteLimits("FROM command:x\nTASK go\n", "b", learned);
  assert.equal(
    bare,
    "FROM command:x\nTASK go\nLIMIT write-path out/\nLIMIT read-path out/ README.md\nLIMIT net none\n",
  );
  parseAgentfile(bare, "b");
});

// ---- end to end: the real CLI, the real strace ----

/** A project in the scratch dir holding the fixture agent and the entries it writes into. */
async function project(scratch: Scratch): Promise<string> {
  const dir = `${scratch.dir}/proj`;
  for (const sub of [".ostk", "src/gen", "out", "tmp", "fixtures/learn"]) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
  }
  await Deno.writeTextFile(`${dir}/README.md`, "# fixture project\n");
  for (const name of ["agent.sh", "sleeper.sh"]) {
    await Deno.copyFile(`${FIXTURES}${name}`, `${dir}/fixtures/learn/${name}`);
  }
  return dir;
}

/** A TCP port on loopback that accepts (and drops) connections while `fn` runs. */
async function withPort(fn: (port: number) => Promise<void>): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const conn of listener) conn.close();
  })();
  try {
    await fn(listener.addr.port);
  } finally {
    listener.close();
    await accepting.catch(() => {}); // closing the listener ends the loop with BadResource
  }
}

const e2e = { ignore: Boolean(noStrace), sanitizeResources: false, sanitizeOps: false };

Deno.test(
  { name: "learn -- CMD: prints exactly the LIMIT lines the agent needed", ...e2e },
  () =>
    withScratch((scratch) =>
      withPort(async (port) => {
        const cwd = await project(scratch);
        const r = await runOstk(scratch, [
          "learn",
          "--",
          "sh",
          "fixtures/learn/agent.sh",
          `${port}`,
        ], {
          cwd,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(
          r.stdout,
          "LIMIT write-path out/ src/gen/ tmp/\n" +
            "LIMIT read-path README.md fixtures/learn/agent.sh out/ src/gen/ tmp/\n" +
            `LIMIT net 127.0.0.1:${port}\n`,
        );
        assert.match(r.stderr, /not granted: .*\.ostk\/learn-probe: under \.ostk\//);
        assert.equal(await Deno.readTextFile(`${cwd}/out/log.txt`), "started\nmore\n");
      })
    ),
);

Deno.test(
  { name: "learn --apply: rewrites the Agentfile's LIMIT lines", ...e2e },
  () =>
    withScratch((scratch) =>
      withPort(async (port) => {
        const cwd = await project(scratch);
        const fill = async (name: string) => (await fixture(name)).replaceAll("@PORT@", `${port}`);
        await Deno.writeTextFile(`${cwd}/agent.Agentfile`, await fill("agent.Agentfile"));
        const r = await runOstk(scratch, ["learn", "agent.Agentfile", "--apply", "--json"], {
          cwd,
        });
        assert.equal(r.code, 0, r.stderr);
        const report = JSON.parse(r.stdout);
        assert.equal(report.mechanism, "strace");
        assert.deepEqual(report.limits.net, [`127.0.0.1:${port}`]);
        assert.equal(report.applied, `${cwd}/agent.Agentfile`);
        const after = await Deno.readTextFile(`${cwd}/agent.Agentfile`);
        assert.equal(after, await fill("agent.applied.Agentfile"));
      })
    ),
);

Deno.test(
  { name: "learn --duration: stops a program that would sleep on", ...e2e },
  () =>
    withScratch(async (scratch) => {
      const cwd = await project(scratch);
      const r = await runOstk(
        scratch,
        ["learn", "--duration", "1", "--", "sh", "fixtures/learn/sleeper.sh"],
        { cwd },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout,
        "LIMIT write-path out/\nLIMIT read-path fixtures/learn/sleeper.sh out/\n",
      );
      assert.match(r.stderr, /stopped the run after --duration/);
      for (const name of ["shell.pid", "sleep.pid"]) {
        const pid = (await Deno.readTextFile(`${cwd}/out/${name}`)).trim();
        assert.ok(await gone(Number(pid)), `${name} ${pid} still runs`);
      }
    }),
);

Deno.test("learn: a script Agentfile is learned from its sessions' audit rows", () =>
  withScratch(async (scratch) => {
    const cwd = await project(scratch);
    await Deno.writeTextFile(`${cwd}/s.Agentfile`, "FROM script:agents/t.jsonl\nTASK go\n");
    let r = await runOstk(scratch, ["learn", "s.Agentfile"], { cwd });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no session in the audit log ran this transcript.*ostk spawn/);
    const log = new AuditLog(`${cwd}/.ostk/audit.jsonl`, { signer: await ephemeralSigner() });
    const spawn = (alias: string, script: string) => ({
      event: "session.spawn",
      actor: "operator",
      fields: { session: alias, alias, cpu: "script", spec: { kind: "script", script } },
    });
    const row = (event: string, actor: string, fields: Record<string, unknown>) => ({
      event,
      actor,
      fields,
    });
    await log.appendBatch([
      spawn("t-1", `${cwd}/agents/t.jsonl`),
      spawn("u-1", `${cwd}/agents/u.jsonl`),
      row("tool.file_create", "t-1", { path: "src/gen/a.ts", gen: 1 }),
      row("tool.file_edit", "t-1", { path: "src/gen/b.ts", gen: 2 }),
      row("tool.file_read", "t-1", { path: "README.md", gen: 1 }),
      row("policy.deny", "t-1", { tool: "file:write", path: "docs/x.md", rule: "r" }),
      row("tool.file_create", "u-1", { path: "lib/z.ts", gen: 1 }),
    ]);
    log.close();
    r = await runOstk(scratch, ["learn", "s.Agentfile"], { cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      "LIMIT write-path docs/x.md src/gen/\nLIMIT read-path README.md docs/x.md src/gen/\n",
    );
    assert.match(r.stderr, /kept failed policy\.deny .*docs\/x\.md/);
  }));

Deno.test("learn: usage errors exit 2 and name the problem", () =>
  withScratch(async (scratch) => {
    for (
      const [args, message] of [
        [["learn"], /expected an Agentfile or -- CMD/],
        [["learn", "--apply", "--", "true"], /--apply needs an Agentfile/],
        [["learn", "--duration", "soon", "--", "true"], /--duration: expected a duration/],
        [["learn", "--"], /'--' needs a command/],
      ] as const
    ) {
      const r = await runOstk(scratch, [...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const help = await runOstk(scratch, ["learn", "--help"]);
    assert.match(help.stdout, /Mechanism: strace -f -qq -yy/);
  }));

/** True when `pid` has exited (gone, or a zombie nobody has reaped yet). */
async function gone(pid: number): Promise<boolean> {
  const fields = await procStat(pid);
  return fields === undefined || fields[0] === "Z";
}

Deno.test("learn: a program that cannot be found is one line from ostk, not strace's too", () =>
  withScratch(async (scratch) => {
    for (
      const [args, message] of [
        [
          ["learn", "--", "nosuch-program-ostk"],
          /^ostk: program 'nosuch-program-ostk' is not on PATH/,
        ],
        [["learn", "--", "./nope"], /^ostk: program '\.\/nope' is not an executable file/],
      ] as const
    ) {
      const r = await runOstk(scratch, [...args]);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    }
  }));
