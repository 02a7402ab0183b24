/**
 * Live audit rows for subscribers: a reader that picks up rows appended since the last poll, and
 * per-subscriber catch-up from any seq so a client that reattaches misses nothing.
 */
import { type AuditRow, parseRowLine, readAuditRows } from "../kernel/audit.ts";

/** One subscriber: where it is in the log and how to deliver rows to it. */
export interface Subscriber {
  next: number;
  filter: (row: AuditRow) => boolean;
  send: (row: AuditRow) => void;
  catchingUp: boolean;
}

/** Reads new whole rows from the end of the log and fans them out to subscribers. */
export class AuditTail {
  readonly path: string;
  #offset = 0;
  #line = 0;
  #subs = new Set<Subscriber>();
  #polling: Promise<void> | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /** Start from the current end: only rows appended from now on are "live". */
  skipToEnd(): void {
    const bytes = Deno.readFileSync(this.path);
    this.#offset = bytes.lastIndexOf(0x0a) + 1;
    this.#line = 0;
    for (let i = 0; i < this.#offset; i++) if (bytes[i] === 0x0a) this.#line++;
  }

  /** Add a subscriber; it first receives every row from its `next` seq, then live rows. */
  async subscribe(sub: Subscriber): Promise<void> {
    sub.catchingUp = true;
    this.#subs.add(sub);
    // Re-read until no row is missing: live rows are held back while this runs, so no row is
    // sent twice and none is skipped between the catch-up and the live stream.
    for (;;) {
      const rows = (await readAuditRows(this.path)).filter((r) => r.seq >= sub.next);
      if (rows.length === 0) break;
      for (const row of rows) {
        if (sub.filter(row)) sub.send(row);
        sub.next = row.seq + 1;
      }
    }
    sub.catchingUp = false;
  }

  unsubscribe(sub: Subscriber): void {
    this.#subs.delete(sub);
  }

  /** Read newly appended rows and deliver them; concurrent calls share one read. */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  async #poll(): Promise<void> {
    let bytes: Uint8Array;
    try {
      const file = await Deno.open(this.path, { read: true });
      try {
        const size = file.statSync().size;
        if (size <= this.#offset) return;
        file.seekSync(this.#offset, Deno.SeekMode.Start);
        bytes = new Uint8Array(size - this.#offset);
        let got = 0;
        while (got < bytes.length) {
          const n = file.readSync(bytes.subarray(got));
          if (n === null) break;
          got += n;
        }
        bytes = bytes.subarray(0, got);
      } finally {
        file.close();
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    const end = bytes.lastIndexOf(0x0a);
    if (end < 0) return;
    this.#offset += end + 1;
    const text = new TextDecoder().decode(bytes.subarray(0, end));
    for (const line of text.split("\n")) {
      const row = parseRowLine(line, this.path, ++this.#line);
      for (const sub of this.#subs) {
        if (sub.catchingUp || row.seq < sub.next) continue;
        if (sub.filter(row)) sub.send(row);
        sub.next = row.seq + 1;
      }
    }
  }
}
