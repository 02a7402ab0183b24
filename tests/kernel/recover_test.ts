/**
 * recoverProject after a simulated crash: a gen-table row the audit log never heard of is
 * re-logged as `gen.recover`, a file changed behind the kernel is adopted as `bypass.detected`,
 * a second run changes nothing, and afterwards the log's fold agrees with the table.
 */
import assert from "node:assert/strict";
import { AuditLog, type AuditRow, readAuditRows } from "../../kernel/audit.ts";
import { verifyAuditLog } from "../../kernel/audit_verify.ts";
import { fold } from "../../kernel/fold.ts";
import { GenTable } from "../../kernel/gen_table.ts";
import { loadOrCreateOperatorKey, type OperatorKey } from "../../kernel/identity.ts";
import { type OstkPaths, ostkPaths } from "../../kernel/layout.ts";
import { initProject } from "../../kernel/project_init.ts";
import { recoverProject } from "../../kernel/recover.ts";
import { Kernel, type ToolResponse } from "../../kernel/tools.ts";

interface Fixture {
  root: string;
  paths: OstkPaths;
  key: OperatorKey;
  kernel: Kernel;
  log: AuditLog;
}

async function withProject(fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_recover_" });
  let kernel: Kernel | undefined;
  let log: AuditLog | undefined;
  try {
    const key = await loadOrCreateOperatorKey(`${scratch}/key/identity.key`);
    await Deno.mkdir(`${scratch}/proj/src`, { recursive: true });
    await initProject(`${scratch}/proj`, key);
    const root = await Deno.realPath(`${scratch}/proj`);
    const paths = ostkPaths(root);
    kernel = new Kernel(paths, { signer: key.signer, pin: "default", auditReads: true });
    log = new AuditLog(paths.audit, { signer: key.signer, headPath: paths.head });
    await fn({ root, paths, key, kernel, log });
  } finally {
    kernel?.close();
    log?.close();
    await Deno.remove(scratch, { recursive: true });
  }
}

function ok(res: ToolResponse): Record<string, unknown> {
  if (!res.ok) {
    assert.fail(`expected ${res.tool} to succeed, got ${res.error.code}: ${res.error.message}`);
  }
  return res.result;
}

async function rowsOf(paths: OstkPaths, event: string): Promise<AuditRow[]> {
  return (await readAuditRows(paths.audit)).filter((row) => row.event === event);
}

/** A kernel-style write that crashed before its audit row: file, shadow and table row only. */
async function writeWithoutAudit(fx: Fixture, rel: string, content: string): Promise<number> {
  const bytes = new TextEncoder().encode(content);
  const { row } = await new GenTable(fx.paths.dir).transact(rel, `${fx.root}/${rel}`, () => ({
    write: { bytes, writer: "w" },
    result: undefined,
  }));
  return row!.gen;
}

/** Every tracked path's gen in the table equals its gen in the fold of the log. */
async function assertTableMatchesLog(fx: Fixture): Promise<void> {
  const table = await new GenTable(fx.paths.dir).all();
  assert.ok(table.size > 0);
  const files = fold(await readAuditRows(fx.paths.audit)).files;
  for (const [path, row] of table) {
    assert.equal(files.get(path)?.gen, row.gen, `${path}: table gen ${row.gen}`);
  }
  const report = await verifyAuditLog({
    logPath: fx.paths.audit,
    headPath: fx.paths.head,
    publicRaw: fx.key.signer.publicRaw,
  });
  assert.ok(report.ok, JSON.stringify(report.failure));
}

Deno.test("recover: a table row with no audit row is re-logged as gen.recover, once", async () => {
  await withProject(async (fx) => {
    ok(await fx.kernel.call("file:create", { path: "src/a.txt", content: "v1\n" }, { alias: "w" }));
    assert.equal(await writeWithoutAudit(fx, "src/a.txt", "v2\n"), 2);
    assert.equal(await writeWithoutAudit(fx, "src/never-logged.txt", "n\n"), 1);
    const before = fold(await readAuditRows(fx.paths.audit)).files;
    assert.equal(before.get("src/a.txt")?.gen, 1);
    assert.equal(before.get("src/never-logged.txt"), undefined);

    const report = await recoverProject(fx.paths, fx.log);
    assert.deepEqual(report.adopted, []);
    assert.deepEqual(report.recovered.sort(), ["src/a.txt", "src/never-logged.txt"]);
    const recovered = await rowsOf(fx.paths, "gen.recover");
    assert.deepEqual(
      recovered.map((r) => [r.path, r.gen, r.writer, r.actor]).sort(),
      [["src/a.txt", 2, "w", "kernel"], ["src/never-logged.txt", 1, "w", "kernel"]],
    );
    const table = await new GenTable(fx.paths.dir).all();
    for (const r of recovered) assert.equal(r.hash, table.get(String(r.path))?.hash);
    await assertTableMatchesLog(fx);

    const rowsAfterFirst = await Deno.readTextFile(fx.paths.audit);
    const tableAfterFirst = await Deno.readTextFile(fx.paths.genTable);
    const again = await recoverProject(fx.paths, fx.log);
    assert.deepEqual(again, { adopted: [], recovered: [], removedTemps: [] });
    assert.equal(await Deno.readTextFile(fx.paths.audit), rowsAfterFirst);
    assert.equal(await Deno.readTextFile(fx.paths.genTable), tableAfterFirst);
  });
});

Deno.test("recover: a tracked file changed behind the kernel is adopted", async () => {
  await withProject(async (fx) => {
    ok(
      await fx.kernel.call("file:create", { path: "src/b.txt", content: "kernel\n" }, {
        alias: "w",
      }),
    );
    ok(
      await fx.kernel.call("file:create", { path: "src/c.txt", content: "untouched\n" }, {
        alias: "w",
      }),
    );
    await Deno.writeTextFile(`${fx.root}/src/b.txt`, "by hand\n");

    const report = await recoverProject(fx.paths, fx.log);
    assert.deepEqual(report, { adopted: ["src/b.txt"], recovered: [], removedTemps: [] });
    const detected = await rowsOf(fx.paths, "bypass.detected");
    assert.equal(detected.length, 1);
    assert.equal(detected[0].path, "src/b.txt");
    assert.equal(detected[0].gen, 2);
    assert.equal(detected[0].prev_gen, 1);
    assert.equal(detected[0].seen_by, "recovery");
    const row = await new GenTable(fx.paths.dir).read("src/b.txt");
    assert.equal(row?.gen, 2);
    assert.equal(row?.writer, "bypass");
    // Adoption records the file; it never rewrites it.
    assert.equal(await Deno.readTextFile(`${fx.root}/src/b.txt`), "by hand\n");
    await assertTableMatchesLog(fx);

    assert.deepEqual(await recoverProject(fx.paths, fx.log), {
      adopted: [],
      recovered: [],
      removedTemps: [],
    });
    // The kernel picks up at the adopted gen, with no second bypass.
    const read = ok(await fx.kernel.call("file:read", { path: "src/b.txt" }, { alias: "r" }));
    assert.equal(read.gen, 2);
    assert.equal(read.bypass, undefined);
    assert.equal(read.content, "by hand\n");
  });
});

Deno.test("recover: a write whose rename never landed is finished from its shadow", async () => {
  await withProject(async (fx) => {
    ok(
      await fx.kernel.call("file:create", { path: "src/d.txt", content: "old\n" }, { alias: "w" }),
    );
    // What a crash between the gen row and the rename leaves: the row and the new gen's shadow,
    // the old bytes on disk, no audit row.
    await writeWithoutAudit(fx, "src/d.txt", "new\n");
    await Deno.writeTextFile(`${fx.root}/src/d.txt`, "old\n");
    const report = await recoverProject(fx.paths, fx.log);
    assert.deepEqual(report.adopted, []);
    assert.deepEqual(report.recovered, ["src/d.txt"]);
    assert.equal(await Deno.readTextFile(`${fx.root}/src/d.txt`), "new\n");
    await assertTableMatchesLog(fx);
  });
});

Deno.test("recover: both gaps at once leave table and log in agreement", async () => {
  await withProject(async (fx) => {
    ok(await fx.kernel.call("file:create", { path: "src/a.txt", content: "1\n" }, { alias: "w" }));
    ok(await fx.kernel.call("file:create", { path: "src/b.txt", content: "1\n" }, { alias: "w" }));
    ok(await fx.kernel.call("file:create", { path: "src/c.txt", content: "1\n" }, { alias: "w" }));
    await writeWithoutAudit(fx, "src/a.txt", "2\n"); // row without audit
    await Deno.writeTextFile(`${fx.root}/src/b.txt`, "outside\n"); // file without row
    await writeWithoutAudit(fx, "src/c.txt", "2\n"); // both, on one path
    await Deno.writeTextFile(`${fx.root}/src/c.txt`, "outside\n");

    const report = await recoverProject(fx.paths, fx.log);
    assert.deepEqual(report.adopted.sort(), ["src/b.txt", "src/c.txt"]);
    // c's unaudited gen 2 is logged too (with its call id) before the outside edit is adopted.
    assert.deepEqual(report.recovered.sort(), ["src/a.txt", "src/c.txt"]);
    const table = await new GenTable(fx.paths.dir).all();
    assert.deepEqual(
      [...table.values()].map((r) => [r.path, r.gen]).sort(),
      [["src/a.txt", 2], ["src/b.txt", 2], ["src/c.txt", 3]],
    );
    await assertTableMatchesLog(fx);
    assert.deepEqual(await recoverProject(fx.paths, fx.log), {
      adopted: [],
      recovered: [],
      removedTemps: [],
    });
  });
});
