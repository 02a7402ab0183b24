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
import { writeHead } from "./audit_head.ts";

export type { AuditEntry, AuditRow };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
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
 * import { AuditLog } from "./audit.ts";
 * import { ephemeralSigner } from "./identity.ts";
 * const dir = await Deno.makeTempDir();
 * const log = new AuditLog(`${dir}/audit.jsonl`, { signer: await ephemeralSigner() });
 * const row = await log.append({ event: "os.init", actor: "operator" });
 * console.assert(row.seq === 0);
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

  /** Append rows as one write and one fdatasync; the head is rewritten once. */
  appendBatch(entries: AuditEntry[]): Promise<AuditRow[]> {
    return this.appendComputed(() => entries, false);
  }

  /**
   * Append rows computed from the whole log while the lock is held, so a decision that depends
   * on earlier rows (such as the next free alias) cannot race another process.
   */
  appendComputed(
    compute: (rows: AuditRow[]) => AuditEntry[] | Promise<AuditEntry[]>,
    needsRows = true,
  ): Promise<AuditRow[]> {
    // flock is per open file description, so calls sharing this handle are queued here too.
    const run = this.#queue.then(() => this.#locked(compute, needsRows));
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
  ): Promise<AuditRow[]> {
    const file = await this.#open();
    await file.lock(true);
    try {
      const size = (await file.stat()).size;
      let tail = this.#cache?.end === size ? this.#cache : await this.#readTail(file, size);
      const repairs: AuditEntry[] = [];
      if (tail.torn > 0) {
        // A crash mid-append left a partial row. Nothing after it can exist (we hold the lock
        // and appends are whole), so cutting back loses only bytes that never formed a row.
        await file.truncate(tail.end);
        repairs.push({
          event: "audit.repair",
          actor: "kernel",
          fields: { cut_bytes: tail.torn, offset: tail.end },
        });
        tail = { ...tail, torn: 0 };
      }
      const rows = needsRows ? await readAuditRows(this.path) : [];
      const entries = [...repairs, ...await compute(rows)];
      if (entries.length === 0) return [];
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
      const bytes = encoder.encode(text);
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      // The log must be durable before the head names it, or a power cut could leave a head
      // that points past the end of the log and a verify that cries wolf.
      await file.syncData();
      await writeHead(this.headPath, { seq, hash }, this.#signer, this.#now());
      this.#cache = { end: tail.end + bytes.length, torn: 0, seq, hash };
      return written;
    } finally {
      await file.unlock();
    }
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
      await file.seek(start, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) {
        const n = await file.read(buf.subarray(got));
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
      const line = decoder.decode(buf.subarray(prevNl + 1, lastNl));
      const row = await this.#parseLast(line, start + prevNl + 1);
      return { end, torn: size - end, seq: row.seq, hash: await rowHash(row) };
    }
  }

  async #parseLast(line: string, offset: number): Promise<AuditRow> {
    let value: unknown;
    let problem: string | undefined;
    try {
      value = JSON.parse(line);
    } catch (err) {
      problem = `last row is not JSON (${(err as Error).message})`;
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
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  const lines = text.split("\n");
  lines.pop(); // after the final newline: empty, or a torn row
  return lines.map((line, i) => parseRowLine(line, path, i + 1));
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
