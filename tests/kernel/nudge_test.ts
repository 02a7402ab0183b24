/**
 * Nudges: queued under a lock, refused for unknown or dead aliases, delivered once as digest
 * lines with the recipient's next tool response, and audited both ways.
 */
import assert from "node:assert/strict";
import { issueAlias } from "../../kernel/alias.ts";
import { AuditLog, readAuditRows } from "../../kernel/audit.ts";
import { loadOrCreateOperatorKey, type OperatorKey } from "../../kernel/identity.ts";
import { type OstkPaths, ostkPaths } from "../../kernel/layout.ts";
import { appendNudge, nudgePath, takeNudges } from "../../kernel/nudge.ts";
import { initProject } from "../../kernel/project_init.ts";
import { Kernel } from "../../kernel/tools.ts";

interface Fixture {
  paths: OstkPaths;
  key: OperatorKey;
  kernel: Kernel;
  log: AuditLog;
}

async function withProject(fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_nudge_" });
  let kernel: Kernel | undefined;
  let log: AuditLog | undefined;
  try {
    const key = await loadOrCreateOperatorKey(`${scratch}/key/identity.key`);
    await Deno.mkdir(`${scratch}/proj`);
    await initProject(`${scratch}/proj`, key);
    const paths = ostkPaths(await Deno.realPath(`${scratch}/proj`));
    kernel = new Kernel(paths, { signer: key.signer, pin: "default" });
    log = new AuditLog(paths.audit, { signer: key.signer, headPath: paths.head });
    await fn({ paths, key, kernel, log });
  } finally {
    kernel?.close();
    log?.close();
    await Deno.remove(scratch, { recursive: true });
  }
}

Deno.test("nudge: an unknown alias is refused with the reason and nothing is queued", async () => {
  await withProject(async ({ paths, kernel }) => {
    const res = await kernel.call("nudge", { to: "ghost-1", text: "hi" }, { alias: "operator" });
    assert.equal(res.ok, false);
    if (res.ok) return;
    assert.equal(res.error.code, "not_found");
    assert.match(res.error.message, /unknown alias 'ghost-1'/);
    await assert.rejects(Deno.stat(nudgePath(paths.dir, "ghost-1")), Deno.errors.NotFound);
    const rows = await readAuditRows(paths.audit);
    assert.equal(rows.filter((r) => r.event === "nudge.send").length, 0);
  });
});

Deno.test("nudge: delivered once as digest lines with the next response, then emptied", async () => {
  await withProject(async ({ paths, kernel, log }) => {
    const to = await issueAlias(log, "worker", "operator");
    const first = await kernel.call("nudge", { to, text: "rebase on main" }, {
      alias: "operator",
    });
    assert.equal(first.ok, true, JSON.stringify(first));
    assert.ok(!first.digest.includes("[nudge]"), "the sender does not see its own nudge");
    const peer = await kernel.call("nudge", { to, text: "two\nlines" }, { alias: "peer-1" });
    assert.equal(peer.ok, true);

    // Any tool response carries them, a refused one too.
    const next = await kernel.call("file:read", { path: "missing.txt" }, { alias: to });
    assert.equal(next.ok, false);
    const lines = next.digest.split("\n");
    const nudges = lines.filter((l) => l.startsWith("[nudge]"));
    assert.deepEqual(nudges, [
      "[nudge] from=operator: rebase on main",
      "[nudge] from=peer-1: two lines",
    ]);
    assert.ok(lines.length - nudges.length <= 5, "status lines stay within five");
    assert.ok(lines[0].startsWith("[procs]"));
    assert.equal(await Deno.readTextFile(nudgePath(paths.dir, to)), "");

    const again = await kernel.call("file:read", { path: "missing.txt" }, { alias: to });
    assert.ok(!again.digest.includes("[nudge]"), "delivered once");

    const rows = await readAuditRows(paths.audit);
    const sends = rows.filter((r) => r.event === "nudge.send");
    assert.equal(sends.length, 2);
    assert.equal(sends[0].to, to);
    assert.equal(sends[0].from, "operator");
    assert.equal(sends[1].from, "peer-1");
    assert.ok(typeof sends[0].bytes === "number" && sends[0].bytes > 0);
    const delivered = rows.filter((r) => r.event === "nudge.deliver");
    assert.equal(delivered.length, 1);
    assert.equal(delivered[0].to, to);
    assert.equal(delivered[0].count, 2);
  });
});

Deno.test("nudge: a dead session is refused, a live one accepted", async () => {
  await withProject(async ({ kernel, log }) => {
    for (const alias of ["gone-1", "live-1"]) {
      await log.append({
        event: "session.spawn",
        actor: "operator",
        fields: { session: alias, alias },
      });
    }
    await log.append({
      event: "session.exit",
      actor: "kernel",
      fields: { session: "gone-1", reason: "done" },
    });
    const dead = await kernel.call("nudge", { to: "gone-1", text: "x" }, { alias: "operator" });
    assert.equal(dead.ok, false);
    if (!dead.ok) {
      assert.equal(dead.error.code, "conflict");
      assert.match(dead.error.message, /dead/);
    }
    const live = await kernel.call("nudge", { to: "live-1", text: "x" }, { alias: "operator" });
    assert.equal(live.ok, true);
  });
});

Deno.test("nudge: bad arguments are refused by the schema", async () => {
  await withProject(async ({ kernel }) => {
    const res = await kernel.call("nudge", { to: "Bad Alias", text: "" }, { alias: "operator" });
    assert.equal(res.ok, false);
    if (!res.ok) assert.equal(res.error.code, "bad_input");
  });
});

Deno.test("nudge: concurrent appends under the lock lose nothing", async () => {
  await withProject(async ({ paths }) => {
    const n = 40;
    await Promise.all(
      Array.from(
        { length: n },
        (_, i) => appendNudge(paths.dir, "a-1", { from: `s-${i}`, text: `m${i}`, ts: "" }),
      ),
    );
    const taken = await takeNudges(paths.dir, "a-1");
    assert.equal(taken.length, n);
    assert.deepEqual(new Set(taken.map((t) => t.text)).size, n);
    assert.deepEqual(await takeNudges(paths.dir, "a-1"), []);
    assert.deepEqual(await takeNudges(paths.dir, "nobody-1"), []);
  });
});
