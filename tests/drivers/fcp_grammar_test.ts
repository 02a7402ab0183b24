/**
 * The FCP op grammar, table-driven: tokenizing (quotes, escapes, columns), classifying
 * (key:values, ranges, selectors, negation, arrows), parse errors with their columns, the
 * edit-distance suggestions and the verb registry's validation.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import {
  classifyToken,
  closest,
  defineVerb,
  editDistance,
  FcpError,
  isRange,
  type ParsedOp,
  parseOp,
  scanTokens,
  tokenize,
  VerbRegistry,
} from "../../drivers/fcp/mod.ts";

type Case = {
  op: string;
  tokens?: string[];
  expect?: Partial<ParsedOp>;
  error?: { column: number; match: RegExp };
};

const sel = (type: string, value = "", negated = false) => ({ type, value, negated });

// deno-fmt-ignore
const CASES: Case[] = [
  // plain splitting
  { op: "add box", tokens: ["add", "box"], expect: { verb: "add", positionals: ["box"] } },
  { op: "  add   box  ", tokens: ["add", "box"] },
  { op: "add\tbox\nnext", tokens: ["add", "box", "next"] },
  { op: "ADD Box", expect: { verb: "add", positionals: ["Box"] } },
  { op: "undo", tokens: ["undo"], expect: { verb: "undo", positionals: [], params: {}, selectors: [], arrows: [] } },
  // quotes and escapes
  { op: `set name "two words"`, tokens: ["set", "name", "two words"] },
  { op: `set name 'two words'`, tokens: ["set", "name", "two words"] },
  { op: `set a ""`, tokens: ["set", "a", ""], expect: { positionals: ["a", ""] } },
  { op: `set a ''`, tokens: ["set", "a", ""] },
  { op: `say "she said \\"hi\\""`, tokens: ["say", `she said "hi"`] },
  { op: `say "back\\\\slash"`, tokens: ["say", "back\\slash"] },
  { op: `say "line\\nbreak"`, tokens: ["say", "line\nbreak"] },
  { op: `say 'it\\'s'`, tokens: ["say", "it's"] },
  { op: `say "it's"`, tokens: ["say", "it's"] },
  { op: `say 'say "hi"'`, tokens: ["say", `say "hi"`] },
  { op: `path "C:\\dir"`, tokens: ["path", "C:\\dir"], expect: { positionals: ["C:\\dir"] } },
  { op: `a"b c"d`, tokens: ["ab cd"] },
  { op: `x "a""b"`, tokens: ["x", "ab"] },
  // key:values
  { op: `add box label:"Auth Service"`, tokens: ["add", "box", "label:Auth Service"], expect: { params: { label: "Auth Service" } } },
  { op: "add box w:3 h:4", expect: { positionals: ["box"], params: { w: "3", h: "4" } } },
  { op: "open url:http://x.y/z", expect: { params: { url: "http://x.y/z" } } },
  { op: "set key:", expect: { params: { key: "" } } },
  { op: "tag mode:fast", expect: { params: { mode: "fast" } } },
  { op: "style h1:bold", expect: { params: { h1: "bold" } } },
  { op: "set :x", expect: { positionals: [":x"] } },
  { op: `set "url:http://x"`, expect: { positionals: ["url:http://x"], params: {} } },
  { op: "set __proto__:x", expect: { params: JSON.parse('{"__proto__":"x"}') } },
  // ranges and formulas are positionals
  { op: "fill A1:F1 value:0", expect: { positionals: ["A1:F1"], params: { value: "0" } } },
  { op: "rows 1:5", expect: { positionals: ["1:5"], params: {} } },
  { op: "copy Sheet2!A1:B10", expect: { positionals: ["Sheet2!A1:B10"] } },
  { op: "cols A:C", expect: { positionals: ["A:C"] } },
  { op: "fix $A$1:$B$2", expect: { positionals: ["$A$1:$B$2"] } },
  { op: "put a1:b2", expect: { positionals: ["a1:b2"] } },
  { op: "set B2 =SUM(A1:A9)", expect: { positionals: ["B2", "=SUM(A1:A9)"], params: {} } },
  { op: "set B2 =A1", expect: { positionals: ["B2", "=A1"] } },
  // selectors
  { op: "remove @type:db", expect: { selectors: [sel("type", "db")] } },
  { op: "remove @not:type:db", expect: { selectors: [sel("type", "db", true)] } },
  { op: "style @all", expect: { selectors: [sel("all")] } },
  { op: "style @not:all", expect: { selectors: [sel("all", "", true)] } },
  { op: "move @tag:a:b", expect: { selectors: [sel("tag", "a:b")] } },
  { op: `move @label:"Auth Service"`, expect: { selectors: [sel("label", "Auth Service")] } },
  { op: `set x "@all"`, expect: { positionals: ["x", "@all"], selectors: [] } },
  { op: "mail a @", expect: { positionals: ["a", "@"] } },
  // arrows
  { op: "link a -> b", expect: { positionals: ["a", "b"], arrows: ["->"] } },
  { op: "link a <-> b -- c", expect: { positionals: ["a", "b", "c"], arrows: ["<->", "--"] } },
  { op: `link a "->" b`, expect: { positionals: ["a", "->", "b"], arrows: [] } },
  { op: "link a->b", expect: { positionals: ["a->b"], arrows: [] } },
  // everything at once, each list in source order
  {
    op: `Connect api -> db kind:sql @type:svc w:2 @not:env:dev <-> cache`,
    expect: {
      verb: "connect",
      positionals: ["api", "db", "cache"],
      params: { kind: "sql", w: "2" },
      selectors: [sel("type", "svc"), sel("env", "dev", true)],
      arrows: ["->", "<->"],
    },
  },
  // errors, with the column
  { op: "", tokens: [], error: { column: 1, match: /empty operation/ } },
  { op: "   ", tokens: [], error: { column: 1, match: /empty operation/ } },
  { op: `set a "open`, error: { column: 7, match: /unbalanced " quote/ } },
  { op: `set a 'open`, error: { column: 7, match: /unbalanced ' quote/ } },
  { op: `say "esc\\"`, error: { column: 5, match: /unbalanced/ } },
  { op: `add label:"Auth`, error: { column: 11, match: /unbalanced/ } },
  { op: "set a:1 a:2", error: { column: 9, match: /key 'a' given twice/ } },
  { op: "drop @not:", error: { column: 6, match: /names no type/ } },
];

Deno.test("grammar: the table of ops tokenizes and parses as documented", () => {
  assert.ok(CASES.length >= 40, `only ${CASES.length} cases`);
  for (const c of CASES) {
    const label = JSON.stringify(c.op);
    if (c.tokens) {
      if (c.error && c.tokens.length === 0) assert.deepEqual(tokenize(c.op), [], label);
      else if (!c.error) assert.deepEqual(tokenize(c.op), c.tokens, label);
    }
    if (c.error) {
      assert.throws(() => parseOp(c.op), (err: unknown) => {
        assert.ok(err instanceof FcpError, `${label}: ${err}`);
        assert.equal(err.code, "parse", label);
        assert.equal(err.column, c.error!.column, `${label}: ${err.message}`);
        assert.match(err.message, c.error!.match, label);
        return true;
      });
      continue;
    }
    const parsed = parseOp(c.op);
    for (const [key, value] of Object.entries(c.expect ?? {})) {
      assert.deepEqual(parsed[key as keyof ParsedOp], value, `${label} → ${key}`);
    }
  }
});

Deno.test("grammar: parseOp returns exactly the five documented fields, params a plain object", () => {
  const op = parseOp("set a k:v");
  assert.deepEqual(Object.keys(op).sort(), [
    "arrows",
    "params",
    "positionals",
    "selectors",
    "verb",
  ]);
  assert.equal(Object.getPrototypeOf(op.params), Object.prototype);
  // A key named __proto__ is an own property, not a prototype swap.
  const proto = parseOp("set __proto__:x").params;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.ok(Object.hasOwn(proto, "__proto__"));
});

Deno.test("grammar: tokens carry 1-based columns and whether they began with a quote", () => {
  assert.deepEqual(scanTokens(`add  "x y" k:"v"`), [
    { text: "add", column: 1, quoted: false },
    { text: "x y", column: 6, quoted: true },
    { text: "k:v", column: 12, quoted: false },
  ]);
});

Deno.test("grammar: the range rule", () => {
  const ranges = ["A1:F1", "1:5", "10:", "Sheet2!A1:B10", "A:C", "$A1:B$2", "x!y:z", "AB12:CD34"];
  const params = [
    "label:x",
    "h1:bold",
    "mode:fast",
    "url:http://x",
    "A1:foo",
    "a:B",
    "A:c",
    "A1:B:C",
  ];
  for (const t of ranges) assert.ok(isRange(t), t);
  for (const t of params) {
    assert.ok(!isRange(t), t);
    assert.equal(classifyToken(t), "param", t);
  }
  assert.equal(classifyToken("=A1:B2"), "positional");
  assert.equal(classifyToken({ text: "a:b", column: 1, quoted: true }), "positional");
});

/** Quote any string so the tokenizer gives it back unchanged. */
function quote(s: string): string {
  return `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`;
}

Deno.test("grammar (property): quoted tokens round-trip through tokenize", () => {
  fc.assert(
    fc.property(fc.array(fc.string(), { maxLength: 6 }), (words) => {
      assert.deepEqual(tokenize(words.map(quote).join(" ")), words);
    }),
  );
});

Deno.test("grammar (property): tokenize never throws on balanced input and never drops text", () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z0-9:@!=$ \t>-]*$/), (op) => {
      const joined = tokenize(op).join("");
      assert.equal(joined, op.replace(/\s+/g, ""));
    }),
  );
});

Deno.test("suggest: edit distance counts a swap as one and names the closest verbs", () => {
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("set", "set"), 0);
  assert.equal(editDistance("ste", "set"), 1);
  assert.equal(editDistance("kitten", "sitting"), 3);
  const verbs = ["set", "unset", "push", "rename", "merge"];
  assert.equal(closest("sett", verbs)[0], "set");
  assert.equal(closest("unst", verbs)[0], "unset");
  assert.equal(closest("ren", verbs)[0], "rename");
  assert.deepEqual(closest("xyzzyq", verbs), []);
});

const registry = new VerbRegistry<number, string>("verb", [
  defineVerb({
    name: "add",
    summary: "add n",
    positionals: { n: z.coerce.number().int().describe("how many"), note: z.string().optional() },
    params: { label: z.string().optional() },
    run: (s: number, a) => `${s + a.n} ${a.label ?? ""}`,
  }),
  defineVerb({
    name: "tag",
    summary: "tag things",
    positionals: { names: z.array(z.string()) },
    selectors: ["type"],
    arrows: true,
    run: (_s: number, a) => a.names.join(","),
  }),
]);

function refusal(op: string): FcpError {
  try {
    registry.resolve(parseOp(op));
  } catch (err) {
    assert.ok(err instanceof FcpError);
    return err;
  }
  assert.fail(`expected '${op}' to be refused`);
}

Deno.test("registry: validates positionals, params, selectors and arrows from the declaration", () => {
  const { verb, args } = registry.resolve(parseOp("add 3 label:x"));
  assert.equal(verb.run(1, args, parseOp("add 3")), "4 x");
  assert.deepEqual(registry.resolve(parseOp("tag a b c @type:x -> d")).args, {
    names: ["a", "b", "c", "d"],
  });
  assert.match(refusal("add").message, /missing <n>/);
  assert.match(refusal("add x").message, /n: .*number/i);
  assert.match(refusal("add 1 2 3").message, /unexpected positional '3'/);
  const typo = refusal("add 1 lable:x");
  assert.equal(typo.code, "invalid_args");
  assert.match(typo.hint!, /did you mean: label:/);
  assert.match(refusal("add 1 @type:x").message, /selector @type:x not accepted/);
  assert.match(refusal("tag a @kind:x").hint!, /accepted: @type/);
  assert.match(refusal("add 1 -> 2").message, /takes no arrows/);
  const unknown = refusal("ad 1");
  assert.equal(unknown.code, "unknown_verb");
  assert.match(unknown.hint!, /did you mean: add/);
  assert.match(refusal("frobnicate").hint!, /known verbs: add, tag/);
});

Deno.test("registry: help documents every verb from the same declaration", () => {
  const card = registry.help().join("\n");
  assert.match(card, /add <n> \[note\] \[label:…\]/);
  assert.match(card, /n: how many/);
  assert.match(card, /tag <names…> \[@type…\] \[->\|<->\|--\]/);
});
