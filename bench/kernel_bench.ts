/**
 * Kernel write-path cost: a `file:edit` through the kernel against a bare atomic write of the
 * same bytes, where the kernel's time goes, and what 304 elision saves on a generated session
 * (fixtures/sessions/reread, written by its generate.ts from a fixed seed: a model of two agents
 * re-reading files, not a recording of real ones). Prints figures; asserts nothing.
 *
 *   deno run --allow-read --allow-write --allow-env bench/kernel_bench.ts
 *   deno run ... bench/kernel_bench.ts --ops 1000 --size 16384
 *   deno run ... bench/kernel_bench.ts --dir /mnt/ssd   # scratch on another filesystem
 *
 * (a) and (b) run interleaved, alternating which goes first, so both see the same disk
 * conditions; a drift in fsync latency during the run then cannot favour either side.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { atomicWrite } from "../kernel/atomic_write.ts";
import { AuditLog } from "../kernel/audit.ts";
import { renderDigest } from "../kernel/digest.ts";
import { FoldCache } from "../kernel/fold_cache.ts";
import { GenTable } from "../kernel/gen_table.ts";
import { loadOrCreateOperatorKey, type OperatorKey } from "../kernel/identity.ts";
import { ostkPaths } from "../kernel/layout.ts";
import { checkWrite, loadPolicy } from "../kernel/pin_caps.ts";
import { initProject } from "../kernel/project_init.ts";
import { resolveProjectPath } from "../kernel/resolve_path.ts";
import { replaceText } from "../kernel/text_edit.ts";
import { TOOL_SCHEMAS } from "../kernel/tool_schema.ts";
import { Kernel, type ToolResponse } from "../kernel/tools.ts";

const FIXTURE = new URL("../fixtures/sessions/reread/", import.meta.url).pathname;
const ALIAS = "bench-1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One step of the generated session; the kernel validates `args` itself. */
const SessionStep = z.object({
  alias: z.string(),
  tool: z.enum(["file:read", "file:edit"]),
  args: z.record(z.string(), z.unknown()),
});

interface Stats {
  mean: number;
  p50: number;
  p95: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length;
  return { mean, p50: rank(0.5), p95: rank(0.95) };
}

const ms = (x: number) => x.toFixed(3).padStart(8);
const row = (label: string, s: Stats) => `${label.padEnd(38)}${ms(s.mean)}${ms(s.p50)}${ms(s.p95)}`;

/**
 * A text file of `size` bytes in unique numbered lines; `change()` rewrites one line (the next
 * in turn) and returns the old and new line plus the whole new text, as an agent's edit would.
 */
class LineFile {
  #lines: string[] = [];
  #turn = 0;

  constructor(size: number) {
    let bytes = 0;
    while (bytes < size) {
      const text = this.#line(this.#lines.length, 0);
      this.#lines.push(text);
      bytes += text.length + 1;
    }
  }

  get text(): string {
    return this.#lines.join("\n") + "\n";
  }

  change(): { old: string; new: string; text: string } {
    const i = this.#turn % this.#lines.length;
    const old = this.#lines[i];
    this.#lines[i] = this.#line(i, ++this.#turn);
    return { old, new: this.#lines[i], text: this.text };
  }

  #line(i: number, rev: number): string {
    return `line ${String(i).padStart(5, "0")} rev ${String(rev).padStart(7, "0")} ` +
      "the quick brown fox jumps over the lazy dog";
  }
}

async function newProject(dir: string, key: OperatorKey) {
  await Deno.mkdir(dir, { recursive: true });
  const { root } = await initProject(dir, key);
  const paths = ostkPaths(root);
  return { paths, kernel: new Kernel(paths, { signer: key.signer }) };
}

function expectOk(res: ToolResponse, what: string): Record<string, unknown> {
  if (!res.ok) throw new Error(`${what}: ${res.error.code}: ${res.error.message}`);
  return res.result;
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isDirectory) await copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    else await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

/** (a) + (b): bare atomic write and kernel file:edit of the same kind of file, interleaved. */
async function writeVsEdit(scratch: string, key: OperatorKey, ops: number, size: number) {
  const { paths, kernel } = await newProject(`${scratch}/edit`, key);
  const bareDir = `${scratch}/bare`;
  await Deno.mkdir(bareDir);
  const bare = new LineFile(size);
  const edited = new LineFile(size);
  const barePath = `${bareDir}/bench.txt`;
  await atomicWrite(barePath, bare.text);
  const created = await kernel.call(
    "file:create",
    { path: "src/bench.txt", content: edited.text },
    { alias: ALIAS },
  );
  expectOk(created, "file:create");
  const warmup = Math.min(20, Math.max(1, Math.floor(ops / 10)));
  const a: number[] = [];
  const b: number[] = [];
  const runBare = async (keep: boolean) => {
    const bytes = encoder.encode(bare.change().text);
    const t = performance.now();
    await atomicWrite(barePath, bytes);
    if (keep) a.push(performance.now() - t);
  };
  const runEdit = async (keep: boolean) => {
    const { old, new: next } = edited.change();
    const t = performance.now();
    const res = await kernel.call("file:edit", { path: "src/bench.txt", old, new: next }, {
      alias: ALIAS,
    });
    if (keep) b.push(performance.now() - t);
    expectOk(res, "file:edit");
  };
  try {
    for (let i = 0; i < warmup + ops; i++) {
      const keep = i >= warmup;
      if (i % 2 === 0) {
        await runBare(keep);
        await runEdit(keep);
      } else {
        await runEdit(keep);
        await runBare(keep);
      }
    }
  } finally {
    kernel.close();
  }
  return { paths, bare: stats(a), edit: stats(b) };
}

/**
 * (d): the steps of one kernel edit, timed one by one in the order the kernel runs them, on a
 * project that already holds the (b) run's log and table.
 */
async function breakdown(
  paths: ReturnType<typeof ostkPaths>,
  key: OperatorKey,
  ops: number,
  size: number,
) {
  const file = new LineFile(size);
  const rel = "src/pieces.txt";
  const abs = `${paths.root}/${rel}`;
  await atomicWrite(abs, file.text);
  const table = new GenTable(paths.dir);
  const log = new AuditLog(paths.audit, { signer: key.signer, headPath: paths.head });
  const fold = new FoldCache(paths.audit);
  // Not a kernel step: the price of one durable append on this disk, to read the others by.
  const ref = await Deno.open(`${paths.root}/ref.log`, { append: true, create: true });
  await fold.refresh(); // fold the (b) run's rows now, not inside the first timed refresh
  const names = [
    "schema parse (zod)",
    "loadPolicy + checkWrite",
    "resolveProjectPath",
    "GenTable.adopt (bypass check)",
    "GenTable.transact with a write",
    "AuditLog.append",
    "FoldCache.refresh + renderDigest",
    "(ref) 1-line append + fdatasync",
  ] as const;
  const samples = new Map<string, number[]>(names.map((n) => [n, []]));
  const warmup = Math.min(20, Math.max(1, Math.floor(ops / 10)));
  try {
    for (let i = 0; i < warmup + ops; i++) {
      const keep = i >= warmup;
      const time = async <T>(name: (typeof names)[number], fn: () => T | Promise<T>) => {
        const t = performance.now();
        const out = await fn();
        if (keep) samples.get(name)!.push(performance.now() - t);
        return out;
      };
      const edit = file.change();
      const args = { path: rel, old: edit.old, new: edit.new };
      await time("schema parse (zod)", () => TOOL_SCHEMAS["file:edit"].parse(args));
      await time("loadPolicy + checkWrite", async () => {
        const policy = await loadPolicy(paths.dir);
        if (!checkWrite(policy, rel).allowed) throw new Error(`policy denies ${rel}`);
      });
      await time(
        "resolveProjectPath",
        () => resolveProjectPath(paths.root, rel, { allowKernel: true }),
      );
      await time("GenTable.adopt (bypass check)", () => table.adopt(rel, abs));
      const { row, prev } = await time(
        "GenTable.transact with a write",
        () =>
          table.transact(rel, abs, (view) => {
            const next = replaceText(decoder.decode(view.disk), args.old, args.new, false);
            return { write: { bytes: encoder.encode(next), writer: ALIAS }, result: undefined };
          }),
      );
      await time("AuditLog.append", () =>
        log.append({
          event: "tool.file_edit",
          actor: ALIAS,
          fields: { path: rel, gen: row!.gen, prev_gen: prev?.gen ?? 0, hash: row!.hash },
        }));
      await time(
        "FoldCache.refresh + renderDigest",
        async () => renderDigest({ state: await fold.refresh(), reader: ALIAS, nowMs: Date.now() }),
      );
      await time("(ref) 1-line append + fdatasync", async () => {
        await ref.write(encoder.encode(`${i} ${row!.hash}\n`));
        await ref.syncData();
      });
    }
  } finally {
    log.close();
    ref.close();
  }
  return names.map((name) => ({ name, stats: stats(samples.get(name)!) }));
}

/** (e): replay the generated session and count what elision kept off the wire. */
async function replay(scratch: string, key: OperatorKey) {
  const dir = `${scratch}/reread`;
  await copyTree(`${FIXTURE}tree`, dir);
  const { paths, kernel } = await newProject(dir, key);
  const lines = (await Deno.readTextFile(`${FIXTURE}session.jsonl`)).split("\n").filter(Boolean);
  const totals = {
    reads: 0,
    elided: 0,
    first: 0,
    edits: 0,
    refused: 0,
    without: 0,
    sent: 0,
    notices: 0,
  };
  const seen = new Set<string>();
  const readMs = { full: [] as number[], elided: [] as number[] };
  try {
    for (const [i, line] of lines.entries()) {
      const step = SessionStep.parse(JSON.parse(line));
      const path = String(step.args.path);
      // What a kernel without elision would send: the whole file as it is now.
      const size = step.tool === "file:read" ? (await Deno.stat(`${paths.root}/${path}`)).size : 0;
      const t = performance.now();
      const res = await kernel.call(step.tool, step.args, { alias: step.alias });
      const took = performance.now() - t;
      if (!res.ok) {
        totals.refused++;
        console.log(`  step ${i + 1} refused: ${res.error.code}: ${res.error.message}`);
        continue;
      }
      if (step.tool === "file:edit") {
        totals.edits++;
        continue;
      }
      totals.reads++;
      totals.without += size;
      const key = `${step.alias}\0${path}`;
      if (!seen.has(key)) totals.first++;
      seen.add(key);
      if (res.result.elided) {
        totals.elided++;
        const notice = encoder.encode(String(res.result.text)).length;
        totals.sent += notice;
        totals.notices += notice;
        readMs.elided.push(took);
      } else {
        totals.sent += encoder.encode(String(res.result.content)).length;
        readMs.full.push(took);
      }
    }
  } finally {
    kernel.close();
  }
  return { steps: lines.length, totals, readMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      ops: { type: "string", default: "300" },
      size: { type: "string", default: "4096" },
      dir: { type: "string" },
    },
  });
  const ops = Number(values.ops);
  const size = Number(values.size);
  if (!Number.isInteger(ops) || ops < 1 || !Number.isInteger(size) || size < 1) {
    console.error("usage: kernel_bench.ts [--ops N] [--size BYTES] [--dir SCRATCH_PARENT]");
    Deno.exit(2);
  }
  const scratch = await Deno.makeTempDir({ dir: values.dir, prefix: "ostk-kernel-bench-" });
  try {
    const key = await loadOrCreateOperatorKey(`${scratch}/key/identity.key`);
    console.log(
      `kernel bench: ${ops} ops per case, ${size}-byte text files, scratch ${scratch} ` +
        `(deno ${Deno.version.deno})`,
    );
    console.log(
      `${"".padEnd(38)}${"mean".padStart(8)}${"p50".padStart(8)}${"p95".padStart(8)}  ms/op`,
    );

    const { paths, bare, edit } = await writeVsEdit(scratch, key, ops, size);
    console.log(row("(a) atomicWrite (bare)", bare));
    console.log(row("(b) kernel file:edit", edit));
    const ratio = edit.mean / bare.mean;
    console.log(
      `(c) edit/write ratio ${ratio.toFixed(2)}x (target ≤ 1.5: ${
        ratio <= 1.5 ? "met" : "NOT met"
      })`,
    );

    console.log(`(d) one edit, piece by piece (${ops} ops)`);
    const pieces = await breakdown(paths, key, ops, size);
    const isRef = (name: string) => name.startsWith("(ref)");
    const sum = pieces.reduce((s, p) => s + (isRef(p.name) ? 0 : p.stats.mean), 0);
    for (const p of pieces) {
      const share = isRef(p.name)
        ? "    "
        : `${((100 * p.stats.mean) / sum).toFixed(0).padStart(3)}%`;
      const inWrites = `${(p.stats.mean / bare.mean).toFixed(2)}x bare write`;
      console.log(`${row(`    ${p.name}`, p.stats)}  ${share}  ${inWrites}`);
    }
    console.log(
      `    sum of pieces ${sum.toFixed(3)} ms; kernel edit ${edit.mean.toFixed(3)} ms; ` +
        `kernel − sum (dispatch glue, disk variance) ${(edit.mean - sum).toFixed(3)} ms`,
    );

    const { steps, totals, readMs } = await replay(scratch, key);
    const saved = totals.without === 0 ? 0 : 1 - totals.sent / totals.without;
    console.log(
      `(e) 304 elision on a GENERATED session (fixtures/sessions/reread/generate.ts, fixed ` +
        `seed; a model of two agents, not a recording): ${steps} steps, ${totals.reads} reads ` +
        `(${totals.elided} elided), ${totals.edits} edits, ${totals.refused} refused`,
    );
    const changed = totals.reads - totals.elided - totals.first;
    console.log(
      `    full reads: ${totals.first} first by that alias, ${changed} re-reads of a changed file`,
    );
    console.log(`    bytes without elision ${totals.without}`);
    console.log(
      `    bytes sent            ${totals.sent} (${totals.sent - totals.notices} content + ` +
        `${totals.notices} in ${totals.elided} 304 lines)`,
    );
    console.log(
      `    saved ${(100 * saved).toFixed(1)}% (target ≥ 80%: ${saved >= 0.8 ? "met" : "NOT met"})`,
    );
    if (readMs.full.length > 0 && readMs.elided.length > 0) {
      const full = stats(readMs.full);
      const elided = stats(readMs.elided);
      console.log(
        `    read latency: full ${full.mean.toFixed(3)} ms, elided ${elided.mean.toFixed(3)} ms ` +
          `(mean; each read appends an fdatasync'd audit row)`,
      );
    }
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

if (import.meta.main) await main();
