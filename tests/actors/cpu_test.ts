/**
 * CPU tests: the script CPU (in a narrowed Worker and in-process) against a fake kernel port,
 * and the command CPU with a real subprocess (tests/helpers/fake_agent.ts).
 * Needs --unstable-worker-options.
 */
import assert from "node:assert/strict";
import type { ToolResponse } from "../../kernel/tools.ts";
import { OstkError } from "../../kernel/errors.ts";
import {
  type CpuRunContext,
  createCpu,
  type KernelPort,
  type TurnRecord,
} from "../../actors/cpu.ts";
import { CommandCpu } from "../../actors/cpu_command.ts";
import { processGroupOf } from "../../kernel/proc.ts";
import { parseTranscript } from "../../actors/cpu_script.ts";
import { probeScriptWorker } from "../../actors/cpu_worker.ts";

const WRITER = new URL("../../fixtures/agents/writer_1.jsonl", import.meta.url).pathname;
const AGENT = new URL("../helpers/fake_agent.ts", import.meta.url).pathname;
const ISOLATIONS = ["worker", "in-process"] as const;

interface Recorded {
  tool: string;
  args: unknown;
  callId?: string;
}

/** A kernel that answers every call with ok and the next gen, remembering what it was asked. */
function fakeKernel(): KernelPort & { calls: Recorded[] } {
  const calls: Recorded[] = [];
  return {
    calls,
    call(tool, args, opts) {
      calls.push({ tool, args, callId: opts?.callId });
      const response = { ok: true, tool, result: { gen: calls.length }, digest: "" };
      return Promise.resolve(response as ToolResponse);
    },
  };
}

/** A run context with recorders; `onTurn` may be replaced to interfere. */
function context(kernel: KernelPort, overrides: Partial<CpuRunContext> = {}) {
  const turns: TurnRecord[] = [];
  const output: string[] = [];
  const ctx: CpuRunContext = {
    alias: "writer-1",
    kernel,
    startTurn: 0,
    signal: new AbortController().signal,
    onTurn: (turn) => {
      turns.push(turn);
      return Promise.resolve();
    },
    onOutput: (stream, line) => output.push(`${stream}: ${line}`),
    ...overrides,
  };
  return { ctx, turns, output };
}

async function tempFile(text: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(path, text);
  return path;
}

for (const isolation of ISOLATIONS) {
  Deno.test(`script cpu (${isolation}) runs every turn with call ids`, async () => {
    const kernel = fakeKernel();
    const { ctx, turns } = context(kernel);
    const cpu = createCpu({ kind: "script", script: WRITER }, { scriptIsolation: isolation });
    assert.deepEqual(await cpu.run(ctx), { reason: "done" });
    assert.deepEqual(
      kernel.calls.map((c) => c.callId),
      [0, 1, 2, 3, 4, 5].map((t) => `writer-1:${t}:0`),
    );
    assert.deepEqual(kernel.calls.map((c) => c.tool), [
      "file:create",
      ...Array(5).fill("file:edit"),
    ]);
    assert.deepEqual(turns.map((t) => t.turn), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(turns[0], {
      turn: 0,
      calls: [{ tool: "file:create", ok: true, gen: 1 }],
      tokens: { in: 500, out: 50 },
    });
  });

  Deno.test(`script cpu (${isolation}) resumes from startTurn without repeating`, async () => {
    const kernel = fakeKernel();
    const { ctx, turns } = context(kernel, { startTurn: 3 });
    const cpu = createCpu({ kind: "script", script: WRITER }, { scriptIsolation: isolation });
    assert.deepEqual(await cpu.run(ctx), { reason: "done" });
    assert.deepEqual(kernel.calls.map((c) => c.callId), [
      "writer-1:3:0",
      "writer-1:4:0",
      "writer-1:5:0",
    ]);
    assert.deepEqual(turns.map((t) => t.turn), [3, 4, 5]);
  });

  Deno.test(`script cpu (${isolation}) stops at an abort during a turn`, async () => {
    const kernel = fakeKernel();
    const controller = new AbortController();
    const turns: number[] = [];
    const { ctx } = context(kernel, {
      signal: controller.signal,
      onTurn: (turn) => {
        turns.push(turn.turn);
        if (turn.turn === 1) {
          controller.abort();
          return new Promise(() => {}); // the drain write never finishes: the turn is not done
        }
        return Promise.resolve();
      },
    });
    const cpu = createCpu({ kind: "script", script: WRITER }, { scriptIsolation: isolation });
    assert.deepEqual(await cpu.run(ctx), { reason: "aborted" });
    assert.deepEqual(turns, [0, 1]);
    assert.deepEqual(kernel.calls.map((c) => c.callId), ["writer-1:0:0", "writer-1:1:0"]);
  });

  Deno.test(`script cpu (${isolation}) abort ends a long think at once`, async () => {
    const script = await tempFile('{"think_ms": 600000, "calls": []}\n');
    try {
      const kernel = fakeKernel();
      const controller = new AbortController();
      const { ctx, turns } = context(kernel, {
        signal: controller.signal,
        onStart: () => setTimeout(() => controller.abort(), 0),
      });
      const cpu = createCpu({ kind: "script", script }, { scriptIsolation: isolation });
      assert.deepEqual(await cpu.run(ctx), { reason: "aborted" });
      assert.equal(turns.length, 0);
    } finally {
      await Deno.remove(script);
    }
  });

  Deno.test(`script cpu (${isolation}) names file and line of a bad turn`, async () => {
    const script = await tempFile('{"calls": []}\n\n{"calls": "nope"}\n');
    try {
      const { ctx } = context(fakeKernel());
      const cpu = createCpu({ kind: "script", script }, { scriptIsolation: isolation });
      const err = await cpu.run(ctx).then(() => undefined, (e) => e);
      assert.ok(err instanceof OstkError, `expected an OstkError, got ${err}`);
      assert.match(err.message, new RegExp(`${script}:3: calls: `));
      assert.equal(err.site.line, 3);
    } finally {
      await Deno.remove(script);
    }
  });
}

Deno.test("parseTranscript reports JSON and schema errors by line", () => {
  const cases: [string, RegExp][] = [
    ['{"calls": []}\nnot json\n', /^t\.jsonl:2: not JSON/],
    ['{"calls": [], "think_ms": -1}\n', /^t\.jsonl:1: think_ms: /],
    ['{"calls": [{"tool": ""}]}\n', /^t\.jsonl:1: calls\.0\.tool: /],
    ['{"calls": [], "extra": 1}\n', /^t\.jsonl:1: \(line\): /],
  ];
  for (const [text, expected] of cases) {
    assert.throws(
      () => parseTranscript(text, "t.jsonl"),
      (err: Error) => expected.test(err.message),
    );
  }
  assert.equal(parseTranscript("\n\n", "t.jsonl").length, 0);
});

Deno.test("script worker cannot write files or run programs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const target = `${dir}/written-by-worker.txt`;
    const probe = await probeScriptWorker(WRITER, target);
    assert.match(probe.write_error ?? "", /NotCapable|PermissionDenied/);
    assert.match(probe.run_error ?? "", /NotCapable|PermissionDenied/);
    for (const name of ["write", "run", "net", "env", "ffi", "sys"]) {
      assert.notEqual(probe.permissions[name], "granted", `${name} should not be granted`);
    }
    await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function agentSpec(args: string[], graceMs?: number) {
  const command = [Deno.execPath(), "run", "--allow-env", "--allow-run=sleep", AGENT, ...args];
  return { kind: "command" as const, command, graceMs };
}

/** Run a command CPU; `whenSeen` runs at each stdout line listed in `marks`. */
async function runAgent(
  cpu: CommandCpu,
  whenSeen: (pid: number, output: string[]) => void = () => {},
  controller = new AbortController(),
  marks = ["ready"],
) {
  const output: string[] = [];
  const result = await cpu.run({
    ...context(fakeKernel()).ctx,
    alias: "agent-1",
    signal: controller.signal,
    onOutput: (stream, line) => {
      output.push(`${stream}: ${line}`);
      if (stream === "stdout" && marks.includes(line)) whenSeen(cpu.pid!, output);
    },
  });
  return { result, output };
}

Deno.test("command cpu: own process group, env and output lines", async () => {
  const spec = agentSpec(["--lines", "2", "--sleep-ms", "60000"]);
  const cpu = createCpu(spec, { socketPath: "/tmp/o.sock" });
  assert.ok(cpu instanceof CommandCpu);
  const controller = new AbortController();
  let group: Promise<number | undefined> = Promise.resolve(undefined);
  const { result, output } = await runAgent(cpu, (pid) => {
    // Read while the agent is surely alive (it sleeps until aborted), then stop it.
    group = processGroupOf(pid).finally(() => controller.abort());
  }, controller);
  assert.equal(await group, cpu.pid, "the agent leads its own process group");
  assert.notEqual(await group, await processGroupOf(Deno.pid));
  assert.equal(result.reason, "aborted");
  // The two pipes are read independently, so compare each stream in its own order.
  assert.deepEqual(output.filter((l) => l.startsWith("stdout: ")), [
    "stdout: agent=agent-1",
    "stdout: socket=/tmp/o.sock",
    "stdout: line 1",
    "stdout: line 2",
    "stdout: ready",
  ]);
  assert.deepEqual(output.filter((l) => l.startsWith("stderr: ")), ["stderr: stderr line"]);
});

Deno.test("command cpu: the exit code is reported", async () => {
  const cpu = new CommandCpu(agentSpec(["--exit", "3"]), { socketPath: "/tmp/o.sock" });
  const { result } = await runAgent(cpu);
  assert.deepEqual(result, { reason: "exited", code: 3 });
});

Deno.test("command cpu: an agent ended by a signal nobody in ostk sent says which", async () => {
  const cpu = new CommandCpu({ command: ["sh", "-c", "kill -9 $$"] }, {
    socketPath: "/tmp/o.sock",
  });
  const { result } = await runAgent(cpu);
  assert.deepEqual(result, { reason: "exited", code: 137, signal: "SIGKILL" });
});

Deno.test("command cpu: abort ends the agent with SIGTERM", async () => {
  const cpu = new CommandCpu(agentSpec(["--sleep-ms", "60000"]), { socketPath: "/tmp/o.sock" });
  const controller = new AbortController();
  const { result } = await runAgent(cpu, () => controller.abort(), controller);
  assert.deepEqual(result, { reason: "aborted", code: 143 }); // 128 + SIGTERM
});

Deno.test("command cpu: abort sends SIGTERM to the whole group", async () => {
  // The agent ignores SIGTERM and the grace is long, so while it lives nothing but the group
  // SIGTERM can have ended its child; the test then ends the agent itself.
  const spec = agentSpec(["--sleep-ms", "60000", "--ignore-term", "--spawn-child"], 60_000);
  const cpu = new CommandCpu(spec, { socketPath: "/tmp/o.sock" });
  const controller = new AbortController();
  let childGone: Promise<void> | undefined;
  const { result, output } = await runAgent(
    cpu,
    (pid, out) => {
      if (out.at(-1) === "stdout: ready") {
        controller.abort();
      } else {
        const child = Number(out.find((l) => l.startsWith("stdout: child "))!.split(" ").pop());
        childGone = gone(child).then(() => Deno.kill(pid, "SIGKILL"));
      }
    },
    controller,
    ["ready", "ignoring SIGTERM"],
  );
  assert.ok(childGone, "the agent saw SIGTERM");
  await childGone;
  assert.deepEqual(result, { reason: "aborted", code: 137 });
  assert.ok(output.includes("stdout: ignoring SIGTERM"));
});

Deno.test("command cpu: SIGKILL after the grace when SIGTERM is ignored", async () => {
  const cpu = new CommandCpu(agentSpec(["--sleep-ms", "60000", "--ignore-term"], 200), {
    socketPath: "/tmp/o.sock",
  });
  const controller = new AbortController();
  const { result, output } = await runAgent(cpu, () => controller.abort(), controller);
  assert.deepEqual(result, { reason: "aborted", code: 137 }); // 128 + SIGKILL
  assert.ok(output.includes("stdout: ignoring SIGTERM"), "SIGTERM reached the agent first");
});

Deno.test("command cpu: a missing program is a not_found error", async () => {
  const cpu = new CommandCpu({ command: ["/nonexistent/agent"] }, { socketPath: "/tmp/o.sock" });
  await assert.rejects(runAgent(cpu), (err: OstkError) => err.code === "not_found");
});

/** Wait until `pid` has exited (gone, or a zombie awaiting its new parent's reaping). */
async function gone(pid: number): Promise<void> {
  for (;;) {
    // Deno 2.9 reads /proc/<pid>/ only under --allow-all, so ask ps.
    const out = await new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] }).output();
    const state = new TextDecoder().decode(out.stdout).trim();
    if (!out.success || state.startsWith("Z")) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
