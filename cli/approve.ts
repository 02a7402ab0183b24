/**
 * `ostk approve`: answer a session's approval question from any terminal, and the terminal
 * prompt `ostk run` uses as an approval source when its stdin is a TTY.
 */
import type { DaemonClient } from "../actors/client.ts";
import type { PendingApproval } from "../actors/approval_gate.ts";
import { OstkError } from "../kernel/errors.ts";
import { locateProject } from "../kernel/project.ts";
import { type Command, err, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import { connectOrFail } from "./daemon_client.ts";

export const approveCommand: Command = {
  name: "approve",
  summary: "Answer a session's approval question (yes, no, or yes to the whole class).",
  usage: "approve <alias> --yes|--no|--all [--request ID] [--json] | approve [<alias>] --list",
  help: `Answers the oldest question waiting for <alias> (or --request ID). A question nobody
answers within the daemon's --approval-timeout-ms (default 60 s) is denied.

  --yes          allow this call
  --no           deny this call
  --all          allow it and every later call of its class in this session
  --request ID   answer this question rather than the oldest
  --list         list the questions waiting (for <alias>, or for every session)
  --json         print the answer (or the list) as JSON`,
  async run(ctx) {
    const { values, positionals } = parseFlags("approve", ctx.argv, {
      yes: { type: "boolean" },
      no: { type: "boolean" },
      all: { type: "boolean" },
      request: { type: "string" },
      list: { type: "boolean" },
      json: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(approveCommand));
      return EXIT.ok;
    }
    const answers = (["yes", "no", "all"] as const).filter((k) => values[k]);
    const alias = positionals[0];
    const usage = (m: string) => new OstkError("usage", m, {}, "see 'ostk approve --help'");
    if (positionals.length > 1) throw usage("expected at most one alias");
    if (values.list ? answers.length > 0 : answers.length !== 1 || !alias) {
      throw usage("expected <alias> and exactly one of --yes, --no, --all (or --list)");
    }
    const client = await connectOrFail(await locateProject(ctx.cwd));
    try {
      if (values.list) {
        const { pending } = await client.request("session/approvals", alias ? { alias } : {}) as {
          pending: PendingApproval[];
        };
        if (values.json) outJson(pending);
        else if (pending.length === 0) out("no approval questions waiting");
        else {
          for (const p of pending) out(`${p.alias}  ${p.request_id}  ${p.asked_at}  ${p.summary}`);
        }
        return EXIT.ok;
      }
      const answer = ({ yes: "y", no: "n", all: "a" } as const)[answers[0]];
      const result = await client.request("session/approve", {
        alias,
        answer,
        ...(values.request ? { request_id: values.request } : {}),
      }) as { request_id: string };
      if (values.json) outJson(result);
      else out(`${alias} ${result.request_id} ${answers[0]}`);
      return EXIT.ok;
    } finally {
      client.close();
    }
  },
};

/** An approval question as the daemon's `approval` event carries it. */
export interface ApprovalQuestion {
  alias: string;
  request_id: string;
  summary: string;
}

/**
 * A terminal approval source for `ostk run`: each question is shown on stderr, one at a time,
 * and the line typed (y, n or a; anything else asks again) is sent as the answer. Returns the
 * function to hand each question to, and one that stops reading.
 */
export function terminalApprover(client: DaemonClient): {
  ask(question: ApprovalQuestion): void;
  close(): void;
} {
  const queue: ApprovalQuestion[] = [];
  let busy = false;
  let closed = false;
  const lines = stdinLines();
  const next = async (): Promise<"y" | "n" | "a" | undefined> => {
    for (;;) {
      const { value, done } = await lines.next();
      if (done || closed) return undefined;
      const word = value.trim().toLowerCase();
      if (["y", "n", "a"].includes(word)) return word as "y" | "n" | "a";
      err("answer y (yes), n (no) or a (yes to every call of this class): ");
    }
  };
  const drain = async () => {
    busy = true;
    while (queue.length > 0 && !closed) {
      const q = queue.shift()!;
      err(`\n${q.alias} asks: ${q.summary}\napprove? [y/n/a] `);
      const answer = await next();
      if (!answer) break;
      try {
        await client.request("session/approve", {
          alias: q.alias,
          request_id: q.request_id,
          answer,
        });
      } catch (e) {
        err(`(not sent: ${(e as Error).message})`);
      }
    }
    busy = false;
  };
  return {
    ask(question) {
      if (closed) return;
      queue.push(question);
      if (!busy) drain();
    },
    close() {
      closed = true;
      lines.return(undefined);
    },
  };
}

async function* stdinLines(): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      yield pending.slice(0, nl);
      pending = pending.slice(nl + 1);
    }
  }
  if (pending !== "") yield pending;
}
