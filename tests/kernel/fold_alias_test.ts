import assert from "node:assert/strict";
import fc from "fast-check";
import { issueAlias, validateAliasName } from "../../kernel/alias.ts";
import { AuditLog, type AuditRow, readAuditRows } from "../../kernel/audit.ts";
import { verifyAuditLog } from "../../kernel/audit_verify.ts";
import { OstkError } from "../../kernel/errors.ts";
import { emptyState, fold, foldRow } from "../../kernel/fold.ts";
import { ZERO_HASH } from "../../kernel/hash.ts";
import {
  ephemeralSigner,
  loadOrCreateOperatorKey,
  type OperatorKey,
  readIdentityPub,
  type Signer,
} from "../../kernel/identity.ts";
import { findRoot } from "../../kernel/layout.ts";
import { initProject } from "../../kernel/project_init.ts";

const decoder = new TextDecoder();

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ostk_fold_alias_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function verify(dir: string, signer: Signer) {
  return verifyAuditLog({
    logPath: `${dir}/audit.jsonl`,
    headPath: `${dir}/audit.head`,
    publicRaw: signer.publicRaw,
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** A log touching every event fold knows, plus one it does not. */
async function mixedRows(dir: string): Promise<AuditRow[]> {
  const log = new AuditLog(`${dir}/audit.jsonl`, { signer: await ephemeralSigner() });
  try {
    await log.append({ event: "os.init", actor: "operator" });
    await issueAlias(log, "claude", "operator");
    await issueAlias(log, "codex", "operator");
    await log.appendBatch([
      { event: "session.spawn", actor: "claude-1", fields: { session: "s1", alias: "claude-1" } },
      { event: "session.spawn", actor: "codex-1", fields: { session: "s2" } },
      { event: "tool.file_write", actor: "claude-1", fields: { path: "a.txt", gen: 1 } },
      { event: "tool.file_edit", actor: "codex-1", fields: { path: "a.txt", gen: 2 } },
      { event: "tool.file_read", actor: "claude-1", fields: { path: "a.txt", gen: 2 } },
      { event: "tool.file_write", actor: "codex-1", fields: { path: "b.txt", gen: "3" } },
      { event: "future.thing", actor: "kernel", fields: { anything: [1, 2, 3] } },
      { event: "session.exit", actor: "claude-1", fields: { session: "s1" } },
    ]);
    await issueAlias(log, "claude", "operator");
  } finally {
    log.close();
  }
  return readAuditRows(`${dir}/audit.jsonl`);
}

Deno.test("fold: same rows give the same state, and the rows are not mutated", async () => {
  await withTemp(async (dir) => {
    const rows = await mixedRows(dir);
    const snapshot = structuredClone(rows);
    const first = fold(rows);
    const second = fold(rows);
    assert.deepEqual(first, second);
    assert.notEqual(first, second);
    assert.deepEqual(rows, snapshot, "fold must not change its input");
    // Folding row by row onto a fresh state is the same function.
    const stepwise = emptyState();
    for (const row of rows) foldRow(stepwise, row);
    assert.deepEqual(stepwise, first);
    // States share nothing: changing one leaves the other alone.
    first.aliases.clear();
    first.sessions.get("s2")!.state = "dead";
    assert.equal(second.aliases.size, 3);
    assert.equal(second.sessions.get("s2")?.state, "alive");
    assert.deepEqual(fold(rows), second);
  });
});

Deno.test("fold: the state reflects aliases, sessions and files; unknown events only count", async () => {
  await withTemp(async (dir) => {
    const rows = await mixedRows(dir);
    const state = fold(rows);
    assert.equal(state.rows, rows.length);
    assert.equal(state.lastSeq, rows.length - 1);
    assert.deepEqual([...state.aliases.keys()], ["claude-1", "codex-1", "claude-2"]);
    assert.deepEqual(state.aliases.get("claude-2"), {
      alias: "claude-2",
      name: "claude",
      n: 2,
      seq: rows.length - 1,
    });
    assert.deepEqual([...state.highestN], [["claude", 2], ["codex", 1]]);
    assert.equal(state.sessions.get("s1")?.state, "dead");
    assert.equal(state.sessions.get("s1")?.alias, "claude-1");
    // A spawn without an alias field falls back to the actor.
    assert.equal(state.sessions.get("s2")?.alias, "codex-1");
    assert.equal(state.sessions.get("s2")?.state, "alive");
    assert.equal(state.files.get("a.txt")?.gen, 2);
    assert.equal(state.files.get("a.txt")?.actor, "codex-1");
    assert.equal(state.files.has("b.txt"), false, "a non-numeric gen is not a file record");
    assert.deepEqual(fold([]), emptyState());
  });
});

const rowArb: fc.Arbitrary<AuditRow> = fc.oneof(
  fc.record({
    event: fc.constant("agent.alias"),
    name: fc.constantFrom("a", "b"),
    n: fc.integer({ min: 1, max: 9 }),
  }).map((r) => ({ ...r, alias: `${r.name}-${r.n}` })),
  fc.record({ event: fc.constant("session.spawn"), session: fc.constantFrom("s1", "s2") }),
  fc.record({
    event: fc.constantFrom(
      "session.exit",
      "session.dead",
      "session.reap",
      "session.orphan",
      "session.revive",
      "session.drain",
    ),
    session: fc.constantFrom("s1", "s2", "s3"),
  }),
  fc.record({
    event: fc.constantFrom("tool.file_write", "tool.file_read"),
    path: fc.constantFrom("x", "y"),
    gen: fc.nat(),
  }),
  fc.record({ event: fc.constant("other.thing"), data: fc.jsonValue() }),
).map((fields): AuditRow => ({
  seq: 0,
  ts: "2025-01-01T00:00:00.000Z",
  actor: "someone",
  prev_hash: ZERO_HASH,
  sig: "",
  ...fields,
}));

Deno.test("fold property: deterministic, input untouched, highestN is the max n per name", () => {
  fc.assert(
    fc.property(fc.array(rowArb, { maxLength: 40 }), (generated) => {
      const rows: AuditRow[] = generated.map((row, seq) => ({ ...row, seq }));
      const snapshot = structuredClone(rows);
      const state = fold(rows);
      assert.deepEqual(fold(rows), state);
      assert.deepEqual(rows, snapshot);
      assert.equal(state.rows, rows.length);
      for (const name of ["a", "b"]) {
        const ns = rows.filter((r) => r.event === "agent.alias" && r.name === name).map((r) =>
          Number(r.n)
        );
        assert.equal(state.highestN.get(name), ns.length ? Math.max(...ns) : undefined);
      }
      // A session that ended stays dead until it is spawned again, whatever follows.
      for (const [id, session] of state.sessions) {
        const last = rows.findLast((r) => r.session === id && r.event === "session.spawn")!;
        const after = rows.filter((r) => r.session === id && r.seq > last.seq);
        const ended = after.some((r) =>
          ["session.exit", "session.dead", "session.reap"].includes(r.event)
        );
        if (ended) assert.equal(session.state, "dead");
        else if (after.length === 0) assert.equal(session.state, "alive");
        else assert.notEqual(session.state, "dead");
      }
    }),
  );
});

/** Rows for `fold`, numbered in order, with the fields a signed row has. */
function rowsOf(events: Record<string, unknown>[]): AuditRow[] {
  return events.map((fields, seq) => ({
    seq,
    ts: "2025-01-01T00:00:00.000Z",
    actor: "kernel",
    prev_hash: ZERO_HASH,
    sig: "",
    event: "x.y",
    ...fields,
  }));
}

Deno.test("fold: a session is alive, orphaned or dead, and a dead one says how it ended", () => {
  const spawn = (s: string) => ({ event: "session.spawn", session: s, alias: s });
  const state = fold(rowsOf([
    ...["ok", "bad", "gone", "cap", "crash", "old", "drained", "back", "legacy"].map(spawn),
    { event: "session.exit", session: "ok", outcome: "finished", reason: "exit 0", code: 0 },
    { event: "session.exit", session: "bad", outcome: "failed", reason: "exit code 3", code: 3 },
    { event: "session.exit", session: "gone", outcome: "killed", reason: "killed by the operator" },
    { event: "session.exit", session: "cap", outcome: "limited", reason: "LIMIT turns reached" },
    { event: "session.orphan", session: "crash", reason: "the agent process was ended by SIGKILL" },
    { event: "session.orphan", session: "old", reason: "no heartbeat for 95 s" },
    { event: "session.drain", session: "drained", turns: 2 },
    { event: "session.orphan", session: "back", reason: "daemon restarted" },
    { event: "session.revive", session: "back", from_turn: 1 },
    { event: "session.revive_refused", session: "crash", reason: "revived 3 times" },
    { event: "session.exit", session: "crash", outcome: "crashed", reason: "...; not revived" },
    // Written before outcomes existed: a killed command's exit.
    { event: "session.exit", session: "legacy", reason: "aborted", code: 143 },
    // Nothing brings an ended session back but a new spawn.
    { event: "session.revive", session: "ok" },
    { event: "session.orphan", session: "bad" },
  ]));
  const view = (s: string) => {
    const r = state.sessions.get(s)!;
    return [r.state, r.outcome, r.reason];
  };
  assert.deepEqual(view("ok"), ["dead", "finished", "exit 0"]);
  assert.deepEqual(view("bad"), ["dead", "failed", "exit code 3"]);
  assert.deepEqual(view("gone"), ["dead", "killed", "killed by the operator"]);
  assert.deepEqual(view("cap"), ["dead", "limited", "LIMIT turns reached"]);
  assert.deepEqual(view("crash"), ["dead", "crashed", "...; not revived"]);
  assert.deepEqual(view("old"), ["orphaned", undefined, "no heartbeat for 95 s"]);
  assert.deepEqual(view("drained"), ["orphaned", undefined, "its daemon stopped"]);
  assert.deepEqual(view("back"), ["alive", undefined, undefined]);
  assert.deepEqual(view("legacy"), ["dead", "killed", "aborted"]);
});

Deno.test("fold: exit rows of older kernels still fold to an outcome", () => {
  const cases: [Record<string, unknown>, string | undefined][] = [
    [{ event: "session.exit", reason: "done", turns: 6 }, "finished"],
    [{ event: "session.exit", reason: "exited", code: 0 }, "finished"],
    [{ event: "session.exit", reason: "exited", code: 2 }, "failed"],
    [{ event: "session.exit", reason: "aborted", code: 143 }, "killed"],
    [{ event: "session.exit", reason: "killed", turns: 0 }, "killed"],
    [{ event: "session.exit", reason: "limit:wall_clock" }, "limited"],
    [{ event: "session.exit", reason: "reaped" }, "crashed"],
    [{ event: "session.reap" }, "crashed"],
    [{ event: "session.dead" }, undefined],
    [{ event: "session.exit" }, undefined],
  ];
  for (const [row, outcome] of cases) {
    const state = fold(rowsOf([
      { event: "session.spawn", session: "s", alias: "s" },
      { ...row, session: "s" },
    ]));
    const session = state.sessions.get("s")!;
    assert.equal(session.state, "dead", JSON.stringify(row));
    assert.equal(session.outcome, outcome, JSON.stringify(row));
  }
});

Deno.test("fold: the classes the operator answered 'a' for are kept per session", () => {
  const decide = (session: string, cls: string, decision: string, answer?: string) => ({
    event: "approval.decide",
    session,
    class: cls,
    decision,
    step: 7,
    ...(answer ? { answer } : {}),
  });
  const state = fold(rowsOf([
    { event: "session.spawn", session: "w", alias: "w" },
    decide("w", "FileWrite", "ask"),
    decide("w", "FileWrite", "allow", "a"),
    decide("w", "ShellExec", "allow", "y"),
    decide("w", "ShellRead", "deny", "n"),
    decide("w", "FileWrite", "allow", "a"),
    decide("nobody", "FileEdit", "allow", "a"),
    { event: "session.orphan", session: "w" },
    { event: "session.revive", session: "w" },
  ]));
  assert.deepEqual(state.sessions.get("w")?.approved, ["FileWrite"]);
  assert.equal(state.sessions.has("nobody"), false);
  // A new session under the same name starts with none.
  const again = fold(rowsOf([
    { event: "session.spawn", session: "w", alias: "w" },
    decide("w", "FileWrite", "allow", "a"),
    { event: "session.exit", session: "w", outcome: "finished" },
    { event: "session.spawn", session: "w", alias: "w" },
  ]));
  assert.deepEqual(again.sessions.get("w")?.approved, []);
});

Deno.test("alias: <name>-<n> counts up separately for each name", async () => {
  await withTemp(async (dir) => {
    const signer = await ephemeralSigner();
    const log = new AuditLog(`${dir}/audit.jsonl`, { signer });
    try {
      const issued = [];
      for (const name of ["claude", "codex", "claude", "claude", "codex", "my-agent"]) {
        issued.push(await issueAlias(log, name, "operator"));
      }
      assert.deepEqual(issued, [
        "claude-1",
        "codex-1",
        "claude-2",
        "claude-3",
        "codex-2",
        "my-agent-1",
      ]);
      const rows = await readAuditRows(`${dir}/audit.jsonl`);
      assert.deepEqual(rows.map((r) => [r.event, r.alias, r.name, r.n]), [
        ["agent.alias", "claude-1", "claude", 1],
        ["agent.alias", "codex-1", "codex", 1],
        ["agent.alias", "claude-2", "claude", 2],
        ["agent.alias", "claude-3", "claude", 3],
        ["agent.alias", "codex-2", "codex", 2],
        ["agent.alias", "my-agent-1", "my-agent", 1],
      ]);
      assert.ok(rows.every((r) => r.actor === "operator"));
    } finally {
      log.close();
    }
  });
});

Deno.test("alias: numbering continues after a restart and never repeats", async () => {
  await withTemp(async (dir) => {
    const signer = await ephemeralSigner();
    const first = new AuditLog(`${dir}/audit.jsonl`, { signer });
    const before: string[] = [];
    try {
      for (let i = 0; i < 3; i++) before.push(await issueAlias(first, "claude", "operator"));
    } finally {
      first.close();
    }
    const second = new AuditLog(`${dir}/audit.jsonl`, { signer });
    const after: string[] = [];
    try {
      for (let i = 0; i < 3; i++) after.push(await issueAlias(second, "claude", "operator"));
      // A hand-written row with a high n moves the counter past it, never back.
      await second.append({
        event: "agent.alias",
        actor: "operator",
        fields: { alias: "claude-10", name: "claude", n: 10 },
      });
      after.push(await issueAlias(second, "claude", "operator"));
    } finally {
      second.close();
    }
    assert.deepEqual(before, ["claude-1", "claude-2", "claude-3"]);
    assert.deepEqual(after, ["claude-4", "claude-5", "claude-6", "claude-11"]);
    assert.equal(new Set([...before, ...after]).size, before.length + after.length);
    assert.equal((await verify(dir, signer)).ok, true);
  });
});

Deno.test("alias: four real processes issuing at once get distinct, contiguous aliases", async () => {
  const processes = 4;
  const each = 25;
  await withTemp(async (dir) => {
    const key = await loadOrCreateOperatorKey(`${dir}/key/identity.key`);
    const logPath = `${dir}/audit.jsonl`;
    const init = new AuditLog(logPath, { signer: key.signer });
    await init.append({ event: "os.init", actor: "operator" });
    init.close();
    const helper = new URL("../helpers/alias_issuer.ts", import.meta.url).pathname;
    const repo = new URL("../../", import.meta.url).pathname;
    const outputs = await Promise.all(
      range(1, processes).map(() =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-read",
            "--allow-write",
            "--allow-env",
            helper,
            logPath,
            key.path,
            "worker",
            `${each}`,
          ],
          cwd: repo,
          stdout: "piped",
          stderr: "piped",
        }).output()
      ),
    );
    const all: string[] = [];
    for (const out of outputs) {
      assert.equal(out.code, 0, decoder.decode(out.stderr));
      const mine: string[] = JSON.parse(decoder.decode(out.stdout));
      assert.equal(mine.length, each);
      const ns = mine.map((a) => Number(a.replace(/^worker-/, "")));
      // One process's aliases rise, since each was issued after its previous one.
      assert.deepEqual(ns, [...ns].sort((a, b) => a - b));
      all.push(...mine);
    }
    assert.equal(new Set(all).size, processes * each, "an alias was issued twice");
    const ns = all.map((a) => Number(a.replace(/^worker-/, ""))).sort((a, b) => a - b);
    assert.deepEqual(ns, range(1, processes * each));
    const report = await verify(dir, key.signer);
    assert.equal(report.ok, true, report.failure?.detail);
    assert.equal(report.rows, processes * each + 1);
    assert.equal(fold(await readAuditRows(logPath)).highestN.get("worker"), processes * each);
  });
});

Deno.test("alias: bad names are a usage error and nothing is written", async () => {
  await withTemp(async (dir) => {
    const signer = await ephemeralSigner();
    const log = new AuditLog(`${dir}/audit.jsonl`, { signer });
    try {
      await log.append({ event: "os.init", actor: "operator" });
      const before = await Deno.readFile(`${dir}/audit.jsonl`);
      const bad = ["Claude", "agent-3", "a-b-12", "", "3agent", "-a", "a-", "a--b", "a b", "ä"];
      bad.push("a".repeat(41));
      for (const name of bad) {
        await assert.rejects(
          issueAlias(log, name, "operator"),
          (err) =>
            err instanceof OstkError && err.code === "usage" && err.message.includes(`'${name}'`),
          JSON.stringify(name),
        );
      }
      assert.deepEqual(await Deno.readFile(`${dir}/audit.jsonl`), before);
      for (const good of ["a", "claude_code", "my-agent", "agent-x3", "a".repeat(40)]) {
        assert.doesNotThrow(() => validateAliasName(good), good);
      }
    } finally {
      log.close();
    }
  });
});

Deno.test("alias: issuing after a crash returns the alias just issued", async () => {
  // Regression: the audit.repair row written first after a crash was once returned in place
  // of the alias row, so issueAlias answered "undefined".
  await withTemp(async (dir) => {
    const signer = await ephemeralSigner();
    const log = new AuditLog(`${dir}/audit.jsonl`, { signer });
    try {
      await issueAlias(log, "claude", "operator");
      await Deno.writeTextFile(`${dir}/audit.jsonl`, '{"seq":1,"ts":"20', { append: true });
      assert.equal(await issueAlias(log, "claude", "operator"), "claude-2");
    } finally {
      log.close();
    }
  });
});

/** Every file under `dir` with its bytes, and every directory, keyed by relative path. */
async function snapshotTree(dir: string, prefix = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = [];
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) entries.push(entry);
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const rel = `${prefix}${entry.name}`;
    if (entry.isDirectory) {
      out.set(`${rel}/`, "<dir>");
      for (const [k, v] of await snapshotTree(dir, `${rel}/`)) out.set(k, v);
    } else {
      out.set(rel, decoder.decode(await Deno.readFile(`${dir}/${rel}`)));
    }
  }
  return out;
}

async function withProject(
  fn: (root: string, key: OperatorKey) => Promise<void>,
): Promise<void> {
  await withTemp(async (dir) => {
    const root = `${dir}/project`;
    await Deno.mkdir(root);
    const key = await loadOrCreateOperatorKey(`${dir}/key/identity.key`);
    await fn(await Deno.realPath(root), key);
  });
}

Deno.test("initProject: a second run changes nothing and reports existed", async () => {
  await withProject(async (root, key) => {
    const first = await initProject(root, key);
    assert.equal(first.existed, false);
    assert.equal(first.root, root);
    assert.equal(first.foreignKey, undefined);
    assert.deepEqual([...first.created].sort(), [
      ".ostk/",
      ".ostk/.gitignore",
      ".ostk/HUMANFILE",
      ".ostk/agents/",
      ".ostk/audit.head",
      ".ostk/audit.jsonl",
      ".ostk/drain/",
      ".ostk/gen_table.jsonl",
      ".ostk/identity.pub",
      ".ostk/pins/default/",
      ".ostk/pins/default/pin.caps",
    ]);
    const before = await snapshotTree(`${root}/.ostk`);

    const second = await initProject(root, key);
    assert.equal(second.existed, true);
    assert.deepEqual(second.created, []);
    assert.deepEqual(await snapshotTree(`${root}/.ostk`), before, "files changed on re-init");

    const rows = await readAuditRows(first.paths.audit);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].event, "os.init");
    assert.equal(rows[0].root, root);
    assert.equal(rows[0].key, key.fingerprint);
    const report = await verifyAuditLog({
      logPath: first.paths.audit,
      headPath: first.paths.head,
      publicRaw: await readIdentityPub(first.paths.identityPub),
    });
    assert.equal(report.ok, true, report.failure?.detail);
    assert.equal(report.rows, 1);
  });
});

Deno.test("initProject: restores deleted parts, reports them, keeps the rest", async () => {
  await withProject(async (root, key) => {
    const { paths } = await initProject(root, key);
    // A user edit must survive re-init.
    await Deno.writeTextFile(paths.humanfile, "# my own rules\n");
    const before = await snapshotTree(paths.dir);
    await Deno.remove(paths.drain, { recursive: true });
    await Deno.remove(paths.defaultPin);

    const again = await initProject(root, key);
    assert.equal(again.existed, true);
    assert.deepEqual([...again.created].sort(), [".ostk/drain/", ".ostk/pins/default/pin.caps"]);
    assert.deepEqual(await snapshotTree(paths.dir), before);
    assert.equal(await Deno.readTextFile(paths.humanfile), "# my own rules\n");
    assert.deepEqual((await readAuditRows(paths.audit)).map((r) => r.event), ["os.init"]);
  });
});

Deno.test("findRoot: walks up from a nested directory to the project root", async () => {
  await withProject(async (root, key) => {
    await initProject(root, key);
    await Deno.mkdir(`${root}/a/b/c`, { recursive: true });
    // A plain file named .ostk on the way up is not a project.
    await Deno.writeTextFile(`${root}/a/.ostk`, "not a dir");
    assert.equal(await findRoot(`${root}/a/b/c`), root);
    assert.equal(await findRoot(`${root}/a`), root);
    assert.equal(await findRoot(root), root);
  });
});

Deno.test("findRoot: outside any project it is not_found with an 'ostk init' hint", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/x/y`, { recursive: true });
    await Deno.writeTextFile(`${dir}/x/.ostk`, "a file, not a project");
    const err = await findRoot(`${dir}/x/y`).then(
      () => assert.fail("findRoot must throw outside a project"),
      (e) => e,
    );
    assert.ok(err instanceof OstkError, String(err));
    assert.equal(err.code, "not_found");
    assert.ok(err.hint?.includes("ostk init"), err.hint);
    assert.ok(err.message.includes(`${dir}/x/y`), err.message);
  });
});
