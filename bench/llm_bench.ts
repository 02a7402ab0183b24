/**
 * What the model CPU adds to each turn when the model itself costs nothing: the agent loop,
 * the kernel call, the sidecar's two appends (each fsynced) and the turn hook. The model is
 * (a) an instant in-process provider, (b) the local Anthropic wire server from the tests
 * (real fetch + SSE parsing over loopback, history resent each turn). Each turn makes one
 * `file:edit`. Prints figures; asserts nothing. Target: loop overhead < 5 ms a turn.
 *
 *   deno run --allow-read --allow-write --allow-env --allow-net --allow-run bench/llm_bench.ts
 *   deno run ... bench/llm_bench.ts --turns 500
 */
import { parseArgs } from "node:util";
import { loadOrCreateOperatorKey } from "../kernel/identity.ts";
import { ostkPaths } from "../kernel/layout.ts";
import { initProject } from "../kernel/project_init.ts";
import { Kernel } from "../kernel/tools.ts";
import type { KernelPort } from "../actors/cpu.ts";
import { ModelCpu } from "../actors/llm/cpu_model.ts";
import type { ChatRequest, ModelProvider, StreamEvent } from "../actors/llm/provider.ts";
import { anthropicWire } from "../tests/llm/servers/anthropic.ts";
import type { ScriptedReply, Step } from "../tests/llm/servers/scripted.ts";

const { values } = parseArgs({ args: Deno.args, options: { turns: { type: "string" } } });
const TURNS = Number(values.turns ?? 300);

/** The edit of turn `n`: flip the file's one line between two texts. */
function editArgs(n: number) {
  return n % 2 === 0
    ? { path: "f.txt", old: "even", new: "odd" }
    : { path: "f.txt", old: "odd", new: "even" };
}

/** A provider that answers at once: an edit each turn, then plain text after `turns`. */
class InstantProvider implements ModelProvider {
  readonly id = "bench:instant";
  readonly model = "instant";
  #n = 0;
  secrets() {
    return Promise.resolve([]);
  }
  async *chat(_req: ChatRequest): AsyncGenerator<StreamEvent> {
    const n = this.#n++;
    if (n < TURNS) {
      yield { type: "tool_call_start", index: 0, id: `t${n}`, name: "file_edit" };
      yield { type: "tool_call_delta", index: 0, args: JSON.stringify(editArgs(n)) };
      yield { type: "tool_call_end", index: 0 };
    } else yield { type: "text", text: "done" };
    yield { type: "usage", input_tokens: 100, output_tokens: 10 };
    yield { type: "stop", reason: n < TURNS ? "tool_use" : "end_turn" };
  }
}

interface Stats {
  mean: number;
  p50: number;
  p95: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return {
    mean: sorted.reduce((s, x) => s + x, 0) / sorted.length,
    p50: rank(0.5),
    p95: rank(0.95),
  };
}

const ms = (x: number) => x.toFixed(3).padStart(9);
const row = (label: string, s: Stats) => `${label.padEnd(52)}${ms(s.mean)}${ms(s.p50)}${ms(s.p95)}`;

/** Run one session; per turn: whole turn time and the kernel call's share of it. */
async function session(
  label: string,
  provider: ModelProvider | undefined,
  env?: Record<string, string>,
) {
  const scratch = await Deno.makeTempDir({ prefix: "ostk_llm_bench_" });
  const key = await loadOrCreateOperatorKey(`${scratch}/key/identity.key`);
  await Deno.mkdir(`${scratch}/proj`);
  await initProject(`${scratch}/proj`, key);
  const root = await Deno.realPath(`${scratch}/proj`);
  await Deno.writeTextFile(`${root}/f.txt`, "even\n");
  const kernel = new Kernel(ostkPaths(root), { signer: key.signer, pin: "default" });
  const kernelMs: number[] = [];
  const turnMs: number[] = [];
  const port: KernelPort = {
    async call(tool, args, opts) {
      const t0 = performance.now();
      const res = await kernel.call(tool, args, { alias: "bench-1", callId: opts?.callId });
      kernelMs.push(performance.now() - t0);
      return res;
    },
  };
  const cpu = new ModelCpu({
    kind: "model",
    model: env ? "anthropic:claude-sonnet-4" : "ollama:instant",
    task: "flip",
    context_window: 10_000_000,
  }, {
    root,
    provider,
    providerOptions: env
      ? { env: { get: (n) => env[n] }, apiKey: "sk-ant-test-key-0001" }
      : undefined,
  });
  let last = performance.now();
  await cpu.run({
    alias: "bench-1",
    kernel: port,
    startTurn: 0,
    signal: new AbortController().signal,
    onTurn: () => {
      const now = performance.now();
      turnMs.push(now - last);
      last = now;
      return Promise.resolve();
    },
    onOutput: () => {},
  });
  kernel.close();
  await Deno.remove(scratch, { recursive: true });
  const edits = turnMs.slice(0, TURNS);
  console.log(row(`${label}: whole turn`, stats(edits)));
  console.log(row(`${label}: kernel file:edit`, stats(kernelMs)));
  console.log(
    row(`${label}: loop overhead (turn − kernel)`, stats(edits.map((t, i) => t - kernelMs[i]))),
  );
}

console.log(`model CPU, ${TURNS} turns of one file:edit each (ms)`);
console.log(`${"".padEnd(52)}${"mean".padStart(9)}${"p50".padStart(9)}${"p95".padStart(9)}`);
await session("(a) instant provider", new InstantProvider());

// Each reply leaves the server as one write: the figure is the client's cost, not the script's.
const whole = (reply: ScriptedReply): Step => ({
  kind: "stream",
  contentType: anthropicWire.contentType,
  chunks: [anthropicWire.chunks(reply).join("")],
});
const steps = [
  ...Array.from(
    { length: TURNS },
    (_, n) =>
      whole({
        toolCalls: [{ name: "file_edit", args: editArgs(n) }],
        usage: { input: 100, output: 10 },
      }),
  ),
  whole({ text: "done" }),
];
const server = anthropicWire.start(steps);
try {
  await session("(b) local anthropic SSE", undefined, anthropicWire.env(server));
} finally {
  await server.close();
}
