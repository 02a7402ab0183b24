/**
 * The digest envelope after every tool response: its shape, the `[files]` line for files a
 * reader saw that someone else changed, the load and context lines, and byte-for-byte stability.
 */
import assert from "node:assert/strict";
import { AuditLog, readAuditRows } from "../../kernel/audit.ts";
import { renderDigest } from "../../kernel/digest.ts";
import { fold } from "../../kernel/fold.ts";
import { loadOrCreateOperatorKey, type OperatorKey } from "../../kernel/identity.ts";
import { type OstkPaths, ostkPaths } from "../../kernel/layout.ts";
import { initProject } from "../../kernel/project_init.ts";
import { Kernel, type KernelOptions, type ToolResponse } from "../../kernel/tools.ts";

interface Fixture {
  root: string;
  paths: OstkPaths;
  key: OperatorKey;
  open(options?: Partial<KernelOptions>): Kernel;
}

async function withProject(fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_digest_" });
  const kernels: Kernel[] = [];
  try {
    const key = await loadOrCreateOperatorKey(`${scratch}/key/identity.key`);
    await Deno.mkdir(`${scratch}/proj/src`, { recursive: true });
    await initProject(`${scratch}/proj`, key);
    const root = await Deno.realPath(`${scratch}/proj`);
    const paths = ostkPaths(root);
    const open = (options: Partial<KernelOptions> = {}) => {
      const kernel = new Kernel(paths, {
        signer: key.signer,
        pin: "default",
        auditReads: true,
        ...options,
      });
      kernels.push(kernel);
      return kernel;
    };
    await fn({ root, paths, key, open });
  } finally {
    for (const kernel of kernels) kernel.close();
    await Deno.remove(scratch, { recursive: true });
  }
}

/** The digest's lines, after checking the shape every digest must have. */
function digestLines(res: ToolResponse): string[] {
  const lines = res.digest.split("\n");
  assert.ok(lines.length <= 5, `digest has ${lines.length} lines:\n${res.digest}`);
  assert.ok(lines[0].startsWith("[procs]"), res.digest);
  assert.ok(!res.digest.endsWith("\n"));
  return lines;
}

function ok(res: ToolResponse): Record<string, unknown> {
  if (!res.ok) {
    assert.fail(`expected ${res.tool} to succeed, got ${res.error.code}: ${res.error.message}`);
  }
  return res.result;
}

Deno.test("digest: [files] names a file this reader saw that another alias changed", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open();
    const call = async (tool: string, args: unknown, alias: string) => {
      const res = await kernel.call(tool, args, { alias });
      ok(res);
      return digestLines(res);
    };
    for (const name of ["p", "q", "s"]) {
      await call("file:create", { path: `src/${name}.txt`, content: `${name}\n` }, "w");
    }
    await call("file:read", { path: "src/p.txt" }, "r");
    await call("file:read", { path: "src/q.txt" }, "r");
    assert.ok(
      !(await call("file:read", { path: "src/q.txt" }, "r")).some((l) => l.startsWith("[files]")),
    );

    await call("file:edit", { path: "src/p.txt", old: "p", new: "P" }, "w");
    await call("file:edit", { path: "src/s.txt", old: "s", new: "S" }, "w"); // r never read it
    const lines = await call("file:read", { path: "src/q.txt" }, "r");
    const files = lines.filter((l) => l.startsWith("[files]"));
    assert.equal(files.length, 1, lines.join("\n"));
    assert.match(files[0], /^\[files\] src\/p\.txt gen=2 by=w age=\d+[smhd]$/);

    // The writer is not told about its own change.
    const mine = await call("file:read", { path: "src/q.txt" }, "w");
    assert.ok(!mine.some((l) => l.startsWith("[files]")), mine.join("\n"));

    // Once r reads the new gen, the file is current and drops out.
    await call("file:read", { path: "src/p.txt" }, "r");
    const after = await call("file:read", { path: "src/q.txt" }, "r");
    assert.ok(!after.some((l) => l.startsWith("[files]")), after.join("\n"));
  });
});

Deno.test("digest: [loadavg] counts writes and conflicts of the last minute", async () => {
  await withProject(async (fx) => {
    let clock = Date.now();
    const kernel = fx.open({ now: () => clock });
    const call = (tool: string, args: unknown, alias: string) => kernel.call(tool, args, { alias });
    ok(await call("file:create", { path: "src/a.txt", content: "one\n" }, "w"));
    ok(await call("file:write", { path: "src/a.txt", content: "two\n" }, "w"));
    ok(await call("file:edit", { path: "src/a.txt", old: "two", new: "three" }, "w"));
    for (const expected_gen of [7, 8]) {
      const res = await call(
        "file:edit",
        { path: "src/a.txt", old: "x", new: "y", expected_gen },
        "r",
      );
      assert.equal(res.ok, false);
    }
    // Put the clock exactly at the last row, so the window holds every event above.
    const rows = await readAuditRows(fx.paths.audit);
    clock = Date.parse(rows.at(-1)!.ts);
    const lines = digestLines(await call("file:read", { path: "src/a.txt" }, "r"));
    assert.ok(lines.includes("[loadavg] writes=3 conflicts=2 /1m"), lines.join("\n"));

    const state = fold(await readAuditRows(fx.paths.audit));
    const later = renderDigest({ state, reader: "r", nowMs: clock + 61_000 });
    assert.ok(later.split("\n").includes("[loadavg] writes=0 conflicts=0 /1m"), later);
  });
});

Deno.test("digest: [meminfo] appears only when the caller gives a budget", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open();
    await Deno.writeTextFile(`${fx.root}/src/a.txt`, "a\n");
    const without = digestLines(
      await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }),
    );
    assert.ok(!without.some((l) => l.startsWith("[meminfo]")), without.join("\n"));
    const budget = { used: 500, limit: 2000 };
    const withBudget = digestLines(
      await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r", budget }),
    );
    assert.equal(withBudget.at(-1), "[meminfo] context 500/2000 tokens (25%)");
    // A refused call carries the digest too.
    const refused = await kernel.call("file:read", { path: "" }, { alias: "r", budget });
    assert.equal(refused.ok, false);
    assert.equal(digestLines(refused).at(-1), "[meminfo] context 500/2000 tokens (25%)");
  });
});

Deno.test("digest: the same state and clock render the same bytes", async () => {
  await withProject(async (fx) => {
    const log = new AuditLog(fx.paths.audit, { signer: fx.key.signer, headPath: fx.paths.head });
    try {
      await log.appendBatch([
        { event: "agent.alias", actor: "operator", fields: { alias: "w", name: "w", n: 1 } },
        { event: "session.spawn", actor: "w", fields: { session: "s1", alias: "w" } },
        { event: "session.spawn", actor: "r", fields: { session: "s2", alias: "r" } },
        { event: "session.exit", actor: "r", fields: { session: "s2" } },
      ]);
    } finally {
      log.close();
    }
    let nowMs = Date.now();
    const kernel = fx.open({ now: () => nowMs });
    const budget = { used: 1, limit: 3 };
    ok(await kernel.call("file:create", { path: "src/a.txt", content: "1\n" }, { alias: "w" }));
    ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    ok(await kernel.call("file:write", { path: "src/a.txt", content: "2\n" }, { alias: "w" }));
    // 90 s after the write's own timestamp, whatever the wall clock did meanwhile.
    nowMs = Date.parse((await readAuditRows(fx.paths.audit)).at(-1)!.ts) + 90_000;
    const last = await kernel.call("file:read", { path: "src/b.txt" }, { alias: "r", budget });
    const lines = digestLines(last);
    assert.equal(lines[0], "[procs] 1 alive: w · 1 aliases");
    assert.match(lines[1], /^\[files\] src\/a\.txt gen=2 by=w age=1m$/);

    const rows = await readAuditRows(fx.paths.audit);
    const input = { reader: "r", nowMs, budget };
    const first = renderDigest({ state: fold(rows), ...input });
    const second = renderDigest({ state: fold(rows), ...input });
    const state = fold(rows);
    assert.equal(first, second);
    assert.equal(renderDigest({ state, ...input }), renderDigest({ state, ...input }));
    // The kernel's incremental fold renders what a full fold of the log renders.
    assert.equal(last.digest, first);
    assert.ok(first.split("\n").length <= 5);
  });
});

Deno.test("digest: [procs] counts alive sessions; orphaned ones apart; ended ones not at all", () => {
  const rows = [
    ["session.spawn", "run-1"],
    ["session.spawn", "lost-1"],
    ["session.spawn", "back-1"],
    ["session.spawn", "done-1"],
    ["session.spawn", "idle-1"],
    ["session.orphan", "lost-1"],
    ["session.orphan", "back-1"],
    ["session.revive", "back-1"],
    ["session.exit", "done-1"],
    ["session.drain", "idle-1"],
  ].map(([event, session], seq) => ({
    seq,
    ts: "2025-01-01T00:00:00.000Z",
    event,
    actor: "kernel",
    session,
    alias: session,
    prev_hash: "0".repeat(64),
    sig: "",
  }));
  const text = renderDigest({ state: fold(rows), reader: "run-1", nowMs: 0 });
  assert.equal(
    text.split("\n")[0],
    "[procs] 2 alive: back-1 run-1 · 2 orphaned: idle-1 lost-1 · 0 aliases",
  );
  // With nothing orphaned the line keeps its old form.
  const calm = renderDigest({ state: fold(rows.slice(0, 1)), reader: "run-1", nowMs: 0 });
  assert.equal(calm.split("\n")[0], "[procs] 1 alive: run-1 · 0 aliases");
});
