/** Open an initialised project for reading or for signed appends. */
import { AuditLog } from "./audit.ts";
import { OstkError } from "./errors.ts";
import {
  fingerprint,
  loadOperatorKey,
  type OperatorKey,
  operatorKeyPath,
  readIdentityPub,
  sameKey,
} from "./identity.ts";
import { findRoot, type OstkPaths, ostkPaths } from "./layout.ts";

/** Find the project containing `start` and return its paths. */
export async function locateProject(start: string = Deno.cwd()): Promise<OstkPaths> {
  return ostkPaths(await findRoot(start));
}

/**
 * Load the operator key and check it is the one this project trusts. Signing with another key
 * would write rows that fail verification, so refuse before anything is written.
 */
export async function projectSigner(
  paths: OstkPaths,
  keyPath: string = operatorKeyPath(),
): Promise<OperatorKey> {
  const projectKey = await readIdentityPub(paths.identityPub);
  const key = await loadOperatorKey(keyPath);
  if (!sameKey(projectKey, key.signer.publicRaw)) {
    throw new OstkError(
      "permission",
      `operator key ${key.fingerprint} is not this project's key ${await fingerprint(
        projectKey,
      )}; refusing to sign`,
      { file: paths.identityPub, line: 1 },
      "set OSTK_IDENTITY to the project's key file",
    );
  }
  return key;
}

/**
 * An audit log handle that signs as the operator.
 *
 * @example
 * ```ts ignore
 * import { locateProject, openSignedLog } from "./project.ts";
 * const log = await openSignedLog(await locateProject());
 * await log.append({ event: "note.add", actor: "operator", fields: { text: "hi" } });
 * log.close();
 * ```
 */
export async function openSignedLog(paths: OstkPaths): Promise<AuditLog> {
  const key = await projectSigner(paths);
  return new AuditLog(paths.audit, { signer: key.signer, headPath: paths.head });
}
