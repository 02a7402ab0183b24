/**
 * End-to-end tests of the `ostk` command line: each test spawns the real CLI (main.ts under
 * `deno run`, with the permissions `deno task ostk` grants) in its own scratch directory.
 */
import assert from "node:assert/strict";
import {
  ostkCommand,
  type OstkResult,
  type RunOptions,
  runOstk,
  type Scratch,
  withScratch,
} from "../helpers/run_ostk.ts";

/** Every command `ostk --help` must list, with the words that start its usage line. */
const COMMANDS = ["init", "boot", "os audit", "log", "alias", "demo"];

/** What `ostk init` lays down inside `.ostk/`: [path, "file" | "dir"]. */
const INIT_PARTS: [string, "file" | "dir"][] = [
  ["HUMANFILE", "file"],
  ["pins/default/pin.caps", "file"],
  ["agents", "dir"],
  ["drain", "dir"],
  ["audit.jsonl", "file"],
  ["audit.head", "file"],
  ["gen_table.jsonl", "file"],
  [".gitignore", "file"],
  ["identity.pub", "file"],
];

const ostk = runOstk;

/** Run and insist on exit 0, showing stderr when it is not. */
async function ok(scratch: Scratch, args: string[], options?: RunOptions): Promise<OstkResult> {
  const result = await runOstk(scratch, args, options);
  assert.equal(result.code, 0, `ostk ${args.join(" ")} failed:\n${result.stderr}`);
  return result;
}

/** `mkdir <scratch>/<name>` and `ostk init` in it; returns the project root. */
async function initProject(scratch: Scratch, name = "p"): Promise<string> {
  const root = `${scratch.dir}/${name}`;
  await Deno.mkdir(root);
  await ok(scratch, ["init"], { cwd: root });
  return root;
}

/** The one stderr line of a refused command: `ostk: …`. */
function errorLine(result: OstkResult): string {
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${result.stderr}`);
  assert.match(lines[0], /^ostk: /);
  return lines[0];
}

/** Every file and directory under `roots`, with file modes and bytes, for before/after checks. */
async function snapshot(...roots: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const text = new TextDecoder("utf-8", { fatal: true });
  const walk = async (path: string) => {
    const info = await Deno.lstat(path);
    const mode = ((info.mode ?? 0) & 0o777).toString(8);
    if (info.isDirectory) {
      out[path] = `dir ${mode}`;
      for await (const entry of Deno.readDir(path)) await walk(`${path}/${entry.name}`);
      return;
    }
    const bytes = await Deno.readFile(path);
    let body: string;
    try {
      body = text.decode(bytes);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      body = `binary ${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
    }
    out[path] = `file ${mode} ${body}`;
  };
  for (const root of roots) await walk(root);
  return out;
}

/** The log's lines (without the trailing newline) and parsed rows. */
async function auditLines(root: string): Promise<string[]> {
  const text = await Deno.readTextFile(`${root}/.ostk/audit.jsonl`);
  assert.ok(text.endsWith("\n"), "audit.jsonl should end in a newline");
  return text.slice(0, -1).split("\n");
}

/** `SHA256:<base64, unpadded>` of the key in an identity.pub, computed independently of ostk. */
async function fingerprintOf(identityPub: string): Promise<string> {
  const [kind, b64] = identityPub.trim().split(/\s+/);
  assert.equal(kind, "ed25519");
  const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  assert.equal(raw.length, 32);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  return `SHA256:${btoa(String.fromCharCode(...digest)).replace(/=+$/, "")}`;
}

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout.trimEnd().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

// ---------------------------------------------------------------------------------------------
// help, version, usage errors

Deno.test("--version matches deno.json and every help page starts with its usage", async () => {
  await withScratch(async (s) => {
    const manifest = JSON.parse(
      await Deno.readTextFile(new URL(import.meta.resolve("../../deno.json"))),
    );
    const [version, help, shortHelp, helpWord, helpOsAudit, helpAlias, ...pages] = await Promise
      .all([
        ok(s, ["--version"]),
        ok(s, ["--help"]),
        ok(s, ["-h"]),
        ok(s, ["help"]),
        ok(s, ["help", "os", "audit"]),
        ok(s, ["help", "alias"]),
        ...COMMANDS.map((c) => ok(s, [...c.split(" "), "--help"])),
      ]);
    assert.equal(version.stdout, `ostk ${manifest.version}\n`);
    assert.match(help.stdout, /^usage: ostk /);
    for (const command of COMMANDS) {
      assert.match(help.stdout, new RegExp(`^  ${command} +\\S`, "m"), `--help lacks ${command}`);
    }
    assert.equal(shortHelp.stdout, help.stdout);
    assert.equal(helpWord.stdout, help.stdout);
    COMMANDS.forEach((command, i) => {
      assert.ok(
        pages[i].stdout.startsWith(`usage: ostk ${command}`),
        `ostk ${command} --help starts with: ${pages[i].stdout.split("\n")[0]}`,
      );
      assert.equal(pages[i].stderr, "");
    });
    assert.equal(helpOsAudit.stdout, pages[COMMANDS.indexOf("os audit")].stdout);
    assert.match(helpOsAudit.stdout, /--repair/);
    assert.equal(helpAlias.stdout, pages[COMMANDS.indexOf("alias")].stdout);
    // Help never needs a project, and must not create one.
    const entries = async (dir: string) =>
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(await entries(s.dir), ["config", "home"]);
    assert.deepEqual(await entries(s.config), []);
  });
});

Deno.test("usage errors exit 2 with one line that says where to look", async () => {
  await withScratch(async (s) => {
    const cases: [string[], RegExp][] = [
      [["nope"], /unknown command 'nope'.*'ostk --help'/],
      [["boot", "--bogus"], /--bogus.*'ostk boot --help'/],
      [["os"], /'os' needs a sub-command.*ostk os audit/],
      [["os", "nope"], /unknown command 'os nope'.*ostk os audit/],
      [["--bogus"], /unknown global flag '--bogus'/],
      [["-C"], /-C needs a directory/],
      [["-C", `${s.dir}/missing`, "boot"], /no such directory/],
      [["help", "nope"], /unknown command 'nope'/],
      [["log", "--event"], /'ostk log --help'/],
      [["os", "audit", "extra"], /'ostk os audit --help'/],
      // Past setTimeout's limit a wait would fire at once: refused, not silently "now".
      [["run", "a.Agentfile", "--approval-timeout-ms", "3000000000"], /to 2147483647/],
      [["listen", "--tick-ms", "3000000000"], /--tick-ms needs an integer from 10 to/],
      [["attach", "w-1", "--from", "soon"], /--from needs an integer from 0/],
    ];
    const results = await Promise.all(cases.map(([args]) => ostk(s, args)));
    cases.forEach(([args, pattern], i) => {
      const result = results[i];
      assert.equal(result.code, 2, `ostk ${args.join(" ")}: ${result.stderr}`);
      assert.match(errorLine(result), pattern, `ostk ${args.join(" ")}`);
      assert.equal(result.stdout, "");
    });
    // No arguments at all: the global help, on stderr, and a usage exit.
    const bare = await ostk(s, []);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^usage: ostk /);
  });
});

Deno.test("a typo gets the nearest command or flag, even across a group", async () => {
  await withScratch(async (s) => {
    const cases: [string[], string][] = [
      [["lgo"], "did you mean 'ostk log'?"],
      [["audit"], "did you mean 'ostk os audit'?"],
      [["drivr", "list"], "did you mean 'ostk driver list'?"],
      [["os", "recovr"], "did you mean 'ostk os recover'?"],
      [["log", "--folow"], "unknown flag '--folow' (did you mean --follow? see 'ostk log --help')"],
    ];
    const results = await Promise.all(cases.map(([args]) => ostk(s, args)));
    cases.forEach(([args, words], i) => {
      assert.equal(results[i].code, 2, `ostk ${args.join(" ")}: ${results[i].stderr}`);
      assert.ok(
        errorLine(results[i]).includes(words),
        `ostk ${args.join(" ")}: ${results[i].stderr}`,
      );
    });
  });
});

Deno.test("call --help names every kernel tool, and a refusal names its file once", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    const help = await ok(s, ["call", "--help"]);
    const { TOOL_SCHEMAS } = await import("../../kernel/tool_schema.ts");
    for (const tool of Object.keys(TOOL_SCHEMAS)) {
      assert.match(help.stdout, new RegExp(`^  ${tool} +\\{`, "m"), `call --help lacks ${tool}`);
    }
    await Deno.mkdir(`${root}/src`);
    await Deno.writeTextFile(`${root}/src/x.mjs`, "a\n");
    const refused = await ostk(s, [
      "call",
      "file:edit",
      JSON.stringify({ path: "src/x.mjs", old: "zzz", new: "b" }),
    ], { cwd: root });
    assert.equal(refused.code, 1);
    assert.match(errorLine(refused), /^ostk: src\/x\.mjs: 'old' text not found \(/);
  });
});

// ---------------------------------------------------------------------------------------------
// init and the operator key

Deno.test("init lays down .ostk/ and a private operator key, and a second init changes nothing", async () => {
  await withScratch(async (s) => {
    const root = `${s.dir}/p`;
    await Deno.mkdir(root);
    const first = await ok(s, ["init", "--json"], { cwd: root });
    const report = JSON.parse(first.stdout);
    assert.equal(report.root, root);
    assert.equal(report.existed, false);
    assert.equal(report.key_path, s.keyPath);
    assert.equal(report.key_created, true);
    assert.match(report.operator, /^SHA256:[A-Za-z0-9+/]{43}$/);
    for (const [part, kind] of INIT_PARTS) {
      assert.ok(
        report.created.includes(`.ostk/${part}${kind === "dir" ? "/" : ""}`),
        `created lacks ${part}: ${report.created}`,
      );
      const info = await Deno.stat(`${root}/.ostk/${part}`);
      assert.equal(kind === "dir" ? info.isDirectory : info.isFile, true, part);
    }
    const pub = await Deno.readTextFile(`${root}/.ostk/identity.pub`);
    assert.equal(await fingerprintOf(pub), report.operator);
    assert.match(await Deno.readTextFile(`${root}/.ostk/.gitignore`), /^drain\/$/m);
    const rows = (await auditLines(root)).map((l) => JSON.parse(l));
    assert.equal(rows.length, 1);
    assert.equal(rows[0].seq, 0);
    assert.equal(rows[0].event, "os.init");
    assert.equal(rows[0].key, report.operator);

    assert.equal((await Deno.stat(s.keyPath)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${s.config}/ostk`)).mode! & 0o777, 0o700);
    assert.match(await Deno.readTextFile(s.keyPath), /^-----BEGIN PRIVATE KEY-----\n/);

    const before = await snapshot(root, `${s.config}/ostk`);
    const again = await ok(s, ["init"], { cwd: root });
    assert.match(again.stdout, /already initialised/);
    assert.doesNotMatch(again.stdout, /created operator key/);
    const againJson = JSON.parse((await ok(s, ["init", "--json"], { cwd: root })).stdout);
    assert.equal(againJson.existed, true);
    assert.deepEqual(againJson.created, []);
    assert.equal(againJson.key_created, false);
    assert.equal(againJson.operator, report.operator);
    assert.deepEqual(await snapshot(root, `${s.config}/ostk`), before);

    // A part deleted by hand is restored, and only that part.
    await Deno.remove(`${root}/.ostk/drain`);
    const restored = await ok(s, ["init"], { cwd: root });
    assert.match(restored.stdout, /already initialised.*restored \.ostk\/drain\//);
    assert.deepEqual(await snapshot(root, `${s.config}/ostk`), before);
  });
});

Deno.test("init takes a directory argument and refuses one that does not exist", async () => {
  await withScratch(async (s) => {
    await Deno.mkdir(`${s.dir}/q`);
    await ok(s, ["init", "q"]);
    assert.ok((await Deno.stat(`${s.dir}/q/.ostk/audit.jsonl`)).isFile);
    const missing = await ostk(s, ["init", "nowhere"]);
    assert.equal(missing.code, 1);
    assert.match(errorLine(missing), /nowhere does not exist/);
    await assert.rejects(Deno.stat(`${s.dir}/nowhere`), Deno.errors.NotFound);
  });
});

Deno.test("a second project reuses the operator key; OSTK_IDENTITY puts it elsewhere", async () => {
  await withScratch(async (s) => {
    const p1 = await initProject(s, "p1");
    const key = await Deno.readTextFile(s.keyPath);
    await Deno.mkdir(`${s.dir}/p2`);
    const second = await ok(s, ["init"], { cwd: `${s.dir}/p2` });
    assert.doesNotMatch(second.stdout, /created operator key/);
    const pub1 = await Deno.readTextFile(`${p1}/.ostk/identity.pub`);
    const pub2 = await Deno.readTextFile(`${s.dir}/p2/.ostk/identity.pub`);
    assert.equal(await fingerprintOf(pub2), await fingerprintOf(pub1));
    assert.equal(await Deno.readTextFile(s.keyPath), key);

    const other = `${s.dir}/elsewhere/operator.key`;
    await Deno.mkdir(`${s.dir}/p3`);
    const third = JSON.parse(
      (await ok(s, ["init", "--json"], { cwd: `${s.dir}/p3`, env: { OSTK_IDENTITY: other } }))
        .stdout,
    );
    assert.equal(third.key_path, other);
    assert.equal(third.key_created, true);
    assert.equal((await Deno.stat(other)).mode! & 0o777, 0o600);
    const pub3 = await Deno.readTextFile(`${s.dir}/p3/.ostk/identity.pub`);
    assert.equal(await fingerprintOf(pub3), third.operator);
    assert.notEqual(third.operator, await fingerprintOf(pub1));
    assert.equal(await Deno.readTextFile(s.keyPath), key);

    // p3 trusts only the OSTK_IDENTITY key: the default key must not sign its log.
    const before = await snapshot(`${s.dir}/p3/.ostk`);
    const wrongKey = await ostk(s, ["alias", "new", "x"], { cwd: `${s.dir}/p3` });
    assert.equal(wrongKey.code, 1);
    assert.match(errorLine(wrongKey), /identity\.pub:1: .*not this project's key.*OSTK_IDENTITY/);
    assert.deepEqual(await snapshot(`${s.dir}/p3/.ostk`), before);
    const rightKey = await ok(s, ["alias", "new", "x"], {
      cwd: `${s.dir}/p3`,
      env: { OSTK_IDENTITY: other },
    });
    assert.equal(rightKey.stdout, "x-1\n");
  });
});

// ---------------------------------------------------------------------------------------------
// where commands act: -C, OSTK_CWD, walking up

Deno.test("-C, OSTK_CWD and a nested cwd all find the project; outside one is refused", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    await Deno.mkdir(`${root}/a/b`, { recursive: true });

    // -C from an unrelated cwd.
    const viaC = await ok(s, ["-C", root, "alias", "new", "cee"], { cwd: s.home });
    assert.equal(viaC.stdout, "cee-1\n");
    assert.match(await Deno.readTextFile(`${root}/.ostk/audit.jsonl`), /"alias":"cee-1"/);

    const [repeatedC, joinedC, viaEnv, envThenC, nested, outside] = await Promise.all([
      // Each -C applies on top of the previous one, like git.
      ok(s, ["-C", root, "-C", "a/b", "boot", "--json"], { cwd: s.home }),
      ok(s, [`-C${root}/a`, "alias", "list", "--json"], { cwd: s.home }),
      // OSTK_CWD is where the CLI starts, whatever the process cwd is.
      ok(s, ["boot", "--json"], { cwd: s.home, env: { OSTK_CWD: `${root}/a` } }),
      // ... and a relative -C is taken from there.
      ok(s, ["-C", "p/a/b", "alias", "list", "--json"], {
        cwd: s.home,
        env: { OSTK_CWD: s.dir },
      }),
      ok(s, ["alias", "list", "--json"], { cwd: `${root}/a/b` }),
      ostk(s, ["log"], { cwd: s.home }),
    ]);
    assert.equal(JSON.parse(repeatedC.stdout).root, root);
    assert.equal(JSON.parse(viaEnv.stdout).root, root);
    for (const listing of [joinedC, envThenC, nested]) {
      assert.deepEqual(JSON.parse(listing.stdout).map((a: { alias: string }) => a.alias), [
        "cee-1",
      ]);
    }
    assert.equal(outside.code, 1);
    assert.match(errorLine(outside), /not inside an ostk project.*'ostk init'/);

    // init through OSTK_CWD creates the project there, not in the process cwd.
    await Deno.mkdir(`${s.dir}/q`);
    await ok(s, ["init"], { cwd: s.home, env: { OSTK_CWD: `${s.dir}/q` } });
    assert.ok((await Deno.stat(`${s.dir}/q/.ostk/identity.pub`)).isFile);
    await assert.rejects(Deno.stat(`${s.home}/.ostk`), Deno.errors.NotFound);
  });
});

// ---------------------------------------------------------------------------------------------
// os audit

/** A project with four rows: os.init, claude-1, claude-2, codex-1. */
async function projectWithRows(s: Scratch): Promise<string> {
  const root = await initProject(s);
  for (const name of ["claude", "claude", "codex"]) {
    await ok(s, ["alias", "new", name], { cwd: root });
  }
  return root;
}

Deno.test("os audit passes a whole chain, text and JSON", async () => {
  await withScratch(async (s) => {
    const root = await projectWithRows(s);
    const [text, json] = await Promise.all([
      ok(s, ["os", "audit"], { cwd: root }),
      ok(s, ["os", "audit", "--json"], { cwd: root }),
    ]);
    assert.equal(text.stdout, "ok 4 rows\n");
    assert.equal(text.stderr, "");
    const report = JSON.parse(json.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.rows, 4);
    assert.equal(report.head.seq, 3);
  });
});

Deno.test("os audit names an edited row by line and seq; --repair leaves it alone", async () => {
  await withScratch(async (s) => {
    const root = await projectWithRows(s);
    const log = `${root}/.ostk/audit.jsonl`;
    const lines = await auditLines(root);
    assert.match(lines[2], /"alias":"claude-2"/);
    lines[2] = lines[2].replace(`"alias":"claude-2"`, `"alias":"claude-7"`);
    await Deno.writeTextFile(log, lines.join("\n") + "\n");
    const before = await snapshot(`${root}/.ostk`);

    const [text, json, repair] = await Promise.all([
      ostk(s, ["os", "audit"], { cwd: root }),
      ostk(s, ["os", "audit", "--json"], { cwd: root }),
      ostk(s, ["os", "audit", "--repair"], { cwd: root }),
    ]);
    assert.equal(text.code, 1);
    assert.equal(text.stdout, "");
    const line = text.stderr.trimEnd();
    assert.equal(line.split("\n").length, 1, text.stderr);
    assert.ok(line.includes(`${log}:3: `), line);
    assert.match(line, /seq 2: bad signature/);

    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout);
    assert.equal(report.ok, false);
    assert.equal(report.rows, 2);
    assert.deepEqual(
      { seq: report.failure.seq, line: report.failure.line, reason: report.failure.reason },
      { seq: 2, line: 3, reason: "bad signature" },
    );

    assert.equal(repair.code, 1);
    assert.match(repair.stderr, /not repairing/);
    assert.deepEqual(await snapshot(`${root}/.ostk`), before);
  });
});

Deno.test("os audit notices whole rows cut from the end; --repair refuses", async () => {
  await withScratch(async (s) => {
    const root = await projectWithRows(s);
    const lines = await auditLines(root);
    await Deno.writeTextFile(`${root}/.ostk/audit.jsonl`, lines.slice(0, 2).join("\n") + "\n");
    const before = await snapshot(`${root}/.ostk`);

    const audit = await ostk(s, ["os", "audit"], { cwd: root });
    assert.equal(audit.code, 1);
    assert.match(audit.stderr, /missing rows/);
    assert.match(audit.stderr, /audit\.head records seq 3/);

    const repair = await ostk(s, ["os", "audit", "--repair"], { cwd: root });
    assert.equal(repair.code, 1);
    assert.match(repair.stderr, /not repairing: .*missing rows is evidence/);
    assert.doesNotMatch(repair.stdout, /repaired/);
    assert.deepEqual(await snapshot(`${root}/.ostk`), before);
  });
});

Deno.test("os audit --repair cuts back a row torn by a crash mid-append and logs it", async () => {
  await withScratch(async (s) => {
    const root = await projectWithRows(s);
    const log = `${root}/.ostk/audit.jsonl`;
    const head = `${root}/.ostk/audit.head`;
    const committed = await Deno.readFile(log);
    const committedHead = await Deno.readFile(head);
    await ok(s, ["alias", "new", "gemini"], { cwd: root });
    // The state a crash leaves while row 4 is being written: the log holds part of it (10 bytes
    // short, no newline) and audit.head, rewritten only after the row is durable, still names
    // seq 3.
    const full = await Deno.readFile(log);
    await Deno.writeFile(log, full.subarray(0, full.length - 10));
    await Deno.writeFile(head, committedHead);
    const torn = full.length - 10 - committed.length;

    const audit = await ostk(s, ["os", "audit"], { cwd: root });
    assert.equal(audit.code, 1);
    assert.ok(audit.stderr.includes(`${log}:5: seq 4: torn final line`), audit.stderr);
    assert.match(audit.stderr, /--repair/);

    const repair = await ok(s, ["os", "audit", "--repair"], { cwd: root });
    assert.equal(
      repair.stdout,
      `repaired: cut ${torn} torn bytes, logged as audit.repair\nok 5 rows\n`,
    );

    const rows = jsonLines((await ok(s, ["log", "--json"], { cwd: root })).stdout);
    assert.deepEqual(rows.map((r) => r.event), [
      "os.init",
      "agent.alias",
      "agent.alias",
      "agent.alias",
      "audit.repair",
    ]);
    const last = rows[4];
    assert.equal(last.seq, 4);
    assert.equal(last.actor, "kernel");
    assert.equal(last.cut_bytes, torn);
    assert.equal(last.offset, committed.length);
    // The whole rows before the tear are untouched.
    assert.deepEqual((await Deno.readFile(log)).subarray(0, committed.length), committed);
    assert.equal((await ok(s, ["os", "audit"], { cwd: root })).stdout, "ok 5 rows\n");
    // The chain goes on from the repair row, and the torn alias was never issued.
    assert.equal((await ok(s, ["alias", "new", "gemini"], { cwd: root })).stdout, "gemini-1\n");
  });
});

// Regression: whole rows cut from the end, then a fragment, looks like a crash mid-append; an
// unguarded --repair (or any append, which cuts torn bytes itself) would cut the fragment, re-sign
// the head and leave a chain that verifies with the cut rows gone and their aliases free again.
Deno.test("--repair does not launder whole rows cut before a torn fragment", async () => {
  await withScratch(async (s) => {
    const root = await projectWithRows(s);
    const lines = await auditLines(root);
    // seq 2 and 3 are gone (audit.head still records seq 3); a fragment of a row follows seq 1.
    await Deno.writeTextFile(
      `${root}/.ostk/audit.jsonl`,
      `${lines[0]}\n${lines[1]}\n${lines[2].slice(0, 8)}`,
    );
    const before = await snapshot(`${root}/.ostk`);

    const repair = await ostk(s, ["os", "audit", "--repair"], { cwd: root });
    assert.equal(repair.code, 1, `--repair accepted a log missing seq 2-3:\n${repair.stdout}`);
    assert.match(repair.stderr, /missing rows|audit\.head records seq 3/);
    assert.deepEqual(await snapshot(`${root}/.ostk`), before);

    const append = await ostk(s, ["alias", "new", "claude"], { cwd: root });
    assert.equal(append.code, 1, `an append re-issued ${append.stdout.trim()} over the cut rows`);
    assert.deepEqual(await snapshot(`${root}/.ostk`), before);
  });
});

Deno.test("os audit names the seq of a row whose signature is wrong", async () => {
  await withScratch(async (s) => {
    const root = await projectWithRows(s);
    const log = `${root}/.ostk/audit.jsonl`;
    const rows = (await auditLines(root)).map((l) => JSON.parse(l));
    // A well-formed signature, just not over this row.
    rows[1].sig = rows[0].sig;
    await Deno.writeTextFile(log, rows.map((r) => JSON.stringify(r) + "\n").join(""));
    const before = await snapshot(`${root}/.ostk`);

    const audit = await ostk(s, ["os", "audit"], { cwd: root });
    assert.equal(audit.code, 1);
    assert.equal(audit.stderr.trimEnd().split("\n").length, 1, audit.stderr);
    assert.ok(audit.stderr.includes(`${log}:2: seq 1: bad signature`), audit.stderr);
    assert.deepEqual(await snapshot(`${root}/.ostk`), before);
  });
});

// ---------------------------------------------------------------------------------------------
// alias

Deno.test("alias new numbers per name and alias list shows them all", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    const issued = [];
    for (const name of ["claude", "claude", "codex"]) {
      issued.push((await ok(s, ["alias", "new", name], { cwd: root })).stdout);
    }
    assert.deepEqual(issued, ["claude-1\n", "claude-2\n", "codex-1\n"]);
    assert.deepEqual(
      JSON.parse(
        (await ok(s, ["alias", "new", "claude", "--json"], { cwd: root }))
          .stdout,
      ),
      { alias: "claude-3" },
    );

    const [json, text] = await Promise.all([
      ok(s, ["alias", "list", "--json"], { cwd: root }),
      ok(s, ["alias", "list"], { cwd: root }),
    ]);
    const list = JSON.parse(json.stdout);
    assert.deepEqual(list, [
      { alias: "claude-1", name: "claude", n: 1, seq: 1 },
      { alias: "claude-2", name: "claude", n: 2, seq: 2 },
      { alias: "codex-1", name: "codex", n: 1, seq: 3 },
      { alias: "claude-3", name: "claude", n: 3, seq: 4 },
    ]);
    assert.deepEqual(text.stdout.trimEnd().split("\n").map((l) => l.split(/\s+/)[0]), [
      "claude-1",
      "claude-2",
      "codex-1",
      "claude-3",
    ]);

    const before = await snapshot(`${root}/.ostk`);
    const cases: [string[], RegExp][] = [
      ...["Claude", "claude-1", "1claude", "a b", "x".repeat(41)].map((
        name,
      ): [string[], RegExp] => [["new", name], /bad agent name/]),
      [["new"], /expected 'alias new <name>' or 'alias list'/],
      [["new", "a", "b"], /expected 'alias new <name>' or 'alias list'/],
      [["list", "extra"], /expected 'alias new <name>' or 'alias list'/],
      [["frob"], /expected 'alias new <name>' or 'alias list'.*'ostk alias --help'/],
      [["new", "x", "--bogus"], /--bogus.*'ostk alias --help'/],
    ];
    const bad = await Promise.all(
      cases.map(([args]) => ostk(s, ["alias", ...args], { cwd: root })),
    );
    cases.forEach(([args, pattern], i) => {
      assert.equal(bad[i].code, 2, `alias ${args.join(" ")}: ${bad[i].stderr}`);
      assert.match(errorLine(bad[i]), pattern);
    });
    assert.match(errorLine(bad[0]), /bad agent name 'Claude'/);
    assert.deepEqual(await snapshot(`${root}/.ostk`), before);
    // '_' is allowed at the end; only -<digits> is not.
    assert.equal((await ok(s, ["alias", "new", "claude_"], { cwd: root })).stdout, "claude_-1\n");
  });
});

Deno.test("alias new from concurrent processes never hands out the same alias twice", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    const results = await Promise.all(
      Array.from({ length: 4 }, () => ok(s, ["alias", "new", "par"], { cwd: root })),
    );
    assert.deepEqual(results.map((r) => r.stdout.trim()).sort(), [
      "par-1",
      "par-2",
      "par-3",
      "par-4",
    ]);
    assert.equal((await ok(s, ["os", "audit"], { cwd: root })).stdout, "ok 5 rows\n");
  });
});

// ---------------------------------------------------------------------------------------------
// log

Deno.test("log prints every row; --json is one row per line; --event filters", async () => {
  await withScratch(async (s) => {
    const root = await projectWithRows(s);
    const [text, json, agent, osRows, none] = await Promise.all([
      ok(s, ["log"], { cwd: root }),
      ok(s, ["log", "--json"], { cwd: root }),
      ok(s, ["log", "--event", "agent", "--json"], { cwd: root }),
      ok(s, ["log", "-e", "os."], { cwd: root }),
      ok(s, ["log", "--event", "nothing.here"], { cwd: root }),
    ]);
    const textLines = text.stdout.trimEnd().split("\n");
    assert.equal(textLines.length, 4);
    assert.match(textLines[0], /^ +0 +\S+ +operator +os\.init +root=/);
    assert.match(textLines[2], /^ +2 .*agent\.alias .*alias=claude-2/);
    for (const line of textLines) assert.doesNotMatch(line, /prev_hash|sig=/);

    const rows = jsonLines(json.stdout);
    assert.equal(json.stdout.split("\n").length, 5); // four rows, each ending in a newline
    assert.deepEqual(rows.map((r) => r.seq), [0, 1, 2, 3]);
    // The same rows as stored (key order may differ; signatures cover canonical JSON).
    assert.deepEqual(rows, (await auditLines(root)).map((l) => JSON.parse(l)));

    assert.deepEqual(jsonLines(agent.stdout).map((r) => r.alias), [
      "claude-1",
      "claude-2",
      "codex-1",
    ]);
    assert.equal(osRows.stdout.trimEnd().split("\n").length, 1);
    assert.match(osRows.stdout, /os\.init/);
    assert.equal(none.stdout, "");
  });
});

/** Lines from a child's stdout, read on demand. */
function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    /** The next whole line, or undefined when the stream ended first. */
    async next(): Promise<string | undefined> {
      for (;;) {
        const nl = buffer.indexOf("\n");
        if (nl >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          return line;
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        buffer += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

Deno.test("log --follow prints rows another process appends", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    await ok(s, ["alias", "new", "before"], { cwd: root });
    const child = (await ostkCommand(s, ["log", "--follow", "--json"], { cwd: root })).spawn();
    const stderr = new Response(child.stderr).text();
    const lines = lineReader(child.stdout);
    const seen: Record<string, unknown>[] = [];
    const until = async (alias: string) => {
      for (;;) {
        const line = await lines.next();
        if (line === undefined) throw new Error(`log --follow ended before ${alias}: ${seen}`);
        const row = JSON.parse(line);
        seen.push(row);
        if (row.alias === alias) return;
      }
    };
    const follow = (async () => {
      await until("before-1");
      const appended = await ok(s, ["alias", "new", "follow"], { cwd: root });
      assert.equal(appended.stdout, "follow-1\n");
      await until("follow-1");
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const safety = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("log --follow: no new row within 20 s")), 20_000);
    });
    try {
      await Promise.race([follow, safety]);
    } finally {
      clearTimeout(timer);
      child.kill("SIGTERM");
      await lines.cancel();
      await follow.catch(() => undefined);
      await child.status;
      await stderr;
    }
    assert.deepEqual(seen.map((r) => [r.seq, r.event]), [
      [0, "os.init"],
      [1, "agent.alias"],
      [2, "agent.alias"],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// boot

Deno.test("boot reports a healthy project, and a missing part with exit 1", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    const [text, json] = await Promise.all([
      ok(s, ["boot"], { cwd: root }),
      ok(s, ["boot", "--json"], { cwd: root }),
    ]);
    const post = text.stdout.match(/^POST (\d)\/7 /m);
    assert.ok(post, text.stdout);
    assert.ok(Number(post[1]) >= 3, post[0]);
    assert.match(text.stdout, new RegExp(`^root +${root}$`, "m"));
    assert.doesNotMatch(text.stdout, /^ +! /m);

    const report = JSON.parse(json.stdout);
    const pub = await Deno.readTextFile(`${root}/.ostk/identity.pub`);
    assert.equal(report.operator.fingerprint, await fingerprintOf(pub));
    assert.equal(report.operator.matches_project, true);
    assert.equal(report.root, root);
    assert.equal(report.audit_rows, 1);
    assert.ok(Array.isArray(report.parts));
    for (const [part, kind] of INIT_PARTS) {
      const name = `${part}${kind === "dir" ? "/" : ""}`;
      const found = report.parts.find((p: { part: string }) => p.part === name);
      assert.equal(found?.state, "ok", `${name}: ${JSON.stringify(found)}`);
    }
    assert.equal(report.post.total, 7);
    assert.ok(report.post.passed >= 3);
    assert.equal(report.post.checks.length, 7);
    assert.deepEqual(report.post.checks.filter((c: { state: string }) => c.state === "fail"), []);

    // boot is read-only, so a damaged project stays as it is after boot looked at it.
    await Deno.remove(`${root}/.ostk/drain`);
    const before = await snapshot(`${root}/.ostk`);
    const [brokenText, brokenJson] = await Promise.all([
      ostk(s, ["boot"], { cwd: root }),
      ostk(s, ["boot", "--json"], { cwd: root }),
    ]);
    assert.equal(brokenText.code, 1);
    assert.match(brokenText.stdout, /^ +drain\/ +missing /m);
    assert.equal(brokenJson.code, 1);
    assert.equal(
      JSON.parse(brokenJson.stdout).parts.find((p: { part: string }) => p.part === "drain/")
        ?.state,
      "missing",
    );
    assert.deepEqual(await snapshot(`${root}/.ostk`), before);
  });
});

// ---------------------------------------------------------------------------------------------
// bad input is refused before anything is written

Deno.test("a corrupt identity.pub is refused with its file and line", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    const pub = `${root}/.ostk/identity.pub`;
    await Deno.writeTextFile(pub, "ed25519 not*base64*at*all operator\n");
    const before = await snapshot(`${root}/.ostk`, s.config);
    const result = await ostk(s, ["alias", "new", "x"], { cwd: root });
    assert.equal(result.code, 1);
    assert.ok(errorLine(result).startsWith(`ostk: ${pub}:1: `), result.stderr);
    assert.equal(result.stdout, "");
    assert.deepEqual(await snapshot(`${root}/.ostk`, s.config), before);
  });
});

Deno.test("an operator key readable by others is refused with a chmod hint", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    await Deno.chmod(s.keyPath, 0o644);
    const before = await snapshot(`${root}/.ostk`, s.config);
    const result = await ostk(s, ["alias", "new", "x"], { cwd: root });
    assert.equal(result.code, 1);
    const line = errorLine(result);
    assert.ok(line.startsWith(`ostk: ${s.keyPath}: `), line);
    assert.match(line, /mode 644/);
    assert.ok(line.includes(`chmod 600 ${s.keyPath}`), line);
    assert.deepEqual(await snapshot(`${root}/.ostk`, s.config), before);
  });
});

Deno.test("a last audit line that is not JSON stops appends, log and audit at that line", async () => {
  await withScratch(async (s) => {
    const root = await initProject(s);
    await ok(s, ["alias", "new", "claude"], { cwd: root });
    const log = `${root}/.ostk/audit.jsonl`;
    await Deno.writeTextFile(log, "this is not json\n", { append: true });
    const before = await snapshot(`${root}/.ostk`, s.config);

    const [append, listing, audit] = await Promise.all([
      ostk(s, ["alias", "new", "x"], { cwd: root }),
      ostk(s, ["log"], { cwd: root }),
      ostk(s, ["os", "audit"], { cwd: root }),
    ]);
    assert.equal(append.code, 1);
    assert.equal(append.stdout, "");
    const line = errorLine(append);
    assert.ok(line.startsWith(`ostk: ${log}:3: `), line);
    assert.match(line, /not JSON.*refusing to append/);

    assert.equal(listing.code, 1);
    assert.ok(errorLine(listing).startsWith(`ostk: ${log}:3: not JSON`), listing.stderr);
    assert.equal(listing.stdout.trimEnd().split("\n").length, 2); // the good rows came first

    assert.equal(audit.code, 1);
    assert.ok(audit.stderr.includes(`${log}:3: seq 2: unparsable line`), audit.stderr);
    assert.deepEqual(await snapshot(`${root}/.ostk`, s.config), before);
  });
});

// ---------------------------------------------------------------------------------------------
// demo

Deno.test("demo runs end to end in a temp dir and leaves the operator's key alone", async () => {
  await withScratch(async (s) => {
    const tmp = `${s.dir}/tmp`;
    await Deno.mkdir(tmp);
    const [plain, kept] = await Promise.all([
      ok(s, ["demo"], { env: { TMPDIR: tmp } }),
      ok(s, ["demo", "--keep"], { env: { TMPDIR: tmp } }),
    ]);
    for (const run of [plain, kept]) {
      assert.match(run.stdout, /audit chain: ok \d+ rows/);
      assert.match(run.stdout, /sessions revived: editor-1@\d+, editor-2@\d+/);
      assert.match(run.stdout, /^demo: all \d+ checks passed$/m);
      assert.doesNotMatch(run.stdout, /FAIL/);
    }
    const keptPath = kept.stdout.match(/^kept (.+)$/m)?.[1];
    assert.ok(keptPath?.startsWith(`${tmp}/`), kept.stdout);
    assert.ok((await Deno.stat(`${keptPath}/.ostk/audit.jsonl`)).isFile);
    // Only the kept demo is left in TMPDIR.
    const left = [];
    for await (const entry of Deno.readDir(tmp)) left.push(entry.name);
    assert.equal(left.length, 1, `left in TMPDIR: ${left}`);
    await assert.rejects(Deno.stat(s.keyPath), Deno.errors.NotFound);
  });
});
