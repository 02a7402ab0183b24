/**
 * `ostk attach <alias>`: follow a session live until it ends; Ctrl-C detaches and the session
 * goes on.
 */
import { RpcError } from "../actors/client.ts";
import { RPC_ERRORS } from "../actors/protocol.ts";
import { OstkError } from "../kernel/errors.ts";
import { locateProject } from "../kernel/project.ts";
import { type Command, err, EXIT, helpText, intFlag, out, outJson, parseFlags } from "./command.ts";
import { connectOrFail } from "./daemon_client.ts";
import { formatRow } from "./log.ts";

const FLAGS = {
  from: { type: "string" },
  json: { type: "boolean" },
} as const;

export const attachCommand: Command = {
  name: "attach",
  summary: "Stream a session's output and audit rows; Ctrl-C detaches, the session goes on.",
  usage: "attach <alias> [--from SEQ] [--json]",
  help:
    `  --from SEQ   replay audit rows from SEQ first (default: the current end), so a client that
               reattaches with the last seq it saw misses nothing
  --json       print each event as JSON

Ends by itself when the session ends (exit 0), or when the daemon goes away (exit 1).`,
  flags: FLAGS,
  async run(ctx) {
    const { values, positionals } = parseFlags("attach", ctx.argv, FLAGS, true);
    if (values.help) {
      out(helpText(attachCommand));
      return EXIT.ok;
    }
    const usage = (m: string) => new OstkError("usage", m, {}, "see 'ostk ps' for the sessions");
    // Without an alias the daemon would attach to no session and this would wait forever.
    if (positionals.length !== 1) throw usage("expected one session alias");
    const alias = positionals[0];
    const from = intFlag("--from", values.from, 0, Number.MAX_SAFE_INTEGER);
    const client = await connectOrFail(await locateProject(ctx.cwd));
    let ended: (state: string) => void = () => {};
    const end = new Promise<string>((resolve) => (ended = resolve));
    // Ask the machine, not the state's name, whether the session is over: a live actor says so
    // with its `terminal` tag, a finished one's last snapshot with status `done`.
    const checkEnded = async () => {
      const s = await client.request("session/inspect", { alias }) as LiveTags;
      if (s.tags?.includes("terminal") || s.status === "done") ended(s.state);
    };
    client.onEvent((event) => {
      if (values.json) outJson(event);
      else if (event.kind === "audit") out(formatRow(event.row as never));
      else if (event.kind === "output") out(`${event.alias} ${event.stream}: ${event.line}`);
      else out(`${event.alias} → ${event.state}`);
      if (event.kind === "session" && event.alias === alias) {
        checkEnded().catch((e) => {
          // The connection closing under the check is reported by `done` below.
          if (!(e instanceof RpcError && e.code === RPC_ERRORS.closed)) throw e;
        });
      }
    });
    let detached = false;
    const stop = () => {
      detached = true;
      client.close();
    };
    Deno.addSignalListener("SIGINT", stop);
    try {
      await client.request("client/attach", { alias, name: "ostk attach" });
      await client.request("client/subscribe", {
        alias,
        ...(from !== undefined ? { from_seq: from } : {}),
      });
      await checkEnded();
      const state = await Promise.race([client.done.then(() => undefined), end]);
      if (state !== undefined) {
        err(`ostk attach: ${alias} has ended (${state})`);
        return EXIT.ok;
      }
      if (detached) return EXIT.ok;
      err(`ostk: the daemon closed the connection (see 'ostk status' and .ostk/daemon.log)`);
      return EXIT.refused;
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      client.close();
    }
  },
};

/** The part of a `session/inspect` answer that says whether the session is over. */
interface LiveTags {
  state: string;
  status?: string | null;
  tags?: string[];
}
