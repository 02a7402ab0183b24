/**
 * Storages under a driver: the kernel adapter (gen-checked saves, Hot PR merges, conflicts,
 * create-only for unloaded paths, the audit row's actor), plain files, and how fcp-jsonc's
 * entry point picks one.
 */
import assert from "node:assert/strict";
import { readAuditRows } from "../../kernel/audit.ts";
import { loadOrCreateOperatorKey } from "../../kernel/identity.ts";
import { type OstkPaths, ostkPaths } from "../../kernel/layout.ts";
import { initProject } from "../../kernel/project_init.ts";
import { Kernel } from "../../kernel/tools.ts";
import { FcpError, FcpSession, fileStorage, kernelStorage } from "../../drivers/fcp/mod.ts";
import { jsoncDriver } from "../../drivers/fcp_jsonc/mod.ts";
import { ALIAS, openStorage } from "../../drivers/fcp_jsonc/main.ts";

interface Project {
  scratch: string;
  root: string;
  paths: OstkPaths;
  keyPath: string;
  kernel: Kernel;
}

async function withProject(fn: (p: Project) => Promise<void>): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_fcp_storage_" });
  let kernel: Kernel | undefined;
  try {
    const keyPath = `${scratch}/key/identity.key`;
    const key = await loadOrCreateOperatorKey(keyPath);
    await Deno.mkdir(`${scratch}/proj`, { recursive: true });
    await initProject(`${scratch}/proj`, key);
    const root = await Deno.realPath(`${scratch}/proj`);
    const paths = ostkPaths(root);
    kernel = new Kernel(paths, { signer: key.signer, pin: "default" });
    await fn({ scratch, root, paths, keyPath, kernel });
  } finally {
    kernel?.close();
    await Deno.remove(scratch, { recursive: true });
  }
}

/** A jsonc session whose storage is the kernel, calling as `alias`. */
function jsoncOver(kernel: Kernel, alias = ALIAS) {
  const storage = kernelStorage({ call: (tool, args) => kernel.call(tool, args, { alias }) });
  return new FcpSession(jsoncDriver(storage));
}

const LINES = [
  "{",
  ...Array.from({ length: 12 }, (_, i) => `  "k${i}": ${i},`),
  '  "last": true',
  "}",
  "",
]
  .join("\n");

Deno.test("kernel storage: open, edit, save writes through file:write with the gen it read", async () => {
  await withProject(async ({ root, paths, kernel }) => {
    await Deno.writeTextFile(`${root}/deno.json`, '{\n  // keep me\n  "tasks": {}\n}\n');
    const session = jsoncOver(kernel);
    assert.ok((await session.session("open deno.json")).ok);
    await session.batch(["set tasks.dev 'deno run main.ts'"]);
    const saved = await session.session("save");
    assert.equal(saved.ok, true, saved.text);
    assert.match(saved.text, /^! saved deno\.json \(\d+ bytes, gen 1\)/);
    await session.batch(["set lock false"]);
    assert.match((await session.session("save")).text, /gen 2\)/);
    const text = await Deno.readTextFile(`${root}/deno.json`);
    assert.equal(
      text,
      '{\n  // keep me\n  "tasks": {\n    "dev": "deno run main.ts"\n  },\n  "lock": false\n}\n',
    );
    const writes = (await readAuditRows(paths.audit)).filter((r) => r.event === "tool.file_write");
    assert.deepEqual(writes.map((r) => r.actor), ["fcp-jsonc", "fcp-jsonc"]);
  });
});

Deno.test("kernel storage: a far-away concurrent edit is merged; a clashing one is refused", async () => {
  await withProject(async ({ root, kernel }) => {
    await Deno.writeTextFile(`${root}/a.json`, LINES);
    const session = jsoncOver(kernel);
    await session.session("open a.json");
    // Another agent changes the bottom of the file after our read.
    const other = await kernel.call("file:edit", {
      path: "a.json",
      old: '"last": true',
      new: '"last": false',
    }, {
      alias: "other",
    });
    assert.ok(other.ok);
    await session.batch(["set k0 100"]);
    const merged = await session.session("save");
    assert.equal(merged.ok, true, merged.text);
    assert.match(merged.text, /merged with a concurrent edit/);
    const disk = await Deno.readTextFile(`${root}/a.json`);
    assert.match(disk, /"k0": 100,/);
    assert.match(disk, /"last": false/);

    // Now a clash: both change the same line.
    const clash = jsoncOver(kernel);
    await clash.session("open a.json");
    await kernel.call("file:edit", { path: "a.json", old: '"k5": 5', new: '"k5": 55' }, {
      alias: "other",
    });
    await clash.batch(["set k5 500"]);
    const refused = await clash.session("save");
    assert.equal(refused.ok, false);
    assert.match(refused.text, /^\? a\.json: file:write refused: .*expected gen/);
    assert.match(refused.text, /state: a\.json · event 1\/1 · unsaved/);
    assert.match(await Deno.readTextFile(`${root}/a.json`), /"k5": 55,/);
  });
});

Deno.test("kernel storage: a path never opened is created, never overwritten", async () => {
  await withProject(async ({ root, kernel }) => {
    await Deno.writeTextFile(`${root}/exists.json`, "{}\n");
    const session = jsoncOver(kernel);
    await session.session("new");
    await session.batch(["set a 1"]);
    const refused = await session.session("save as:exists.json");
    assert.equal(refused.ok, false);
    assert.match(refused.text, /exists\.json: file:create refused: exists\.json already exists/);
    assert.equal(await Deno.readTextFile(`${root}/exists.json`), "{}\n");
    assert.ok((await session.session("save as:.vscode/settings.json")).ok);
    assert.equal(await Deno.readTextFile(`${root}/.vscode/settings.json`), '{\n  "a": 1\n}\n');
    const missing = await session.session("open nope.json");
    assert.match(missing.text, /^\? nope\.json: file:read refused: nope\.json: no such file/);
    const outside = await session.session("open ../x.json");
    assert.equal(outside.ok, false);
  });
});

Deno.test("file storage: reads and writes under its root only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostk_fcp_files_" });
  try {
    const storage = fileStorage(dir);
    await storage.save("sub/../a.json", new TextEncoder().encode("[]"));
    assert.equal(await Deno.readTextFile(`${dir}/a.json`), "[]");
    assert.equal(new TextDecoder().decode(await storage.load("./a.json")), "[]");
    await assert.rejects(
      () => storage.load("b.json"),
      (e: unknown) => e instanceof FcpError && e.code === "not_found",
    );
    await assert.rejects(() => storage.load("../etc/passwd"), /outside/);
    await assert.rejects(() => storage.load("/etc/passwd"), /relative/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fcp-jsonc entry: the kernel inside a project, plain files outside", async () => {
  const outside = await Deno.makeTempDir({ prefix: "ostk_fcp_outside_" });
  try {
    const plain = await openStorage(outside);
    assert.match(plain.where, /^plain files under /);
    plain.close();
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
  await withProject(async ({ root, keyPath }) => {
    const previous = Deno.env.get("OSTK_IDENTITY");
    Deno.env.set("OSTK_IDENTITY", keyPath);
    try {
      const opened = await openStorage(root);
      assert.match(opened.where, /^the ostk kernel of /);
      await opened.storage.save("x.json", new TextEncoder().encode("{}\n"));
      opened.close();
      assert.equal(await Deno.readTextFile(`${root}/x.json`), "{}\n");
      // A project whose key is not at hand is an error, not a fall back to raw files.
      Deno.env.set("OSTK_IDENTITY", `${root}/no-such.key`);
      await assert.rejects(() => openStorage(root));
    } finally {
      if (previous === undefined) Deno.env.delete("OSTK_IDENTITY");
      else Deno.env.set("OSTK_IDENTITY", previous);
    }
  });
});
