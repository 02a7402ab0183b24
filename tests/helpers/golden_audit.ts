/**
 * The golden audit vectors: a fixed key, fixed clock and fixed entries. Ed25519 signatures are
 * deterministic, so the same inputs must always give byte-identical rows.
 *
 * Regenerate (only when the format changes on purpose, and say so in the commit):
 *   deno run --allow-read --allow-write tests/helpers/golden_audit.ts --write
 */
import { AuditLog } from "../../kernel/audit.ts";
import type { AuditEntry } from "../../kernel/audit_schema.ts";
import { loadOperatorKey } from "../../kernel/identity.ts";

export const GOLDEN_DIR = new URL("../../fixtures/audit/golden/", import.meta.url).pathname;

export const GOLDEN_ENTRIES: AuditEntry[] = [
  { event: "os.init", actor: "operator", fields: { root: "/golden" } },
  { event: "agent.alias", actor: "operator", fields: { alias: "claude-1", name: "claude", n: 1 } },
  {
    event: "tool.file_edit",
    actor: "claude-1",
    fields: { path: "src/ünï.ts", gen: 2, note: 'emoji 🦕 and "quotes"', big: 1e21 },
  },
  { event: "audit.note", actor: "operator", fields: { nested: { b: [1, 2.5, null], a: true } } },
];

const EPOCH = Date.parse("2026-01-01T00:00:00.000Z");

/** Write the golden log for the fixture key into `dir`; returns the paths. */
export async function writeGoldenLog(dir: string, keyPath: string) {
  let tick = 0;
  const key = await loadOperatorKey(keyPath);
  const log = new AuditLog(`${dir}/audit.jsonl`, {
    signer: key.signer,
    headPath: `${dir}/audit.head`,
    now: () => new Date(EPOCH + 1000 * tick++),
  });
  try {
    for (const entry of GOLDEN_ENTRIES) await log.append(entry);
  } finally {
    log.close();
  }
  return { log: `${dir}/audit.jsonl`, head: `${dir}/audit.head` };
}

if (import.meta.main && Deno.args.includes("--write")) {
  const { rowHash, readAuditRows } = await import("../../kernel/audit.ts");
  const { canonicalJson } = await import("../../kernel/hash.ts");
  const scratch = await Deno.makeTempDir();
  const key = `${scratch}/identity.key`;
  await Deno.copyFile(`${GOLDEN_DIR}identity.key`, key);
  await Deno.chmod(key, 0o600);
  const out = await writeGoldenLog(scratch, key);
  await Deno.copyFile(out.log, `${GOLDEN_DIR}audit.jsonl`);
  await Deno.copyFile(out.head, `${GOLDEN_DIR}audit.head`);
  const rows = await readAuditRows(out.log);
  const hashes = await Promise.all(rows.map((r) => rowHash(r)));
  await Deno.writeTextFile(
    `${GOLDEN_DIR}expected.json`,
    JSON.stringify(
      { hashes, canonical: rows.map(({ sig: _sig, ...unsigned }) => canonicalJson(unsigned)) },
      null,
      2,
    ) + "\n",
  );
  await Deno.remove(scratch, { recursive: true });
  console.log(`wrote ${rows.length} golden rows`);
}
