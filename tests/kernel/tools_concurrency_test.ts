/**
 * Many writer processes, one file, the kernel's `file:edit` as the only door. Each writer owns a
 * region of the file and edits it against the gen it last saw, so most edits arrive on a stale
 * base and go through Hot PR. Whatever the interleaving, every accepted edit must be in the file
 * exactly once, every refused one absent and reported as a conflict, the gen must count the
 * accepted writes, and the audit log must hold one row per outcome and verify.
 */
import assert from "node:assert/strict";
import { readAuditRows } from "../../kernel/audit.ts";
import { verifyAuditLog } from "../../kernel/audit_verify.ts";
import { fold } from "../../kernel/fold.ts";
import { contentHash, GenTable } from "../../kernel/gen_table.ts";
import { loadOrCreateOperatorKey, readIdentityPub } from "../../kernel/identity.ts";
import { initProject } from "../../kernel/project_init.ts";
import { Kernel } from "../../kernel/tools.ts";
import { lineName, marker, slot } from "../helpers/edit_writer.ts";

const WRITERS = 8;
const EDITS = 200;
const SPAN = 250;
const LINES = WRITERS * SPAN;
const PATH = "shared.txt";
const helper = new URL("../helpers/edit_writer.ts", import.meta.url).pathname;

interface Summary {
  accepted: string[];
  rejected: string[];
  rejections: { marker: string; code: string; tier?: number; message: string }[];
  merged: number;
  elapsedMs: number;
}

/** Splits a child's stdout into lines as they arrive. */
class LineReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line, or undefined at end of output. */
  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) {
        const rest = this.#buffer;
        this.#buffer = "";
        return rest === "" ? undefined : rest;
      }
      this.#buffer += value;
    }
  }

  /** Stop reading; the child's stdout is released. */
  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

interface Writer {
  w: number;
  child: Deno.ChildProcess;
  lines: LineReader;
  stderr: Promise<string>;
}

function spawnWriter(root: string, keyPath: string, w: number): Writer {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      helper,
      root,
      keyPath,
      `${w}`,
      `${EDITS}`,
      `${SPAN}`,
      PATH,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return {
    w,
    child,
    lines: new LineReader(child.stdout),
    stderr: new Response(child.stderr).text(),
  };
}

/** Make sure a writer is gone (a failed test may leave it waiting) and release its pipes. */
async function stopWriter(writer: Writer): Promise<void> {
  try {
    writer.child.kill("SIGKILL");
  } catch (err) {
    // TypeError: the child has already exited, which is the normal case here.
    if (!(err instanceof TypeError)) throw err;
  }
  await writer.child.status;
  await writer.lines.cancel();
  await writer.stderr;
}

/** The line a writer's edit changes, across the whole file. */
function lineOf(mark: string): number {
  const [, w, e] = mark.match(/^w(\d+)-e(\d+)$/)!;
  return Number(w) * SPAN + slot(Number(w), Number(e), SPAN);
}

Deno.test(
  `file:edit: ${WRITERS} writer processes × ${EDITS} edits of one file lose nothing`,
  async () => {
    const scratch = await Deno.makeTempDir({ prefix: "ostk_tools_conc_" });
    const writers: Writer[] = [];
    try {
      const keyPath = `${scratch}/key/identity.key`;
      const key = await loadOrCreateOperatorKey(keyPath);
      await Deno.mkdir(`${scratch}/project`);
      const { root, paths } = await initProject(`${scratch}/project`, key);

      const initial = Array.from({ length: LINES }, (_, i) => `${lineName(i)}\n`).join("");
      const kernel = new Kernel(paths, { signer: key.signer });
      try {
        const created = await kernel.call("file:create", { path: PATH, content: initial }, {
          alias: "operator",
        });
        assert.ok(created.ok, JSON.stringify(created));
        // The creation is the one write not made by a writer: the gen starts at 1.
        assert.equal(created.result.gen, 1);
      } finally {
        kernel.close();
      }

      for (let w = 0; w < WRITERS; w++) writers.push(spawnWriter(root, keyPath, w));
      for (const writer of writers) {
        const line = await writer.lines.next();
        // stderr is awaited only on failure: it ends when the writer exits.
        if (line !== "ready") assert.fail(`writer ${writer.w}: ${line} ${await writer.stderr}`);
      }
      // Release them together, so they contend from their first edit.
      const started = performance.now();
      const go = new TextEncoder().encode("go\n");
      for (const writer of writers) {
        const stdin = writer.child.stdin.getWriter();
        await stdin.write(go);
        await stdin.close();
      }
      const summaries: Summary[] = [];
      for (const writer of writers) {
        const line = await writer.lines.next();
        const status = await writer.child.status;
        const stderr = await writer.stderr;
        assert.equal(status.code, 0, `writer ${writer.w} failed: ${stderr}`);
        assert.ok(line, `writer ${writer.w} printed no summary: ${stderr}`);
        assert.equal(await writer.lines.next(), undefined, `writer ${writer.w}: extra output`);
        summaries.push(JSON.parse(line) as Summary);
      }
      const seconds = (performance.now() - started) / 1000;

      const accepted = summaries.flatMap((s) => s.accepted);
      const rejected = summaries.flatMap((s) => s.rejected);
      for (const [w, s] of summaries.entries()) {
        assert.equal(s.accepted.length + s.rejected.length, EDITS, `writer ${w} lost count`);
        // Every refusal reached its writer as a conflict, never as another kind of failure.
        assert.equal(s.rejections.length, s.rejected.length);
        for (const r of s.rejections) {
          assert.equal(r.code, "conflict", `writer ${w} ${r.marker}: ${r.message}`);
        }
      }

      // The first edits of writers 2k and 2k+1 change adjacent lines against the same gen, so
      // the kernel cannot have taken both: the second to land had to be refused.
      for (let w = 0; w + 1 < WRITERS; w += 2) {
        const both = [marker(w, 0), marker(w + 1, 0)];
        assert.ok(
          both.some((mark) => rejected.includes(mark)),
          `${both.join(" and ")} edit adjacent lines from one base, yet both were accepted`,
        );
      }

      // The file is exactly the initial one with each accepted marker on its own line.
      const text = await Deno.readTextFile(`${root}/${PATH}`);
      const lines = text.split("\n");
      assert.equal(lines.pop(), "", "the file lost its final newline");
      assert.equal(lines.length, LINES, "the file lost or gained lines");
      const expected = Array.from({ length: LINES }, (_, i) => lineName(i));
      for (const mark of accepted) expected[lineOf(mark)] = mark;
      for (const mark of accepted) {
        const count = lines.filter((line) => line === mark).length;
        assert.equal(count, 1, `accepted ${mark} is in the file ${count} times`);
      }
      for (const mark of rejected) {
        assert.ok(!lines.includes(mark), `rejected ${mark} is in the file`);
      }
      assert.deepEqual(lines, expected);

      // Gen 1 was the creation; each accepted edit is one more.
      const row = await new GenTable(paths.dir).read(PATH);
      assert.equal(row?.gen, accepted.length + 1, "gen does not count the accepted edits");
      assert.equal(row?.hash, await contentHash(new TextEncoder().encode(text)));

      const report = await verifyAuditLog({
        logPath: paths.audit,
        headPath: paths.head,
        publicRaw: await readIdentityPub(paths.identityPub),
      });
      assert.ok(report.ok, `audit log does not verify: ${JSON.stringify(report.failure)}`);
      const rows = await readAuditRows(paths.audit);
      const edits = rows.filter((r) => r.event === "tool.file_edit" && r.path === PATH);
      const conflicts = rows.filter((r) => r.event === "tool.conflict" && r.path === PATH);
      assert.equal(edits.length, accepted.length, "one tool.file_edit row per accepted edit");
      assert.equal(conflicts.length, rejected.length, "one tool.conflict row per rejected edit");
      for (const [w, s] of summaries.entries()) {
        const alias = `w${w}`;
        assert.equal(edits.filter((r) => r.actor === alias).length, s.accepted.length, alias);
        assert.equal(conflicts.filter((r) => r.actor === alias).length, s.rejected.length, alias);
      }
      // The edit rows name gens 2..n+1, each once: no gen was handed out twice.
      const gens = edits.map((r) => r.gen as number).sort((a, b) => a - b);
      assert.deepEqual(gens, Array.from({ length: accepted.length }, (_, i) => i + 2));
      // Nothing was written around the kernel.
      const strays = rows.filter((r) => r.event === "bypass.detected" || r.event === "gen.recover");
      assert.deepEqual(strays, []);
      assert.equal(fold(rows).files.get(PATH)?.gen, row?.gen);

      // Figures only: how the interleaving went. Timing decides them, so they are not asserted.
      const merged = summaries.reduce((n, s) => n + s.merged, 0);
      const tiers = summaries.flatMap((s) => s.rejections.map((r) => r.tier ?? "?"));
      const byTier = (t: number) => tiers.filter((x) => x === t).length;
      console.log(
        `${WRITERS}×${EDITS} edits in ${seconds.toFixed(1)}s ` +
          `(${((seconds * 1000) / (WRITERS * EDITS)).toFixed(1)} ms/edit wall): ` +
          `accepted ${accepted.length} (Hot PR merged ${merged}), rejected ${rejected.length} ` +
          `(tier 2 ${byTier(2)}, tier 3 ${byTier(3)}); writer times ` +
          summaries.map((s) => (s.elapsedMs / 1000).toFixed(1)).join("/") + "s",
      );
    } finally {
      for (const writer of writers) await stopWriter(writer);
      await Deno.remove(scratch, { recursive: true });
    }
  },
);
