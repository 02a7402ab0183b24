import assert from "node:assert/strict";
import { OstkError } from "../../kernel/errors.ts";
import { isKernelPath, resolveProjectPath } from "../../kernel/resolve_path.ts";

/**
 * A scratch layout shared by one test:
 *   base/proj            the project root (real)
 *   base/outside         a directory beside it, with secret.txt
 *   base/alias -> proj   a second name for the root
 */
interface Scratch {
  base: string;
  root: string;
  outside: string;
  alias: string;
}

async function withProject(fn: (s: Scratch) => Promise<void>): Promise<void> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_resolve_" }));
  const root = `${base}/proj`;
  const outside = `${base}/outside`;
  const alias = `${base}/alias`;
  try {
    await Deno.mkdir(`${root}/src`, { recursive: true });
    await Deno.mkdir(`${root}/sub`);
    await Deno.mkdir(`${root}/.ostk`);
    await Deno.mkdir(outside);
    await Deno.writeTextFile(`${outside}/secret.txt`, "secret\n");
    await Deno.writeTextFile(`${root}/src/main.ts`, "export {};\n");
    await Deno.writeTextFile(`${root}/.ostk/audit.jsonl`, "");
    await Deno.symlink(root, alias);
    const links: [string, string][] = [
      ["link_out_file", "/etc/hostname"],
      ["link_out_dir", outside],
      ["link_out_rel", "../outside"],
      ["chain1", "chain2"],
      ["chain2", "sub/chain3"],
      ["sub/chain3", `${outside}/secret.txt`],
      ["loop_a", "loop_b"],
      ["loop_b", "loop_a"],
      ["self", "self"],
      ["dangling_out", `${outside}/nope/new.txt`],
      ["link_in", "src/main.ts"],
      ["link_in_dir", "src"],
      ["sub/up", ".."],
      ["dangling_in", "src/new.ts"],
      ["link_ostk", ".ostk"],
    ];
    for (const [name, target] of links) await Deno.symlink(target, `${root}/${name}`);
    await fn({ base, root, outside, alias });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

type Refusal = {
  name: string;
  input: (s: Scratch) => string;
  code: "permission" | "bad_input";
  reason: string;
};

const ESCAPE = "path escapes the project root";
const SYMLINK_OUT = "symlink leads outside the project";
const LOOP = "symlink loop";
const KERNEL = ".ostk/ is kernel state (needs write-kernel)";

const refusals: Refusal[] = [
  { name: "parent dir", input: () => "../", code: "permission", reason: ESCAPE },
  { name: "bare ..", input: () => "..", code: "permission", reason: ESCAPE },
  { name: "a/../../x", input: () => "a/../../x", code: "permission", reason: ESCAPE },
  {
    name: "climbs out and back in",
    input: (s) => `../${s.root.split("/").at(-1)}/src/main.ts`,
    code: "permission",
    reason: ESCAPE,
  },
  {
    name: "absolute outside",
    input: (s) => `${s.outside}/secret.txt`,
    code: "permission",
    reason: ESCAPE,
  },
  { name: "/etc/passwd", input: () => "/etc/passwd", code: "permission", reason: ESCAPE },
  {
    name: "absolute with .. out of root",
    input: (s) => `${s.root}/src/../../outside/secret.txt`,
    code: "permission",
    reason: ESCAPE,
  },
  {
    name: "symlink file -> /etc/hostname",
    input: () => "link_out_file",
    code: "permission",
    reason: SYMLINK_OUT,
  },
  {
    name: "symlink dir -> outside",
    input: () => "link_out_dir/secret.txt",
    code: "permission",
    reason: SYMLINK_OUT,
  },
  {
    name: "new file under symlink dir outside",
    input: () => "link_out_dir/new.txt",
    code: "permission",
    reason: SYMLINK_OUT,
  },
  {
    name: "relative symlink ../outside",
    input: () => "link_out_rel/secret.txt",
    code: "permission",
    reason: SYMLINK_OUT,
  },
  { name: "symlink chain out", input: () => "chain1", code: "permission", reason: SYMLINK_OUT },
  {
    name: "symlink to .. then .. again",
    input: () => "sub/up/../outside/secret.txt",
    code: "permission",
    reason: SYMLINK_OUT,
  },
  {
    name: "dangling symlink pointing outside",
    input: () => "dangling_out",
    code: "permission",
    reason: SYMLINK_OUT,
  },
  { name: "symlink loop a->b->a", input: () => "loop_a", code: "bad_input", reason: LOOP },
  { name: "loop mid-path", input: () => "loop_b/x", code: "bad_input", reason: LOOP },
  { name: "self loop", input: () => "self", code: "bad_input", reason: LOOP },
  {
    name: ".ostk/audit.jsonl",
    input: () => ".ostk/audit.jsonl",
    code: "permission",
    reason: KERNEL,
  },
  { name: "./.ostk/x", input: () => "./.ostk/x", code: "permission", reason: KERNEL },
  { name: "sub/../.ostk/x", input: () => "sub/../.ostk/x", code: "permission", reason: KERNEL },
  { name: ".ostk itself", input: () => ".ostk", code: "permission", reason: KERNEL },
  { name: "case alias .OSTK/x", input: () => ".OSTK/x", code: "permission", reason: KERNEL },
  {
    name: "symlink into .ostk",
    input: () => "link_ostk/audit.jsonl",
    code: "permission",
    reason: KERNEL,
  },
  {
    name: "absolute into .ostk",
    input: (s) => `${s.root}/.ostk/audit.jsonl`,
    code: "permission",
    reason: KERNEL,
  },
  { name: "NUL", input: () => "src/a\0b.ts", code: "bad_input", reason: "path contains NUL" },
  { name: "empty", input: () => "", code: "bad_input", reason: "empty path" },
  {
    name: "very long path",
    input: () => "a/".repeat(2100),
    code: "bad_input",
    reason: "path too long (4200 bytes > 4096)",
  },
  {
    name: "long component",
    input: () => `src/${"x".repeat(256)}`,
    code: "bad_input",
    reason: "path component too long (256 bytes > 255)",
  },
  {
    name: "long component counted in bytes",
    input: () => "é".repeat(128),
    code: "bad_input",
    reason: "path component too long (256 bytes > 255)",
  },
  {
    name: ".. below a missing dir",
    input: () => "newdir/../x",
    code: "bad_input",
    reason: "'..' after a component that does not exist yet",
  },
  {
    name: "file used as a directory",
    input: () => "src/main.ts/x",
    code: "bad_input",
    reason: "is not a directory",
  },
];

for (const r of refusals) {
  Deno.test(`resolveProjectPath refuses: ${r.name}`, async () => {
    await withProject(async (s) => {
      const input = r.input(s);
      await assert.rejects(resolveProjectPath(s.root, input), (err: unknown) => {
        assert.ok(err instanceof OstkError, `expected OstkError, got ${err}`);
        assert.equal(err.code, r.code);
        assert.ok(err.message.includes(r.reason), `reason missing from: ${err.message}`);
        assert.ok(err.message.startsWith("refusing path "), err.message);
        return true;
      });
    });
  });
}

Deno.test("resolveProjectPath refusal message names the path", async () => {
  await withProject(async (s) => {
    await assert.rejects(
      resolveProjectPath(s.root, "a/../../x"),
      (err: unknown) =>
        err instanceof OstkError &&
        err.message === `refusing path "a/../../x": path escapes the project root`,
    );
  });
});

type Accept = { name: string; input: (s: Scratch) => string; rel: string; allowKernel?: boolean };

const accepted: Accept[] = [
  { name: "existing file", input: () => "src/main.ts", rel: "src/main.ts" },
  { name: "leading ./", input: () => "./src/main.ts", rel: "src/main.ts" },
  { name: "nested new file", input: () => "new/deep/file.txt", rel: "new/deep/file.txt" },
  { name: "new file in existing dir", input: () => "src/new.ts", rel: "src/new.ts" },
  { name: "inner .. that stays inside", input: () => "sub/../src/main.ts", rel: "src/main.ts" },
  { name: "symlink inside to inside", input: () => "link_in", rel: "src/main.ts" },
  { name: "through symlinked dir", input: () => "link_in_dir/new.ts", rel: "src/new.ts" },
  { name: "dangling symlink inside", input: () => "dangling_in", rel: "src/new.ts" },
  { name: "root itself", input: () => ".", rel: "." },
  { name: "absolute inside", input: (s) => `${s.root}/src/main.ts`, rel: "src/main.ts" },
  {
    name: "absolute via symlinked root alias",
    input: (s) => `${s.alias}/src/main.ts`,
    rel: "src/main.ts",
  },
  {
    name: ".ostk with allowKernel",
    input: () => ".ostk/audit.jsonl",
    rel: ".ostk/audit.jsonl",
    allowKernel: true,
  },
  { name: ".ostk dir with allowKernel", input: () => ".ostk", rel: ".ostk", allowKernel: true },
  { name: "name that only starts like .ostk", input: () => ".ostkrc", rel: ".ostkrc" },
];

for (const a of accepted) {
  Deno.test(`resolveProjectPath accepts: ${a.name}`, async () => {
    await withProject(async (s) => {
      const got = await resolveProjectPath(s.root, a.input(s), { allowKernel: a.allowKernel });
      assert.equal(got.rel, a.rel);
      assert.equal(got.abs, a.rel === "." ? s.root : `${s.root}/${a.rel}`);
    });
  });
}

Deno.test("resolveProjectPath realpaths a root given through a symlink", async () => {
  await withProject(async (s) => {
    const viaAlias = await resolveProjectPath(s.alias, "src/main.ts");
    assert.deepEqual(viaAlias, { abs: `${s.root}/src/main.ts`, rel: "src/main.ts" });
    const absAlias = await resolveProjectPath(s.alias, `${s.alias}/src/x.ts`);
    assert.deepEqual(absAlias, { abs: `${s.root}/src/x.ts`, rel: "src/x.ts" });
  });
});

Deno.test("resolveProjectPath reports a missing root as not_found", async () => {
  await withProject(async (s) => {
    await assert.rejects(
      resolveProjectPath(`${s.base}/nope`, "x"),
      (err: unknown) => err instanceof OstkError && err.code === "not_found",
    );
  });
});

Deno.test("isKernelPath matches .ostk and below only", () => {
  assert.equal(isKernelPath(".ostk"), true);
  assert.equal(isKernelPath(".ostk/pins/default/pin.caps"), true);
  assert.equal(isKernelPath(".Ostk/x"), true);
  assert.equal(isKernelPath(".ostkrc"), false);
  assert.equal(isKernelPath("src/.ostk/x"), false);
});
