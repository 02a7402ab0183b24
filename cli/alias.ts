/** `ostk alias new <name>` / `ostk alias list`: agent aliases folded from the audit log. */
import { issueAlias, validateAliasName } from "../kernel/alias.ts";
import { readAuditRows } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import { fold } from "../kernel/fold.ts";
import { locateProject, openSignedLog } from "../kernel/project.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";

export const aliasCommand: Command = {
  name: "alias",
  summary: "Issue or list agent aliases (<name>-<n>, unique in the project, never reused).",
  usage: "alias new <name> [--json] | alias list [--json]",
  help: `new <name>   record the next alias for <name> in the audit log and print it
list         every alias issued so far, oldest first

  --json       data as JSON`,
  async run(ctx) {
    const { values, positionals } = parseFlags("alias", ctx.argv, {
      json: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(aliasCommand));
      return EXIT.ok;
    }
    const [verb, name, ...extra] = positionals;
    const isNew = verb === "new" && name !== undefined && extra.length === 0;
    const isList = verb === "list" && name === undefined;
    if (!isNew && !isList) {
      throw new OstkError(
        "usage",
        "expected 'alias new <name>' or 'alias list'",
        {},
        "see 'ostk alias --help'",
      );
    }
    if (isNew) validateAliasName(name!);
    const paths = await locateProject(ctx.cwd);
    if (isNew) {
      const log = await openSignedLog(paths);
      try {
        const alias = await issueAlias(log, name!, "operator");
        if (values.json) outJson({ alias });
        else out(alias);
      } finally {
        log.close();
      }
      return EXIT.ok;
    }
    const aliases = [...fold(await readAuditRows(paths.audit)).aliases.values()];
    if (values.json) outJson(aliases);
    else for (const a of aliases) out(`${a.alias}  (seq ${a.seq})`);
    return EXIT.ok;
  },
};
