/**
 * The append-only audit log: one signed, hash-chained JSON row per line in `.ostk/audit.jsonl`.
 *
 * Appends from any number of processes are serialised by an exclusive flock on the log file
 * itself, held across read-tail → sign → append → fdatasync → head rewrite, so bytes never
 * interleave and the chain never forks.
 */
import { encodeBase64 } from "./base64.ts";
import { OstkError } from "./errors.ts";
import { canonicalHash, canonicalJson, fromHex, toHex, ZERO_HASH } from "./hash.ts";
import type { Signer } from "./identity.ts";
import {
  type AuditEntry,
  type AuditHead,
  type AuditRow,
  AuditRowSchema,
  describeIssue,
  RESERVED_FIELDS,
} from "./audit_schema.ts";
import { readHead, writeHead } from "./audit_head.ts";

export type { AuditEntry, AuditRow };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const NEWLINE = 0x0a;

/** The hash a row is chained and signed by: sha256 over the row-domain prefix + RFC 8785 JSON. */
export async function rowHash(row: Omit<AuditRow, "sig"> | AuditRow): Promise<string> {
  const { sig: _sig, ...unsigned } = row as AuditRow;
  return toHex(await canonicalHash("auditRow", unsigned));
}

/** Options for {@linkcode AuditLog}. */
export interface AuditLogOptions {
  /** Signs rows; `null` writes unsigned rows and exists only for the benchmark baseline. */
  signer: Signer | null;
  /** Path of the head record; defaults to `audit.head` beside the log. */
  headPath?: string;
  /** Clock, injectable so golden vectors are reproducible. */
  now?: () => Date;
}

interface Tail {
  /** Byte length of the whole rows. */
  end: number;
  /** Bytes after the last newline: a torn row from a crash mid-append. */
  torn: number;
  seq: number;
  hash: string;
}

/**
 * A handle on one project's audit log. Cheap to create; holds one file descriptor once used.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuditLog, rowHash } from "./audit.ts";
 * import { ephemeralSigner } from "./identity.ts";
 * const dir = await Deno.makeTempDir();
 * const log = new AuditLog(`${dir}/audit.jsonl`, { signer: await ephemeralSigner() });
 * const first = await log.append({ event: "os.init", actor: "operator" });
 * const second = await log.append({ event: "note.add", actor: "operator", fields: { n: 1 } });
 * assert.equal(first.seq, 0);
 * assert.equal(first.prev_hash, "0".repeat(64));
 * assert.equal(second.seq, 1);
 * assert.equal(second.prev_hash, await rowHash(first)); // each row names the one before it
 * log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class AuditLog {
  readonly path: string;
  readonly headPath: string;
  #signer: Signer | null;
  #now: () => Date;
  #file: Deno.FsFile | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** The tail we last wrote, valid while the file length still equals `end`. */
  #cache: Tail | undefined;

  constructor(path: string, options: AuditLogOptions) {
    this.path = path;
    this.headPath = options.headPath ?? path.replace(/[^/]*$/, "audit.head");
    this.#signer = options.signer;
    this.#now = options.now ?? (() => new Date());
  }

  /** Append one row and return it as written. */
  async append(entry: AuditEntry): Promise<AuditRow> {
    const [row] = await this.appendBatch([entry]);
    return row;
  }

  /**
   * Append rows as one write and one fdatasync; the head is rewritten once. Returns the
   * caller's rows (an `audit.repair` row written first after a crash is not among them).
   */
  appendBatch(entries: AuditEntry[]): Promise<AuditRow[]> {
    return this.appendComputed(() => entries, false);
  }

  /** Cut a torn final line, if any, and return the `audit.repair` row that records the cut. */
  async repair(): Promise<AuditRow | undefined> {
    let repaired: AuditRow | undefined;
    await this.#enqueue(async () => {
      repaired = (await this.#locked(() => [], false)).repair;
    });
    return repaired;
  }

  /**
   * Append rows computed from the whole log while the lock is held, so a decision that depends
   * on earlier rows (such as the next free alias) cannot race another process.
   */
  appendComputed(
    compute: (rows: AuditRow[]) => AuditEntry[] | Promise<AuditEntry[]>,
    needsRows = true,
  ): Promise<AuditRow[]> {
    return this.#enqueue(async () => (await this.#locked(compute, needsRows)).rows);
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    // flock is per open file description, so calls sharing this handle are queued here too.
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Release the file descriptor. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
    this.#cache = undefined;
  }

  async #open(): Promise<Deno.FsFile> {
    if (!this.#file) {
      this.#file = await Deno.open(this.path, { read: true, append: true, create: true });
    }
    return this.#file;
  }

  async #locked(
    compute: (rows: AuditRow[]) => AuditEntry[] | Promise<AuditEntry[]>,
    needsRows: boolean,
  ): Promise<{ rows: AuditRow[]; repair?: AuditRow }> {
    const file = await this.#open();
    await file.lock(true);
    try {
      const size = file.statSync().size;
      let tail = this.#cache?.end === size ? this.#cache : undefined;
      if (!tail) {
        tail = await this.#readTail(file, size);
        await this.#checkHead(tail);
      }
      // A crash mid-append left a partial row. Nothing after it can exist (we hold the lock
      // and appends are whole), so cutting it loses only bytes that never formed a row. The
      // cut is recorded as the first row written, and made only once every row to be written
      // has been built, so a rejected entry cannot leave an unrecorded cut behind.
      const repairs: AuditEntry[] = tail.torn > 0
        ? [{
          event: "audit.repair",
          actor: "kernel",
          fields: { cut_bytes: tail.torn, offset: tail.end },
        }]
        : [];
      const rows = needsRows ? await readAuditRows(this.path) : [];
      const entries = [...repairs, ...await compute(rows)];
      if (entries.length === 0) return { rows: [] };
      const written: AuditRow[] = [];
      let text = "";
      let { seq, hash } = tail;
      for (const entry of entries) {
        const row = this.#build(entry, seq + 1, hash);
        hash = await rowHash(row);
        row.sig = this.#signer ? encodeBase64(await this.#signer.sign(fromHex(hash))) : "";
        text += JSON.stringify(row) + "\n";
        written.push(row);
        seq = row.seq;
      }
      if (tail.torn > 0) file.truncateSync(tail.end);
      const bytes = encoder.encode(text);
      let off = 0;
      while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
      // Small ops above are sync (an async op costs a thread-pool hop, more than the syscall);
      // the lock wait and this fdatasync stay async so the event loop never parks on them.
      // The log must be durable before the head names it, or a power cut could leave a head
      // that points past the end of the log and a verify that cries wolf.
      await file.syncData();
      await writeHead(this.headPath, { seq, hash }, this.#signer, this.#now());
      this.#cache = { end: tail.end + bytes.length, torn: 0, seq, hash };
      return {
        rows: written.slice(repairs.length),
        ...(repairs.length ? { repair: written[0] } : {}),
      };
    } finally {
      await file.unlock();
    }
  }

  /**
   * Refuse to append when the head records more rows than the log holds: whole rows were cut
   * from the end, and chaining onto the shorter log would make the cut invisible.
   */
  async #checkHead(tail: Tail): Promise<void> {
    const head = await readHead(this.headPath);
    if (!head || head.seq <= tail.seq) return;
    throw new OstkError(
      "integrity",
      `the log ends at seq ${tail.seq} but audit.head records seq ${head.seq}: rows were cut; ` +
        "refusing to append",
      { file: this.path },
      "run 'ostk os audit' to see the damage",
    );
  }

  #build(entry: AuditEntry, seq: number, prevHash: string): AuditRow {
    for (const key of Object.keys(entry.fields ?? {})) {
      if ((RESERVED_FIELDS as readonly string[]).includes(key)) {
        throw new OstkError("bad_input", `event field '${key}' is reserved by the audit log`);
      }
    }
    const row = {
      seq,
      ts: this.#now().toISOString(),
      event: entry.event,
      actor: entry.actor,
      ...entry.fields,
      prev_hash: prevHash,
      sig: "",
    };
    const parsed = AuditRowSchema.safeParse(row);
    if (!parsed.success) {
      throw new OstkError("bad_input", `audit entry rejected: ${describeIssue(parsed.error)}`);
    }
    // canonicalize throws on values JSON cannot carry (functions, NaN); fail before writing.
    canonicalJson(row);
    return row;
  }

  /** Find the last whole row by reading backwards from the end in growing windows. */
  async #readTail(file: Deno.FsFile, size: number): Promise<Tail> {
    if (size === 0) return { end: 0, torn: 0, seq: -1, hash: ZERO_HASH };
    for (let window = 4096;; window *= 2) {
      const start = Math.max(0, size - window);
      const buf = new Uint8Array(size - start);
      file.seekSync(start, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) {
        const n = file.readSync(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      const lastNl = buf.lastIndexOf(NEWLINE);
      if (lastNl < 0) {
        if (start === 0) return { end: 0, torn: size, seq: -1, hash: ZERO_HASH };
        continue;
      }
      const prevNl = buf.lastIndexOf(NEWLINE, lastNl - 1);
      if (prevNl < 0 && start > 0) continue;
      const end = start + lastNl + 1;
      const row = await this.#parseLast(buf.subarray(prevNl + 1, lastNl), start + prevNl + 1);
      return { end, torn: size - end, seq: row.seq, hash: await rowHash(row) };
    }
  }

  async #parseLast(bytes: Uint8Array, offset: number): Promise<AuditRow> {
    let value: unknown;
    let problem: string | undefined;
    try {
      value = JSON.parse(decoder.decode(bytes));
    } catch (err) {
      problem = err instanceof SyntaxError
        ? `last row is not JSON (${err.message})`
        : "last row is not valid UTF-8";
    }
    if (problem === undefined) {
      const parsed = AuditRowSchema.safeParse(value);
      if (parsed.success) return parsed.data;
      problem = `last row is malformed (${describeIssue(parsed.error)})`;
    }
    // Appending after a damaged row would chain onto garbage; refuse and leave the file alone.
    throw new OstkError(
      "integrity",
      `${problem}; refusing to append`,
      { file: this.path, line: await lineNumberAt(this.path, offset) },
      "run 'ostk os audit' to see the damage",
    );
  }
}

/** 1-based line number of the line starting at byte `offset`. */
async function lineNumberAt(path: string, offset: number): Promise<number> {
  const bytes = await Deno.readFile(path);
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === NEWLINE) line++;
  return line;
}

/**
 * Every whole row of the log, parsed. A torn final line is skipped (it is not a row yet); any
 * other unreadable line is an integrity error naming file and line, since folding around a hole
 * would build the wrong state.
 */
export async function readAuditRows(path: string): Promise<AuditRow[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  const rows: AuditRow[] = [];
  let start = 0;
  // Stops at the last newline: what follows it is empty, or a torn row that is not a row yet.
  for (let nl = bytes.indexOf(NEWLINE); nl >= 0; nl = bytes.indexOf(NEWLINE, start)) {
    const lineNo = rows.length + 1;
    let line: string;
    try {
      line = decoder.decode(bytes.subarray(start, nl));
    } catch {
      throw new OstkError("integrity", "not valid UTF-8", { file: path, line: lineNo });
    }
    rows.push(parseRowLine(line, path, lineNo));
    start = nl + 1;
  }
  return rows;
}

/** Parse one log line, or throw an integrity error naming `file:line`. */
export function parseRowLine(line: string, file: string, lineNo: number): AuditRow {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new OstkError("integrity", `not JSON: ${(err as Error).message}`, {
      file,
      line: lineNo,
    });
  }
  const parsed = AuditRowSchema.safeParse(value);
  if (!parsed.success) {
    throw new OstkError("integrity", `malformed audit row: ${describeIssue(parsed.error)}`, {
      file,
      line: lineNo,
    });
  }
  return parsed.data;
}

export type { AuditHead };
