/**
 * Agent aliases `<name>-<n>`: unique within a project and never reused, because the next n is
 * derived by folding the audit log while its append lock is held.
 */
import type { AuditLog } from "./audit.ts";
import { OstkError } from "./errors.ts";
import { fold } from "./fold.ts";

// A name ending in -digits would make `<name>-<n>` ambiguous ("a-1" + 2 vs "a" + "1-2").
const NAME = /^[a-z][a-z0-9_]*(-[a-z_][a-z0-9_]*)*$/;

/** Check an alias base name; throws a usage error saying what is allowed. */
export function validateAliasName(name: string): void {
  if (!NAME.test(name) || name.length > 40) {
    throw new OstkError(
      "usage",
      `bad agent name '${name}'`,
      {},
      "use lower-case letters, digits, '_' and '-', starting with a letter, " +
        "not ending in -<digits>, at most 40 characters",
    );
  }
}

/**
 * Issue the next alias for `name` and record it as an `agent.alias` row.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuditLog } from "./audit.ts";
 * import { issueAlias } from "./alias.ts";
 * import { ephemeralSigner } from "./identity.ts";
 * const dir = await Deno.makeTempDir();
 * const log = new AuditLog(`${dir}/audit.jsonl`, { signer: await ephemeralSigner() });
 * assert.equal(await issueAlias(log, "claude", "operator"), "claude-1");
 * assert.equal(await issueAlias(log, "claude", "operator"), "claude-2");
 * log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function issueAlias(log: AuditLog, name: string, actor: string): Promise<string> {
  validateAliasName(name);
  const [row] = await log.appendComputed((rows) => {
    const n = (fold(rows).highestN.get(name) ?? 0) + 1;
    return [{ event: "agent.alias", actor, fields: { alias: `${name}-${n}`, name, n } }];
  });
  return String(row.alias);
}
