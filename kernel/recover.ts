/**
 * Bring the generation table and the audit log back into agreement after a crash. A writer
 * killed between its steps leaves one of three gaps, each closed here:
 *   - file renamed, table row not appended → the file looks edited around the kernel: adopt it
 *     as a new gen and audit `bypass.detected`;
 *   - table row appended, audit row not → audit `gen.recover` for the row the log is missing;
 *   - audit row torn → the next append cuts it back and logs `audit.repair`.
 */
import type { AuditLog } from "./audit.ts";
import { FoldCache } from "./fold_cache.ts";
import { GenTable } from "./gen_table.ts";
import type { OstkPaths } from "./layout.ts";
import { processAlive } from "./proc.ts";

/** What {@linkcode recoverProject} changed. */
export interface RecoveryReport {
  adopted: string[];
  recovered: string[];
  /** Temp files of atomic writes killed before their rename, removed. */
  removedTemps: string[];
}

/**
 * Reconcile every tracked path. Safe to run at any time; a second run changes nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuditLog, readAuditRows } from "./audit.ts";
 * import { casWrite } from "./gen_table.ts";
 * import { loadOrCreateOperatorKey } from "./identity.ts";
 * import { initProject } from "./project_init.ts";
 * import { recoverProject } from "./recover.ts";
 * const dir = await Deno.makeTempDir();
 * const key = await loadOrCreateOperatorKey(`${dir}/key/identity.key`);
 * const { paths } = await initProject(dir, key);
 * // A writer that died after its gen row and before its audit row.
 * const bytes = new TextEncoder().encode("v1\n");
 * const w = { ostkDir: paths.dir, absPath: `${dir}/a.txt`, relPath: "a.txt", writer: "w-1" };
 * await casWrite({ ...w, bytes });
 * const log = new AuditLog(paths.audit, { signer: key.signer, headPath: paths.head });
 * assert.deepEqual((await recoverProject(paths, log)).recovered, ["a.txt"]);
 * assert.equal((await readAuditRows(paths.audit)).at(-1)?.event, "gen.recover");
 * assert.deepEqual((await recoverProject(paths, log)).recovered, []); // a second run: nothing
 * log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function recoverProject(
  paths: OstkPaths,
  log: AuditLog,
  fold: FoldCache = new FoldCache(paths.audit),
): Promise<RecoveryReport> {
  const table = new GenTable(paths.dir);
  const report: RecoveryReport = { adopted: [], recovered: [], removedTemps: [] };
  const before = await fold.refresh();
  for (const pending of (await table.all()).values()) {
    const path = pending.path;
    report.removedTemps.push(...await removeDeadTemps(paths.root, path));
    const logged = before.files.get(path);
    const audited = logged !== undefined && logged.gen >= pending.gen;
    const settled = await table.settle(path, `${paths.root}/${path}`, audited);
    if (!audited) {
      // The row's call died before its audit row: log it now, with its call id, so a replayed
      // turn skips the call instead of running it a second time.
      await log.append({
        event: "gen.recover",
        actor: "kernel",
        fields: {
          path,
          gen: pending.gen,
          hash: pending.hash,
          writer: pending.writer,
          ...(pending.call_id ? { call_id: pending.call_id } : {}),
          ...(settled.action === "rolled-forward" ? { rolled_forward: true } : {}),
        },
      });
      report.recovered.push(path);
    }
    if (settled.action === "adopted" && settled.row) {
      await log.append({
        event: "bypass.detected",
        actor: "kernel",
        fields: {
          path,
          gen: settled.row.gen,
          prev_gen: settled.prevGen ?? 0,
          hash: settled.row.hash,
          seen_by: "recovery",
        },
      });
      report.adopted.push(path);
    }
  }
  return report;
}

/**
 * A writer killed inside atomicWrite leaves `.<name>.<pid>.<n>.tmp` beside the file. Only a
 * writer holding the gen lock creates those for a tracked file, and a dead one's pid is gone,
 * so a temp whose pid is not a live process can be removed.
 */
async function removeDeadTemps(root: string, rel: string): Promise<string[]> {
  const slash = rel.lastIndexOf("/");
  const dir = slash < 0 ? root : `${root}/${rel.slice(0, slash)}`;
  const base = rel.slice(slash + 1);
  const removed: string[] = [];
  const prefix = `.${base}.`;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return removed;
    throw err;
  }
  for (const entry of entries) {
    if (!entry.name.startsWith(prefix) || !entry.name.endsWith(".tmp")) continue;
    const match = entry.name.slice(prefix.length).match(/^(\d+)\.\d+\.tmp$/);
    // Unknown liveness (no /proc) counts as alive: never remove a running writer's temp.
    if (!match || (await processAlive(Number(match[1]))) !== false) continue;
    try {
      Deno.removeSync(`${dir}/${entry.name}`);
      removed.push(slash < 0 ? entry.name : `${rel.slice(0, slash)}/${entry.name}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return removed;
}
