/** `ostk os audit`: verify the signed chain; `--repair` cuts back a torn final line. */
import { verifyAuditLog, type VerifyReport } from "../kernel/audit_verify.ts";
import { readIdentityPub } from "../kernel/identity.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { locateProject, openSignedLog } from "../kernel/project.ts";
import { type Command, err, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";

export const auditCommand: Command = {
  name: "os audit",
  summary: "Verify every row of .ostk/audit.jsonl: seq, prev_hash, signature, and audit.head.",
  usage: "os audit [--json] [--repair]",
  help: `Prints 'ok <n> rows' and exits 0 when the chain is whole; otherwise names the first
failing seq, its line and why (hash mismatch, bad signature, missing row, out-of-order seq,
unparsable line, torn final line, missing rows, bad head) and exits 1.

  --json     the report as one JSON object
  --repair   cut a torn final line (a crash mid-append) back to the last whole row and log
             the cut as an audit.repair row; any other damage is left as evidence`,
  async run(ctx) {
    const { values } = parseFlags("os audit", ctx.argv, {
      json: { type: "boolean" },
      repair: { type: "boolean" },
    });
    if (values.help) {
      out(helpText(auditCommand));
      return EXIT.ok;
    }
    const paths = await locateProject(ctx.cwd);
    let report = await verify(paths);
    let repaired: number | undefined;
    if (values.repair && report.failure?.reason === "torn final line") {
      const log = await openSignedLog(paths);
      try {
        repaired = Number((await log.repair())?.cut_bytes ?? 0);
      } finally {
        log.close();
      }
      report = await verify(paths);
    } else if (values.repair && report.failure) {
      err(
        `not repairing: only a torn final line can be cut back; ${report.failure.reason} is evidence`,
      );
    }
    if (values.json) {
      outJson({ ...report, ...(repaired !== undefined ? { repaired_bytes: repaired } : {}) });
    } else {
      if (repaired !== undefined) {
        out(`repaired: cut ${repaired} torn bytes, logged as audit.repair`);
      }
      if (report.ok) out(`ok ${report.rows} rows`);
      else {
        const f = report.failure!;
        err(`ostk: ${report.file}:${f.line}: seq ${f.seq}: ${f.reason}: ${f.detail}`);
      }
    }
    return report.ok ? EXIT.ok : EXIT.refused;
  },
};

async function verify(paths: OstkPaths): Promise<VerifyReport> {
  return verifyAuditLog({
    logPath: paths.audit,
    headPath: paths.head,
    publicRaw: await readIdentityPub(paths.identityPub),
  });
}
