/** `ostk boot`: a read-only scan of the operator, the project and the primitives. */
import { OstkError } from "../kernel/errors.ts";
import { loadOperatorKey, operatorKeyPath, readIdentityPub } from "../kernel/identity.ts";
import { powerOnSelfTest } from "../kernel/post.ts";
import { locateProject } from "../kernel/project.ts";
import { scanProject } from "../kernel/project_status.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";

export const bootCommand: Command = {
  name: "boot",
  summary: "Show the operator, the project root, each .ostk/ part, drivers, audit rows and POST.",
  usage: "boot [--json]",
  help: `Changes nothing in the project. POST n/7 runs each kernel primitive on a scratch directory;
primitives not built yet report 'not ready'. Exits 1 when a part is missing or damaged or a
self-test fails.

  --json   the same report as one JSON object`,
  async run(ctx) {
    const { values } = parseFlags("boot", ctx.argv, { json: { type: "boolean" } });
    if (values.help) {
      out(helpText(bootCommand));
      return EXIT.ok;
    }
    const paths = await locateProject(ctx.cwd);
    const status = await scanProject(paths);
    const keyPath = operatorKeyPath();
    let operator: { fingerprint?: string; path: string; problem?: string } = { path: keyPath };
    let signer;
    try {
      const key = await loadOperatorKey(keyPath);
      operator = { fingerprint: key.fingerprint, path: key.path };
      signer = key.signer;
    } catch (e) {
      if (!(e instanceof OstkError)) throw e;
      operator.problem = e.toLine();
    }
    let projectKey;
    try {
      projectKey = await readIdentityPub(paths.identityPub);
    } catch (e) {
      if (!(e instanceof OstkError)) throw e;
    }
    const post = await powerOnSelfTest(signer && projectKey ? { signer, projectKey } : {});
    const partsOk = status.parts.every((p) => p.state === "ok");
    const postOk = post.checks.every((c) => c.state !== "fail");
    const keyMatches = operator.fingerprint !== undefined &&
      operator.fingerprint === status.projectKey;
    if (values.json) {
      outJson({
        operator: { ...operator, matches_project: keyMatches },
        root: paths.root,
        parts: status.parts,
        drivers: status.drivers,
        audit_rows: status.auditRows,
        post,
      });
    } else {
      out(`operator  ${operator.fingerprint ?? "(no usable key)"}  ${operator.path}`);
      if (operator.problem) out(`          ! ${operator.problem}`);
      else if (!keyMatches) out(`          ! not this project's key (${status.projectKey})`);
      out(`root      ${paths.root}`);
      out("parts");
      for (const p of status.parts) out(`  ${p.part.padEnd(22)} ${p.state.padEnd(8)} ${p.detail}`);
      out(
        `drivers   ${
          status.drivers.length === 0
            ? "(none declared in HUMANFILE)"
            : status.drivers.map((d) => `${d.name} (line ${d.line})`).join(", ")
        }`,
      );
      out(`audit     ${status.auditRows} rows (verify with 'ostk os audit')`);
      out(
        `POST ${post.passed}/${post.total}  ${
          post.checks.map((c) => `${c.name} ${c.state === "pass" ? "ok" : c.state}`).join(" · ")
        }`,
      );
      for (const c of post.checks.filter((c) => c.state === "fail")) {
        out(`  ! ${c.name}: ${c.detail}`);
      }
    }
    return partsOk && postOk ? EXIT.ok : EXIT.refused;
  },
};
