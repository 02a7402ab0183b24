/** `ostk nudge <alias> "<text>"`: leave a message for an agent, read with its next tool call. */
import { OstkError } from "../kernel/errors.ts";
import { locateProject, projectSigner } from "../kernel/project.ts";
import { Kernel, type ToolResponse } from "../kernel/tools.ts";
import { type Command, err, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import { tryConnect } from "./daemon_client.ts";

export const nudgeCommand: Command = {
  name: "nudge",
  summary: "Leave a message for an agent; it arrives with the agent's next tool response.",
  usage: 'nudge <alias> "<text>" [--as ALIAS] [--json]',
  help: `The nudge is queued in .ostk/nudges/<alias>.jsonl (audited nudge.send) and shown to the
agent as a '[nudge] from=<sender>: <text>' digest line (audited nudge.deliver). A nudge to an
unknown alias or a dead session is refused with the reason.

  --as ALIAS  the sender (default: operator)
  --json      print the kernel's whole response

With a daemon running the nudge goes through it (kernel/call), else through an in-process kernel.`,
  async run(ctx) {
    const { values, positionals } = parseFlags("nudge", ctx.argv, {
      as: { type: "string" },
      json: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(nudgeCommand));
      return EXIT.ok;
    }
    const [to, text, ...extra] = positionals;
    if (!to || text === undefined || extra.length > 0) {
      throw new OstkError("usage", "expected an alias and one text", {}, "see 'ostk nudge --help'");
    }
    const paths = await locateProject(ctx.cwd);
    const alias = values.as ?? "operator";
    const args = { to, text };
    const client = await tryConnect(paths);
    let kernel: Kernel | undefined;
    try {
      let response: ToolResponse;
      if (client) {
        response = await client.request("kernel/call", {
          tool: "nudge",
          args,
          as: alias,
        }) as ToolResponse;
      } else {
        kernel = new Kernel(paths, { signer: (await projectSigner(paths)).signer });
        response = await kernel.call("nudge", args, { alias });
      }
      if (values.json) outJson(response);
      else if (response.ok) out(`nudged ${to}`);
      else {err(
          `ostk: ${response.error.message}${
            response.error.hint ? ` (${response.error.hint})` : ""
          }`,
        );}
      return response.ok ? EXIT.ok : EXIT.refused;
    } finally {
      kernel?.close();
      client?.close();
    }
  },
};
