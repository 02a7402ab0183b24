/**
 * Test helper run as a real process by tests/kernel/fold_alias_test.ts: issues `count` aliases
 * for `name` on one audit log and prints them as one JSON array.
 *
 * Usage: deno run --allow-read --allow-write --allow-env alias_issuer.ts <log> <key> <name> <count>
 */
import { issueAlias } from "../../kernel/alias.ts";
import { AuditLog } from "../../kernel/audit.ts";
import { loadOperatorKey } from "../../kernel/identity.ts";

if (import.meta.main) {
  const [logPath, keyPath, name, countText] = Deno.args;
  const count = Number(countText);
  const key = await loadOperatorKey(keyPath);
  const log = new AuditLog(logPath, { signer: key.signer });
  const aliases: string[] = [];
  try {
    for (let i = 0; i < count; i++) aliases.push(await issueAlias(log, name, `issuer_${Deno.pid}`));
  } finally {
    log.close();
  }
  console.log(JSON.stringify(aliases));
}
