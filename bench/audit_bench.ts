/**
 * Audit log throughput: signed append, unsigned append (the baseline), and verify, over the same
 * number of rows. Prints figures; asserts nothing.
 *
 *   deno task bench                 # 100,000 rows each
 *   deno task bench --rows 10000    # quicker
 *   deno task bench --batch 100     # rows per append call (one fdatasync per call)
 */
import { parseArgs } from "node:util";
import { AuditLog } from "../kernel/audit.ts";
import { verifyAuditLog } from "../kernel/audit_verify.ts";
import { ephemeralSigner, type Signer } from "../kernel/identity.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rows: { type: "string", default: "100000" }, batch: { type: "string", default: "1" } },
});
const rows = Number(values.rows);
const batch = Number(values.batch);
if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(batch) || batch < 1) {
  console.error("usage: audit_bench.ts [--rows N] [--batch N]  (positive integers)");
  Deno.exit(2);
}

async function appendRun(dir: string, signer: Signer | null): Promise<number> {
  const log = new AuditLog(`${dir}/audit.jsonl`, { signer });
  const start = performance.now();
  try {
    for (let i = 0; i < rows; i += batch) {
      const n = Math.min(batch, rows - i);
      await log.appendBatch(
        Array.from({ length: n }, (_, j) => ({
          event: "bench.append",
          actor: "bench-1",
          fields: { i: i + j, path: "src/example.ts", gen: i + j },
        })),
      );
    }
  } finally {
    log.close();
  }
  return (performance.now() - start) / 1000;
}

const signer = await ephemeralSigner();
const signedDir = await Deno.makeTempDir({ prefix: "ostk-bench-signed-" });
const plainDir = await Deno.makeTempDir({ prefix: "ostk-bench-plain-" });
try {
  console.log(`audit bench: ${rows} rows, ${batch} row(s) per append (each append fdatasyncs)`);
  const plain = await appendRun(plainDir, null);
  console.log(
    `unsigned append  ${(rows / plain).toFixed(0).padStart(8)} rows/s  (${plain.toFixed(2)} s)`,
  );
  const signed = await appendRun(signedDir, signer);
  console.log(
    `signed append    ${(rows / signed).toFixed(0).padStart(8)} rows/s  (${signed.toFixed(2)} s)`,
  );
  const vStart = performance.now();
  const report = await verifyAuditLog({
    logPath: `${signedDir}/audit.jsonl`,
    headPath: `${signedDir}/audit.head`,
    publicRaw: signer.publicRaw,
  });
  const verify = (performance.now() - vStart) / 1000;
  if (!report.ok) {
    console.error(`verify FAILED at seq ${report.failure?.seq}: ${report.failure?.reason}`);
  }
  console.log(
    `verify           ${(rows / verify).toFixed(0).padStart(8)} rows/s  (${verify.toFixed(2)} s)`,
  );
  const ratio = signed / plain;
  console.log(
    `signed/unsigned  ${ratio.toFixed(2)}x  (target ≤ 2.00x: ${ratio <= 2 ? "met" : "NOT met"})`,
  );
} finally {
  await Deno.remove(signedDir, { recursive: true });
  await Deno.remove(plainDir, { recursive: true });
}
