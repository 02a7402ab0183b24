/**
 * The model CPU's own behaviour against the local Anthropic server: context pressure driven by
 * reported usage, the draining turn and its handoff note, key masking, keys from HUMANFILE,
 * budgets, revival from the sidecar, and abort.
 */
import assert from "node:assert/strict";
import { createCpu } from "../../actors/cpu.ts";
import { ModelCpu, type ModelCpuSpec } from "../../actors/llm/cpu_model.ts";
import { HANDOFF_PROMPT } from "../../actors/llm/handoff.ts";
import type { Pressure } from "../../actors/llm/lifecycle.ts";
import { envOf, instantRetry, runContext, withProject } from "./_fixture.ts";
import { anthropicWire as wire } from "./servers/anthropic.ts";
import type { ScriptedReply, ScriptedServer, Step } from "./servers/scripted.ts";
import { replyStep } from "./servers/wire.ts";

const KEY = "sk-ant-test-key-0001";
const WINDOW = 1000;

function spec(server: ScriptedServer, extra: Partial<ModelCpuSpec> = {}): ModelCpuSpec {
  return {
    kind: "model",
    model: wire.spec(server),
    task: "Tidy notes.txt",
    context_window: WINDOW,
    ...extra,
  };
}

function options(
  root: string,
  server: ScriptedServer,
  vars: Record<string, string> = { ANTHROPIC_API_KEY: KEY },
) {
  const states: Pressure[] = [];
  return {
    states,
    opts: {
      root,
      providerOptions: { env: envOf({ ...wire.env(server), ...vars }), retry: instantRetry() },
      onPressure: (s: Pressure) => void states.push(s),
    },
  };
}

/** A reply that reads notes.txt and reports `pct` % of the window used. */
const readAt = (pct: number): ScriptedReply => ({
  toolCalls: [{ name: "file_read", args: { path: "notes.txt", force: true } }],
  usage: { input: pct * WINDOW / 100 - 10, output: 10 },
});

async function withServer(steps: Step[], fn: (s: ScriptedServer) => Promise<void>, key = KEY) {
  const server = wire.start(steps, key);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

const HANDOFF_TEXT =
  "## Progress\nRead notes.txt twice.\n## Open questions\nShould the list be sorted?";

for (
  const [name, pcts, expected] of [
    ["60→75→95", [60, 75, 95], ["aging", "dying", "draining", "dead"]],
    ["60→92 (skips aging)", [60, 92], ["dying", "draining", "dead"]],
  ] as const
) {
  Deno.test(`pressure ${name}: drains with one handoff turn, then writes the handoff`, async () => {
    await withProject(async (p) => {
      await Deno.writeTextFile(`${p.root}/notes.txt`, "b\na\n");
      const steps = [
        ...pcts.map((pct) => replyStep(wire, readAt(pct))),
        replyStep(wire, { text: HANDOFF_TEXT, usage: { input: 960, output: 30 } }),
        replyStep(wire, { text: "never asked" }),
      ];
      await withServer(steps, async (server) => {
        const { states, opts } = options(p.root, server);
        const { ctx, turns } = runContext(p.port("model-1"));
        assert.deepEqual(await new ModelCpu(spec(server), opts).run(ctx), { reason: "done" });
        assert.deepEqual(states, [...expected]);
        assert.equal(turns.length, pcts.length + 1);
        assert.equal(server.remaining(), 1);
        const last = server.requests.at(-1)!.body;
        assert.equal(last.tools, undefined, "the draining turn offers no tools");
        assert.match(JSON.stringify(last.messages), /this is your last turn/);
        const note = await Deno.readTextFile(`${p.root}/.ostk/handoff/model-1.md`);
        assert.match(note, /## Task\n\nTidy notes.txt/);
        assert.match(note, /## Progress\n\nRead notes.txt twice./);
        assert.match(note, /## Open questions\n\nShould the list be sorted\?/);
        assert.match(note, /- notes.txt gen=\d+ \(read\)/);
        assert.match(note, /stopped: context window 99% full/);
      });
    });
  });
}

Deno.test("tool output holding the key is masked before the model, the sidecar and the log see it", async () => {
  await withProject(async (p) => {
    await Deno.writeTextFile(`${p.root}/env.txt`, `ANTHROPIC_API_KEY=${KEY}\n`);
    const steps = [
      replyStep(wire, { toolCalls: [{ name: "file_read", args: { path: "env.txt" } }] }),
      replyStep(wire, { toolCalls: [{ name: "shell", args: { cmd: "cat env.txt" } }] }),
      replyStep(wire, { text: "done" }),
    ];
    await withServer(steps, async (server) => {
      const { opts } = options(p.root, server);
      const { ctx } = runContext(p.port("model-1"));
      await new ModelCpu(spec(server, { context_window: 100_000 }), opts).run(ctx);
      const results = server.requests.slice(1).flatMap((r) => wire.toolResults(r.body));
      assert.equal(results.length, 3);
      for (const r of results) assert.ok(!r.includes(KEY), `leaked: ${r}`);
      assert.match(results[0], /ANTHROPIC_API_KEY=\[REDACTED\]/);
      assert.match(results[2], /ANTHROPIC_API_KEY=\[REDACTED\]/);
      const sidecar = await Deno.readTextFile(`${p.root}/.ostk/drain/model-1.messages.jsonl`);
      assert.match(sidecar, /REDACTED/);
      assert.ok(!sidecar.includes(KEY));
      assert.ok(!(await Deno.readTextFile(p.paths.audit)).includes(KEY));
    });
  });
});

for (
  const [kind, line, vars] of [
    ["env", "SECRET anthropic env:MY_TEAM_KEY", { MY_TEAM_KEY: "sk-team-key-from-env-42" }],
    ["cmd", "SECRET anthropic cmd:printf sk-team-key-from-cmd-42", {}],
  ] as const
) {
  Deno.test(`the key comes from a HUMANFILE 'SECRET anthropic ${kind}:' line`, async () => {
    await withProject(async (p) => {
      await Deno.writeTextFile(p.paths.humanfile, `# keys\n${line}\neditor vim\n`, {
        append: true,
      });
      const key = kind === "env" ? "sk-team-key-from-env-42" : "sk-team-key-from-cmd-42";
      await withServer([replyStep(wire, { text: "hi" })], async (server) => {
        // ANTHROPIC_API_KEY is set too, and must lose to the SECRET line.
        const { opts } = options(p.root, server, { ...vars, ANTHROPIC_API_KEY: KEY });
        const { ctx } = runContext(p.port("model-1"));
        assert.deepEqual(await new ModelCpu(spec(server), opts).run(ctx), { reason: "done" });
        assert.equal(server.requests[0].headers["x-api-key"], key);
      }, key);
    });
  });
}

for (
  const [limit, value, turnsRun] of [
    ["turns", 2, 2],
    ["tokens", 250, 3], // 100 tokens a turn: 300 ≥ 250 stops before the 4th call
    ["budget_usd", 0.0005, 2], // claude-sonnet-4: $3/M in, $15/M out → $0.00042 a turn
  ] as const
) {
  Deno.test(`LIMIT ${limit} stops the loop before the next model call, with a handoff`, async () => {
    await withProject(async (p) => {
      await Deno.writeTextFile(`${p.root}/notes.txt`, "x\n");
      const reply = { ...readAt(10), usage: { input: 90, output: 10 } };
      const steps = Array.from({ length: 5 }, () => replyStep(wire, reply));
      await withServer(steps, async (server) => {
        const { opts } = options(p.root, server);
        const { ctx, turns } = runContext(p.port("model-1"));
        const cpu = new ModelCpu(spec(server, { limits: { [limit]: value } }), opts);
        assert.deepEqual(await cpu.run(ctx), { reason: "done" });
        assert.equal(turns.length, turnsRun);
        assert.equal(server.requests.length, turnsRun);
        const note = await Deno.readTextFile(`${p.root}/.ostk/handoff/model-1.md`);
        assert.match(note, new RegExp(`stopped: LIMIT ${limit} `));
      });
    });
  });
}

Deno.test("a revived session replays the interrupted turn's tool calls without asking the model again", async () => {
  await withProject(async (p) => {
    await Deno.writeTextFile(`${p.root}/notes.txt`, "one\n");
    const edit = { name: "file_edit", args: { path: "notes.txt", old: "one", new: "two" } };
    const steps = [
      replyStep(wire, readAt(10)),
      replyStep(wire, { toolCalls: [edit], usage: { input: 150, output: 10 } }),
      replyStep(wire, { text: "finished" }),
    ];
    await withServer(steps, async (server) => {
      const { opts } = options(p.root, server);
      // First life: crash (abort) as the edit of turn 1 reaches the kernel.
      const crash = new AbortController();
      const first = runContext(
        p.port("model-1", (tool) => tool === "file:edit" && crash.abort()),
        { signal: crash.signal },
      );
      assert.deepEqual(await new ModelCpu(spec(server), opts).run(first.ctx), {
        reason: "aborted",
      });
      assert.equal(first.turns.length, 1);
      assert.equal(server.requests.length, 2);
      // Second life resumes at turn 1 (what the drain snapshot would say).
      const ids: (string | undefined)[] = [];
      const second = runContext(p.port("model-1", (_t, id) => ids.push(id)), { startTurn: 1 });
      assert.deepEqual(await new ModelCpu(spec(server), opts).run(second.ctx), { reason: "done" });
      assert.deepEqual(ids, ["model-1:1:0"]);
      assert.equal(server.requests.length, 3, "turn 1 was not asked again");
      assert.equal(await Deno.readTextFile(`${p.root}/notes.txt`), "two\n");
      // The history sent on the last call holds both turns, in order, once each.
      const sent = JSON.stringify(server.requests[2].body.messages);
      assert.equal(sent.split('"name":"file_edit"').length - 1, 1);
      assert.equal(sent.split('"name":"file_read"').length - 1, 1);
    });
  });
});

Deno.test("abort during a stalled model call ends the run as aborted", async () => {
  await withProject(async (p) => {
    const chunks = wire.chunks({ text: "thinking..." }).slice(0, 2);
    await withServer([{ kind: "stall", contentType: wire.contentType, chunks }], async (server) => {
      const { opts } = options(p.root, server);
      const stop = new AbortController();
      const { ctx } = runContext(p.port("model-1"), { signal: stop.signal });
      const run = new ModelCpu(spec(server), opts).run(ctx);
      while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      stop.abort();
      assert.deepEqual(await run, { reason: "aborted" });
    });
  });
});

Deno.test("createCpu builds a model CPU from a spec", () => {
  const cpu = createCpu({ kind: "model", model: "ollama:qwen3" }, { projectRoot: "/tmp" });
  assert.equal(cpu.kind, "model");
  assert.ok(HANDOFF_PROMPT.includes("Open questions"));
});
