import assert from "node:assert/strict";
import { OstkError } from "../../kernel/errors.ts";
import { defaultPolicy, parsePolicy, SYSTEM_READ, withGrants } from "../../sandbox/mod.ts";

Deno.test("policy: defaults fill in; JSON text and values parse alike", () => {
  const fromText = parsePolicy('{"read":["/usr"],"write":["/w"]}');
  assert.deepEqual(fromText, {
    read: ["/usr"],
    write: ["/w"],
    net: "none",
    tmp: true,
    allow_metadata: false,
    allow_unsandboxed: false,
  });
  assert.deepEqual(parsePolicy({ read: ["/usr"], write: ["/w"] }), fromText);
  assert.deepEqual(parsePolicy({ net: { connect: [443] } }).net, { connect: [443], bind: [] });
  assert.equal(parsePolicy({ net: "all" }).net, "all");
});

const bad: { name: string; input: unknown; field: RegExp }[] = [
  { name: "not JSON", input: "{read:", field: /not JSON/ },
  { name: "relative path", input: { read: ["usr"] }, field: /read\.0: expected an absolute/ },
  { name: "NUL in a path", input: { write: ["/a\0b"] }, field: /write\.0/ },
  { name: "port too large", input: { net: { connect: [70000] } }, field: /net/ },
  { name: "port not an integer", input: { net: { bind: [1.5] } }, field: /net/ },
  { name: "unknown net word", input: { net: "some" }, field: /net/ },
  { name: "unknown field", input: { reed: [] }, field: /reed|Unrecognized/ },
  { name: "tmp not boolean", input: { tmp: "yes" }, field: /tmp/ },
  { name: "not an object", input: [], field: /policy/ },
];

for (const c of bad) {
  Deno.test(`policy: refuses ${c.name}`, () => {
    assert.throws(() => parsePolicy(c.input), (e: unknown) => {
      assert.ok(e instanceof OstkError);
      assert.equal(e.code, "bad_input");
      assert.match(e.message, c.field);
      return true;
    });
  });
}

Deno.test("policy: the default grants write on top-level entries except .ostk and symlinks", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_policy_" }));
  try {
    await Deno.mkdir(`${root}/.ostk`);
    await Deno.mkdir(`${root}/src`);
    await Deno.mkdir(`${root}/.git`);
    await Deno.writeTextFile(`${root}/README.md`, "");
    await Deno.symlink("/etc", `${root}/escape`);
    const p = await defaultPolicy(root);
    const children = p.write.filter((w) => w.startsWith(root));
    assert.deepEqual(children, [`${root}/.git`, `${root}/README.md`, `${root}/src`]);
    assert.ok(p.write.includes("/dev/null"));
    assert.equal(p.read.at(-1), root, "the project (with .ostk) is readable");
    for (const dir of p.read.slice(0, -1)) assert.ok(SYSTEM_READ.includes(dir), dir);
    assert.ok(p.read.includes("/usr"));
    assert.equal(p.net, "none");
    assert.equal(p.tmp, true);
    assert.equal(p.allow_metadata, false);
    assert.equal(p.allow_unsandboxed, false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("policy: grants add paths and ports; net all wins; flags only widen", () => {
  const base = parsePolicy({ read: ["/usr"], write: ["/w"] });
  const p = withGrants(base, {
    read: ["/opt", "/usr"],
    write: ["/x"],
    connect: [80],
    bind: [3000],
  });
  assert.deepEqual(p.read, ["/usr", "/opt"]);
  assert.deepEqual(p.write, ["/w", "/x"]);
  assert.deepEqual(p.net, { connect: [80], bind: [3000] });
  assert.deepEqual(withGrants(p, { connect: [80, 443] }).net, { connect: [80, 443], bind: [3000] });
  assert.equal(withGrants(p, { netAll: true }).net, "all");
  assert.equal(withGrants(parsePolicy({ net: "all" }), { connect: [1] }).net, "all");
  assert.equal(withGrants(base, { allowUnsandboxed: true }).allow_unsandboxed, true);
  assert.equal(withGrants(base, { allowMetadata: true }).allow_metadata, true);
  assert.deepEqual(withGrants(base, {}), base);
});
