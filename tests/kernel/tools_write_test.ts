/**
 * file:edit, file:write and file:create through the kernel tool layer: literal replacement, gen
 * bumps and audit rows, and the three Hot PR tiers when the caller's expected_gen is stale.
 */
import assert from "node:assert/strict";
import { type AuditRow, readAuditRows } from "../../kernel/audit.ts";
import { verifyAuditLog } from "../../kernel/audit_verify.ts";
import { contentHash, GenTable } from "../../kernel/gen_table.ts";
import { loadOrCreateOperatorKey, type OperatorKey } from "../../kernel/identity.ts";
import { type OstkPaths, ostkPaths } from "../../kernel/layout.ts";
import { initProject } from "../../kernel/project_init.ts";
import {
  Kernel,
  type KernelOptions,
  type ToolError,
  type ToolResponse,
} from "../../kernel/tools.ts";

interface Fixture {
  root: string;
  paths: OstkPaths;
  key: OperatorKey;
  kernel: Kernel;
}

async function withProject(fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_tools_write_" });
  let kernel: Kernel | undefined;
  try {
    const key = await loadOrCreateOperatorKey(`${scratch}/key/identity.key`);
    await Deno.mkdir(`${scratch}/proj/src`, { recursive: true });
    await initProject(`${scratch}/proj`, key);
    const root = await Deno.realPath(`${scratch}/proj`);
    const paths = ostkPaths(root);
    const options: KernelOptions = { signer: key.signer, pin: "default", auditReads: true };
    kernel = new Kernel(paths, options);
    await fn({ root, paths, key, kernel });
  } finally {
    kernel?.close();
    await Deno.remove(scratch, { recursive: true });
  }
}

function ok(res: ToolResponse): Record<string, unknown> {
  if (!res.ok) {
    assert.fail(`expected ${res.tool} to succeed, got ${res.error.code}: ${res.error.message}`);
  }
  return res.result;
}

function refused(res: ToolResponse, code: string): ToolError {
  if (res.ok) {
    assert.fail(`expected ${res.tool} to be refused (${code}), got ${JSON.stringify(res.result)}`);
  }
  assert.equal(res.error.code, code, res.error.message);
  return res.error;
}

async function rowsOf(paths: OstkPaths, event: string): Promise<AuditRow[]> {
  return (await readAuditRows(paths.audit)).filter((row) => row.event === event);
}

async function assertLogVerifies(fx: Fixture): Promise<void> {
  const report = await verifyAuditLog({
    logPath: fx.paths.audit,
    headPath: fx.paths.head,
    publicRaw: fx.key.signer.publicRaw,
  });
  assert.ok(report.ok, JSON.stringify(report.failure));
}

/** `count` distinct lines, each unique even as a substring ("line 01:" is not inside "line 10:"). */
function numbered(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `line ${String(i + 1).padStart(2, "0")}: as read`);
}

const text = (lines: string[]) => lines.join("\n") + "\n";

/** Create `rel` as alias a (gen 1) and let b read it, so both start from gen 1. */
async function startShared(fx: Fixture, rel: string, content: string): Promise<void> {
  assert.equal(
    ok(await fx.kernel.call("file:create", { path: rel, content }, { alias: "a" })).gen,
    1,
  );
  assert.equal(ok(await fx.kernel.call("file:read", { path: rel }, { alias: "b" })).gen, 1);
}

/** The file's bytes and its gen-table row, to show a refused call changed neither. */
async function stateOf(fx: Fixture, rel: string) {
  return {
    bytes: await Deno.readFile(`${fx.root}/${rel}`),
    table: await Deno.readTextFile(fx.paths.genTable),
  };
}

Deno.test("file:edit: one exact match is replaced, gen +1, one tool.file_edit row", async () => {
  await withProject(async (fx) => {
    await startShared(fx, "src/e.txt", "hello world\nbye\n");
    const res = ok(
      await fx.kernel.call("file:edit", {
        path: "src/e.txt",
        old: "world",
        new: "there",
      }, { alias: "b" }),
    );
    assert.deepEqual(res, { path: "src/e.txt", gen: 2, prev_gen: 1 });
    const after = await Deno.readFile(`${fx.root}/src/e.txt`);
    assert.equal(new TextDecoder().decode(after), "hello there\nbye\n");
    const rows = await rowsOf(fx.paths, "tool.file_edit");
    assert.equal(rows.length, 1);
    assert.equal(rows[0].actor, "b");
    assert.equal(rows[0].path, "src/e.txt");
    assert.equal(rows[0].gen, 2);
    assert.equal(rows[0].prev_gen, 1);
    assert.equal(rows[0].hash, await contentHash(after));
    assert.equal((await new GenTable(fx.paths.dir).read("src/e.txt"))?.gen, 2);
  });
});

Deno.test("file:edit: no match is a conflict; several are bad_input unless replace_all", async () => {
  await withProject(async (fx) => {
    await startShared(fx, "src/m.txt", "x = 1\nx = 1\ny = 2\n");
    const before = await stateOf(fx, "src/m.txt");
    const none = refused(
      await fx.kernel.call("file:edit", { path: "src/m.txt", old: "z = 3", new: "z = 4" }, {
        alias: "b",
      }),
      "conflict",
    );
    assert.match(none.message, /not found/);
    const many = refused(
      await fx.kernel.call("file:edit", { path: "src/m.txt", old: "x = 1", new: "x = 9" }, {
        alias: "b",
      }),
      "bad_input",
    );
    assert.match(many.message, /matches 2 times/);
    assert.match(many.hint ?? "", /replace_all/);
    assert.deepEqual(await stateOf(fx, "src/m.txt"), before);

    const all = ok(
      await fx.kernel.call("file:edit", {
        path: "src/m.txt",
        old: "x = 1",
        new: "x = 9",
        replace_all: true,
      }, { alias: "b" }),
    );
    assert.equal(all.gen, 2);
    assert.equal(await Deno.readTextFile(`${fx.root}/src/m.txt`), "x = 9\nx = 9\ny = 2\n");
  });
});

Deno.test("file:edit: $& and $1 in the new text are inserted literally", async () => {
  await withProject(async (fx) => {
    await startShared(fx, "src/d.txt", "price: TBD\nTBD2\n");
    ok(
      await fx.kernel.call("file:edit", { path: "src/d.txt", old: "TBD\n", new: "$&-$1-$$-$`\n" }, {
        alias: "b",
      }),
    );
    assert.equal(await Deno.readTextFile(`${fx.root}/src/d.txt`), "price: $&-$1-$$-$`\nTBD2\n");
    ok(
      await fx.kernel.call("file:edit", {
        path: "src/d.txt",
        old: "TBD2",
        new: "$'$&",
        replace_all: true,
      }, { alias: "b" }),
    );
    assert.equal(await Deno.readTextFile(`${fx.root}/src/d.txt`), "price: $&-$1-$$-$`\n$'$&\n");
  });
});

Deno.test("file:edit: an edit to identical text is unchanged, with no gen bump", async () => {
  await withProject(async (fx) => {
    await startShared(fx, "src/u.txt", "same\n");
    const before = await stateOf(fx, "src/u.txt");
    const res = ok(
      await fx.kernel.call("file:edit", { path: "src/u.txt", old: "same", new: "same" }, {
        alias: "b",
      }),
    );
    assert.equal(res.unchanged, true);
    assert.equal(res.gen, 1);
    assert.deepEqual(await stateOf(fx, "src/u.txt"), before);
    assert.deepEqual(await rowsOf(fx.paths, "tool.file_edit"), []);
  });
});

Deno.test("hot pr tier 1: stale edits 4 unchanged lines apart merge", async () => {
  await withProject(async (fx) => {
    const lines = numbered(20);
    await startShared(fx, "src/h.txt", text(lines));
    ok(
      await fx.kernel.call("file:edit", {
        path: "src/h.txt",
        old: "line 05: as read",
        new: "line 05: by a",
      }, { alias: "a" }),
    );
    const res = ok(
      await fx.kernel.call("file:edit", {
        path: "src/h.txt",
        old: "line 10: as read",
        new: "line 10: by b",
        expected_gen: 1,
      }, { alias: "b" }),
    );
    assert.equal(res.merged, "merged");
    assert.equal(res.merge_note, "merged with a concurrent edit (tier 1)");
    assert.equal(res.gen, 3);
    assert.equal(res.prev_gen, 2);
    const want = [...lines];
    want[4] = "line 05: by a";
    want[9] = "line 10: by b";
    assert.equal(await Deno.readTextFile(`${fx.root}/src/h.txt`), text(want));
    const edits = await rowsOf(fx.paths, "tool.file_edit");
    assert.equal(edits.at(-1)?.merged, "merged");
    assert.deepEqual(await rowsOf(fx.paths, "tool.conflict"), []);
  });
});

Deno.test("hot pr tier 2: stale edits 3 unchanged lines apart get a suggestion", async () => {
  await withProject(async (fx) => {
    const lines = numbered(20);
    await startShared(fx, "src/h.txt", text(lines));
    ok(
      await fx.kernel.call("file:edit", {
        path: "src/h.txt",
        old: "line 05: as read",
        new: "line 05: by a",
      }, { alias: "a" }),
    );
    const before = await stateOf(fx, "src/h.txt");
    const err = refused(
      await fx.kernel.call("file:edit", {
        path: "src/h.txt",
        old: "line 09: as read",
        new: "line 09: by b",
        expected_gen: 1,
      }, { alias: "b" }),
      "conflict",
    );
    assert.equal(err.details?.tier, 2);
    assert.equal(err.details?.expected_gen, 1);
    assert.equal(err.details?.gen, 2);
    const suggestion = err.details?.suggestion as { old: string; new: string };
    assert.equal(typeof suggestion.old, "string");
    assert.equal(typeof suggestion.new, "string");
    assert.deepEqual(await stateOf(fx, "src/h.txt"), before);
    const conflicts = await rowsOf(fx.paths, "tool.conflict");
    assert.equal(conflicts.length, 1);
    assert.equal(conflicts[0].tier, 2);
    assert.equal(conflicts[0].path, "src/h.txt");

    const applied = ok(
      await fx.kernel.call("file:edit", { path: "src/h.txt", ...suggestion }, {
        alias: "b",
      }),
    );
    assert.equal(applied.gen, 3);
    const want = [...lines];
    want[4] = "line 05: by a";
    want[8] = "line 09: by b";
    assert.equal(await Deno.readTextFile(`${fx.root}/src/h.txt`), text(want));
  });
});

Deno.test("hot pr tier 3: a large overlapping rewrite is refused with a diff", async () => {
  await withProject(async (fx) => {
    const lines = numbered(60);
    await startShared(fx, "src/h.txt", text(lines));
    const rewritten = lines.map((line, i) => i >= 10 && i < 50 ? `${line} (rewritten by a)` : line);
    ok(
      await fx.kernel.call("file:write", { path: "src/h.txt", content: text(rewritten) }, {
        alias: "a",
      }),
    );
    const before = await stateOf(fx, "src/h.txt");
    const err = refused(
      await fx.kernel.call("file:edit", {
        path: "src/h.txt",
        old: "line 30: as read\n",
        new: "line 30: by b\n",
        expected_gen: 1,
      }, { alias: "b" }),
      "conflict",
    );
    assert.equal(err.details?.tier, 3);
    assert.match(String(err.details?.diff), /@@/);
    assert.deepEqual(await stateOf(fx, "src/h.txt"), before);
    const conflicts = await rowsOf(fx.paths, "tool.conflict");
    assert.equal(conflicts.length, 1);
    assert.equal(conflicts[0].tier, 3);
    assert.equal(conflicts[0].expected_gen, 1);
    assert.equal(conflicts[0].gen, 2);
    await assertLogVerifies(fx);
  });
});

Deno.test("file:write: replaces; refuses a missing file and a stale expected_gen", async () => {
  await withProject(async (fx) => {
    await startShared(fx, "src/w.txt", "v1\n");
    const res = ok(
      await fx.kernel.call("file:write", {
        path: "src/w.txt",
        content: "v2\n",
        expected_gen: 1,
      }, { alias: "a" }),
    );
    assert.deepEqual(res, { path: "src/w.txt", gen: 2, prev_gen: 1 });
    assert.equal(await Deno.readTextFile(`${fx.root}/src/w.txt`), "v2\n");
    assert.equal((await rowsOf(fx.paths, "tool.file_write")).length, 1);

    const before = await stateOf(fx, "src/w.txt");
    for (const expected_gen of [1, 7]) {
      refused(
        await fx.kernel.call("file:write", { path: "src/w.txt", content: "mine\n", expected_gen }, {
          alias: "b",
        }),
        "conflict",
      );
    }
    assert.deepEqual(await stateOf(fx, "src/w.txt"), before);
    assert.equal((await rowsOf(fx.paths, "tool.conflict")).length, 2);

    // file:write creates or replaces (file:create is the one that insists on a new path).
    const created = await fx.kernel.call(
      "file:write",
      { path: "src/none.txt", content: "x" },
      { alias: "a" },
    );
    assert.equal(created.ok, true);
    assert.equal(await Deno.readTextFile(`${fx.root}/src/none.txt`), "x");
  });
});

Deno.test("file:create: refuses an existing path; makes parent directories", async () => {
  await withProject(async (fx) => {
    await Deno.writeTextFile(`${fx.root}/src/exists.txt`, "mine\n");
    const err = refused(
      await fx.kernel.call("file:create", { path: "src/exists.txt", content: "theirs\n" }, {
        alias: "a",
      }),
      "conflict",
    );
    assert.match(err.message, /already exists/);
    assert.equal(await Deno.readTextFile(`${fx.root}/src/exists.txt`), "mine\n");
    assert.equal(await new GenTable(fx.paths.dir).read("src/exists.txt"), undefined);

    const res = ok(
      await fx.kernel.call("file:create", { path: "deep/er/new.txt", content: "n\n" }, {
        alias: "a",
      }),
    );
    assert.deepEqual(res, { path: "deep/er/new.txt", gen: 1, prev_gen: 0 });
    assert.equal(await Deno.readTextFile(`${fx.root}/deep/er/new.txt`), "n\n");
    const rows = await rowsOf(fx.paths, "tool.file_create");
    assert.equal(rows.length, 1);
    assert.equal(rows[0].path, "deep/er/new.txt");
    await assertLogVerifies(fx);
  });
});
