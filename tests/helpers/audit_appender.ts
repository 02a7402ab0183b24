/**
 * Test helper run as a real process by tests/kernel/audit_test.ts: appends `count` rows to one
 * audit log, one `append` call each, so many processes interleave row by row under the lock.
 * Each row is `test.append` with fields `{tag, i}`, i counting up from 0.
 *
 * Usage: deno run --allow-read --allow-write --allow-env audit_appender.ts <log> <key> <count> <tag>
 */
import { AuditLog } from "../../kernel/audit.ts";
import { loadOperatorKey } from "../../kernel/identity.ts";

if (import.meta.main) {
  const [logPath, keyPath, countText, tag] = Deno.args;
  const count = Number(countText);
  const key = await loadOperatorKey(keyPath);
  const log = new AuditLog(logPath, { signer: key.signer });
  try {
    for (let i = 0; i < count; i++) {
      await log.append({ event: "test.append", actor: `proc_${tag}`, fields: { tag, i } });
    }
  } finally {
    log.close();
  }
}
