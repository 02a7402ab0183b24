/** `ostk attach <alias>`: follow a session live; Ctrl-C detaches and the session goes on. */
import { locateProject } from "../kernel/project.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import { connectOrFail } from "./daemon_client.ts";
import { formatRow } from "./log.ts";

export const attachCommand: Command = {
  name: "attach",
  summary: "Stream a session's output and audit rows; Ctrl-C detaches, the session goes on.",
  usage: "attach <alias> [--from SEQ] [--json]",
  help:
    `  --from SEQ   replay audit rows from SEQ first (default: the current end), so a client that
               reattaches with the last seq it saw misses nothing
  --json       print each event as JSON`,
  async run(ctx) {
    const { values, positionals } = parseFlags("attach", ctx.argv, {
      from: { type: "string" },
      json: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(attachCommand));
      return EXIT.ok;
    }
    const alias = positionals[0];
    const client = await connectOrFail(await locateProject(ctx.cwd));
    client.onEvent((event) => {
      if (values.json) return outJson(event);
      if (event.kind === "audit") out(formatRow(event.row as never));
      else if (event.kind === "output") out(`${event.alias} ${event.stream}: ${event.line}`);
      else out(`${event.alias} → ${event.state}`);
    });
    const stop = () => client.close();
    Deno.addSignalListener("SIGINT", stop);
    try {
      await client.request("client/attach", { alias, name: "ostk attach" });
      await client.request("client/subscribe", {
        alias,
        ...(values.from !== undefined ? { from_seq: Number(values.from) } : {}),
      });
      await client.done;
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      client.close();
    }
    return EXIT.ok;
  },
};
