/**
 * Test helper run as a real process by tests/kernel/tools_concurrency_test.ts: one of several
 * writers editing its own region of one shared file through the kernel's `file:edit`.
 *
 * Writer `w` owns lines [w*span, w*span + span). Edit `e` replaces line `w*span + slot(w, e)`
 * (a fixed-width `L0042` line nobody else touches) by the marker `w<w>-e<e>`, with
 * `expected_gen` = the gen this writer last saw (from its read or its last accepted edit). A
 * stale base goes through Hot PR. A refused edit is not retried: the writer re-reads for a fresh
 * gen and moves on, so each marker is written at most once.
 *
 * Protocol: prints `ready` once it has read the file, waits for one line on stdin (the start
 * signal, so all writers contend from the first edit), then prints one JSON line:
 * `{accepted, rejected, rejections, merged, elapsedMs}`; `rejections` holds the code, tier and
 * message of each refused edit.
 *
 * Usage: deno run --allow-read --allow-write --allow-env edit_writer.ts
 *          <projectRoot> <keyPath> <writer> <edits> <span> <path>
 */
import { Kernel, type ToolResponse } from "../../kernel/tools.ts";
import { loadOperatorKey } from "../../kernel/identity.ts";
import { ostkPaths } from "../../kernel/layout.ts";

/** Width of the fixed line names (`L0042`), so no name is a prefix of another. */
export const LINE_DIGITS = 4;

/** The untouched text of line `i` of the shared file. */
export function lineName(i: number): string {
  return `L${String(i).padStart(LINE_DIGITS, "0")}`;
}

/** The unique marker edit `e` of writer `w` writes. */
export function marker(w: number, e: number): string {
  return `w${w}-e${e}`;
}

/**
 * The line inside writer `w`'s region that its edit `e` changes: distinct lines, spread over
 * the region by a step coprime with the span. Odd writers walk up from their first line, even
 * writers walk the mirror image down from their last, so the first edits of writers 2k and 2k+1
 * touch the two adjacent lines where their regions meet. Both are made against the gen read
 * before the start signal, so whichever lands second is within Hot PR's proximity of the first
 * and must be refused; the other edits are far apart and merge, except where timing brings two
 * edits near a boundary at once.
 */
export function slot(w: number, e: number, span: number): number {
  let step = 77;
  while (gcd(step, span) !== 1) step++;
  const up = (e * step) % span;
  return w % 2 === 1 ? up : span - 1 - up;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** One line from stdin (the start signal); resolves at end of input too. */
async function readLine(): Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || value.includes(0x0a)) return;
    }
  } finally {
    reader.releaseLock();
  }
}

if (import.meta.main) {
  const [root, keyPath, writerText, editsText, spanText, path] = Deno.args;
  const w = Number(writerText);
  const edits = Number(editsText);
  const span = Number(spanText);
  const alias = `w${w}`;
  const key = await loadOperatorKey(keyPath);
  const kernel = new Kernel(ostkPaths(root), { signer: key.signer });
  const accepted: string[] = [];
  const rejected: string[] = [];
  /** Why each rejected edit was refused, as the kernel answered it. */
  const rejections: { marker: string; code: string; tier?: number; message: string }[] = [];
  let merged = 0;

  /** The current gen by file:read. A read racing a write reports gen 0; ask again then. */
  const readGen = async (): Promise<number> => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const res: ToolResponse = await kernel.call("file:read", { path, force: true }, { alias });
      if (!res.ok) throw new Error(`${alias}: file:read failed: ${JSON.stringify(res.error)}`);
      const gen = res.result.gen as number;
      if (gen > 0) return gen;
    }
    throw new Error(`${alias}: file:read kept answering gen 0`);
  };

  try {
    let seen = await readGen();
    console.log("ready");
    await readLine();
    const started = performance.now();
    for (let e = 0; e < edits; e++) {
      const mark = marker(w, e);
      const res = await kernel.call("file:edit", {
        path,
        old: lineName(w * span + slot(w, e, span)),
        new: mark,
        expected_gen: seen,
      }, { alias });
      if (res.ok) {
        accepted.push(mark);
        seen = res.result.gen as number;
        if (res.result.merged) merged++;
      } else {
        // Not retried: the marker stays unwritten, and the test checks it is absent.
        rejected.push(mark);
        const tier = res.error.details?.tier as number | undefined;
        rejections.push({ marker: mark, code: res.error.code, tier, message: res.error.message });
        seen = await readGen();
      }
    }
    const elapsedMs = Math.round(performance.now() - started);
    console.log(JSON.stringify({ accepted, rejected, rejections, merged, elapsedMs }));
  } finally {
    kernel.close();
  }
}
