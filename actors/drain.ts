/**
 * Drain snapshots on disk: `.ostk/drain/<lineage>.json`, rewritten atomically at every turn
 * boundary and once more when a session drains. Also `drainWriterLogic`, the default
 * `drainWriter` actor the daemon provides to the session machine.
 */
import { fromPromise } from "xstate";
import { atomicWrite } from "../kernel/atomic_write.ts";
import { OstkError } from "../kernel/errors.ts";
import { MACHINE_VERSION, type SessionContext } from "./session_machine.ts";
import {
  AliasSchema,
  type DrainSnapshot,
  DrainSnapshotSchema,
  type DrainWriterInput,
  HISTORY_LIMIT,
} from "./session_schema.ts";

/**
 * Write `snapshot` to `<dir>/<lineage>.json` (whole file or nothing). Creates `dir` if missing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readDrain, writeDrain } from "./drain.ts";
 * import { MACHINE_VERSION } from "./session_machine.ts";
 * const dir = await Deno.makeTempDir();
 * const snapshot = {
 *   version: 1 as const, lineage: "editor-1", anchor: "a1", ts: "2025-01-01T00:00:00.000Z",
 *   cpu: { kind: "script" as const, script: "t.jsonl" }, turns: 2, tokens: { in: 0, out: 0 },
 *   history: [], revival: "revive" as const, machine: {}, machine_version: MACHINE_VERSION,
 * };
 * await writeDrain(`${dir}/drain`, snapshot); // makes the directory on first use
 * assert.deepEqual(await readDrain(`${dir}/drain`, "editor-1"), snapshot);
 * const escape = { ...snapshot, lineage: "../x" }; // not an alias, so not a file name
 * await assert.rejects(writeDrain(`${dir}/drain`, escape));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeDrain(dir: string, snapshot: DrainSnapshot): Promise<void> {
  const checked = DrainSnapshotSchema.parse(snapshot);
  const path = drainPath(dir, checked.lineage);
  const text = JSON.stringify(checked) + "\n";
  try {
    await atomicWrite(path, text);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    // Only the first write of a project meets a missing directory; make it and go again.
    await Deno.mkdir(dir, { recursive: true });
    await atomicWrite(path, text);
  }
}

/**
 * Read and check `<dir>/<alias>.json`. A snapshot written by an unknown machine version is
 * refused rather than guessed at.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readDrain, writeDrain } from "./drain.ts";
 * import { MACHINE_VERSION } from "./session_machine.ts";
 * const dir = await Deno.makeTempDir();
 * await writeDrain(dir, {
 *   version: 1, lineage: "editor-1", anchor: "a1", ts: "2025-01-01T00:00:00.000Z",
 *   cpu: { kind: "script", script: "t.jsonl" }, turns: 2, tokens: { in: 0, out: 0 },
 *   history: [], revival: "revive", machine: {}, machine_version: MACHINE_VERSION,
 * });
 * assert.equal((await readDrain(dir, "editor-1")).turns, 2);
 * await assert.rejects(readDrain(dir, "nobody-1"), { code: "not_found" });
 * // A newer ostk's snapshot is refused, not guessed at.
 * await assert.rejects(readDrain(dir, "editor-1", [MACHINE_VERSION + 1]), /is not one this ostk/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readDrain(
  dir: string,
  alias: string,
  knownVersions: readonly number[] = [MACHINE_VERSION],
): Promise<DrainSnapshot> {
  const path = drainPath(dir, alias);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError("not_found", `${path}: no drain snapshot for '${alias}'`, { file: path });
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message : String(err);
    throw new OstkError("bad_input", `${path}: not JSON: ${why}`, { file: path });
  }
  const version = (json as { machine_version?: unknown } | null)?.machine_version;
  if (typeof version === "number" && !knownVersions.includes(version)) {
    throw new OstkError(
      "bad_input",
      `${path}: machine_version ${version} is not one this ostk knows (${
        knownVersions.join(", ")
      })`,
      { file: path },
      "run the ostk that wrote it, or delete the file to reap the session",
    );
  }
  const parsed = DrainSnapshotSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new OstkError("bad_input", `${path}: ${where}: ${issue.message}`, { file: path });
  }
  if (parsed.data.lineage !== alias) {
    throw new OstkError(
      "integrity",
      `${path}: lineage is '${parsed.data.lineage}', expected '${alias}'`,
      { file: path },
    );
  }
  return parsed.data;
}

/** The lineages that have a drain snapshot in `dir`, sorted; none when `dir` does not exist. */
export async function listDrains(dir: string): Promise<string[]> {
  const aliases: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      // Temp files of an interrupted atomicWrite start with '.' and end in '.tmp'.
      if (!entry.isFile || !entry.name.endsWith(".json")) continue;
      const alias = entry.name.slice(0, -".json".length);
      if (AliasSchema.safeParse(alias).success) aliases.push(alias);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return aliases.sort();
}

function drainPath(dir: string, alias: string): string {
  const checked = AliasSchema.safeParse(alias);
  if (!checked.success) {
    throw new OstkError("bad_input", `bad lineage '${alias}' for a drain snapshot`);
  }
  return `${dir}/${alias}.json`;
}

/** What the default `drainWriter` needs from the daemon. */
export interface DrainWriterDeps {
  /** `.ostk/drain` of the project. */
  dir: string;
  /** This daemon's anchor id, recorded in every snapshot. */
  anchor: string;
  /** Milliseconds since the epoch. */
  now(): number;
}

/**
 * The default `drainWriter` actor: snapshots its parent session (context and
 * `getPersistedSnapshot()`) the moment it starts, then writes it. Writes of one lineage are
 * queued in start order, so a turn's write still in flight can never land after the final one.
 */
export function drainWriterLogic(deps: DrainWriterDeps) {
  const tails = new Map<string, Promise<void>>();
  return fromPromise<void, DrainWriterInput>(({ input, self }) => {
    const session = self._parent;
    if (!session) {
      return Promise.reject(new Error("drainWriter must run as a child of a session actor"));
    }
    // Taken now, synchronously: the parent has already committed the transition that invoked us.
    const context = (session.getSnapshot() as { context: SessionContext }).context;
    const snapshot: DrainSnapshot = {
      version: 1,
      lineage: input.alias,
      anchor: deps.anchor,
      ts: new Date(deps.now()).toISOString(),
      cpu: context.cpu,
      turns: context.turns,
      tokens: context.tokens,
      history: context.history.slice(-HISTORY_LIMIT),
      revival: context.revival,
      machine: session.getPersistedSnapshot(),
      machine_version: MACHINE_VERSION,
    };
    const write = (tails.get(input.alias) ?? Promise.resolve()).then(() =>
      writeDrain(deps.dir, snapshot)
    );
    // The queue only orders writes; each failure is reported to its own session via `write`.
    const tail = write.then(() => {}, () => {});
    tails.set(input.alias, tail);
    tail.then(() => {
      if (tails.get(input.alias) === tail) tails.delete(input.alias);
    });
    return write;
  });
}
