/**
 * The generation table: `.ostk/gen_table.jsonl` holds one JSON row per kernel write of a
 * tracked project file (`{path, gen, hash, writer, ts}`); a later row for a path supersedes the
 * earlier ones, so a write is one cheap append, and the file is compacted when it grows past
 * {@linkcode COMPACT_FACTOR} times the number of live paths.
 *
 * Every write happens inside one exclusive lock on `.ostk/gen_table.lock` covering read →
 * compare → write of the project file → shadows → append of the bumped row. Shadows
 * (`.ostk/shadows/<encoded path>/<gen>`) hold the content at each recent gen for Hot PR merges.
 *
 * Crash windows, all of which fail towards "bypass" (the file is never silently wrong):
 * a crash after the project file's rename but before the row is synced leaves a file whose hash
 * no row vouches for; {@linkcode verifyOnDisk} reports it as `bypass` and
 * {@linkcode adoptBypass} records it. A crash mid-append leaves a torn last line, which readers
 * ignore and the next writer cuts back under the lock.
 */
import { z } from "zod";
import { atomicWrite, syncDir } from "./atomic_write.ts";
import { isNotFound, OstkError } from "./errors.ts";
import { domainHash, toHex } from "./hash.ts";

/** The one schema of a gen table row. */
export const GenRowSchema = z.object({
  /** Project-relative posix path. */
  path: z.string().min(1),
  /** 1 on the first kernel write; gen 0 means untracked and never appears in a row. */
  gen: z.number().int().positive(),
  /** Lower-case hex of `domainHash("content", bytes)`. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** Who wrote: an agent alias, the operator, or `bypass` for an adopted outside edit. */
  writer: z.string().min(1),
  ts: z.iso.datetime(),
  /** The idempotency key of the call that wrote it, so recovery can log it if the call died. */
  call_id: z.string().optional(),
});
export type GenRow = z.infer<typeof GenRowSchema>;

/** What the disk says about a path compared with its row. */
export type DiskStatus = "tracked-ok" | "untracked" | "bypass" | "deleted";

/** The state a transaction sees under the lock. */
export interface DiskView {
  status: DiskStatus;
  row: GenRow | undefined;
  /** The file's bytes now; undefined when it does not exist. */
  disk: Uint8Array | undefined;
  diskHash: string | undefined;
}

/** What a {@linkcode GenTable.transact} callback decides: write these bytes, or nothing. */
export interface TransactStep<T> {
  write?: { bytes: Uint8Array; writer: string; callId?: string };
  result: T;
}

/** Options for {@linkcode GenTable}. */
export interface GenTableOptions {
  /** Shadows kept per path: the last `shadowKeep` gens. Default 16. */
  shadowKeep?: number;
  /** Never compact a table shorter than this many lines. Default 64. */
  compactMinLines?: number;
}

/** Compact once the table holds more than this many lines per live path. */
export const COMPACT_FACTOR = 4;

const TABLE = "gen_table.jsonl";
const LOCK = "gen_table.lock";
const SHADOWS = "shadows";
/** Encoded path names longer than this are replaced by a hash (NAME_MAX is 255 bytes). */
const MAX_SHADOW_NAME = 200;
const NEWLINE = 0x0a;
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/*
 * In-process queue per lock file. flock excludes other open file descriptions, even a second
 * open() in this same process, but each waiter parks a blocking thread, and one shared handle
 * would not exclude at all (flock is per open file description). So callers in one process
 * queue here first and each holder opens its own handle. Module-level because the lock is a
 * property of the table on disk, not of one GenTable object.
 */
const queues = new Map<string, Promise<void>>();

/*
 * Small file ops under the lock are sync calls: each async op is a thread-pool round trip
 * (~0.1–0.2 ms here), more than the syscall, and a write does about twenty of them. Waiting for
 * the flock and fsync stay async so the event loop is never parked on another process or a disk.
 */

/** The parsed table plus what an appender needs to know about its tail. */
interface Loaded {
  rows: Map<string, GenRow>;
  lines: number;
  /** Bytes up to and including the last newline. */
  validLength: number;
  /** Bytes after the last newline: a torn append. */
  tornBytes: number;
  exists: boolean;
}

/**
 * Lower-case hex of `domainHash("content", bytes)`, the `hash` of a row.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { contentHash } from "./gen_table.ts";
 * // `printf 'ostk/content/v1\n' | sha256sum`, not the bare SHA-256 of nothing (e3b0c442…).
 * const empty = "cd9cc6c212fdf1533e2bf4be6bad7a1029ff288cb07a837e9ccab95fba26ccb2";
 * assert.equal(await contentHash(new Uint8Array()), empty);
 * ```
 */
export async function contentHash(bytes: Uint8Array): Promise<string> {
  return toHex(await domainHash("content", bytes));
}

/**
 * The generation table of one `.ostk/` directory. Reads are lock-free snapshots; every change
 * goes through {@linkcode GenTable.transact} (or {@linkcode GenTable.adopt}) under the lock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GenTable } from "./gen_table.ts";
 * const dir = await Deno.makeTempDir();
 * const bytes = new TextEncoder().encode("hi\n");
 * const write = { bytes, writer: "doc" };
 * const table = new GenTable(dir, { shadowKeep: 8 });
 * const { row } = await table.transact("a.txt", `${dir}/a.txt`, () => ({ write, result: 0 }));
 * assert.equal(row?.gen, 1);
 * assert.equal(row?.writer, "doc");
 * assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "hi\n");
 * const next = await table.transact("a.txt", `${dir}/a.txt`, () => ({ write, result: 0 }));
 * assert.equal(next.row?.gen, 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class GenTable {
  readonly ostkDir: string;
  #table: string;
  #lock: string;
  #shadowKeep: number;
  #compactMinLines: number;

  constructor(ostkDir: string, options: GenTableOptions = {}) {
    this.ostkDir = ostkDir.replace(/\/+$/, "") || "/";
    this.#table = `${this.ostkDir}/${TABLE}`;
    this.#lock = `${this.ostkDir}/${LOCK}`;
    this.#shadowKeep = options.shadowKeep ?? 16;
    this.#compactMinLines = options.compactMinLines ?? 64;
    if (!Number.isInteger(this.#shadowKeep) || this.#shadowKeep < 1) {
      throw new OstkError(
        "usage",
        `shadowKeep must be a positive integer, got ${options.shadowKeep}`,
      );
    }
  }

  /** The current row of `relPath`, or undefined when untracked. Lock-free snapshot. */
  read(relPath: string): Promise<GenRow | undefined> {
    // Built inside the executor so a malformed table rejects rather than throws.
    return new Promise((resolve) => resolve(this.#load().rows.get(relPath)));
  }

  /** Every live row, keyed by path. Lock-free snapshot. */
  all(): Promise<Map<string, GenRow>> {
    return new Promise((resolve) => resolve(this.#load().rows));
  }

  /**
   * Under the lock: read the row and the file at `absPath`, hand both to `fn`, and when `fn`
   * returns `write`, atomically write those bytes to `absPath`, shadow the old and new content,
   * and append the bumped row (fdatasync'd) before the lock is released. `fn` does the
   * compare; throwing from it aborts with nothing written. `prev` is the row `fn` saw.
   */
  transact<T>(
    relPath: string,
    absPath: string,
    fn: (view: DiskView) => TransactStep<T> | Promise<TransactStep<T>>,
    options: {
      adoptBypass?: boolean;
      /** Told of an adoption at once, so it is known even if `fn` then throws. */
      onAdopt?: (adopted: { row: GenRow; prevGen: number }) => void;
    } = {},
  ): Promise<
    { result: T; row?: GenRow; prev?: GenRow; adopted?: { row: GenRow; prevGen: number } }
  > {
    checkRelPath(relPath);
    return this.#locked(async () => {
      const table = this.#load();
      let view = await readView(table.rows.get(relPath), absPath);
      let adopted: { row: GenRow; prevGen: number } | undefined;
      if (options.adoptBypass && view.status === "bypass" && view.disk) {
        // Adopting under the same lock as the write saves a second lock, load and hash, and
        // no other writer can slip in between the adoption and the write that builds on it.
        const row = await this.#commit(table, relPath, view, view.disk, "bypass", undefined);
        adopted = { row, prevGen: view.row?.gen ?? 0 };
        options.onAdopt?.(adopted);
        view = { ...view, status: "tracked-ok", row };
      }
      const step = await fn(view);
      if (!step.write) return { result: step.result, prev: view.row, adopted };
      const { bytes, writer, callId } = step.write;
      const row = await this.#commit(table, relPath, view, bytes, writer, absPath, callId);
      return { result: step.result, row, prev: view.row, adopted };
    });
  }

  /**
   * Record an outside edit: when the file no longer matches its row, append a row for the
   * bytes on disk (writer `bypass`, gen + 1) without touching the file. Otherwise no change.
   */
  adopt(
    relPath: string,
    absPath: string,
  ): Promise<{ adopted: boolean; view: DiskView; row?: GenRow }> {
    checkRelPath(relPath);
    return this.#locked(async () => {
      const table = this.#load();
      const view = await readView(table.rows.get(relPath), absPath);
      if (view.status !== "bypass" || !view.disk) return { adopted: false, view };
      const row = await this.#commit(table, relPath, view, view.disk, "bypass", undefined);
      return { adopted: true, view, row };
    });
  }

  /**
   * After a crash: bring `relPath`'s file and row into agreement, under the lock. When the row
   * is not yet in the audit log (`audited` false) and the file still holds the previous gen's
   * bytes, the write never landed: finish it from the new gen's shadow. Any other mismatch is an
   * edit around the kernel and is adopted as a new gen. `pending` is the row that had not been
   * audited, so the caller can log it (with its call id) before anything else.
   */
  settle(
    relPath: string,
    absPath: string,
    audited: boolean,
  ): Promise<{ action: "ok" | "rolled-forward" | "adopted"; row?: GenRow; prevGen?: number }> {
    checkRelPath(relPath);
    return this.#locked(async () => {
      const table = this.#load();
      const view = await readView(table.rows.get(relPath), absPath);
      const row = view.row;
      if (!row || view.status === "tracked-ok" || view.status === "untracked") {
        return { action: "ok", row };
      }
      if (!audited) {
        // gen - 1 may be 0: the shadow of an untracked file's bytes before its first write.
        const previous = await readShadow(this.ostkDir, relPath, row.gen - 1);
        const before = previous ? await contentHash(previous) : undefined;
        const next = await readShadow(this.ostkDir, relPath, row.gen);
        const notLanded = view.diskHash === undefined || view.diskHash === before;
        if (next && notLanded) {
          Deno.mkdirSync(absPath.slice(0, absPath.lastIndexOf("/")) || "/", { recursive: true });
          await atomicWrite(absPath, next);
          return { action: "rolled-forward", row };
        }
      }
      if (view.status !== "bypass" || !view.disk) return { action: "ok", row };
      const adopted = await this.#commit(table, relPath, view, view.disk, "bypass", undefined);
      return { action: "adopted", row: adopted, prevGen: row.gen };
    });
  }

  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    const prev = queues.get(this.#lock) ?? Promise.resolve();
    let release!: () => void;
    const tail = prev.then(() => new Promise<void>((resolve) => (release = resolve)));
    queues.set(this.#lock, tail);
    await prev;
    let handle: Deno.FsFile | undefined;
    try {
      // Never deleted: removing a lock file lets two holders lock two different inodes.
      handle = Deno.openSync(this.#lock, { read: true, write: true, create: true, mode: 0o600 });
      await handle.lock(true);
      return await fn();
    } catch (err) {
      if (!handle && isNotFound(err)) {
        throw new OstkError(
          "not_found",
          `no kernel directory at ${this.ostkDir}`,
          { file: this.ostkDir },
          "run 'ostk init' in the project root",
        );
      }
      throw err;
    } finally {
      handle?.close(); // closing the only handle drops the flock
      release();
      if (queues.get(this.#lock) === tail) queues.delete(this.#lock);
    }
  }

  #load(): Loaded {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(this.#table);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return { rows: new Map(), lines: 0, validLength: 0, tornBytes: 0, exists: false };
    }
    return parseTable(bytes, this.#table);
  }

  async #commit(
    table: Loaded,
    relPath: string,
    view: DiskView,
    bytes: Uint8Array,
    writer: string,
    absPath: string | undefined,
    callId?: string,
  ): Promise<GenRow> {
    const prevGen = view.row?.gen ?? 0;
    const row: GenRow = {
      path: relPath,
      gen: prevGen + 1,
      hash: await contentHash(bytes),
      writer,
      ts: new Date().toISOString(),
      ...(callId ? { call_id: callId } : {}),
    };
    const dir = await this.#shadowDir(relPath);
    const have = listShadows(dir);
    // Shadows are written without fsync: each name carries its content's hash and readShadow
    // checks it, so a shadow torn by a power cut reads as missing (Hot PR then answers tier 3)
    // and can never feed a wrong merge. That keeps two fsyncs per shadow off every write.
    // The old content first: once the rename below lands, the shadow is its only copy. Only
    // bytes the row vouches for (or an untracked file's, as gen 0) may stand for an old gen;
    // gen 0 is always rewritten because a lost table restarts gens over stale shadows.
    const untracked = view.status === "untracked";
    const vouched = untracked || view.status === "tracked-ok";
    if (view.disk && view.diskHash && vouched && (untracked || !have.has(prevGen))) {
      await this.#writeShadow(dir, have, prevGen, view.disk, view.diskHash);
    }
    // Always overwritten: a crash before an earlier append may have left a shadow at this gen.
    // A copy rather than a hard link to the new file: an in-place edit around the kernel would
    // change a linked shadow too, and lose the base a later Hot PR needs.
    await this.#writeShadow(dir, have, row.gen, bytes, row.hash);
    // Intent before effect: the row (with the new bytes' shadow) goes in before the rename, so a
    // crash between them leaves a write that recovery can finish (`settle`) rather than a file
    // that looks edited around the kernel, whose call would then run twice when replayed.
    await this.#append(table, row);
    if (absPath !== undefined) {
      Deno.mkdirSync(absPath.slice(0, absPath.lastIndexOf("/")) || "/", { recursive: true });
      await atomicWrite(absPath, bytes);
    }
    for (const [gen, name] of have) {
      if (gen > row.gen - this.#shadowKeep) continue;
      try {
        Deno.removeSync(`${dir}/${name}`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return row;
  }

  async #writeShadow(
    dir: string,
    have: Map<number, string>,
    gen: number,
    bytes: Uint8Array,
    hash: string,
  ): Promise<void> {
    const name = shadowFile(gen, hash);
    const before = have.get(gen);
    await atomicWrite(`${dir}/${name}`, bytes, { durable: false });
    if (before && before !== name) Deno.removeSync(`${dir}/${before}`);
    have.set(gen, name);
  }

  async #append(table: Loaded, row: GenRow): Promise<void> {
    // Cut a crashed append's torn tail back to the last whole row before writing after it;
    // otherwise the fragment would glue onto this row and corrupt a line in the middle.
    if (table.tornBytes > 0) Deno.truncateSync(this.#table, table.validLength);
    const line = encoder.encode(`${serialize(row)}\n`);
    const file = Deno.openSync(this.#table, { append: true, create: true, mode: 0o644 });
    try {
      let written = 0;
      while (written < line.length) written += file.writeSync(line.subarray(written));
      // Not fsynced: the audit row appended after this write is the commit point. A row lost to
      // a power cut leaves the file newer than its row, which recovery adopts as a new gen
      // (`ostk os recover`); a kill -9 loses nothing, since the page cache survives the process.
    } finally {
      file.close();
    }
    if (!table.exists) await syncDir(this.ostkDir);
    table.rows.set(row.path, row);
    table.lines++;
    table.validLength += line.length;
    table.tornBytes = 0;
    table.exists = true;
    const grown = table.lines > COMPACT_FACTOR * table.rows.size;
    if (grown && table.lines >= this.#compactMinLines) await this.#rewrite(table);
  }

  /** Replace the table by one row per path. atomicWrite, so a lock-free reader sees old or new. */
  async #rewrite(table: Loaded): Promise<void> {
    const text = [...table.rows.values()].map((row) => `${serialize(row)}\n`).join("");
    await atomicWrite(this.#table, text);
    table.lines = table.rows.size;
    table.validLength = encoder.encode(text).length;
    table.tornBytes = 0;
    table.exists = true;
  }

  async #shadowDir(relPath: string): Promise<string> {
    const name = await shadowName(relPath);
    const root = `${this.ostkDir}/${SHADOWS}`;
    Deno.mkdirSync(root, { recursive: true });
    const dir = `${root}/${name}`;
    try {
      Deno.mkdirSync(dir);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      return dir;
    }
    // A hashed name says nothing to a person running `ls`; leave the path beside the shadows.
    if (name.startsWith("#")) await atomicWrite(`${dir}/path`, `${relPath}\n`);
    return dir;
  }
}

/**
 * Write `bytes` to the project file if the caller's `expectedGen` is still current (or
 * unconditionally when it is omitted), bumping the gen. Throws `OstkError("conflict")` when the
 * gen moved on, and also when the file was edited outside the kernel: that edit must be adopted
 * (and audited) first, or this write would erase it without a trace.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { casWrite } from "./gen_table.ts";
 * const dir = await Deno.makeTempDir();
 * const v = (text: string) => new TextEncoder().encode(text);
 * const w = { ostkDir: dir, absPath: `${dir}/a.txt`, relPath: "a.txt", writer: "doc" };
 * const first = await casWrite({ ...w, bytes: v("v1\n"), expectedGen: 0 });
 * assert.equal(first.gen, 1);
 * assert.equal(first.prevGen, 0);
 * // A second writer that also read gen 0 loses the swap and the file keeps the first write.
 * await assert.rejects(casWrite({ ...w, bytes: v("v2\n"), expectedGen: 0 }), { code: "conflict" });
 * assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "v1\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function casWrite(options: {
  ostkDir: string;
  absPath: string;
  relPath: string;
  bytes: Uint8Array;
  writer: string;
  expectedGen?: number;
  shadowKeep?: number;
}): Promise<{ gen: number; prevGen: number; hash: string }> {
  const { relPath, expectedGen } = options;
  const table = new GenTable(options.ostkDir, { shadowKeep: options.shadowKeep });
  const { row, prev } = await table.transact(relPath, options.absPath, (view) => {
    const current = view.row?.gen ?? 0;
    if (view.status === "bypass") {
      throw new OstkError(
        "conflict",
        `${relPath} changed outside the kernel since gen ${current} ` +
          `(disk ${view.diskHash?.slice(0, 12)}, gen table ${view.row?.hash.slice(0, 12)})`,
        { file: relPath },
        "adopt it with adoptBypass and audit bypass.detected, then re-read",
      );
    }
    if (expectedGen !== undefined && expectedGen !== current) {
      throw new OstkError(
        "conflict",
        `${relPath}: expected gen ${expectedGen}, current is ${current}`,
        { file: relPath },
        "re-read the file and apply the edit again",
      );
    }
    return { write: { bytes: options.bytes, writer: options.writer }, result: undefined };
  });
  return { gen: row!.gen, prevGen: prev?.gen ?? 0, hash: row!.hash };
}

/**
 * The content of `relPath` at `gen` (gen 0: the untracked content first overwritten), or
 * undefined when it was never shadowed or has been pruned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { casWrite, readShadow } from "./gen_table.ts";
 * const dir = await Deno.makeTempDir();
 * const w = { ostkDir: dir, absPath: `${dir}/a.txt`, relPath: "a.txt", writer: "doc" };
 * await Deno.writeTextFile(w.absPath, "by hand\n");
 * await casWrite({ ...w, bytes: new TextEncoder().encode("v1\n") });
 * await casWrite({ ...w, bytes: new TextEncoder().encode("v2\n") });
 * const decode = (bytes?: Uint8Array) => new TextDecoder().decode(bytes);
 * const text = async (gen: number) => decode(await readShadow(dir, "a.txt", gen));
 * assert.equal(await text(0), "by hand\n"); // the untracked content the first write replaced
 * assert.equal(await text(1), "v1\n");
 * assert.equal(await readShadow(dir, "b.txt", 1), undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readShadow(
  ostkDir: string,
  relPath: string,
  gen: number,
): Promise<Uint8Array | undefined> {
  checkRelPath(relPath);
  if (!Number.isInteger(gen) || gen < 0) {
    throw new OstkError("usage", `expected a gen >= 0, got ${gen}`);
  }
  const dir = `${ostkDir}/${SHADOWS}/${await shadowName(relPath)}`;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = entry.name.match(SHADOW_NAME);
      if (!match || Number(match[1]) !== gen) continue;
      const bytes = await Deno.readFile(`${dir}/${entry.name}`);
      // A shadow torn by a power cut (they are not fsynced) fails this and reads as missing.
      return (await contentHash(bytes)).startsWith(match[2]) ? bytes : undefined;
    }
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  return undefined;
}

/**
 * Compare the file at `absPath` with the row of `relPath`, under the lock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { casWrite, verifyOnDisk } from "./gen_table.ts";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/a.txt`;
 * assert.equal((await verifyOnDisk(dir, "a.txt", path)).status, "untracked");
 * const bytes = new TextEncoder().encode("v1\n");
 * await casWrite({ ostkDir: dir, absPath: path, relPath: "a.txt", bytes, writer: "doc" });
 * assert.equal((await verifyOnDisk(dir, "a.txt", path)).status, "tracked-ok");
 * await Deno.writeTextFile(path, "edited outside the kernel\n");
 * assert.equal((await verifyOnDisk(dir, "a.txt", path)).status, "bypass");
 * await Deno.remove(path);
 * assert.equal((await verifyOnDisk(dir, "a.txt", path)).status, "deleted");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function verifyOnDisk(
  ostkDir: string,
  relPath: string,
  absPath: string,
): Promise<{ status: DiskStatus; row: GenRow | undefined; diskHash: string | undefined }> {
  // Under the lock, so a kernel write in flight never looks like a bypass.
  const { result } = await new GenTable(ostkDir).transact(relPath, absPath, (view) => ({
    result: { status: view.status, row: view.row, diskHash: view.diskHash },
  }));
  return result;
}

/**
 * Record an outside edit as a new gen with writer `bypass`; no change unless the status is
 * `bypass`. The caller appends the `bypass.detected` audit row.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { adoptBypass, casWrite } from "./gen_table.ts";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/a.txt`;
 * const bytes = new TextEncoder().encode("v1\n");
 * await casWrite({ ostkDir: dir, absPath: path, relPath: "a.txt", bytes, writer: "doc" });
 * assert.equal((await adoptBypass(dir, "a.txt", path)).adopted, false); // nothing to adopt
 * await Deno.writeTextFile(path, "edited outside the kernel\n");
 * const r = await adoptBypass(dir, "a.txt", path);
 * assert.ok(r.adopted);
 * assert.equal(r.prevGen, 1);
 * assert.equal(r.row?.gen, 2);
 * assert.equal(r.row?.writer, "bypass");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function adoptBypass(
  ostkDir: string,
  relPath: string,
  absPath: string,
  options: GenTableOptions = {},
): Promise<{ adopted: boolean; status: DiskStatus; row: GenRow | undefined; prevGen: number }> {
  const { adopted, view, row } = await new GenTable(ostkDir, options).adopt(relPath, absPath);
  return { adopted, status: view.status, row: row ?? view.row, prevGen: view.row?.gen ?? 0 };
}

function tableError(file: string, line: number, why: string): OstkError {
  return new OstkError(
    "integrity",
    `${TABLE} line ${line}: ${why}`,
    { file, line },
    "the table is damaged; restore it from a backup or fix the line by hand",
  );
}

function serialize(row: GenRow): string {
  // Fixed key order so rows read the same in `cat` and diff cleanly.
  const { path, gen, hash, writer, ts, call_id } = row;
  return JSON.stringify({ path, gen, hash, writer, ts, ...(call_id ? { call_id } : {}) });
}

/** Parse the table; a torn last line is not an error, anything else malformed is. */
function parseTable(bytes: Uint8Array, file: string): Loaded {
  const rows = new Map<string, GenRow>();
  const validLength = bytes.lastIndexOf(NEWLINE) + 1;
  let start = 0;
  let lineNo = 0;
  while (start < validLength) {
    const end = bytes.indexOf(NEWLINE, start);
    lineNo++;
    let value: unknown;
    try {
      value = JSON.parse(strictDecoder.decode(bytes.subarray(start, end)));
    } catch (err) {
      const why = `expected one JSON row, got unparsable text (${(err as Error).message})`;
      throw tableError(file, lineNo, why);
    }
    const parsed = GenRowSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw tableError(file, lineNo, `${issue.path.join(".") || "row"}: ${issue.message}`);
    }
    const row = parsed.data;
    const prev = rows.get(row.path);
    if (prev && row.gen <= prev.gen) {
      throw tableError(file, lineNo, `gen of ${row.path} went from ${prev.gen} to ${row.gen}`);
    }
    rows.set(row.path, row);
    start = end + 1;
  }
  const tornBytes = bytes.length - validLength;
  return { rows, lines: lineNo, validLength, tornBytes, exists: true };
}

async function readView(row: GenRow | undefined, absPath: string): Promise<DiskView> {
  let disk: Uint8Array | undefined;
  try {
    disk = Deno.readFileSync(absPath);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const diskHash = disk ? await contentHash(disk) : undefined;
  const status: DiskStatus = !row
    ? "untracked"
    : diskHash === undefined
    ? "deleted"
    : diskHash === row.hash
    ? "tracked-ok"
    : "bypass";
  return { status, row, disk, diskHash };
}

/** `<gen>.<first 16 hex of the content hash>`: the name says what the bytes must hash to. */
function shadowFile(gen: number, hash: string): string {
  return `${gen}.${hash.slice(0, 16)}`;
}

const SHADOW_NAME = /^(\d+)\.([0-9a-f]{16})$/;

/** Gens shadowed in `dir`, by file name. Also removes atomicWrite leftovers (we hold the lock). */
function listShadows(dir: string): Map<number, string> {
  const gens = new Map<number, string>();
  for (const entry of Deno.readDirSync(dir)) {
    const match = entry.name.match(SHADOW_NAME);
    if (match) gens.set(Number(match[1]), entry.name);
    else if (entry.name.endsWith(".tmp")) Deno.removeSync(`${dir}/${entry.name}`);
  }
  return gens;
}

/**
 * A filesystem-safe directory name for `relPath`: its encodeURIComponent form, or `#` + the
 * SHA-256 of the path when that is too long. `#` is always escaped by encodeURIComponent, so
 * the two forms can never collide.
 */
async function shadowName(relPath: string): Promise<string> {
  const encoded = encodeURIComponent(relPath);
  if (encoded.length <= MAX_SHADOW_NAME) return encoded;
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(relPath));
  return `#${toHex(new Uint8Array(digest))}`;
}

function checkRelPath(relPath: string): void {
  const bad = relPath === "" || relPath.startsWith("/") || relPath.includes("\0") ||
    relPath.split("/").some((part) => part === "" || part === "." || part === "..");
  if (bad) {
    throw new OstkError(
      "usage",
      `expected a project-relative posix path, got ${JSON.stringify(relPath)}`,
      {},
      "resolve the path against the project root first",
    );
  }
}
