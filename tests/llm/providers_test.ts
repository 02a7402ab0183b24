/**
 * Every provider against its local wire-protocol server: a two-turn task through the model CPU
 * and an in-process kernel, tool-call arguments split across chunks, and each failure mode
 * ending in a clear error (retries reported through the callback), never a hang.
 */
import assert from "node:assert/strict";
import { readAuditRows } from "../../kernel/audit.ts";
import { ModelCpu } from "../../actors/llm/cpu_model.ts";
import { ProviderError } from "../../actors/llm/errors.ts";
import { providerFor } from "../../actors/llm/provider.ts";
import { kernelToolDefs } from "../../actors/llm/tool_defs.ts";
import { collectTurn } from "../../actors/llm/turn.ts";
import { envOf, instantRetry, retryLog, runContext, WIRES, withProject } from "./_fixture.ts";
import { rechunk, type ScriptedServer, type Step } from "./servers/scripted.ts";
import { replyStep, type Wire } from "./servers/wire.ts";

const KEY: Record<string, string> = {
  anthropic: "sk-ant-test-key-0001",
  openai: "sk-openai-test-key-0001",
};

/** Provider options for a wire's server: its base URL, its key, instant retries. */
function optionsFor(wire: Wire, server: ScriptedServer, retries = 3) {
  const vars = { ...wire.env(server), ...(wire.keyVar ? { [wire.keyVar]: KEY[wire.name] } : {}) };
  const log = retryLog();
  return { log, options: { env: envOf(vars), retry: instantRetry(retries), onRetry: log.onRetry } };
}

/** One model call through the real client path; never longer than 10 s. */
async function callOnce(wire: Wire, server: ScriptedServer, extra: Record<string, unknown> = {}) {
  const { log, options } = optionsFor(wire, server);
  const provider = providerFor(wire.spec(server), { ...options, ...extra });
  const turn = await collectTurn(
    provider.chat({
      system: "test",
      messages: [{ role: "user", text: "go" }],
      tools: kernelToolDefs(),
      maxTokens: 256,
      signal: AbortSignal.timeout(10_000),
    }),
  );
  return { turn, retries: log.infos };
}

async function withServer(wire: Wire, steps: Step[], fn: (s: ScriptedServer) => Promise<void>) {
  const server = wire.start(steps);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ProviderError, `expected a ProviderError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

const ARGS = { path: "src/deep/file name.txt", old: 'say "hi"\n', new: "say \u00e9\u4e2d\n" };

for (const wire of WIRES) {
  Deno.test(`${wire.name}: a two-turn task reads, edits through the kernel, then finishes`, async () => {
    await withProject(async (p) => {
      await Deno.writeTextFile(`${p.root}/notes.txt`, "hello world\n");
      const steps = [
        replyStep(wire, {
          text: "Reading.",
          toolCalls: [{ name: "file_read", args: { path: "notes.txt" } }],
          usage: { input: 120, output: 30 },
        }),
        replyStep(wire, {
          toolCalls: [{
            name: "file_edit",
            args: { path: "notes.txt", old: "world", new: "ostk" },
          }],
          usage: { input: 200, output: 40 },
        }),
        replyStep(wire, {
          text: "Done: notes.txt now greets ostk.",
          usage: { input: 260, output: 12 },
        }),
      ];
      await withServer(wire, steps, async (server) => {
        const { options } = optionsFor(wire, server);
        const cpu = new ModelCpu(
          {
            kind: "model",
            model: wire.spec(server),
            task: "Change 'world' to 'ostk' in notes.txt",
          },
          { root: p.root, providerOptions: options },
        );
        const { ctx, turns } = runContext(p.port("model-1"));
        assert.deepEqual(await cpu.run(ctx), { reason: "done" });
        assert.equal(await Deno.readTextFile(`${p.root}/notes.txt`), "hello ostk\n");
        assert.deepEqual(turns.map((t) => t.tokens), [
          { in: 120, out: 30 },
          { in: 200, out: 40 },
          { in: 260, out: 12 },
        ]);
        assert.deepEqual(turns.map((t) => t.calls.map((c) => `${c.tool}:${c.ok}`)), [
          ["file:read:true"],
          ["file:edit:true"],
          [],
        ]);
        const rows = await readAuditRows(p.paths.audit);
        const byCall = new Map(rows.filter((r) => r.call_id).map((r) => [r.call_id, r.event]));
        assert.equal(byCall.get("model-1:0:0"), "tool.file_read");
        assert.equal(byCall.get("model-1:1:0"), "tool.file_edit");
        assert.equal(server.requests.length, 3);
        assert.deepEqual(wire.toolNames(server.requests[0].body).sort(), [
          "file_create",
          "file_edit",
          "file_read",
          "file_write",
          "nudge",
          "shell",
        ]);
        // The model read the file's text and the digest in its next request.
        const [readResult] = wire.toolResults(server.requests[1].body);
        assert.match(readResult, /hello world/);
        assert.match(readResult, /\[procs\]/);
        assert.match(wire.toolResults(server.requests[2].body)[1], /"gen":1/);
      });
    });
  });

  Deno.test(`${wire.name}: tool-call arguments split across chunks arrive whole`, async () => {
    const reply = { toolCalls: [{ name: "file_edit", args: ARGS }], argPieces: 7 };
    const chunks = rechunk(wire.chunks(reply), 9);
    await withServer(
      wire,
      [{ kind: "stream", contentType: wire.contentType, chunks }],
      async (s) => {
        const { turn } = await callOnce(wire, s);
        assert.equal(turn.calls.length, 1);
        assert.deepEqual(turn.calls[0].args, ARGS);
        assert.equal(turn.stop, "tool_use");
      },
    );
  });

  Deno.test(`${wire.name}: 429 honours retry-after, 5xx backs off, then the call succeeds`, async () => {
    const steps: Step[] = [
      {
        kind: "status",
        status: 429,
        headers: { "retry-after": "2" },
        body: '{"error":"slow down"}',
      },
      { kind: "status", status: 503, body: "upstream unavailable" },
      { kind: "drop", contentType: wire.contentType, chunks: [] },
      replyStep(wire, { text: "ok" }),
    ];
    await withServer(wire, steps, async (s) => {
      const { turn, retries } = await callOnce(wire, s);
      assert.equal(turn.text, "ok");
      assert.deepEqual(retries.map((r) => [r.attempt, r.reason, r.status ?? null]), [
        [1, "rate_limit", 429],
        [2, "server", 503],
        [3, "network", null],
      ]);
      assert.equal(retries[0].delay_ms, 2000);
      assert.equal(retries[1].delay_ms, 1000); // base 500 · 2^1, jitter pinned to its top
      assert.match(retries[2].detail, /before the first byte/);
    });
  });

  Deno.test(`${wire.name}: retries run out with a clear rate_limit error`, async () => {
    const steps: Step[] = Array.from(
      { length: 4 },
      () => ({ kind: "status", status: 429 } as Step),
    );
    await withServer(wire, steps, async (s) => {
      const log = retryLog();
      await rejectsWith(
        callOnce(wire, s, { onRetry: log.onRetry }),
        "rate_limit",
        /429.*gave up after 3 retries/,
      );
      assert.equal(log.infos.length, 3);
      assert.equal(s.remaining(), 0);
    });
  });

  Deno.test(`${wire.name}: a connection dropped mid-stream is an error, not retried`, async () => {
    const chunks = wire.chunks({ toolCalls: [{ name: "file_read", args: { path: "a" } }] });
    const steps: Step[] = [
      { kind: "drop", contentType: wire.contentType, chunks: chunks.slice(0, -1) },
      replyStep(wire, { text: "never served" }),
    ];
    await withServer(wire, steps, async (s) => {
      await rejectsWith(callOnce(wire, s), "network", /dropped mid-stream|ended before/);
      assert.equal(s.requests.length, 1);
    });
  });

  Deno.test(`${wire.name}: a malformed JSON chunk is a protocol error`, async () => {
    const steps: Step[] = [{
      kind: "stream",
      contentType: wire.contentType,
      chunks: wire.malformed(),
    }];
    await withServer(wire, steps, async (s) => {
      await rejectsWith(callOnce(wire, s), "protocol", /malformed JSON/);
    });
  });

  Deno.test(`${wire.name}: a stalled stream ends at the idle timeout`, async () => {
    const chunks = wire.chunks({ text: "partial" }).slice(0, 1);
    const steps: Step[] = [{ kind: "stall", contentType: wire.contentType, chunks }];
    await withServer(wire, steps, async (s) => {
      await rejectsWith(callOnce(wire, s, { idleTimeoutMs: 50 }), "network", /no bytes for 50 ms/);
    });
  });

  if (wire.keyVar) {
    Deno.test(`${wire.name}: a refused key is an auth error, not retried`, async () => {
      await withServer(wire, [replyStep(wire, { text: "x" })], async (s) => {
        await rejectsWith(callOnce(wire, s, { apiKey: "sk-wrong-key-123456" }), "auth", /HTTP 401/);
        assert.equal(s.requests.length, 1);
      });
    });
  }
}

Deno.test("a refused connection is retried, then reported as a network error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const log = retryLog();
  const provider = providerFor(`openai-compatible:http://127.0.0.1:${port}/v1#m`, {
    env: envOf({}),
    retry: instantRetry(2),
    onRetry: log.onRetry,
  });
  const stream = provider.chat({
    system: "",
    messages: [{ role: "user", text: "hi" }],
    tools: [],
    maxTokens: 10,
    signal: AbortSignal.timeout(10_000),
  });
  await rejectsWith(collectTurn(stream), "network", /connection failed.*gave up after 2 retries/);
  assert.deepEqual(log.infos.map((i) => i.reason), ["network", "network"]);
});

Deno.test("a provider error surfaces from the model CPU, and no half turn is recorded", async () => {
  const wire = WIRES[0];
  await withProject(async (p) => {
    const steps: Step[] = [{
      kind: "stream",
      contentType: wire.contentType,
      chunks: wire.malformed(),
    }];
    await withServer(wire, steps, async (server) => {
      const { options } = optionsFor(wire, server);
      const cpu = new ModelCpu({ kind: "model", model: wire.spec(server), task: "t" }, {
        root: p.root,
        providerOptions: options,
      });
      const { ctx, turns } = runContext(p.port("model-1"));
      await rejectsWith(cpu.run(ctx), "protocol", /malformed JSON/);
      assert.equal(turns.length, 0);
      const sidecar = await Deno.readTextFile(`${p.root}/.ostk/drain/model-1.messages.jsonl`)
        .catch(() => "");
      assert.equal(sidecar, "");
    });
  });
});
