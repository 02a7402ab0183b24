/** Model spend in limits (tokens → USD) and the `LIMIT successor` line. */
import assert from "node:assert/strict";
import { limitHit, spendUsd } from "../../actors/limits.ts";
import { parseAgentfile } from "../../kernel/agentfile_parse.ts";

Deno.test("spendUsd: model tokens at list price, scripted CPUs nothing", () => {
  const cpu = { kind: "model" as const, model: "anthropic:claude-sonnet-4-20250514" };
  assert.equal(spendUsd(cpu, { in: 1_000_000, out: 1_000_000 }), 18);
  assert.equal(spendUsd({ kind: "model", model: "openai:mystery" }, { in: 5, out: 5 }), 0);
  assert.equal(spendUsd({ kind: "script", script: "x.jsonl" }, { in: 5, out: 5 }), 0);
});

Deno.test("limitHit: a model session's spend stops it at budget_usd", () => {
  const session = { limits: { budget_usd: 1 }, startedAt: Date.now() };
  const usage = { turns: 1, tokens: { in: 0, out: 0 } };
  assert.equal(limitHit(session, { ...usage, usd: 0.5 }, "over"), undefined);
  assert.deepEqual(limitHit(session, { ...usage, usd: 1.5 }, "over"), {
    limit: "budget_usd",
    value: 1.5,
    max: 1,
  });
  assert.equal(limitHit(session, usage, "over"), undefined, "no usd: scripted, spends 0");
});

Deno.test("agentfile: LIMIT successor auto parses; other words are refused", () => {
  const ok = parseAgentfile("FROM anthropic/claude-sonnet-4\nLIMIT successor auto\n", "Agentfile");
  const limit = ok.directives.find((d) => d.directive === "LIMIT");
  assert.deepEqual(limit && "limit" in limit ? limit.limit : undefined, {
    key: "successor",
    value: "auto",
  });
  assert.throws(() => parseAgentfile("LIMIT successor maybe\n", "Agentfile"));
});
