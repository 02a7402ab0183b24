/** Newline-delimited framing with a byte cap per message and no unbounded buffers. */

/** One framed item: a whole line, or notice that a line exceeded the cap (and was skipped). */
export type Frame = { line: string } | { tooLong: number };

/**
 * Split a byte stream into lines of at most `maxBytes`. An over-long line is reported once and
 * its bytes are discarded up to the next newline, so a hostile client cannot make us buffer it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFrames } from "./framing.ts";
 * const body = new Blob(["a\n", "x".repeat(20), "\nbb\n"]).stream();
 * const frames = [];
 * for await (const f of readFrames(body, 10)) frames.push(f);
 * // The 20-byte line is reported, not buffered, and the stream goes on after it.
 * assert.deepEqual(frames, [{ line: "a" }, { tooLong: 20 }, { line: "bb" }]);
 * ```
 */
export async function* readFrames(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): AsyncGenerator<Frame> {
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let size = 0;
  let skipping = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let start = 0;
      while (start < value.length) {
        const nl = value.indexOf(0x0a, start);
        const end = nl < 0 ? value.length : nl;
        const chunk = value.subarray(start, end);
        if (skipping > 0) skipping += chunk.length;
        else if (size + chunk.length > maxBytes) {
          skipping = size + chunk.length;
          parts = [];
          size = 0;
        } else {
          parts.push(chunk.slice());
          size += chunk.length;
        }
        if (nl < 0) break;
        if (skipping > 0) {
          yield { tooLong: skipping };
          skipping = 0;
        } else {
          const buf = new Uint8Array(size);
          let off = 0;
          for (const p of parts) {
            buf.set(p, off);
            off += p.length;
          }
          parts = [];
          size = 0;
          yield { line: decoder.decode(buf) };
        }
        start = nl + 1;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
