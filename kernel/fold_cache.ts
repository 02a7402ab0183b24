/**
 * An incrementally folded view of the audit log: each refresh reads only the bytes appended
 * since the last one, so a long-lived kernel pays for each row once.
 */
import { parseRowLine } from "./audit.ts";
import { emptyState, foldRow, type FoldState } from "./fold.ts";

const NEWLINE = 0x0a;

/**
 * Keeps `state` equal to `fold(rows of the log)` as of the last {@linkcode FoldCache.refresh}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuditLog } from "./audit.ts";
 * import { FoldCache } from "./fold_cache.ts";
 * import { ephemeralSigner } from "./identity.ts";
 * const dir = await Deno.makeTempDir();
 * const log = new AuditLog(`${dir}/audit.jsonl`, { signer: await ephemeralSigner() });
 * const cache = new FoldCache(`${dir}/audit.jsonl`);
 * assert.equal((await cache.refresh()).rows, 0); // no log yet
 * const fields = { alias: "a-1", name: "a", n: 1 };
 * await log.append({ event: "agent.alias", actor: "operator", fields });
 * assert.equal((await cache.refresh()).rows, 1);
 * await log.append({ event: "note.add", actor: "a-1" });
 * const state = await cache.refresh(); // reads only the row appended since
 * assert.equal(state.rows, 2);
 * assert.equal(state.lastSeq, 1);
 * assert.ok(state.aliases.has("a-1"));
 * log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FoldCache {
  readonly path: string;
  #state: FoldState = emptyState();
  #offset = 0;
  #line = 0;

  constructor(path: string) {
    this.path = path;
  }

  #running: Promise<FoldState> | undefined;

  /**
   * Fold any new whole rows and return the state. A torn tail waits for its newline. Calls made
   * while one is reading share it: two readers advancing the same offset would skip or repeat
   * rows and then start reading mid-row.
   */
  refresh(): Promise<FoldState> {
    this.#running ??= this.#refresh().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #refresh(): Promise<FoldState> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return this.#state;
      throw err;
    }
    try {
      const size = (await file.stat()).size;
      if (size < this.#offset) {
        // Only a torn tail is ever cut, and we never fold past a newline; a shorter file means
        // the log was replaced, so start over rather than fold a different history onto ours.
        this.#state = emptyState();
        this.#offset = 0;
        this.#line = 0;
      }
      if (size === this.#offset) return this.#state;
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(size - this.#offset);
      let got = 0;
      while (got < buf.length) {
        const n = await file.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      const end = buf.subarray(0, got).lastIndexOf(NEWLINE);
      if (end < 0) return this.#state;
      const text = new TextDecoder().decode(buf.subarray(0, end));
      for (const line of text.split("\n")) {
        foldRow(this.#state, parseRowLine(line, this.path, ++this.#line));
      }
      this.#offset += end + 1;
      return this.#state;
    } finally {
      file.close();
    }
  }
}
