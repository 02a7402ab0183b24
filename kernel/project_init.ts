/**
 * `ostk init`: lay down `.ostk/`. Idempotent: each part is created only if absent, existing files
 * are never rewritten, and a second run reports that the project was already initialised.
 */
import { AuditLog } from "./audit.ts";
import { OstkError } from "./errors.ts";
import { HUMANFILE_TEMPLATE } from "./humanfile.ts";
import { formatIdentityPub, type OperatorKey, readIdentityPub, sameKey } from "./identity.ts";
import { type OstkPaths, ostkPaths } from "./layout.ts";
import { DEFAULT_PIN_CAPS } from "./pin_caps.ts";
import { syncDir } from "./atomic_write.ts";

/**
 * Lines of `.ostk/.gitignore`: runtime files that must never be committed. What stays tracked
 * is what a clone needs to verify and reproduce the project: HUMANFILE, the audit log and its
 * head, the gen table, identity.pub, pins, agents and profiles.
 */
export const GITIGNORE = `# runtime state of ostk; never commit
ostk.sock
ostk.sock.path
anchor.lock
daemon.log
drivers/
gen_table.lock
shadows/
drain/
handoff/
nudges/
traces/
needles/*.lock
*.tmp
`;

/** What {@linkcode initProject} did. */
export interface InitResult {
  root: string;
  paths: OstkPaths;
  /** Parts created by this run, relative to the root. */
  created: string[];
  /** True when `.ostk/` existed before this run. */
  existed: boolean;
  /** Set when identity.pub holds a key other than this operator's. */
  foreignKey?: string;
}

/**
 * Create (or complete) `.ostk/` in `dir`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initProject } from "./project_init.ts";
 * import { loadOrCreateOperatorKey } from "./identity.ts";
 * const dir = await Deno.makeTempDir();
 * const key = await loadOrCreateOperatorKey(`${dir}/key/identity.key`);
 * const first = await initProject(dir, key);
 * const again = await initProject(dir, key);
 * assert.ok(!first.existed);
 * assert.ok(again.existed);
 * assert.equal(again.created.length, 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function initProject(dir: string, key: OperatorKey): Promise<InitResult> {
  let root: string;
  try {
    root = await Deno.realPath(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError("not_found", `directory ${dir} does not exist`, {}, "create it first");
    }
    throw err;
  }
  const paths = ostkPaths(root);
  const created: string[] = [];
  const rel = (p: string) => p.slice(root.length + 1);
  const existed = await makeDir(paths.dir);
  if (!existed) created.push(".ostk/");
  for (const d of [paths.agents, paths.drain, `${paths.pins}/default`]) {
    if (!await makeDir(d)) created.push(rel(d) + "/");
  }
  const files: [string, string][] = [
    [paths.humanfile, HUMANFILE_TEMPLATE],
    [paths.defaultPin, DEFAULT_PIN_CAPS],
    [paths.gitignore, GITIGNORE],
    [paths.genTable, ""],
    [paths.identityPub, formatIdentityPub(key.signer.publicRaw, "operator")],
  ];
  for (const [path, text] of files) {
    if (await createFile(path, text)) created.push(rel(path));
  }
  let foreignKey: string | undefined;
  const projectKey = await readIdentityPub(paths.identityPub);
  if (!sameKey(projectKey, key.signer.publicRaw)) {
    foreignKey = paths.identityPub;
  }
  if (await createFile(paths.audit, "")) created.push(rel(paths.audit));
  // Decided under the log's lock from its content, not from whether this run created the file:
  // a crash between creating the file and the first append must not leave a log with no root row.
  const log = new AuditLog(paths.audit, { signer: key.signer, headPath: paths.head });
  try {
    const rows = await log.appendComputed((rows) => {
      if (rows.length > 0) return [];
      if (foreignKey) {
        throw new OstkError(
          "permission",
          "identity.pub belongs to another operator; this key cannot sign the project's log",
          { file: paths.identityPub, line: 1 },
          "run as the project's operator (OSTK_IDENTITY), or remove identity.pub if the project is yours",
        );
      }
      return [{ event: "os.init", actor: "operator", fields: { root, key: key.fingerprint } }];
    });
    if (rows.length > 0) created.push(rel(paths.head));
  } finally {
    log.close();
  }
  await syncDir(paths.dir);
  return { root, paths, created, existed, foreignKey };
}

/** mkdir; true when it already existed. */
async function makeDir(path: string): Promise<boolean> {
  try {
    await Deno.mkdir(path, { recursive: false });
    return false;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return true;
    if (err instanceof Deno.errors.NotFound) {
      await Deno.mkdir(path, { recursive: true });
      return false;
    }
    throw err;
  }
}

/** Create a file with `text` unless it exists; true when this call created it. */
async function createFile(path: string, text: string): Promise<boolean> {
  try {
    await Deno.writeTextFile(path, text, { createNew: true });
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw err;
  }
}
