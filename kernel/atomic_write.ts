/** Crash-safe whole-file replacement: the target holds either its old bytes or the new ones. */

/** Options for {@linkcode atomicWrite}. */
export interface AtomicWriteOptions {
  /** File mode for a new file; an existing target keeps its own mode. */
  mode?: number;
  /**
   * fsync the data and the directory. Off only for hints that may lag after power loss
   * without harm (for example `audit.head`, whose log is synced first).
   */
  durable?: boolean;
}

let tmpCounter = 0;

/*
 * Why sync calls for everything but fsync: each async file op in Deno is a thread-pool round
 * trip (~0.1–0.2 ms measured here), longer than the open/write/rename syscalls themselves. The
 * fsyncs stay async, so a slow disk never stalls the event loop.
 */

/**
 * Write `data` to `path` through a temporary file in the same directory, then rename it over
 * the target. Same directory so the rename stays on one filesystem and is atomic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { atomicWrite } from "./atomic_write.ts";
 * const dir = await Deno.makeTempDir();
 * await atomicWrite(`${dir}/a.txt`, "hello\n");
 * await atomicWrite(`${dir}/a.txt`, "again\n");
 * assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "again\n");
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.txt"]); // no temp left
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function atomicWrite(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const durable = options.durable ?? true;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
  const base = path.slice(slash + 1);
  let mode = options.mode ?? 0o644;
  try {
    mode = Deno.statSync(path).mode! & 0o7777;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const tmp = `${dir}/.${base}.${Deno.pid}.${++tmpCounter}.tmp`;
  const file = Deno.openSync(tmp, { write: true, createNew: true, mode });
  try {
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    // The umask may have narrowed the mode given to open; the target's mode must survive.
    Deno.chmodSync(tmp, mode);
    if (durable) await file.sync();
  } catch (err) {
    file.close();
    removeQuietly(tmp);
    throw err;
  }
  file.close();
  try {
    Deno.renameSync(tmp, path);
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
  // Without syncing the directory, the rename itself may not survive power loss.
  if (durable) await syncDir(dir);
}

/** Best-effort cleanup of a temp file after a failure that is already being reported. */
function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) console.error(`ostk: could not remove ${path}`);
  }
}

/** fsync a directory so entries created or renamed in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = Deno.openSync(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}
