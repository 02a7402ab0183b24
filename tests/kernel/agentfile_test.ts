/**
 * Agentfile grammar, profile inheritance and lint: table-driven parser cases (good files,
 * continuation, comments, quoting, every error with its line and column), the fixtures, profile
 * chains and cycles, and one case per lint rule.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseAgentfile, parseAgentfileLenient } from "../../kernel/agentfile_parse.ts";
import {
  checkAgentfile,
  isolationSupport,
  lint,
  resolveAgentfile,
} from "../../kernel/agentfile_lint.ts";
import type { Directive, Finding } from "../../kernel/agentfile_schema.ts";
import { OstkError } from "../../kernel/errors.ts";
import { parseModelSpec } from "../../kernel/model_spec.ts";

const FIXTURES = decodeURIComponent(new URL("../../fixtures/agentfiles", import.meta.url).pathname);
const PROFILES = `${FIXTURES}/profiles`;

/** Directives without their sources, for compact expectations. */
function bare(text: string): unknown[] {
  return parseAgentfile(text, "t").directives.map((d: Directive) => {
    const { source: _source, directive, ...rest } = d;
    return { directive, ...rest };
  });
}

const GOOD: [string, string, unknown[]][] = [
  ["script CPU", "FROM script:a.jsonl\nTASK go", [
    { directive: "FROM", from: { kind: "script", script: "a.jsonl" } },
    { directive: "TASK", text: "go" },
  ]],
  ["command CPU with quoted words", `FROM command:deno run "my file.ts" --x='a b' c"d e"f`, [
    {
      directive: "FROM",
      from: { kind: "command", command: ["deno", "run", "my file.ts", "--x=a b", "cd ef"] },
    },
  ]],
  ["command: with a space before the program", "FROM command: ./agent --fast", [
    { directive: "FROM", from: { kind: "command", command: ["./agent", "--fast"] } },
  ]],
  ["quoted script path", `FROM script:"my dir/t.jsonl"`, [
    { directive: "FROM", from: { kind: "script", script: "my dir/t.jsonl" } },
  ]],
  ["backslash continuation joins with one space", "TASK fix the \\\n    parser  \\\nnow", [
    { directive: "TASK", text: "fix the parser now" },
  ]],
  ["indented lines continue TASK with newlines", "TASK first\n  second\n\tthird\n", [
    { directive: "TASK", text: "first\nsecond\nthird" },
  ]],
  ["TASK alone, text on indented lines", "TASK\n  do this\n  # a comment line\n  and that", [
    { directive: "TASK", text: "do this\nand that" },
  ]],
  ["a blank line ends TASK's indented text", "TASK a\n\nLIMIT turns 2", [
    { directive: "TASK", text: "a" },
    { directive: "LIMIT", limit: { key: "turns", value: 2 } },
  ]],
  ["trailing comments; #word is text", "TASK fix issue #12 # note\nLIMIT turns 5 # cap", [
    { directive: "TASK", text: "fix issue #12" },
    { directive: "LIMIT", limit: { key: "turns", value: 5 } },
  ]],
  ["whole-line comments and blank lines", "# head\n\n   # indented comment\nPIN default", [
    { directive: "PIN", name: "default" },
  ]],
  ["TASK quoted as a whole keeps # and loses quotes", `TASK "say \\"hi\\" # now" # c`, [
    { directive: "TASK", text: `say "hi" # now` },
  ]],
  ["apostrophes in TASK are text", "TASK don't stop, it's fine", [
    { directive: "TASK", text: "don't stop, it's fine" },
  ]],
  ["CRLF line ends", "PIN a\r\nISOLATION seatbelt\r\n", [
    { directive: "PIN", name: "a" },
    { directive: "ISOLATION", isolation: "seatbelt" },
  ]],
  [
    "numeric limits and units",
    "LIMIT budget_usd 2.50\nLIMIT wall_clock 90s\nLIMIT wall_clock 1.5h",
    [
      { directive: "LIMIT", limit: { key: "budget_usd", value: 2.5 } },
      { directive: "LIMIT", limit: { key: "wall_clock", value: 90_000 } },
      { directive: "LIMIT", limit: { key: "wall_clock", value: 5_400_000 } },
    ],
  ],
  ["bare wall_clock is seconds; tokens", "LIMIT wall_clock 45\nLIMIT tokens 100000", [
    { directive: "LIMIT", limit: { key: "wall_clock", value: 45_000 } },
    { directive: "LIMIT", limit: { key: "tokens", value: 100_000 } },
  ]],
  ["modes and policies", "LIMIT permissions auto\nLIMIT revival_policy ask", [
    { directive: "LIMIT", limit: { key: "permissions", value: "auto" } },
    { directive: "LIMIT", limit: { key: "revival_policy", value: "ask" } },
  ]],
  ["list limits, continued", "LIMIT write-path src/ 'a b' \\\n  /tmp/out\nLIMIT net none", [
    { directive: "LIMIT", limit: { key: "write-path", value: ["src/", "a b", "/tmp/out"] } },
    { directive: "LIMIT", limit: { key: "net", value: ["none"] } },
  ]],
  ["net entries", "LIMIT net api.x.com:443 10.0.0.1:8080 [::1]:9 *.npmjs.org:443", [
    {
      directive: "LIMIT",
      limit: {
        key: "net",
        value: ["api.x.com:443", "10.0.0.1:8080", "[::1]:9", "*.npmjs.org:443"],
      },
    },
  ]],
  ["TOOL with and without a substring", `TOOL FileRead\nTOOL ShellExec("npm test")`, [
    { directive: "TOOL", tool: { class: "FileRead" } },
    { directive: "TOOL", tool: { class: "ShellExec", substring: "npm test" } },
  ]],
  ["FROM-PROFILE and ISOLATION docker", "FROM-PROFILE base\nISOLATION docker", [
    { directive: "FROM-PROFILE", name: "base" },
    { directive: "ISOLATION", isolation: "docker" },
  ]],
];

for (const [name, text, expected] of GOOD) {
  Deno.test(`parse: ${name}`, () => assert.deepEqual(bare(text), expected));
}

/**
 * [spec, provider]: every form `ostk spawn --model` takes (kernel/model_spec.ts, the parser the
 * daemon checks a spawn with) is a FROM line, kept as written for the daemon to parse again.
 */
const MODEL_FORMS: [string, string][] = [
  ["anthropic:claude-sonnet-4", "anthropic"],
  ["anthropic/claude-sonnet-4-20250514", "anthropic"],
  ["openai:gpt-4o", "openai"],
  ["openai/gpt-5.1", "openai"],
  ["ollama:qwen3:8b", "ollama"],
  ["ollama/llama3.2", "ollama"],
  ["openai-compatible:http://127.0.0.1:8000/v1#qwen3", "openai-compatible"],
  ["openai-compatible:https://llm.example.com/v1/#org/model-7b", "openai-compatible"],
];

for (const [spec, provider] of MODEL_FORMS) {
  Deno.test(`parse: FROM ${spec} is a ${provider} model, as spawn reads it`, () => {
    assert.equal(parseModelSpec(spec).provider, provider);
    assert.deepEqual(bare(`FROM ${spec}`), [
      { directive: "FROM", from: { kind: "model", provider, model: spec } },
    ]);
  });
}

/** [spec, why]: what spawn refuses, FROM refuses with the same reason. */
const BAD_MODELS: [string, RegExp][] = [
  ["gemini:pro", /expected script:.*openai-compatible:<base-url>#<model>; found 'gemini:pro'/],
  ["claude", /expected script:/],
  ["openai-compatible:ftp://h:21/v1#m", /the base URL must be http\(s\)/],
  ["openai-compatible:not a url#m", /'not a url' is not a URL/],
  ["openai-compatible:http://h:8000/v1", /needs the server's base URL, then #<model>/],
];

for (const [spec, why] of BAD_MODELS) {
  Deno.test(`parse error: FROM ${spec} is refused as spawn refuses it`, () => {
    let reason = "";
    assert.throws(() => parseModelSpec(spec), (e) => {
      reason = e instanceof OstkError ? String(e.details?.why) : "";
      return reason !== "";
    });
    const { problems } = parseAgentfileLenient(`FROM "${spec}"`, "m.Agentfile");
    assert.equal(problems.length, 1);
    assert.equal(problems[0].details?.rule, "bad-value");
    assert.deepEqual(problems[0].site, { file: "m.Agentfile", line: 1, column: 6 });
    assert.match(problems[0].message, why);
    if (reason !== "unknown provider") assert.ok(problems[0].message.endsWith(`: ${reason}`));
  });
}

Deno.test("lint: a model FROM is a runnable CPU, with no warning", async () => {
  for (const [spec] of MODEL_FORMS) {
    assert.deepEqual(await lint({ text: `FROM ${spec}\nTASK go\n` }), []);
  }
});

Deno.test("parse: each directive's source is its keyword's line and column", () => {
  const ast = parseAgentfile("# c\nFROM script:a\n\nTASK x \\\n  y\nPIN p\n", "f.Agentfile");
  assert.deepEqual(ast.directives.map((d) => [d.source.file, d.source.line, d.source.column]), [
    ["f.Agentfile", 2, 1],
    ["f.Agentfile", 4, 1],
    ["f.Agentfile", 6, 1],
  ]);
});

/** [name, text, rule, line, column, message pattern] */
const BAD: [string, string, string, number, number, RegExp][] = [
  ["unknown directive", "FROM script:a\nFORM x", "unknown-directive", 2, 1, /did you mean 'FROM'/],
  ["lower-case directive", "task go", "unknown-directive", 1, 1, /did you mean 'TASK'/],
  ["unterminated quote", `PIN a\nFROM script:"ab`, "syntax", 2, 13, /unterminated " quote/],
  ["unterminated quoted TASK", `TASK 'half`, "syntax", 1, 6, /unterminated ' quote/],
  ["text after a quoted TASK", `TASK "a" b`, "syntax", 1, 10, /quote the whole TASK/],
  ["indentation after a non-TASK", "PIN a\n  PIN b", "syntax", 2, 1, /unexpected indentation/],
  ["file ends mid-continuation", "LIMIT write-path a \\", "syntax", 1, 1, /file ends/],
  ["FROM without a CPU", "FROM", "bad-value", 1, 1, /FROM needs a CPU/],
  ["FROM of unknown kind", "FROM docker:img", "bad-value", 1, 6, /expected script:/],
  ["FROM model without a URL", "FROM openai-compatible:qwen3", "bad-value", 1, 6, /base URL/],
  ["FROM script with two paths", "FROM script:a b", "bad-value", 1, 15, /takes one CPU/],
  ["FROM empty script", "FROM script:", "bad-value", 1, 6, /needs the path/],
  ["FROM empty command", "FROM command:", "bad-value", 1, 6, /needs a program/],
  ["TASK without text", "TASK   # nothing", "bad-value", 1, 1, /TASK needs a text/],
  ["LIMIT without key", "LIMIT", "bad-value", 1, 1, /LIMIT needs a key/],
  ["unknown LIMIT key", "LIMIT tokns 5", "bad-value", 1, 7, /did you mean 'tokens'/],
  ["LIMIT without value", "LIMIT turns", "bad-value", 1, 7, /needs a value/],
  ["zero turns", "LIMIT turns 0", "bad-value", 1, 13, /above 0/],
  ["negative tokens", "LIMIT tokens -3", "bad-value", 1, 14, /above 0/],
  ["fractional turns", "LIMIT turns 2.5", "bad-value", 1, 13, /whole number/],
  ["non-number budget", "LIMIT budget_usd lots", "bad-value", 1, 18, /dollar amount/],
  ["zero budget", "LIMIT budget_usd 0.00", "bad-value", 1, 18, /above 0/],
  ["unlimited", "LIMIT turns unlimited", "bad-value", 1, 13, /leave the LIMIT line out/],
  ["unlimited wall clock", "LIMIT wall_clock unlimited", "bad-value", 1, 18, /'unlimited'/],
  ["zero wall clock", "LIMIT wall_clock 0m", "bad-value", 1, 18, /longer than 0/],
  ["bad unit", "LIMIT wall_clock 3d", "bad-value", 1, 18, /30s, 10m or 2h/],
  ["two values", "LIMIT turns 3 4", "bad-value", 1, 15, /takes one value/],
  ["bad mode", "LIMIT permissions autonomus", "bad-value", 1, 19, /did you mean 'autonomous'/],
  ["bad revival", "LIMIT revival_policy keep", "bad-value", 1, 22, /revive, reap, ask/],
  ["bad net entry", "LIMIT net example.com", "bad-value", 1, 11, /host:port/],
  ["net port out of range", "LIMIT net a.com:70000", "bad-value", 1, 11, /1-65535/],
  ["path through ..", "LIMIT read-path src ../up", "bad-value", 1, 21, /'\.\.'/],
  ["unknown TOOL class", "TOOL Shellexec", "bad-value", 1, 6, /did you mean 'ShellExec'/],
  ["TOOL pattern with spaces", "TOOL ShellExec(npm test)", "bad-value", 1, 20, /quote a value/],
  ["TOOL unclosed pattern", `TOOL FileEdit(src/`, "bad-value", 1, 6, /missing '\)'/],
  ["TOOL empty pattern", "TOOL FileEdit()", "bad-value", 1, 6, /pattern is empty/],
  ["bad isolation", "ISOLATION vm", "bad-value", 1, 11, /none, landlock/],
  ["profile name with a slash", "FROM-PROFILE ../x", "bad-value", 1, 14, /plain name/],
  ["PIN with two names", "PIN a b", "bad-value", 1, 7, /takes one value/],
];

for (const [name, text, rule, line, column, message] of BAD) {
  Deno.test(`parse error: ${name} → ${rule} at ${line}:${column}`, () => {
    let e: unknown;
    try {
      parseAgentfile(text, "bad.Agentfile");
    } catch (thrown) {
      e = thrown;
    }
    assert.ok(e instanceof OstkError, `expected an OstkError, got ${e}`);
    assert.equal(e.details?.rule, rule);
    assert.deepEqual(e.site, { file: "bad.Agentfile", line, column });
    assert.match(e.toLine(), message);
  });
}

Deno.test("parse: every bad line is reported and the good ones still parse", () => {
  const { ast, problems } = parseAgentfileLenient(
    "FROM script:a\nLIMIT turns 0\nTASK go\nLIMIT tokens x\nPIN p\n",
    "f",
  );
  assert.deepEqual(ast.directives.map((d) => d.directive), ["FROM", "TASK", "PIN"]);
  assert.deepEqual(problems.map((p) => p.site.line), [2, 4]);
});

Deno.test("parse (property): any text yields problems with a site, never a crash", () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom(..."FROMTASKLIMIT \\\"'#\n\t()-_:a1") }),
      (text) => {
        const { problems } = parseAgentfileLenient(text, "p");
        for (const p of problems) {
          assert.ok(p instanceof OstkError);
          assert.ok(p.site.line! >= 1 && p.site.column! >= 1, p.toLine());
        }
      },
    ),
    { numRuns: 500 },
  );
});

// ---- fixtures, inheritance, resolve ----

const rules = (findings: Finding[], severity?: string) =>
  findings.filter((f) => !severity || f.severity === severity).map((f) => f.rule).sort();

Deno.test("fixtures: good_* files lint without errors", async () => {
  for await (const entry of Deno.readDir(FIXTURES)) {
    if (!entry.name.startsWith("good_")) continue;
    const findings = await lint({ path: `${FIXTURES}/${entry.name}` }, { profilesDir: PROFILES });
    assert.deepEqual(rules(findings, "error"), [], entry.name);
  }
});

Deno.test("fixtures: bad_* and warn_* files report their rules", async () => {
  const expected: Record<string, string[]> = {
    "bad_conflicts.Agentfile": ["net-none-mixed", "permissions-tool-conflict"],
    "bad_cycle.Agentfile": ["profile-cycle"],
    "bad_limits.Agentfile": ["bad-value", "bad-value", "bad-value", "bad-value", "bad-value"],
    "bad_missing_profile.Agentfile": ["missing-profile"],
    "bad_syntax.Agentfile": ["syntax", "syntax"],
    "bad_unknown_directive.Agentfile": ["missing-from", "unknown-directive", "unknown-directive"],
    "warn_docker.Agentfile": ["isolation-unsupported"],
    "warn_isolation.Agentfile": ["isolation-none-unenforced"],
  };
  for (const [name, want] of Object.entries(expected)) {
    const findings = await lint({ path: `${FIXTURES}/${name}` }, { profilesDir: PROFILES });
    assert.deepEqual(rules(findings), want, name);
  }
});

Deno.test("resolve: good_full carries every value with its line", async () => {
  const spec = await resolveAgentfile(`${FIXTURES}/good_full.Agentfile`);
  assert.deepEqual(spec.from?.value, {
    kind: "command",
    command: ["deno", "run", "--allow-read", "agents/my agent.ts", "--mode=fast lane"],
  });
  assert.equal(
    spec.task?.value,
    "Refactor the parser (issue #12) and don't break the lexer\n" +
      "Keep the public API.\nRun the tests before you stop.",
  );
  assert.equal(spec.limits.wall_clock?.value, 30 * 60_000);
  assert.deepEqual(spec.limits["write-path"]?.map((e) => [e.value, e.source.line]), [
    ["src/", 14],
    ["tests/", 14],
  ]);
  assert.deepEqual(spec.tools.map((t) => t.value.substring), [undefined, "src/", "deno test"]);
  assert.equal(spec.isolation?.source.line, 22);
});

Deno.test("resolve: profiles chain; nearer wins, lists replace, TOOL lines add up", async () => {
  const file = `${FIXTURES}/good_inherit.Agentfile`;
  const spec = await resolveAgentfile(file, { profilesDir: PROFILES });
  const at = (s?: { source: { file: string; line: number } }) =>
    s && `${s.source.file.split("/").at(-1)}:${s.source.line}`;
  assert.deepEqual(spec.chain, [
    file,
    `${PROFILES}/strict.Agentfile`,
    `${PROFILES}/base.Agentfile`,
  ]);
  assert.equal(at(spec.from), "base.Agentfile:2"); // only base says FROM
  assert.equal(spec.limits.turns?.value, 10); // the Agentfile beats base's 100
  assert.equal(at(spec.limits.turns), "good_inherit.Agentfile:4");
  assert.equal(spec.limits.permissions?.value, "governed"); // strict beats base's auto
  assert.equal(at(spec.limits.wall_clock), "base.Agentfile:4");
  assert.deepEqual(spec.limits["write-path"]?.map((e) => e.value), ["src/", "tests/"]);
  assert.deepEqual(spec.tools.map((t) => `${t.value.class}@${at(t)}`), [
    "FileRead@base.Agentfile:7",
    "FileEdit@good_inherit.Agentfile:5",
  ]);
});

Deno.test("resolve: throws the first error with file, line and column", async () => {
  await assert.rejects(
    () => resolveAgentfile(`${FIXTURES}/bad_limits.Agentfile`),
    (e: OstkError) => e.site.line === 3 && e.site.column === 13 && /above 0/.test(e.message),
  );
  await assert.rejects(
    () => resolveAgentfile(`${FIXTURES}/bad_cycle.Agentfile`, { profilesDir: PROFILES }),
    (e: OstkError) =>
      e.details?.rule === "profile-cycle" && e.site.file === `${PROFILES}/cycle_b.Agentfile` &&
      e.site.line === 2 && /cycle_a.*cycle_b.*cycle_a/.test(e.message),
  );
});

/** A scratch project with `.ostk/profiles/` holding `profiles` and an Agentfile `text`. */
async function withProject(
  profiles: Record<string, string>,
  text: string,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/.ostk/profiles`, { recursive: true });
    await Deno.mkdir(`${dir}/.ostk/agents`);
    for (const [name, body] of Object.entries(profiles)) {
      await Deno.writeTextFile(`${dir}/.ostk/profiles/${name}.Agentfile`, body);
    }
    await Deno.writeTextFile(`${dir}/.ostk/agents/a.Agentfile`, text);
    await fn(`${dir}/.ostk/agents/a.Agentfile`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("resolve: profiles default to the project's .ostk/profiles", async () => {
  await withProject(
    { base: "FROM script:x.jsonl\n" },
    "FROM-PROFILE base\nTASK go\n",
    async (p) => {
      const spec = await resolveAgentfile(p);
      assert.deepEqual(spec.from?.value, { kind: "script", script: "x.jsonl" });
    },
  );
});

Deno.test("resolve: a profile inheriting itself is a cycle", async () => {
  await withProject({ me: "FROM-PROFILE me\n" }, "FROM-PROFILE me\nTASK go\n", async (p) => {
    const findings = await lint({ path: p });
    assert.deepEqual(rules(findings, "error"), ["missing-from", "profile-cycle"]);
  });
});

Deno.test("resolve: a long chain is refused, not followed forever", async () => {
  const profiles: Record<string, string> = {};
  for (let i = 0; i < 20; i++) profiles[`p${i}`] = `FROM-PROFILE p${i + 1}\n`;
  profiles.p20 = "FROM script:x\n";
  await withProject(profiles, "FROM-PROFILE p0\nTASK go\n", async (p) => {
    const findings = await lint({ path: p });
    assert.ok(findings.some((f) => f.rule === "profile-cycle" && /longer than/.test(f.message)));
  });
});

// ---- lint rules, one case each ----

/** [rule, severity, text, line]: `text` must raise `rule` at `line`. */
const LINT: [string, "error" | "warning", string, number][] = [
  ["missing-from", "error", "TASK go", 1],
  ["missing-task", "error", "FROM script:a", 1],
  ["unknown-directive", "error", "FROM script:a\nTASK go\nTOOLS FileRead", 3],
  ["duplicate-directive", "error", "FROM script:a\nTASK go\nFROM script:b", 3],
  ["duplicate-directive", "error", "FROM script:a\nTASK go\nLIMIT turns 3\nLIMIT turns 4", 4],
  ["missing-profile", "error", "FROM script:a\nTASK go\nFROM-PROFILE nosuch", 3],
  ["syntax", "error", "FROM script:a\nTASK go\nPIN 'x", 3],
  ["bad-value", "error", "FROM script:a\nTASK go\nLIMIT turns -1", 3],
  [
    "permissions-tool-conflict",
    "error",
    "FROM script:a\nTASK go\nLIMIT permissions plan\nTOOL ShellExec",
    4,
  ],
  ["privileged-tool", "warning", "FROM script:a\nTASK go\nTOOL KernelSpawn", 3],
  ["net-none-mixed", "error", "FROM script:a\nTASK go\nLIMIT net none\nLIMIT net a.io:443", 4],
  [
    "write-outside-read",
    "warning",
    "FROM script:a\nTASK go\nLIMIT read-path src\nLIMIT write-path src/x out",
    4,
  ],
  [
    "isolation-none-unenforced",
    "warning",
    "FROM script:a\nTASK go\nISOLATION none\nLIMIT write-path src",
    3,
  ],
  ["isolation-unsupported", "warning", "FROM script:a\nTASK go\nISOLATION firecracker", 3],
  ["task-looks-like-directive", "warning", "FROM script:a\nTASK go\n  LIMIT turns 3", 3],
];

for (const [rule, severity, text, line] of LINT) {
  Deno.test(`lint: ${rule} (${severity}) on line ${line}`, async () => {
    const findings = await lint({ text, file: "l.Agentfile" }, { profilesDir: "/nonexistent" });
    const hit = findings.find((f) => f.rule === rule);
    assert.ok(hit, `expected ${rule} in ${JSON.stringify(findings)}`);
    assert.equal(hit.severity, severity);
    assert.equal(hit.file, "l.Agentfile");
    assert.equal(hit.line, line);
    assert.ok(hit.column >= 1);
  });
}

Deno.test("lint: unreadable file is one finding, not a throw", async () => {
  const findings = await lint({ path: "/nonexistent/x.Agentfile" });
  assert.deepEqual(rules(findings), ["unreadable"]);
});

Deno.test("lint: the rules stay quiet when nothing conflicts", async () => {
  const text = `FROM script:a
TASK go
LIMIT permissions autonomous
LIMIT read-path .
LIMIT write-path src/x
LIMIT net a.io:443
ISOLATION landlock
TOOL KernelSpawn
TOOL FileEdit(src/)
`;
  assert.deepEqual(await lint({ text }), []);
  // plan allows read classes in TOOL lines
  const plan = "FROM script:a\nTASK go\nLIMIT permissions plan\nTOOL FileRead\nTOOL ShellRead\n";
  assert.deepEqual(await lint({ text: plan }), []);
});

Deno.test("lint: a broken FROM line is not also reported missing", async () => {
  const findings = await lint({ text: "FROM\nTASK go\n" });
  assert.deepEqual(rules(findings), ["bad-value"]);
});

Deno.test("lint: conflicts are found across a profile chain", async () => {
  await withProject(
    { base: "FROM script:x\nLIMIT permissions plan\n" },
    "FROM-PROFILE base\nTASK go\nTOOL FileWrite\n",
    async (p) => {
      const { findings, spec } = await checkAgentfile({ path: p });
      assert.deepEqual(rules(findings), ["permissions-tool-conflict"]);
      assert.equal(findings[0].line, 3);
      assert.match(findings[0].message, /profiles\/base\.Agentfile:2/);
      assert.equal(spec?.limits.permissions?.value, "plan");
    },
  );
});

Deno.test("isolationSupport: docker and firecracker are not supported yet", () => {
  for (const iso of ["docker", "firecracker"] as const) {
    const s = isolationSupport(iso, "linux");
    assert.equal(s.supported, false);
    assert.match(!s.supported ? s.reason : "", /not supported yet/);
  }
  assert.equal(isolationSupport("landlock", "linux").supported, true);
  assert.equal(isolationSupport("landlock", "darwin").supported, false);
  assert.equal(isolationSupport("seatbelt", "darwin").supported, true);
  assert.equal(isolationSupport("none", "windows").supported, true);
});
