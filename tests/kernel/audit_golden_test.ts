/**
 * Golden vectors pin the audit format: if canonical JSON, the domain prefix, the row layout or
 * signing ever change, these fail. The expected hashes were cross-checked with an independent
 * implementation (Python's json + hashlib) when the vectors were made.
 */
import assert from "node:assert/strict";
import { readAuditRows, rowHash } from "../../kernel/audit.ts";
import { verifyAuditLog } from "../../kernel/audit_verify.ts";
import { canonicalJson, HASH_DOMAINS } from "../../kernel/hash.ts";
import { readIdentityPub } from "../../kernel/identity.ts";
import { GOLDEN_DIR, writeGoldenLog } from "../helpers/golden_audit.ts";

const expected = JSON.parse(await Deno.readTextFile(`${GOLDEN_DIR}expected.json`)) as {
  hashes: string[];
  canonical: string[];
};

Deno.test("golden log: stored rows hash to the expected values", async () => {
  const rows = await readAuditRows(`${GOLDEN_DIR}audit.jsonl`);
  assert.equal(rows.length, expected.hashes.length);
  for (const [i, row] of rows.entries()) {
    const { sig: _sig, ...unsigned } = row;
    assert.equal(canonicalJson(unsigned), expected.canonical[i], `canonical JSON of seq ${i}`);
    assert.equal(await rowHash(row), expected.hashes[i], `hash of seq ${i}`);
    assert.equal(row.prev_hash, i === 0 ? "0".repeat(64) : expected.hashes[i - 1]);
  }
});

Deno.test("golden log: the hash is sha256 over the domain prefix and canonical JSON", async () => {
  const bytes = new TextEncoder().encode(HASH_DOMAINS.auditRow + expected.canonical[2]);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(hex, expected.hashes[2]);
});

Deno.test("golden log: verifies under the fixture identity.pub", async () => {
  const report = await verifyAuditLog({
    logPath: `${GOLDEN_DIR}audit.jsonl`,
    headPath: `${GOLDEN_DIR}audit.head`,
    publicRaw: await readIdentityPub(`${GOLDEN_DIR}identity.pub`),
  });
  assert.equal(report.failure, undefined);
  assert.equal(report.ok, true);
  assert.equal(report.rows, 4);
});

Deno.test("golden log: re-appending the same entries gives byte-identical files", async () => {
  const scratch = await Deno.makeTempDir();
  try {
    const key = `${scratch}/identity.key`;
    await Deno.copyFile(`${GOLDEN_DIR}identity.key`, key);
    // git does not keep 0600; the kernel refuses to sign with a key others can read.
    await Deno.chmod(key, 0o600);
    const out = await writeGoldenLog(scratch, key);
    assert.equal(
      await Deno.readTextFile(out.log),
      await Deno.readTextFile(`${GOLDEN_DIR}audit.jsonl`),
    );
    assert.equal(
      await Deno.readTextFile(out.head),
      await Deno.readTextFile(`${GOLDEN_DIR}audit.head`),
    );
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
});
