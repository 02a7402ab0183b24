/** `ostk os recover`: reconcile gen_table.jsonl with the audit log after a crash. */
import { locateProject, openSignedLog } from "../kernel/project.ts";
import { recoverProject } from "../kernel/recover.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";

export const recoverCommand: Command = {
  name: "os recover",
  summary: "After a crash: adopt files changed around the kernel and re-log missing gen rows.",
  usage: "os recover [--json]",
  help: `Safe to run at any time; a second run changes nothing. The daemon runs it at start.

  --json   the lists of adopted and re-logged paths`,
  async run(ctx) {
    const { values } = parseFlags("os recover", ctx.argv, { json: { type: "boolean" } });
    if (values.help) {
      out(helpText(recoverCommand));
      return EXIT.ok;
    }
    const paths = await locateProject(ctx.cwd);
    const log = await openSignedLog(paths);
    try {
      const report = await recoverProject(paths, log);
      if (values.json) outJson(report);
      else {
        out(`adopted ${report.adopted.length}, re-logged ${report.recovered.length}`);
        for (const p of report.adopted) out(`  adopted   ${p}`);
        for (const p of report.recovered) out(`  re-logged ${p}`);
      }
    } finally {
      log.close();
    }
    return EXIT.ok;
  },
};
