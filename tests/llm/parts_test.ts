/**
 * The model CPU's parts on their own: SSE framing under any chunking (property test), spec
 * parsing, retry-after, key sources and masking, prices, pressure and limits, the sidecar's
 * crash handling, message translation and argument assembly.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { OstkError } from "../../kernel/errors.ts";
import { backoffMs, DEFAULT_RETRY, retryAfterMs } from "../../actors/llm/_http.ts";
import { sseEvents } from "../../actors/llm/_stream.ts";
import { toAnthropicMessages } from "../../actors/llm/anthropic.ts";
import { exceededLimit, nextPressure, type Pressure } from "../../actors/llm/lifecycle.ts";
import { costUsd, modelInfo } from "../../actors/llm/prices.ts";
import { parseModelSpec } from "../../actors/llm/provider.ts";
import { keySourceFor, maskSecrets, secretRefs } from "../../actors/llm/secrets.ts";
import { appendSidecar, loadSidecar, type SidecarLine } from "../../actors/llm/sidecar.ts";
import { collectTurn } from "../../actors/llm/turn.ts";
import { envOf } from "./_fixture.ts";

Deno.test("SSE framing yields the same events however the bytes are split", async () => {
  const events = [
    { event: "message_start", data: '{"a":1}' },
    { data: "multi\nline" },
    { event: "x", data: '{"emoji":"\u00e9\u4e2d\ud83d\ude00"}' },
  ];
  const wire = events.map((e) =>
    `${e.event ? `event: ${e.event}\r\n` : ""}${
      e.data.split("\n").map((d) => `data: ${d}\n`).join("")
    }: comment\n\n`
  ).join("");
  const bytes = new TextEncoder().encode(wire);
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 })),
      async (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        async function* split() {
          for (let i = 1; i < at.length; i++) yield bytes.slice(at[i - 1], at[i]);
        }
        const got = [];
        for await (const e of sseEvents(split(), "t")) got.push(e);
        assert.deepEqual(got, events);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("model specs: each provider form, and a clear refusal otherwise", () => {
  assert.deepEqual(parseModelSpec("anthropic:claude-sonnet-4"), {
    provider: "anthropic",
    model: "claude-sonnet-4",
  });
  assert.deepEqual(parseModelSpec("openai/gpt-4o"), { provider: "openai", model: "gpt-4o" });
  assert.deepEqual(parseModelSpec("ollama:qwen3:8b"), { provider: "ollama", model: "qwen3:8b" });
  assert.deepEqual(parseModelSpec("openai-compatible:http://h:8000/v1/#m"), {
    provider: "openai-compatible",
    model: "m",
    baseUrl: "http://h:8000/v1",
  });
  for (const bad of ["gemini:x", "openai-compatible:ftp://h#m", "claude"]) {
    assert.throws(
      () => parseModelSpec(bad),
      (e) => e instanceof OstkError && /expected/.test(e.toLine()),
    );
  }
});

Deno.test("retry-after: ms header, seconds, HTTP date, absent; backoff is capped", () => {
  const h = (o: Record<string, string>) => new Headers(o);
  assert.equal(retryAfterMs(h({ "retry-after-ms": "250", "retry-after": "9" })), 250);
  assert.equal(retryAfterMs(h({ "retry-after": "3" })), 3000);
  const now = Date.parse("2025-01-01T00:00:00Z");
  assert.equal(retryAfterMs(h({ "retry-after": "Wed, 01 Jan 2025 00:00:05 GMT" }), now), 5000);
  assert.equal(retryAfterMs(h({})), undefined);
  const top = { ...DEFAULT_RETRY, random: () => 1 };
  const bottom = { ...DEFAULT_RETRY, random: () => 0 };
  assert.deepEqual([0, 1, 2, 3, 4, 9].map((n) => backoffMs(n, top)), [
    500,
    1000,
    2000,
    4000,
    8000,
    8000,
  ]);
  assert.equal(backoffMs(9, bottom), 4000);
});

Deno.test("SECRET lines: first per provider wins; keys resolve env → SECRET → default var", async () => {
  const refs = secretRefs("SECRET openai env:A\nSECRET openai env:B\n# SECRET anthropic env:C\n");
  assert.deepEqual([...refs], [["openai", { kind: "env", name: "A" }]]);
  const env = envOf({ A: "from-a-123456", OPENAI_API_KEY: "default-123456" });
  assert.equal(
    await keySourceFor("openai", { env, humanfile: "SECRET openai env:A" }).get(),
    "from-a-123456",
  );
  assert.equal(await keySourceFor("openai", { env }).get(), "default-123456");
  // An OpenAI key never goes to a third-party compatible server by default.
  assert.equal(await keySourceFor("openai-compatible", { env }).get(), undefined);
  const failing = keySourceFor("anthropic", { env, humanfile: "SECRET anthropic cmd:exit 3" });
  await assert.rejects(failing.get(), /SECRET anthropic cmd: exited with status 3/);
});

Deno.test("maskSecrets masks every occurrence, longest first, and ignores short values", () => {
  const text = "a=sk-long-secret-9 b=sk-long-secret-9-extended c=short";
  assert.equal(
    maskSecrets(text, ["sk-long-secret-9", "sk-long-secret-9-extended", "short"]),
    "a=[REDACTED] b=[REDACTED] c=short",
  );
});

Deno.test("prices: dated ids match their family; local models are free; unknown is unpriced", () => {
  const sonnet = modelInfo({ provider: "anthropic", model: "claude-sonnet-4-20250514" });
  assert.equal(costUsd(sonnet, { input_tokens: 1_000_000, output_tokens: 100_000 }), 4.5);
  assert.equal(modelInfo({ provider: "openai", model: "gpt-4o-mini-2024" }).inPerMTok, 0.15);
  assert.equal(modelInfo({ provider: "ollama", model: "qwen3" }, 8192).contextWindow, 8192);
  assert.equal(modelInfo({ provider: "ollama", model: "qwen3" }).priced, true);
  assert.equal(modelInfo({ provider: "openai", model: "future-model" }).priced, false);
});

Deno.test("pressure only rises, and limits name what was reached", () => {
  const walk = (pcts: number[]) => {
    let p: Pressure = "healthy";
    return pcts.map((pct) => p = nextPressure(p, pct, 100));
  };
  assert.deepEqual(walk([60, 75, 95]), ["healthy", "aging", "dying"]);
  assert.deepEqual(walk([60, 92, 10]), ["healthy", "dying", "dying"]);
  assert.deepEqual(walk([69, 70, 89, 90]), ["healthy", "aging", "aging", "dying"]);
  const spent = { usd: 1, tokens: 10, turns: 2, wallMs: 5000 };
  assert.match(exceededLimit({ wall_clock_ms: 5000 }, spent)!, /wall_clock 5000ms/);
  assert.match(exceededLimit({ budget_usd: 1 }, spent)!, /budget_usd 1 reached \(\$1.0000/);
  assert.equal(exceededLimit({ turns: 3, tokens: 11, budget_usd: 2 }, spent), undefined);
});

Deno.test("sidecar: a torn last line is cut, lines past the start turn dropped, bad middles refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.messages.jsonl`;
    const call = (turn: number): SidecarLine => ({
      v: 1,
      phase: "call",
      turn,
      messages: [{ role: "assistant", text: `t${turn}`, tool_calls: [] }],
      usage: { input_tokens: 5, output_tokens: 1 },
      usd: 0.5,
    });
    const done = (turn: number): SidecarLine => ({
      v: 1,
      phase: "done",
      turn,
      messages: [],
      pressure: "aging",
      files: { "a.txt": { gen: turn + 1, wrote: turn === 0 } },
      wall_ms: 10,
    });
    for (const line of [call(0), done(0), call(1), done(1), call(2)]) {
      await appendSidecar(path, line);
    }
    await Deno.writeTextFile(path, '{"v":1,"phase":"do', { append: true });
    const state = await loadSidecar(path, 1);
    assert.deepEqual(state.messages.map((m) => m.role === "assistant" && m.text), ["t0"]);
    assert.equal(state.pending?.turn, 1);
    assert.equal(state.usd, 1);
    assert.deepEqual(state.files, { "a.txt": { gen: 1, wrote: true } });
    assert.equal((await Deno.readTextFile(path)).trim().split("\n").length, 3);
    await Deno.writeTextFile(path, `not json\n${JSON.stringify(call(0))}\n`);
    await assert.rejects(loadSidecar(path, 1), /a.messages.jsonl:1: not a sidecar line/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Anthropic messages alternate: tool results and a following prompt share one user turn", () => {
  const out = toAnthropicMessages([
    { role: "user", text: "task" },
    {
      role: "assistant",
      text: "",
      tool_calls: [{ id: "t1", name: "file_read", args: { path: "a" } }],
    },
    { role: "tool", results: [{ id: "t1", name: "file_read", content: "x", is_error: false }] },
    { role: "user", text: "handoff please" },
  ]);
  assert.deepEqual(out.map((m) => m.role), ["user", "assistant", "user"]);
  assert.deepEqual((out[2].content as { type: string }[]).map((b) => b.type), [
    "tool_result",
    "text",
  ]);
});

Deno.test("collectTurn keeps bad arguments as an error and refuses deltas for unknown calls", async () => {
  const turn = await collectTurn((async function* () {
    yield { type: "tool_call_start", index: 0, id: "a", name: "file_read" } as const;
    yield { type: "tool_call_delta", index: 0, args: '{"path": ' } as const;
    yield { type: "tool_call_end", index: 0 } as const;
    yield { type: "stop", reason: "tool_use" } as const;
  })());
  assert.match(turn.calls[0].error!, /not valid JSON/);
  await assert.rejects(
    collectTurn((async function* () {
      yield { type: "tool_call_delta", index: 3, args: "{}" } as const;
    })()),
    /tool call 3 was never started/,
  );
  await assert.rejects(collectTurn((async function* () {})()), /without a stop event/);
});
