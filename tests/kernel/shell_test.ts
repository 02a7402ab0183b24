import assert from "node:assert/strict";
import { OstkError } from "../../kernel/errors.ts";
import { loadPolicy, type Policy } from "../../kernel/pin_caps.ts";
import {
  auditFieldsFor,
  type DangerRequest,
  runShell,
  type ShellContext,
  type ShellSpawnOptions,
} from "../../kernel/shell.ts";

const PIN = `# test pin
deny: write-kernel
deny-verb: git push
deny-verb: npm publish
`;

/** A scratch project with a default pin; removed after `fn`. */
async function withProject(fn: (root: string, policy: Policy) => Promise<void>): Promise<void> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_shell_" }));
  try {
    await Deno.mkdir(`${root}/.ostk/pins/default`, { recursive: true });
    await Deno.writeTextFile(`${root}/.ostk/pins/default/pin.caps`, PIN);
    await Deno.mkdir(`${root}/sub`);
    const policy = await loadPolicy(`${root}/.ostk`, "default");
    assert.equal(policy.error, undefined);
    await fn(root, policy);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function refusal(p: Promise<unknown>): Promise<OstkError> {
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(err instanceof OstkError, `expected an OstkError, got ${err}`);
  return err;
}

/** Alive means `ps` lists it and it is not a zombie (reaping orphans is init's job). */
async function alive(pid: number): Promise<boolean> {
  const out = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] }).output();
  const stat = new TextDecoder().decode(out.stdout).trim();
  return out.success && stat !== "" && !stat.startsWith("Z");
}

Deno.test("shell: exit codes pass through and output is returned", async () => {
  await withProject(async (root, policy) => {
    const ok = await runShell({ cmd: "echo hello" }, { root, policy });
    assert.equal(ok.exit_code, 0);
    assert.equal(ok.output, "hello\n");
    assert.equal(ok.kind, "success");
    assert.equal(ok.timed_out, false);
    assert.equal(ok.cwd, ".");
    const bad = await runShell({ cmd: "echo nope; exit 3" }, { root, policy });
    assert.equal(bad.exit_code, 3);
    assert.equal(bad.kind, "failure");
    const missing = await runShell({ cmd: "definitely-not-a-command-xyz" }, { root, policy });
    assert.equal(missing.exit_code, 127);
    assert.match(missing.output, /not found/);
  });
});

Deno.test("shell: stdout and stderr arrive interleaved in one stream", async () => {
  await withProject(async (root, policy) => {
    const r = await runShell({ cmd: "echo one; echo two >&2; echo three; ls /nope-xyz" }, {
      root,
      policy,
    });
    const lines = r.output.trim().split("\n");
    assert.deepEqual(lines.slice(0, 3), ["one", "two", "three"]);
    assert.match(lines[3], /nope-xyz/);
    assert.equal(r.exit_code, 2);
  });
});

Deno.test("shell: cwd resolves inside the project; escapes are refused", async () => {
  await withProject(async (root, policy) => {
    const r = await runShell({ cmd: "pwd", cwd: "sub" }, { root, policy });
    assert.equal(r.output, `${root}/sub\n`);
    assert.equal(r.cwd, "sub");
    for (const cwd of ["..", "../..", "/etc", "sub/../..", ".ostk"]) {
      const err = await refusal(runShell({ cmd: "touch escaped", cwd }, { root, policy }));
      assert.equal(err.code, "permission", cwd);
    }
    await Deno.symlink("/tmp", `${root}/out`);
    assert.equal(
      (await refusal(runShell({ cmd: "pwd", cwd: "out" }, { root, policy }))).code,
      "permission",
    );
    assert.equal(
      (await refusal(runShell({ cmd: "pwd", cwd: "nope" }, { root, policy }))).code,
      "not_found",
    );
  });
});

Deno.test("shell: deny-verb refusal names the rule and its file:line", async () => {
  await withProject(async (root, policy) => {
    const marker = `${root}/ran`;
    const err = await refusal(
      runShell({ cmd: `touch ${marker} && git   push origin main` }, { root, policy }),
    );
    assert.equal(err.code, "permission");
    assert.equal(err.details?.rule, "deny-verb: git push");
    assert.equal(err.details?.source, ".ostk/pins/default/pin.caps:3");
    assert.match(err.message, /deny-verb: git push/);
    assert.match(err.message, /pin\.caps:3/);
    assert.equal(err.site.line, 3);
    await assert.rejects(Deno.stat(marker), Deno.errors.NotFound);
    const npm = await refusal(runShell({ cmd: "npm publish --dry-run" }, { root, policy }));
    assert.equal(npm.details?.source, ".ostk/pins/default/pin.caps:4");
  });
});

Deno.test("shell: a policy that failed to load refuses every command", async () => {
  await withProject(async (root) => {
    const policy = await loadPolicy(`${root}/.ostk`, "missing-pin");
    const err = await refusal(runShell({ cmd: "echo hi" }, { root, policy }));
    assert.equal(err.code, "permission");
    assert.equal(err.details?.rule, "fail-closed");
  });
});

async function gitRepo(root: string): Promise<void> {
  const git = "git -c user.email=t@t -c user.name=t";
  const setup = await runShell({
    cmd:
      `git init -q . && echo v1 > f.txt && ${git} add f.txt && ${git} commit -qm init && echo v2 > f.txt`,
  }, { root, policy: { pins: [], rules: [] } });
  assert.equal(setup.exit_code, 0, setup.output);
}

Deno.test("shell: a dangerous command is refused without approval, run with it", async () => {
  await withProject(async (root, policy) => {
    await gitRepo(root);
    const cmd = "git reset --hard";
    const none = await refusal(runShell({ cmd }, { root, policy }));
    assert.equal(none.code, "permission");
    assert.equal(none.details?.pattern, "git-reset-hard");
    assert.equal(none.details?.needs, "approval");
    assert.ok(typeof none.details?.reason === "string");
    assert.equal(await Deno.readTextFile(`${root}/f.txt`), "v2\n");

    const asked: DangerRequest[] = [];
    const declined = await refusal(runShell({ cmd }, {
      root,
      policy,
      approveDanger: (d) => (asked.push(d), Promise.resolve(false)),
    }));
    assert.equal(declined.details?.pattern, "git-reset-hard");
    assert.deepEqual(asked.map((d) => [d.pattern, d.cmd, d.cwd]), [["git-reset-hard", cmd, "."]]);
    assert.equal(await Deno.readTextFile(`${root}/f.txt`), "v2\n");

    const r = await runShell({ cmd }, { root, policy, approveDanger: () => Promise.resolve(true) });
    assert.equal(r.exit_code, 0);
    assert.equal(r.danger?.pattern, "git-reset-hard");
    assert.equal(await Deno.readTextFile(`${root}/f.txt`), "v1\n");
    assert.equal(auditFieldsFor(r).danger, "git-reset-hard");
  });
});

Deno.test("shell: deny-verb wins over approval", async () => {
  await withProject(async (root, policy) => {
    let asked = false;
    const err = await refusal(runShell({ cmd: "git push --force origin main" }, {
      root,
      policy,
      approveDanger: () => (asked = true, Promise.resolve(true)),
    }));
    assert.equal(err.details?.rule, "deny-verb: git push");
    assert.equal(asked, false);
  });
});

Deno.test("shell: the timeout stops the whole process group", async () => {
  await withProject(async (root, policy) => {
    // Nothing holds the output pipe once the leader dies, so only a kill of the whole group
    // (not of the shell alone) stops the background sleep.
    const r = await runShell(
      {
        cmd: "echo started; exec >/dev/null 2>&1; sleep 100 & echo $! > bg.pid; wait",
        timeout_s: 0.5,
      },
      { root, policy, killGraceMs: 500 },
    );
    assert.equal(r.timed_out, true);
    assert.notEqual(r.exit_code, 0);
    assert.match(r.output, /started/);
    const bg = Number(await Deno.readTextFile(`${root}/bg.pid`));
    assert.ok(bg > 0);
    assert.equal(await alive(Deno.pid), true, "alive() must see a live process");
    assert.equal(await alive(bg), false, `background sleep ${bg} survived`);
  });
});

Deno.test("shell: children that ignore SIGTERM get SIGKILL after the grace period", async () => {
  await withProject(async (root, policy) => {
    const r = await runShell(
      { cmd: "trap '' TERM; sleep 100 & echo $! > bg.pid; sleep 100", timeout_s: 0.3 },
      { root, policy, killGraceMs: 300 },
    );
    assert.equal(r.timed_out, true);
    assert.equal(await alive(Number(await Deno.readTextFile(`${root}/bg.pid`))), false);
  });
});

Deno.test("shell: leftovers holding the output pipe are stopped when the shell exits", async () => {
  await withProject(async (root, policy) => {
    const r = await runShell({ cmd: "sleep 100 & echo $! > bg.pid; echo done" }, {
      root,
      policy,
      killGraceMs: 300,
    });
    assert.equal(r.timed_out, false);
    assert.equal(r.exit_code, 0);
    assert.equal(r.output, "done\n");
    assert.equal(await alive(Number(await Deno.readTextFile(`${root}/bg.pid`))), false);
  });
});

Deno.test("shell: a background job that redirected its output outlives the call", async () => {
  await withProject(async (root, policy) => {
    const r = await runShell({ cmd: "sleep 30 >/dev/null 2>&1 & echo $! > bg.pid" }, {
      root,
      policy,
    });
    const bg = Number(await Deno.readTextFile(`${root}/bg.pid`));
    try {
      assert.equal(r.exit_code, 0);
      assert.equal(await alive(bg), true);
    } finally {
      Deno.kill(bg, "SIGKILL");
    }
  });
});

Deno.test("shell: output is compressed (folding, head/tail cut, ANSI)", async () => {
  await withProject(async (root, policy) => {
    const folded = await runShell({ cmd: "for i in $(seq 50); do echo waiting for server; done" }, {
      root,
      policy,
    });
    assert.equal(folded.output, "waiting for server (×50)\n");
    assert.equal(folded.bytes_before, 19 * 50);
    assert.equal(folded.bytes_after, new TextEncoder().encode(folded.output).length);

    const long = await runShell({ cmd: "seq 1 5000; echo 'error: disk full' >&2; seq 1 10" }, {
      root,
      policy,
    });
    assert.match(long.output, /… \[cut \d+ lines, \d+ bytes\] …/);
    assert.match(long.output, /error: disk full/);
    assert.ok(long.bytes_after < long.bytes_before / 10);
    assert.ok(long.cut && long.cut.lines > 4000);

    const color = await runShell({ cmd: "printf '\\033[31mred\\033[0m\\n'" }, { root, policy });
    assert.equal(color.output, "red\n");
  });
});

Deno.test("shell: the output buffer is bounded and the truncation noted", async () => {
  await withProject(async (root, policy) => {
    const r = await runShell({ cmd: "seq 1 100000; echo last-line" }, {
      root,
      policy,
      maxOutputBytes: 4096,
    });
    assert.equal(r.truncated, true);
    assert.equal(r.bytes_before, 588895 + 10);
    assert.match(r.output, /output truncated: \d+ bytes dropped here/);
    assert.match(r.output, /^1\n2\n/);
    assert.match(r.output, /last-line\n$/);
    assert.equal(auditFieldsFor(r).truncated, true);
  });
});

Deno.test("shell: an injected sandbox spawner runs the command", async () => {
  await withProject(async (root, policy) => {
    const calls: [string[], ShellSpawnOptions][] = [];
    const ctx: ShellContext = {
      root,
      policy,
      sandbox: {
        spawn(cmd, opts) {
          calls.push([cmd, opts]);
          return new Deno.Command(cmd[0], {
            ...opts,
            args: cmd.slice(1),
            env: { SANDBOXED: "yes" },
          })
            .spawn();
        },
      },
    };
    const r = await runShell({ cmd: "echo $SANDBOXED", cwd: "sub" }, ctx);
    assert.equal(r.output, "yes\n");
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0][0].slice(0, 2), ["sh", "-c"]);
    assert.match(calls[0][0][2], /echo \$SANDBOXED$/);
    assert.equal(calls[0][1].cwd, `${root}/sub`);
    assert.equal(calls[0][1].detached, true);
  });
});

Deno.test("shell: the timeout still ends the call when a spawner ignores detached", async () => {
  await withProject(async (root, policy) => {
    const r = await runShell({ cmd: "echo up; exec sleep 100", timeout_s: 0.3 }, {
      root,
      policy,
      killGraceMs: 300,
      sandbox: {
        spawn: (cmd, { detached: _, ...opts }) =>
          new Deno.Command(cmd[0], { ...opts, args: cmd.slice(1) }).spawn(),
      },
    });
    assert.equal(r.timed_out, true);
    assert.equal(r.output, "up\n");
  });
});

Deno.test("shell: malformed input is refused as bad_input", async () => {
  await withProject(async (root, policy) => {
    for (
      const input of [
        { cmd: "" },
        { cmd: "  " },
        { cmd: "a\0b" },
        { cmd: "ls", timeout_s: 0 },
        {
          cmd: "ls",
          timeout_s: -1,
        },
        { cmd: "ls", timeout_s: Number.NaN },
        { cmd: "x".repeat(70_000) },
      ]
    ) {
      assert.equal((await refusal(runShell(input, { root, policy }))).code, "bad_input");
    }
  });
});

Deno.test("shell: auditFieldsFor records exactly the audit fields", async () => {
  await withProject(async (root, policy) => {
    const r = await runShell({ cmd: "echo hi" }, { root, policy });
    const fields = auditFieldsFor(r);
    assert.deepEqual(Object.keys(fields).sort(), [
      "bytes_after",
      "bytes_before",
      "cmd",
      "duration_ms",
      "exit_code",
      "kind",
      "timed_out",
    ]);
    assert.equal(fields.cmd, "echo hi");
    assert.equal(fields.exit_code, 0);
    assert.equal(typeof fields.duration_ms, "number");
    assert.equal("output" in fields, false);
  });
});
