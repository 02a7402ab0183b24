/**
 * file:read through the kernel tool layer: gens, line ranges, 304 elision (per alias, across a
 * restart, without read auditing) and adoption of edits made around the kernel.
 */
import assert from "node:assert/strict";
import { type AuditRow, readAuditRows } from "../../kernel/audit.ts";
import { verifyAuditLog } from "../../kernel/audit_verify.ts";
import { contentHash, GenTable } from "../../kernel/gen_table.ts";
import { loadOrCreateOperatorKey, type OperatorKey } from "../../kernel/identity.ts";
import { type OstkPaths, ostkPaths } from "../../kernel/layout.ts";
import { initProject } from "../../kernel/project_init.ts";
import { Kernel, type KernelOptions, type ToolResponse } from "../../kernel/tools.ts";

interface Fixture {
  root: string;
  paths: OstkPaths;
  key: OperatorKey;
  /** A kernel on the project; closed when the test ends. */
  open(options?: Partial<KernelOptions>): Kernel;
}

async function withProject(fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_tools_read_" });
  const kernels: Kernel[] = [];
  try {
    const key = await loadOrCreateOperatorKey(`${scratch}/key/identity.key`);
    await Deno.mkdir(`${scratch}/proj/src`, { recursive: true });
    await initProject(`${scratch}/proj`, key);
    const root = await Deno.realPath(`${scratch}/proj`);
    const paths = ostkPaths(root);
    const open = (options: Partial<KernelOptions> = {}) => {
      // Pin and read auditing are explicit so OSTK_PIN / OSTK_AUDIT_READS cannot leak in.
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

function ok(res: ToolResponse): Record<string, unknown> {
  if (!res.ok) {
    assert.fail(`expected ${res.tool} to succeed, got ${res.error.code}: ${res.error.message}`);
  }
  return res.result;
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

Deno.test("file:read: gen 0 for an untracked file, N after N kernel writes", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open();
    await Deno.writeTextFile(`${fx.root}/src/untracked.txt`, "by hand\n");
    const plain = ok(await kernel.call("file:read", { path: "src/untracked.txt" }, { alias: "r" }));
    assert.equal(plain.content, "by hand\n");
    assert.equal(plain.gen, 0);
    assert.equal(plain.bytes, 8);

    ok(await kernel.call("file:create", { path: "src/t.txt", content: "one\n" }, { alias: "w" }));
    ok(await kernel.call("file:write", { path: "src/t.txt", content: "two\n" }, { alias: "w" }));
    ok(
      await kernel.call("file:edit", { path: "src/t.txt", old: "two", new: "three" }, {
        alias: "w",
      }),
    );
    const read = ok(await kernel.call("file:read", { path: "src/t.txt" }, { alias: "r" }));
    assert.equal(read.content, "three\n");
    assert.equal(read.gen, 3);
    assert.equal(read.path, "src/t.txt");
  });
});

Deno.test("file:read: offset/limit slice lines, and a ranged read never makes a full read elide", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open();
    await Deno.writeTextFile(`${fx.root}/src/l.txt`, "l0\nl1\nl2\nl3\nl4\n");
    const mid = ok(
      await kernel.call("file:read", { path: "src/l.txt", offset: 1, limit: 2 }, {
        alias: "r",
      }),
    );
    assert.equal(mid.content, "l1\nl2");
    const tail = ok(
      await kernel.call("file:read", { path: "src/l.txt", offset: 3 }, {
        alias: "r",
      }),
    );
    assert.equal(tail.content, "l3\nl4\n");
    const head = ok(
      await kernel.call("file:read", { path: "src/l.txt", limit: 1 }, { alias: "r" }),
    );
    assert.equal(head.content, "l0");
    // Only parts were seen so far: the first full read must carry the bytes.
    const full = ok(await kernel.call("file:read", { path: "src/l.txt" }, { alias: "r" }));
    assert.equal(full.content, "l0\nl1\nl2\nl3\nl4\n");
    assert.equal(full.elided, undefined);
    // A ranged read after a full one still returns its slice, not a 304.
    const again = ok(
      await kernel.call("file:read", { path: "src/l.txt", offset: 4, limit: 1 }, {
        alias: "r",
      }),
    );
    assert.equal(again.content, "l4");
    const ranged = (await rowsOf(fx.paths, "tool.file_read")).filter((row) => row.ranged === true);
    assert.equal(ranged.length, 4);
  });
});

Deno.test("file:read: same alias gets [304]; another alias and force:true get the bytes", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open();
    ok(await kernel.call("file:create", { path: "src/a.txt", content: "alpha\n" }, { alias: "w" }));
    const first = ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    assert.equal(first.content, "alpha\n");
    const second = ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    assert.equal(second.elided, true);
    assert.equal(second.text, "[304] src/a.txt gen=1 (current)");
    assert.equal(second.content, undefined);
    assert.equal(second.gen, 1);

    const other = ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "s" }));
    assert.equal(other.content, "alpha\n");
    assert.equal(other.elided, undefined);

    const forced = ok(
      await kernel.call("file:read", { path: "src/a.txt", force: true }, {
        alias: "r",
      }),
    );
    assert.equal(forced.content, "alpha\n");
    assert.equal(forced.elided, undefined);

    const rows = (await rowsOf(fx.paths, "tool.file_read")).filter((r) => r.actor === "r");
    assert.deepEqual(rows.map((r) => r.elided), [false, true, false]);
  });
});

Deno.test("file:read: after another alias writes, the re-read returns bytes at the new gen", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open();
    ok(await kernel.call("file:create", { path: "src/a.txt", content: "v1\n" }, { alias: "w" }));
    ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    ok(await kernel.call("file:write", { path: "src/a.txt", content: "v2\n" }, { alias: "w" }));
    const read = ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    assert.equal(read.elided, undefined);
    assert.equal(read.content, "v2\n");
    assert.equal(read.gen, 2);
    const again = ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    assert.equal(again.text, "[304] src/a.txt gen=2 (current)");
  });
});

Deno.test("file:read: 304 survives a restart because read rows are audited", async () => {
  await withProject(async (fx) => {
    const before = fx.open();
    ok(await before.call("file:create", { path: "src/a.txt", content: "kept\n" }, { alias: "w" }));
    ok(await before.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    before.close();

    const after = fx.open();
    const read = ok(await after.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    assert.equal(read.elided, true);
    assert.equal(read.text, "[304] src/a.txt gen=1 (current)");
    // A reader that never read it still gets the bytes after the restart.
    const fresh = ok(await after.call("file:read", { path: "src/a.txt" }, { alias: "s" }));
    assert.equal(fresh.content, "kept\n");
    await assertLogVerifies(fx);
  });
});

Deno.test("file:read: auditReads:false writes no tool.file_read rows", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open({ auditReads: false });
    ok(await kernel.call("file:create", { path: "src/a.txt", content: "x\n" }, { alias: "w" }));
    const first = ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    assert.equal(first.content, "x\n");
    // Elision still works within this kernel object, from its own memory.
    const second = ok(await kernel.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    assert.equal(second.elided, true);
    ok(await kernel.call("file:read", { path: "src/a.txt", offset: 0, limit: 1 }, { alias: "r" }));
    assert.deepEqual(await rowsOf(fx.paths, "tool.file_read"), []);
    assert.equal((await rowsOf(fx.paths, "tool.file_create")).length, 1);
    // Nothing was logged, so a new kernel cannot know that r read it.
    const restarted = fx.open({ auditReads: false });
    const third = ok(await restarted.call("file:read", { path: "src/a.txt" }, { alias: "r" }));
    assert.equal(third.content, "x\n");
  });
});

Deno.test("bypass: an edit made around the kernel is adopted, audited, and editable", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open();
    const abs = `${fx.root}/src/b.txt`;
    ok(
      await kernel.call("file:create", { path: "src/b.txt", content: "kernel\n" }, { alias: "w" }),
    );
    ok(await kernel.call("file:read", { path: "src/b.txt" }, { alias: "r" }));
    await Deno.writeTextFile(abs, "by hand\nmore\n");

    const read = ok(await kernel.call("file:read", { path: "src/b.txt" }, { alias: "r" }));
    assert.deepEqual(read.bypass, { gen: 2, prev_gen: 1 });
    assert.equal(read.gen, 2);
    assert.equal(read.content, "by hand\nmore\n");
    const row = await new GenTable(fx.paths.dir).read("src/b.txt");
    assert.equal(row?.gen, 2);
    assert.equal(row?.writer, "bypass");

    const detected = await rowsOf(fx.paths, "bypass.detected");
    assert.equal(detected.length, 1);
    assert.equal(detected[0].path, "src/b.txt");
    assert.equal(detected[0].gen, 2);
    assert.equal(detected[0].prev_gen, 1);
    assert.equal(detected[0].seen_by, "r");
    assert.equal(detected[0].hash, await contentHash(new TextEncoder().encode("by hand\nmore\n")));

    // Adopted once: a second read neither re-adopts nor reports a bypass.
    const again = ok(await kernel.call("file:read", { path: "src/b.txt" }, { alias: "r" }));
    assert.equal(again.bypass, undefined);
    assert.equal(again.elided, true);

    const edit = ok(
      await kernel.call("file:edit", { path: "src/b.txt", old: "more", new: "less" }, {
        alias: "w",
      }),
    );
    assert.equal(edit.gen, 3);
    assert.equal(edit.prev_gen, 2);
    assert.equal(await Deno.readTextFile(abs), "by hand\nless\n");
    assert.equal((await rowsOf(fx.paths, "bypass.detected")).length, 1);
    await assertLogVerifies(fx);
  });
});

Deno.test("bypass: a write over an edit made around the kernel adopts it first", async () => {
  await withProject(async (fx) => {
    const kernel = fx.open();
    ok(await kernel.call("file:create", { path: "src/c.txt", content: "one\n" }, { alias: "w" }));
    await Deno.writeTextFile(`${fx.root}/src/c.txt`, "outside\n");
    const write = ok(
      await kernel.call("file:write", { path: "src/c.txt", content: "three\n" }, {
        alias: "w",
      }),
    );
    assert.deepEqual(write.bypass, { gen: 2, prev_gen: 1 });
    assert.equal(write.gen, 3);
    assert.equal(write.prev_gen, 2);
    // The outside content is not lost: its gen is shadowed and logged.
    const detected = await rowsOf(fx.paths, "bypass.detected");
    assert.equal(detected.length, 1);
    assert.equal(detected[0].hash, await contentHash(new TextEncoder().encode("outside\n")));
  });
});

// --- 304 after a change made by hand: the content hash decides, never the gen or the mtime ----

const HAND_EDITS = [
  { size: "same size", before: "version one\n", after: "version two\n" },
  { size: "another size", before: "version one\n", after: "version two, longer\n" },
] as const;

/** Change `abs` by hand to `text`; with `keepMtime`, put the old mtime (and atime) back. */
async function editByHand(abs: string, text: string, keepMtime: boolean): Promise<void> {
  const before = await Deno.stat(abs);
  await Deno.writeTextFile(abs, text);
  if (!keepMtime) return;
  await Deno.utime(abs, before.atime!, before.mtime!);
  const after = await Deno.stat(abs);
  assert.equal(after.mtime?.getTime(), before.mtime?.getTime(), "the mtime was put back");
}

for (const tracked of [false, true]) {
  for (const { size, before, after } of HAND_EDITS) {
    for (const keepMtime of [false, true]) {
      const name = `file:read: ${tracked ? "a tracked" : "an untracked"} file changed by hand ` +
        `(${size}, mtime ${keepMtime ? "kept" : "new"}) is sent again, never [304]`;
      Deno.test(name, async () => {
        await withProject(async (fx) => {
          const kernel = fx.open();
          const rel = "src/hand.txt", abs = `${fx.root}/${rel}`;
          if (tracked) {
            ok(await kernel.call("file:create", { path: rel, content: before }, { alias: "w" }));
          } else await Deno.writeTextFile(abs, before);
          // An old mtime, so a same-second rewrite cannot leave it looking new by accident.
          await Deno.utime(abs, 1_000_000, 1_000_000);
          const gen = tracked ? 1 : 0;
          const first = ok(await kernel.call("file:read", { path: rel }, { alias: "r" }));
          assert.equal(first.content, before);
          // The control: unchanged, the same reader does get [304], so elision is in play.
          const again = ok(await kernel.call("file:read", { path: rel }, { alias: "r" }));
          assert.equal(again.text, `[304] ${rel} gen=${gen} (current)`);

          await editByHand(abs, after, keepMtime);
          const reread = ok(await kernel.call("file:read", { path: rel }, { alias: "r" }));
          assert.equal(reread.elided, undefined, `stale [304] for bytes changed by hand`);
          assert.equal(reread.content, after);
          const detected = await rowsOf(fx.paths, "bypass.detected");
          if (tracked) {
            // A tracked file's outside edit is adopted as the next gen and logged.
            assert.equal(reread.gen, 2);
            assert.deepEqual(reread.bypass, { gen: 2, prev_gen: 1 });
            assert.equal(detected.length, 1);
            assert.equal(detected[0].hash, await contentHash(new TextEncoder().encode(after)));
          } else {
            // An untracked file has no row to adopt: it stays gen 0, and nothing is a bypass.
            assert.equal(reread.gen, 0);
            assert.equal(reread.bypass, undefined);
            assert.deepEqual(detected, []);
          }
          // Elision resumes on the new bytes.
          const settled = ok(await kernel.call("file:read", { path: rel }, { alias: "r" }));
          assert.equal(settled.text, `[304] ${rel} gen=${reread.gen} (current)`);
          const reads = (await rowsOf(fx.paths, "tool.file_read")).filter((r) => r.actor === "r");
          assert.deepEqual(reads.map((r) => r.elided), [false, true, false, true]);
          await assertLogVerifies(fx);
        });
      });
    }
  }
}

Deno.test("file:read: after a restart, a file changed by hand (same size, same mtime) is sent again", async () => {
  await withProject(async (fx) => {
    const rel = "src/hand.txt", abs = `${fx.root}/${rel}`;
    await Deno.writeTextFile(abs, "version one\n");
    const before = fx.open();
    ok(await before.call("file:read", { path: rel }, { alias: "r" }));
    before.close();
    // The new kernel knows what r saw only from the audited read row, hash included.
    await editByHand(abs, "version two\n", true);
    const after = fx.open();
    const read = ok(await after.call("file:read", { path: rel }, { alias: "r" }));
    assert.equal(read.elided, undefined, "stale [304] after a restart");
    assert.equal(read.content, "version two\n");
  });
});
