import assert from "node:assert/strict";
import {
  adoptBypass,
  casWrite,
  COMPACT_FACTOR,
  contentHash,
  GenRowSchema,
  GenTable,
  readShadow,
  verifyOnDisk,
} from "../../kernel/gen_table.ts";
import { OstkError, type OstkErrorCode } from "../../kernel/errors.ts";
import { domainHash, toHex } from "../../kernel/hash.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Project {
  root: string;
  ostk: string;
}

async function withProject(fn: (p: Project) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "ostk_gen_table_" });
  try {
    await Deno.mkdir(`${root}/.ostk`);
    await fn({ root, ostk: `${root}/.ostk` });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function write(
  p: Project,
  relPath: string,
  text: string,
  extra: { expectedGen?: number; shadowKeep?: number } = {},
) {
  const absPath = `${p.root}/${relPath}`;
  const bytes = encoder.encode(text);
  return casWrite({ ostkDir: p.ostk, absPath, relPath, bytes, writer: "test", ...extra });
}

function isOstkError(code: OstkErrorCode, pattern?: RegExp) {
  return (err: unknown) =>
    err instanceof OstkError && err.code === code && (!pattern || pattern.test(err.message));
}

async function tableLines(p: Project): Promise<string[]> {
  const text = await Deno.readTextFile(`${p.ostk}/gen_table.jsonl`);
  return text.split("\n").slice(0, -1);
}

async function shadowText(p: Project, relPath: string, gen: number) {
  const bytes = await readShadow(p.ostk, relPath, gen);
  return bytes && decoder.decode(bytes);
}

Deno.test("casWrite: a new file starts at gen 1 and every write bumps it", async () => {
  await withProject(async (p) => {
    const first = await write(p, "src/a.txt", "one\n");
    assert.deepEqual([first.gen, first.prevGen], [1, 0]);
    assert.equal(first.hash, toHex(await domainHash("content", encoder.encode("one\n"))));
    for (let gen = 2; gen <= 5; gen++) {
      const next = await write(p, "src/a.txt", `v${gen}\n`);
      assert.deepEqual([next.gen, next.prevGen], [gen, gen - 1]);
    }
    const row = await new GenTable(p.ostk).read("src/a.txt");
    assert.equal(row?.gen, 5);
    assert.equal(row?.writer, "test");
    assert.equal(row?.hash, await contentHash(encoder.encode("v5\n")));
    assert.equal(await Deno.readTextFile(`${p.root}/src/a.txt`), "v5\n");
    assert.equal((await tableLines(p)).length, 5);
  });
});

Deno.test("casWrite: a stale expectedGen is a conflict and leaves the file alone", async () => {
  await withProject(async (p) => {
    await write(p, "a.txt", "v1\n", { expectedGen: 0 });
    await write(p, "a.txt", "v2\n", { expectedGen: 1 });
    await assert.rejects(
      () => write(p, "a.txt", "v3\n", { expectedGen: 1 }),
      isOstkError("conflict", /expected gen 1, current is 2/),
    );
    // expectedGen 0 asks for a file nobody has written yet.
    await assert.rejects(
      () => write(p, "a.txt", "new\n", { expectedGen: 0 }),
      isOstkError("conflict", /expected gen 0, current is 2/),
    );
    assert.equal(await Deno.readTextFile(`${p.root}/a.txt`), "v2\n");
    assert.equal((await new GenTable(p.ostk).read("a.txt"))?.gen, 2);
    assert.equal((await tableLines(p)).length, 2);
  });
});

Deno.test("shadows: old and new content by gen, pruned beyond shadowKeep", async () => {
  await withProject(async (p) => {
    await Deno.writeTextFile(`${p.root}/a.txt`, "original\n");
    await write(p, "a.txt", "v1\n", { shadowKeep: 4 });
    assert.equal(await shadowText(p, "a.txt", 0), "original\n");
    assert.equal(await shadowText(p, "a.txt", 1), "v1\n");
    for (let gen = 2; gen <= 10; gen++) await write(p, "a.txt", `v${gen}\n`, { shadowKeep: 4 });
    for (let gen = 0; gen <= 10; gen++) {
      assert.equal(await shadowText(p, "a.txt", gen), gen > 6 ? `v${gen}\n` : undefined);
    }
    const names = [];
    for await (const entry of Deno.readDir(`${p.ostk}/shadows/a.txt`)) names.push(entry.name);
    // Each shadow is named <gen>.<hash prefix> so a torn one can be recognised.
    assert.deepEqual(names.map((n) => n.split(".")[0]).sort(), ["10", "7", "8", "9"]);
    assert.ok(names.every((n) => /^\d+\.[0-9a-f]{16}$/.test(n)), names.join(","));
  });
});

Deno.test("shadows: a shadow whose bytes no longer match its name reads as missing", async () => {
  await withProject(async (p) => {
    await write(p, "a.txt", "v1\n");
    await write(p, "a.txt", "v2\n");
    const dir = `${p.ostk}/shadows/a.txt`;
    let torn = "";
    for await (const entry of Deno.readDir(dir)) if (entry.name.startsWith("1.")) torn = entry.name;
    assert.notEqual(torn, "");
    await Deno.writeTextFile(`${dir}/${torn}`, ""); // what a power cut can leave of an unsynced file
    assert.equal(await shadowText(p, "a.txt", 1), undefined);
    assert.equal(await shadowText(p, "a.txt", 2), "v2\n");
  });
});

Deno.test("shadows: odd and very long paths get safe directory names", async () => {
  await withProject(async (p) => {
    const odd = "dir/we ird#%.txt";
    const long = `${"x".repeat(90)}/${"y".repeat(90)}/${"z".repeat(90)}.txt`;
    for (const rel of [odd, long]) {
      await write(p, rel, `first ${rel}`);
      await write(p, rel, `second ${rel}`);
      assert.equal(await shadowText(p, rel, 1), `first ${rel}`);
      assert.equal(await shadowText(p, rel, 2), `second ${rel}`);
    }
    const dirs = [];
    for await (const entry of Deno.readDir(`${p.ostk}/shadows`)) dirs.push(entry.name);
    assert.equal(dirs.length, 2);
    assert.ok(dirs.includes(encodeURIComponent(odd)));
    const hashed = dirs.find((name) => name.startsWith("#"));
    assert.equal(await Deno.readTextFile(`${p.ostk}/shadows/${hashed}/path`), `${long}\n`);
  });
});

Deno.test("compaction keeps the latest row of every path", async () => {
  await withProject(async (p) => {
    const table = new GenTable(p.ostk, { compactMinLines: 8 });
    const put = (rel: string, text: string) =>
      table.transact(rel, `${p.root}/${rel}`, () => ({
        write: { bytes: encoder.encode(text), writer: "t" },
        result: 0,
      }));
    for (let i = 1; i <= 30; i++) {
      await put("a.txt", `a${i}`);
      await put("b.txt", `b${i}`);
    }
    const lines = await tableLines(p);
    assert.ok(lines.length <= Math.max(8, COMPACT_FACTOR * 2), `${lines.length} lines left`);
    for (const line of lines) assert.ok(GenRowSchema.safeParse(JSON.parse(line)).success);
    const rows = await table.all();
    assert.deepEqual([...rows.keys()].sort(), ["a.txt", "b.txt"]);
    assert.equal(rows.get("a.txt")?.gen, 30);
    assert.equal(rows.get("a.txt")?.hash, await contentHash(encoder.encode("a30")));
    assert.equal(rows.get("b.txt")?.gen, 30);
    assert.equal((await put("a.txt", "a31")).row?.gen, 31);
  });
});

Deno.test("a torn last line is ignored, then cut back before the next append", async () => {
  await withProject(async (p) => {
    await write(p, "a.txt", "v1\n");
    await write(p, "a.txt", "v2\n");
    const torn = '{"path":"torn.txt","gen":9,"ha';
    await Deno.writeTextFile(`${p.ostk}/gen_table.jsonl`, torn, { append: true });
    assert.equal((await new GenTable(p.ostk).read("a.txt"))?.gen, 2);
    assert.equal((await write(p, "a.txt", "v3\n")).gen, 3);
    const text = await Deno.readTextFile(`${p.ostk}/gen_table.jsonl`);
    assert.ok(text.endsWith("\n") && !text.includes(torn));
    const lines = await tableLines(p);
    assert.deepEqual(lines.map((line) => GenRowSchema.parse(JSON.parse(line)).gen), [1, 2, 3]);
  });
});

Deno.test("a malformed line in the middle fails closed, naming file and line", async (t) => {
  const cases: Array<[string, (first: string) => string]> = [
    ["not JSON", () => "not json"],
    ["blank line", () => ""],
    ["schema violation", (first) => first.replace(/"gen":1/, '"gen":0')],
    ["bad hash", (first) => first.replace(/"hash":"[0-9a-f]+"/, '"hash":"XYZ"')],
    ["gen going backwards", (first) => first],
  ];
  for (const [name, damage] of cases) {
    await t.step(name, async () => {
      await withProject(async (p) => {
        await write(p, "a.txt", "v1\n");
        await write(p, "b.txt", "v1\n");
        await write(p, "a.txt", "v2\n");
        const lines = await tableLines(p);
        lines[1] = damage(lines[0]);
        await Deno.writeTextFile(`${p.ostk}/gen_table.jsonl`, lines.join("\n") + "\n");
        const atLine2 = (err: unknown) =>
          isOstkError("integrity", /line 2/)(err) &&
          (err as OstkError).site.line === 2 &&
          (err as OstkError).site.file?.endsWith("/gen_table.jsonl") === true;
        await assert.rejects(() => new GenTable(p.ostk).read("a.txt"), atLine2);
        await assert.rejects(() => write(p, "a.txt", "v3\n"), atLine2);
        assert.equal(await Deno.readTextFile(`${p.root}/a.txt`), "v2\n");
      });
    });
  }
});

Deno.test("verifyOnDisk finds a bypass; adoptBypass records it as the next gen", async () => {
  await withProject(async (p) => {
    const abs = `${p.root}/a.txt`;
    await Deno.writeTextFile(abs, "before the kernel\n");
    assert.equal((await verifyOnDisk(p.ostk, "a.txt", abs)).status, "untracked");
    await write(p, "a.txt", "v1\n");
    assert.equal((await verifyOnDisk(p.ostk, "a.txt", abs)).status, "tracked-ok");

    await Deno.writeTextFile(abs, "edited outside\n");
    const seen = await verifyOnDisk(p.ostk, "a.txt", abs);
    assert.equal(seen.status, "bypass");
    assert.equal(seen.row?.gen, 1);
    assert.equal(seen.diskHash, await contentHash(encoder.encode("edited outside\n")));
    // A write over an unadopted bypass would erase it without a trace.
    await assert.rejects(() => write(p, "a.txt", "v2\n"), isOstkError("conflict", /outside/));
    assert.equal(await Deno.readTextFile(abs), "edited outside\n");

    const adopted = await adoptBypass(p.ostk, "a.txt", abs);
    assert.equal(adopted.adopted, true);
    assert.deepEqual([adopted.prevGen, adopted.row?.gen, adopted.row?.writer], [1, 2, "bypass"]);
    assert.equal((await verifyOnDisk(p.ostk, "a.txt", abs)).status, "tracked-ok");
    assert.equal(await shadowText(p, "a.txt", 1), "v1\n");
    assert.equal(await shadowText(p, "a.txt", 2), "edited outside\n");
    const again = await adoptBypass(p.ostk, "a.txt", abs);
    assert.deepEqual([again.adopted, again.status, again.row?.gen], [false, "tracked-ok", 2]);

    assert.equal((await write(p, "a.txt", "v3\n", { expectedGen: 2 })).gen, 3);
    await Deno.remove(abs);
    assert.equal((await verifyOnDisk(p.ostk, "a.txt", abs)).status, "deleted");
    assert.equal((await write(p, "a.txt", "back\n", { expectedGen: 3 })).gen, 4);
  });
});

Deno.test("paths must be project-relative; a missing .ostk is not_found", async () => {
  await withProject(async (p) => {
    for (const bad of ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/"]) {
      await assert.rejects(() => write(p, bad, "x"), isOstkError("usage"), JSON.stringify(bad));
      await assert.rejects(() => readShadow(p.ostk, bad, 1), isOstkError("usage"));
    }
    await assert.rejects(
      () =>
        casWrite({
          ostkDir: `${p.root}/nope`,
          absPath: `${p.root}/a`,
          relPath: "a",
          bytes: new Uint8Array(),
          writer: "t",
        }),
      isOstkError("not_found", /no kernel directory/),
    );
  });
});

Deno.test("casWrite: concurrent writers in one process each get their own gen", async () => {
  await withProject(async (p) => {
    const gens = await Promise.all(
      Array.from({ length: 40 }, (_, i) => write(p, "shared.txt", `w${i}\n`)),
    );
    assert.deepEqual(gens.map((r) => r.gen).sort((a, b) => a - b), range(1, 40));
  });
});

Deno.test("casWrite: four real processes lose no write", async () => {
  const processes = 4;
  const rounds = 100;
  await withProject(async (p) => {
    const helper = new URL("../helpers/gen_writer.ts", import.meta.url).pathname;
    const repo = new URL("../../", import.meta.url).pathname;
    const outputs = await Promise.all(
      range(0, processes - 1).map((id) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-read", "--allow-write", helper, p.root, `${id}`, `${rounds}`],
          cwd: repo,
          stdout: "piped",
          stderr: "piped",
        }).output()
      ),
    );
    const sharedGens: number[] = [];
    for (const out of outputs) {
      assert.equal(out.code, 0, decoder.decode(out.stderr));
      const report = JSON.parse(decoder.decode(out.stdout).trim());
      assert.deepEqual(Object.values(report.ownGens), Array(10).fill(rounds / 10));
      sharedGens.push(...report.sharedGens);
    }
    // Every gen of the shared file was handed out exactly once: no lost or doubled bump.
    assert.deepEqual(sharedGens.sort((a, b) => a - b), range(1, processes * rounds));
    const rows = await new GenTable(p.ostk).all();
    assert.equal(rows.size, processes * 10 + 1);
    const shared = rows.get("shared.txt");
    assert.equal(shared?.gen, processes * rounds);
    const disk = await Deno.readFile(`${p.root}/shared.txt`);
    assert.equal(shared?.hash, await contentHash(disk));
    assert.deepEqual(await readShadow(p.ostk, "shared.txt", processes * rounds), disk);
    for (const [path, row] of rows) {
      if (path !== "shared.txt") assert.equal(row.gen, rounds / 10, path);
    }
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
