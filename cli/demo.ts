/** `ostk demo`: initialise a throwaway project, use it, verify it and boot it. */
import { aliasCommand } from "./alias.ts";
import { auditCommand } from "./audit.ts";
import { bootCommand } from "./boot.ts";
import { type Command, EXIT, helpText, out, parseFlags } from "./command.ts";
import { initCommand } from "./init.ts";
import { logCommand } from "./log.ts";

export const demoCommand: Command = {
  name: "demo",
  summary:
    "Initialise a throwaway project in a temp dir, issue aliases, show the log, verify, boot.",
  usage: "demo [--keep]",
  help: `Uses a throwaway operator key inside the temp dir (your own key is not touched).

  --keep   leave the temp dir in place and print its path`,
  async run(ctx) {
    const { values } = parseFlags("demo", ctx.argv, { keep: { type: "boolean" } });
    if (values.help) {
      out(helpText(demoCommand));
      return EXIT.ok;
    }
    const base = await Deno.makeTempDir({ prefix: "ostk-demo-" });
    const project = `${base}/project`;
    await Deno.mkdir(project);
    Deno.env.set("OSTK_IDENTITY", `${base}/operator/identity.key`);
    const steps: [string, Command, string[]][] = [
      ["ostk init", initCommand, []],
      ["ostk alias new claude", aliasCommand, ["new", "claude"]],
      ["ostk alias new claude", aliasCommand, ["new", "claude"]],
      ["ostk alias new codex", aliasCommand, ["new", "codex"]],
      ["ostk log", logCommand, []],
      ["ostk os audit", auditCommand, []],
      ["ostk boot", bootCommand, []],
    ];
    let code: number = EXIT.ok;
    try {
      for (const [title, command, argv] of steps) {
        out(`\n$ ${title}`);
        code = await command.run({ argv, cwd: project });
        if (code !== EXIT.ok) break;
      }
    } finally {
      if (values.keep) out(`\nkept ${project}`);
      else await Deno.remove(base, { recursive: true });
    }
    return code;
  },
};
