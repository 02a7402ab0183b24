/**
 * `ostk agentfile new | show | lint | validate` end to end: the real CLI in a scratch
 * directory, checking exit codes, what lands on disk, and the JSON each command prints.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { renderSpec } from "../../cli/agentfile.ts";
import { parseAgentfile } from "../../kernel/agentfile_parse.ts";
import type { ResolvedSpec } from "../../kernel/agentfile_schema.ts";
import { type OstkResult, runOstk, type Scratch, withScratch } from "../helpers/run_ostk.ts";

const FIXTURES = decodeURIComponent(new URL("../../fixtures/agentfiles", import.meta.url).pathname);
const PROFILES = `${FIXTURES}/profiles`;

async function ok(scratch: Scratch, args: string[]): Promise<OstkResult> {
  const result = await runOstk(scratch, args);
  assert.equal(result.code, 0, `ostk ${args.join(" ")} failed:\n${result.stderr}`);
  return result;
}

/** The one JSON value a --json command printed. */
function json(result: OstkResult): unknown {
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line of JSON, got:\n${result.stdout}`);
  return JSON.parse(lines[0]);
}

Deno.test("agentfile new: writes a template that validates, and never overwrites", async () => {
  await withScratch(async (scratch) => {
    const path = `${scratch.dir}/coder.Agentfile`;
    const task = "Fix issue #7 # not a comment, since the task is quoted";
    const made = await ok(scratch, [
      "agentfile",
      "new",
      path,
      "--from",
      "command:deno run a.ts",
      "--task",
      task,
    ]);
    assert.match(made.stdout, /wrote .*coder\.Agentfile/);
    const text = await Deno.readTextFile(path);
    assert.match(text, /^FROM command:deno run a\.ts$/m);
    assert.match(text, /^# LIMIT wall_clock 30m$/m); // a commented template
    const verdict = await runOstk(scratch, ["agentfile", "validate", path]);
    assert.equal(verdict.code, 0, verdict.stdout);
    const v = json(verdict) as { valid: boolean; warnings: unknown[]; spec: ResolvedSpec };
    assert.equal(v.valid, true);
    assert.deepEqual(v.warnings, []);
    assert.equal(v.spec.task?.value, task);
    assert.deepEqual(v.spec.from?.value, { kind: "command", command: ["deno", "run", "a.ts"] });

    const again = await runOstk(scratch, ["agentfile", "new", path]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists; not overwritten/);
    assert.equal(await Deno.readTextFile(path), text);

    const badFrom = await runOstk(scratch, ["agentfile", "new", `${path}2`, "--from", "docker:x"]);
    assert.equal(badFrom.code, 2);
    assert.match(badFrom.stderr, /expected script:/);
    await assert.rejects(() => Deno.stat(`${path}2`), Deno.errors.NotFound);
  });
});

Deno.test("agentfile new: a model FROM in every form spawn takes; no stale 'not yet'", async () => {
  await withScratch(async (scratch) => {
    const help = await ok(scratch, ["agentfile", "new", "--help"]);
    assert.match(help.stdout, /openai-compatible:<base-url>#<model>/);
    const forms: [string, string][] = [
      ["openai-compatible:http://127.0.0.1:8000/v1#qwen3", "openai-compatible"],
      ["anthropic:claude-sonnet-4", "anthropic"],
      ["openai/gpt-4o", "openai"],
      ["ollama:qwen3:8b", "ollama"],
    ];
    for (const [i, [model, provider]] of forms.entries()) {
      const path = `${scratch.dir}/m${i}.Agentfile`;
      await ok(scratch, ["agentfile", "new", path, "--from", model, "--task", "go"]);
      const text = await Deno.readTextFile(path);
      assert.ok(text.includes(`\nFROM ${model}\n`), text);
      assert.doesNotMatch(text, /not yet|cannot run|reserved/);
      const v = json(await ok(scratch, ["agentfile", "validate", path])) as {
        warnings: unknown[];
        spec: ResolvedSpec;
      };
      assert.deepEqual(v.warnings, []);
      assert.deepEqual(v.spec.from?.value, { kind: "model", provider, model });
    }
    const lint = await ok(scratch, [
      "agentfile",
      "lint",
      `${FIXTURES}/good_model_compat.Agentfile`,
    ]);
    assert.match(lint.stdout, /^0 error\(s\), 0 warning\(s\)$/m);

    const badUrl = await runOstk(scratch, [
      "agentfile",
      "new",
      `${scratch.dir}/bad.Agentfile`,
      "--from",
      "openai-compatible:ftp://h/v1#m",
    ]);
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /the base URL must be http\(s\)/);
  });
});

Deno.test("agentfile show: the merged spec with provenance, as text and as JSON", async () => {
  await withScratch(async (scratch) => {
    const file = `${FIXTURES}/good_inherit.Agentfile`;
    const text = await ok(scratch, ["agentfile", "show", file, "--profiles", PROFILES]);
    assert.match(text.stdout, /^LIMIT turns 10 +# .*good_inherit\.Agentfile:4$/m);
    assert.match(text.stdout, /^LIMIT wall_clock 2h +# .*profiles\/base\.Agentfile:4$/m);
    assert.match(text.stdout, /^LIMIT permissions governed +# .*profiles\/strict\.Agentfile:2$/m);
    const spec = json(
      await ok(scratch, ["agentfile", "show", file, "--json", "--profiles", PROFILES]),
    ) as ResolvedSpec;
    assert.equal(spec.limits.turns?.value, 10);
    assert.deepEqual(spec.limits.turns?.source, { file, line: 4, column: 1 });
    assert.equal(spec.chain.length, 3);

    const bad = await runOstk(scratch, ["agentfile", "show", `${FIXTURES}/bad_limits.Agentfile`]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^ostk: .*bad_limits\.Agentfile:3:13: LIMIT turns/);
  });
});

Deno.test("agentfile lint: findings per line, --json, exit 1 only for errors", async () => {
  await withScratch(async (scratch) => {
    const clean = await ok(scratch, ["agentfile", "lint", `${FIXTURES}/good_minimal.Agentfile`]);
    assert.match(clean.stdout, /^0 error\(s\), 0 warning\(s\)$/m);

    const warn = await ok(scratch, ["agentfile", "lint", `${FIXTURES}/warn_docker.Agentfile`]);
    assert.match(warn.stdout, /:3:1: warning \[isolation-unsupported\]/);

    const bad = `${FIXTURES}/bad_unknown_directive.Agentfile`;
    const text = await runOstk(scratch, ["agentfile", "lint", bad]);
    assert.equal(text.code, 1);
    assert.match(
      text.stdout,
      /bad_unknown_directive\.Agentfile:1:1: error \[unknown-directive\] .*did you mean 'FROM'/,
    );
    assert.match(text.stdout, /^3 error\(s\), 0 warning\(s\)$/m);
    const asJson = await runOstk(scratch, ["agentfile", "lint", bad, "--json"]);
    assert.equal(asJson.code, 1);
    const findings = json(asJson) as { rule: string; line: number }[];
    assert.deepEqual(findings.map((f) => `${f.rule}@${f.line}`), [
      "unknown-directive@1",
      "missing-from@1",
      "unknown-directive@3",
    ]);
  });
});

Deno.test("agentfile validate: one verdict object; spec only when valid", async () => {
  await withScratch(async (scratch) => {
    const good = json(
      await ok(scratch, ["agentfile", "validate", `${FIXTURES}/good_model.Agentfile`]),
    ) as Record<string, unknown>;
    assert.deepEqual(Object.keys(good).sort(), ["errors", "spec", "valid", "warnings"]);
    assert.equal(good.valid, true);
    assert.deepEqual(good.warnings, []); // a model CPU runs: nothing to warn about

    const cycle = await runOstk(scratch, [
      "agentfile",
      "validate",
      `${FIXTURES}/bad_cycle.Agentfile`,
      "--profiles",
      PROFILES,
    ]);
    assert.equal(cycle.code, 1);
    const verdict = json(cycle) as Record<string, unknown>;
    assert.deepEqual(Object.keys(verdict).sort(), ["errors", "valid", "warnings"]);
    assert.equal(verdict.valid, false);
    assert.deepEqual((verdict.errors as { rule: string }[]).map((e) => e.rule), ["profile-cycle"]);

    const missing = await runOstk(scratch, ["agentfile", "validate", "nope.Agentfile"]);
    assert.equal(missing.code, 1);
    assert.equal((json(missing) as { errors: { rule: string }[] }).errors[0].rule, "unreadable");
  });
});

Deno.test("agentfile: profiles default to the project's .ostk/profiles", async () => {
  await withScratch(async (scratch) => {
    await Deno.mkdir(`${scratch.dir}/.ostk/profiles`, { recursive: true });
    await Deno.mkdir(`${scratch.dir}/.ostk/agents`);
    await Deno.writeTextFile(`${scratch.dir}/.ostk/profiles/base.Agentfile`, "FROM script:x\n");
    const file = ".ostk/agents/a.Agentfile";
    await Deno.writeTextFile(`${scratch.dir}/${file}`, "FROM-PROFILE base\nTASK go\n");
    const spec = json(await ok(scratch, ["agentfile", "show", file, "--json"])) as ResolvedSpec;
    assert.deepEqual(spec.from?.value, { kind: "script", script: "x" });
  });
});

Deno.test("agentfile: --help for each sub-command; usage errors exit 2", async () => {
  await withScratch(async (scratch) => {
    for (const sub of ["new", "show", "lint", "validate"]) {
      const help = await ok(scratch, ["agentfile", sub, "--help"]);
      assert.match(help.stdout, new RegExp(`^usage: ostk agentfile ${sub} <path>`));
    }
    const listed = await ok(scratch, ["--help"]);
    assert.match(listed.stdout, /agentfile validate/);
    assert.equal((await runOstk(scratch, ["agentfile", "lint"])).code, 2);
    assert.equal((await runOstk(scratch, ["agentfile", "show", "a", "--bogus"])).code, 2);
  });
});

Deno.test("renderSpec (property): list values read back as written, quotes and all", () => {
  const word = fc.string({ unit: fc.constantFrom(..."ab/ .\"'#\\-_"), minLength: 1, maxLength: 12 })
    .filter((w) => w.trim() !== "" && !w.split("/").includes(".."));
  fc.assert(
    fc.property(fc.array(word, { minLength: 1, maxLength: 4 }), word, (paths, sub) => {
      const source = { file: "a", line: 1, column: 1 };
      const spec: ResolvedSpec = {
        file: "a",
        chain: ["a"],
        limits: { "write-path": paths.map((value) => ({ value, source })) },
        tools: [{ value: { class: "FileEdit", substring: sub }, source }],
      };
      const ast = parseAgentfile(renderSpec(spec), "rendered");
      const [limit, tool] = ast.directives;
      assert.deepEqual(limit.directive === "LIMIT" && limit.limit.value, paths);
      assert.deepEqual(tool.directive === "TOOL" && tool.tool, {
        class: "FileEdit",
        substring: sub,
      });
    }),
    { numRuns: 300 },
  );
});
