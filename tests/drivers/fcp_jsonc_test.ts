/**
 * fcp-jsonc edits on real-looking config files (fixtures/fcp/*.jsonc: comments, trailing
 * commas, odd indentation, tabs): each edit changes exactly the expected bytes, undo gives the
 * original back byte for byte, and a model-based property run keeps the document's value in
 * step with a plain object.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parse } from "jsonc-parser";
import { FcpSession, type MemoryStorage, memoryStorage } from "../../drivers/fcp/mod.ts";
import { formatPath, jsoncDriver, parsePath, parseValue } from "../../drivers/fcp_jsonc/mod.ts";

const FIXTURES = new URL("../../fixtures/fcp/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

async function opened(name: string, text = fixture(name)) {
  const storage = memoryStorage({ [name]: text });
  const session = new FcpSession(jsoncDriver(storage));
  const r = await session.session(`open ${name}`);
  assert.ok(r.ok, r.text);
  return { session, storage, text };
}

/** Golden edits: [fixture, op, fragment of the original, what it becomes]. */
// deno-fmt-ignore
const GOLDEN: [string, string, string, string][] = [
  ["deno.jsonc", `set tasks["my task"] "echo bye"`, `"my task": "echo hi"`, `"my task": "echo bye"`],
  ["deno.jsonc", `set 'tasks["my task"]' 'echo bye'`, `"my task": "echo hi"`, `"my task": "echo bye"`],
  ["deno.jsonc", `set name "@demo/other"`, `"@demo/app"`, `"@demo/other"`],
  ["deno.jsonc", "set compilerOptions.strict true", `    ]\n  }\n}`, `    ]\n  },\n  "compilerOptions": {\n    "strict": true\n  }\n}`],
  ["deno.jsonc", "unset imports.zod", `"imports": {\n    "zod": "npm:zod@4", // schema lib\n  },`, `"imports": {},`],
  ["deno.jsonc", "unset fmt.lineWidth", `    "lineWidth": 100, // keep in sync with the editor\n`, ""],
  ["deno.jsonc", "unset fmt.exclude[1]", `"fixtures/", // never formatted\n      "dist/"\n`, `"fixtures/" // never formatted\n`],
  ["deno.jsonc", "unset fmt.exclude[0]", `      "fixtures/", // never formatted\n`, ""],
  ["deno.jsonc", "push fmt.exclude build/", `      "dist/"\n`, `      "dist/",\n      "build/"\n`],
  ["deno.jsonc", "push lint.exclude build/", `["dist/"]`, `["dist/", "build/"]`],
  ["deno.jsonc", "unset lint.exclude[0]", `["dist/"]`, `[]`],
  ["deno.jsonc", "set lint.exclude '[\"a\",\"b\"]'", `["dist/"]`, `["a", "b"]`],
  ["deno.jsonc", "rename tasks.dev serve", `"dev": "deno`, `"serve": "deno`],
  ["deno.jsonc", "set tasks.dev null", `"deno run -A main.ts"`, "null"],
  ["tsconfig.jsonc", "set compilerOptions.strict true", `"strict": false`, `"strict": true`],
  ["tsconfig.jsonc", "set compilerOptions.noEmit true", `      },\n   },`, `      },\n      "noEmit": true,\n   },`],
  ["tsconfig.jsonc", "unset compilerOptions.target", `         "target": "ES2022",   // wide indent\n`, ""],
  ["tsconfig.jsonc", `push include "test/**"`, `["src/**/*.ts",]`, `["src/**/*.ts", "test/**",]`],
  ["tsconfig.jsonc", `set compilerOptions.paths["~/*"] '["./x/*"]'`, `         "@/*": ["./src/*"],\n`, `         "@/*": ["./src/*"],\n         "~/*": [\n            "./x/*"\n         ],\n`],
  ["tsconfig.jsonc", "unset compilerOptions.paths[@/*]", `"paths": {\n         "@/*": ["./src/*"],\n      },`, `"paths": {},`],
  ["settings.jsonc", "set editor.tabSize 4", `"editor.tabSize": 2`, `"editor.tabSize": 4`],
  ["settings.jsonc", `set search.exclude["**/dist"] true`, `"search.exclude": {}`, `"search.exclude": {\n\t\t"**/dist": true\n\t}`],
  ["settings.jsonc", `unset files.exclude["**/node_modules"]`, `\t\t"**/.git": true, // hide git\n\t\t"**/node_modules": true\n`, `\t\t"**/.git": true // hide git\n`],
  ["settings.jsonc", `rename ["files.exclude"] files.watcherExclude`, `"files.exclude"`, `"files.watcherExclude"`],
];

Deno.test("jsonc: each edit changes exactly its bytes; undo restores; save writes them", async () => {
  for (const [name, op, from, to] of GOLDEN) {
    const { session, storage, text } = await opened(name);
    assert.equal(text.split(from).length, 2, `${op}: fragment must occur once`);
    const expected = text.replace(from, () => to);
    const r = await session.batch([op]);
    assert.ok(r.ok, `${op}: ${r.text}`);
    assert.equal(session.state, expected, op);
    assert.ok((await session.session("save")).ok);
    assert.equal(storage.text(name), expected, `${op}: saved bytes`);
    await session.session("undo");
    assert.equal(session.state, text, `${op}: undo`);
    await session.session("redo");
    assert.equal(session.state, expected, `${op}: redo`);
  }
});

Deno.test("jsonc: open then save with no edits writes the same bytes", async () => {
  for (const name of ["deno.jsonc", "tsconfig.jsonc", "settings.jsonc"]) {
    const { session, storage, text } = await opened(name);
    await session.session("save as:copy.json");
    assert.equal(storage.text("copy.json"), text);
    assert.equal((await session.query("dump")).text, text);
  }
});

Deno.test("jsonc: CRLF files stay CRLF", async () => {
  const text = '{\r\n  "a": 1, // one\r\n  "b": [1]\r\n}\r\n';
  const { session } = await opened("crlf.json", text);
  await session.batch(["set c 2"]);
  assert.equal(session.state, '{\r\n  "a": 1, // one\r\n  "b": [1],\r\n  "c": 2\r\n}\r\n');
  await session.batch(["unset a", "set d.e '{\"f\":[true]}'"]);
  const out = session.state!;
  assert.ok(!/[^\r]\n/.test(out), JSON.stringify(out));
  assert.deepEqual(parse(out), { b: [1], c: 2, d: { e: { f: [true] } } });
});

Deno.test("jsonc: a batch of edits is one all-or-nothing step on the fixture", async () => {
  const { session, text } = await opened("deno.jsonc");
  const bad = await session.batch(["set a 1", "unset tasks.dve", "set b 2"]);
  assert.equal(bad.ok, false);
  assert.match(bad.text, /^\? op 2\/3 `unset tasks.dve`: no tasks.dve; did you mean: dev\?/);
  assert.equal(session.state, text);
  const good = await session.batch([
    "set compilerOptions.strict true",
    "push compilerOptions.lib deno.ns",
    `merge fmt '{"indentWidth":4,"exclude":["x"]}'`,
    "unset imports",
  ]);
  assert.ok(good.ok, good.text);
  assert.deepEqual(good.text.split("\n").slice(0, 4), [
    "+ compilerOptions.strict = true",
    '+ compilerOptions.lib = ["deno.ns"]',
    "~ merged 2 key(s) into fmt",
    '- imports (was {"zod":"npm:zod@4"})',
  ]);
  const value = parse(session.state!);
  assert.deepEqual(value.fmt, { lineWidth: 100, exclude: ["x"], indentWidth: 4 });
  assert.deepEqual(value.compilerOptions, { strict: true, lib: ["deno.ns"] });
  for (
    const kept of [
      "// Project config",
      "// the package name",
      "/* dev server */",
      "// keep in sync",
    ]
  ) {
    assert.ok(session.state!.includes(kept), kept);
  }
  for (let i = 0; i < 4; i++) await session.session("undo");
  assert.equal(session.state, text);
});

Deno.test("jsonc: refusals say what was wrong and what to do", async () => {
  const { session } = await opened("deno.jsonc");
  const cases: [string, RegExp][] = [
    ["unset tasks.nope", /no tasks.nope; did you mean: .*dev|no tasks.nope; keys at tasks/],
    ["set name.first x", /name is a string, not an object or array/],
    ["push name x", /name is a string, not an array/],
    ["rename tasks.dev my task", /unexpected positional 'task'/],
    [`rename tasks.dev "my task"`, /tasks\["my task"\] exists; unset it first/],
    [
      `set lint.exclude ["a"]`,
      /'\[a\]' looks like JSON but does not parse; wrap JSON in single quotes/,
    ],
    [`merge fmt '[1]'`, /merge: expected a JSON object/],
    ["set fmt.exclude[5] x", /index past the end \(length 2\); push fmt.exclude <value> appends/],
    ["set name @demo/x", /selector @demo\/x not accepted; if '@demo\/x' is a value, quote it/],
    ["set homepage https://x.y", /unknown param 'https'; if 'https:\/\/x.y' is a value, quote it/],
    ["set $ 1", /give a path below the root/],
    ["unset $", /cannot unset the root/],
    ["set a[ 1", /bad path 'a\[' at character 2: unclosed \[/],
  ];
  for (const [op, re] of cases) {
    const r = await session.batch([op]);
    assert.equal(r.ok, false, op);
    assert.match(r.text, re, op);
  }
});

Deno.test("jsonc: queries read values, keys, raw source and the whole text", async () => {
  const { session, text } = await opened("deno.jsonc");
  assert.equal((await session.query("get tasks.dev")).text, '"deno run -A main.ts"');
  assert.equal((await session.query(`get 'tasks["my task"]'`)).text, '"echo hi"');
  assert.equal((await session.query("get lint")).text, '{\n  "exclude": [\n    "dist/"\n  ]\n}');
  assert.match((await session.query("get imports raw:true")).text, /\/\/ schema lib/);
  assert.equal(
    (await session.query("keys")).text,
    [
      'name: string "@demo/app"',
      "tasks: object (2 keys)",
      "imports: object (1 keys)",
      "lint: object (1 keys)",
      "fmt: object (2 keys)",
    ].join("\n"),
  );
  assert.equal(
    (await session.query("keys fmt.exclude")).text,
    '[0]: string "fixtures/"\n[1]: string "dist/"',
  );
  assert.equal((await session.query("dump")).text, text);
  const bad = await session.query("gte x");
  assert.equal(bad.ok, false);
  assert.match(bad.text, /unknown query 'gte'; did you mean: get/);
  assert.match((await session.query("keys name")).text, /name is a string; it has no keys/);
});

Deno.test("jsonc: new documents, broken files and the empty file", async () => {
  const storage = memoryStorage({ "bad.json": '{ "a": 1,, }', "empty.json": "" });
  const session = new FcpSession(jsoncDriver(storage));
  const bad = await session.session("open bad.json");
  assert.equal(bad.ok, false);
  assert.match(bad.text, /bad\.json:1:10: PropertyNameExpected/);
  await session.session("open empty.json");
  await session.batch(["set a.b 1"]);
  assert.equal(session.state, '{\n  "a": {\n    "b": 1\n  }\n}\n');
  await session.session("new");
  await session.batch(["push list 1", "push list 2"]);
  assert.equal(session.state, '{\n  "list": [\n    1,\n    2\n  ]\n}\n');
  await session.session("save as:new.json");
  assert.equal((storage as MemoryStorage).text("new.json"), session.state);
});

Deno.test("jsonc paths: parse and format", () => {
  const texts = (p: string) => parsePath(p).map((s) => s.text);
  assert.deepEqual(texts("compilerOptions.strict"), ["compilerOptions", "strict"]);
  assert.deepEqual(texts('tasks["my task"]'), ["tasks", "my task"]);
  assert.deepEqual(texts("tasks[my task]"), ["tasks", "my task"]);
  assert.deepEqual(texts("a.b[2].c"), ["a", "b", "2", "c"]);
  assert.deepEqual(texts(`["a.b"]['c"d']["e\\"f"]`), ["a.b", 'c"d', 'e"f']);
  assert.deepEqual(texts("$"), []);
  assert.deepEqual(texts("$.a"), ["a"]);
  assert.throws(() => parsePath("a..b"), /empty key/);
  assert.throws(() => parsePath("a."), /ends with \./);
  assert.throws(() => parsePath('a["x'), /unclosed "/);
  assert.equal(formatPath(["tasks", "my task", 0, "a-b", "x.y"]), 'tasks["my task"][0].a-b["x.y"]');
  assert.deepEqual(parseValue("true"), true);
  assert.deepEqual(parseValue("hello world"), "hello world");
  assert.deepEqual(parseValue('"true"'), "true");
});

/** Quote a token so the tokenizer hands it back unchanged. */
const q = (s: string) =>
  `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function modelSet(model: Record<string, Json>, path: string[], value: Json): void {
  let at: Record<string, Json> = model;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    if (next === undefined) at = (at[key] = {}) as Record<string, Json>;
    else if (next !== null && typeof next === "object" && !Array.isArray(next)) at = next;
    else throw new Error(`model: ${path.join(".")} goes through a ${typeof next}`);
  }
  at[path[path.length - 1]] = value;
}

/** Whether the model says the op can succeed (so a refusal is a bug). */
function legal(model: Json, kind: "set" | "unset" | "push", path: string[]): boolean {
  let at: Json | undefined = model;
  for (const key of path.slice(0, -1)) {
    if (at === undefined) return kind !== "unset";
    if (at === null || typeof at !== "object" || Array.isArray(at)) return false;
    at = at[key];
  }
  if (at === undefined) return kind !== "unset";
  if (at === null || typeof at !== "object" || Array.isArray(at)) return false;
  const target: Json | undefined = at[path[path.length - 1]];
  if (kind === "unset") return target !== undefined;
  if (kind === "push") return target === undefined || Array.isArray(target);
  return true;
}

const SENTINELS: Record<string, string> = {
  "deno.jsonc": "// Project config: comments",
  "tsconfig.jsonc": "/* Compiler settings",
  "settings.jsonc": "// editor settings, tab indented",
};

Deno.test("jsonc (property): random set/unset/push runs match a plain-object model and undo to the byte", async () => {
  const keys = [
    "name",
    "tasks.dev",
    "tasks.x",
    "fmt.lineWidth",
    "fmt.y.z",
    "fresh.key",
    "lint",
    "compilerOptions.strict",
    "compilerOptions.lib",
    "include",
  ];
  const arrays = ["fmt.exclude", "arr", "compilerOptions.lib", "include"];
  const value = fc.jsonValue({ maxDepth: 2 }).filter((v) =>
    !JSON.stringify(v).includes("__proto__")
  );
  const command = fc.oneof(
    fc.record({ kind: fc.constant("set" as const), key: fc.constantFrom(...keys), value }),
    fc.record({ kind: fc.constant("unset" as const), key: fc.constantFrom(...keys) }),
    fc.record({ kind: fc.constant("push" as const), key: fc.constantFrom(...arrays), value }),
  );
  const file = fc.constantFrom(...Object.keys(SENTINELS));
  await fc.assert(
    fc.asyncProperty(file, fc.array(command, { maxLength: 8 }), async (name, commands) => {
      const { session, text } = await opened(name);
      const model = parse(text) as Record<string, Json>;
      let applied = 0;
      for (const c of commands) {
        const before = session.state;
        const v = "value" in c ? JSON.parse(JSON.stringify(c.value)) as Json : null;
        const op = c.kind === "unset"
          ? `unset ${c.key}`
          : `${c.kind} ${c.key} ${q(JSON.stringify(v))}`;
        const r = await session.batch([op]);
        if (!r.ok) {
          assert.equal(session.state, before, `${op} failed but changed the text`);
          assert.ok(!legal(model, c.kind, c.key.split(".")), `${op} refused: ${r.text}`);
          continue;
        }
        applied++;
        const path = c.key.split(".");
        if (c.kind === "set") modelSet(model, path, v);
        if (c.kind === "push") {
          const arr = path.reduce<Json | undefined>(
            (o, k) => (o as Record<string, Json>)?.[k],
            model,
          );
          if (Array.isArray(arr)) arr.push(v);
          else modelSet(model, path, [v]);
        }
        if (c.kind === "unset") {
          const parent = path.slice(0, -1).reduce<Json>(
            (o, k) => (o as Record<string, Json>)[k],
            model,
          );
          delete (parent as Record<string, Json>)[path[path.length - 1]];
        }
        assert.deepEqual(parse(session.state!), model, op);
        assert.ok(session.state!.includes(SENTINELS[name]), op);
      }
      const final = session.state;
      for (let i = 0; i < applied; i++) await session.session("undo");
      assert.equal(session.state, text);
      for (let i = 0; i < applied; i++) await session.session("redo");
      assert.equal(session.state, final);
    }),
    { numRuns: 60 },
  );
});
