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
answers in time is denied: the session's wait ('ostk run --approval-timeout-ms'), else the
daemon's ('ostk listen --approval-timeout-ms', default 60 s).

  --yes          allow this call
  --no           deny this call
  --all          allow it, the questions of its class already waiting, and every later call
                 of its class in this session (kept across revivals); a dangerous command is
                 the exception: it is asked each time
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
      else {
        const also = (result as { also_answered?: string[] }).also_answered ?? [];
        out(
          `${alias} ${result.request_id} ${answers[0]}${
            also.length ? ` (and ${also.join(" ")}, waiting in the same class)` : ""
          }`,
        );
      }
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
  class: string;
  summary: string;
  /** A dangerous command: "a" still allows the class's ordinary calls, never the next one. */
  dangerous?: boolean;
}

/** What the terminal prompt reads keys from (the real terminal unless a test says otherwise). */
export interface KeyInput {
  /** Single keys, unbuffered and unechoed, until `cooked` is called. */
  raw(): void;
  cooked(): void;
  /** The next key (or keys typed at once); null at the end of input. */
  read(): Promise<string | null>;
}

/** The process's stdin as a terminal: cbreak mode, so Ctrl-C still raises SIGINT. */
export function terminalInput(): KeyInput {
  const buf = new Uint8Array(16);
  const decoder = new TextDecoder();
  return {
    raw: () => Deno.stdin.setRaw(true, { cbreak: Deno.build.os !== "windows" }),
    cooked: () => Deno.stdin.setRaw(false),
    async read() {
      const n = await Deno.stdin.read(buf);
      return n === null ? null : decoder.decode(buf.subarray(0, n));
    },
  };
}

/** The prompt's lines for one question: what is asked, and what each key covers. */
export function promptText(q: ApprovalQuestion): string {
  const all = q.dangerous
    ? `yes, and yes to every ordinary ${q.class} call of this session (dangerous commands ` +
      `like this one still ask)`
    : `yes to this and every ${q.class} call of this session, the waiting ones included`;
  return `\n${q.alias} asks: ${q.summary}\n  y = yes, this call   n = no   a = ${all}\n` +
    `approve? [y/n/a] `;
}

/**
 * A terminal approval source for `ostk run`: each question is shown on stderr, one at a time,
 * and answered with a single key (y, n or a; anything else asks again). The terminal is in
 * raw (cbreak) mode only while a question waits for its key, and is put back on every way out:
 * the key, the end of input, Ctrl-C, `close()` (the run ended while the question was shown),
 * and a SIGTERM. (Deno itself restores the terminal when the process exits by itself, but not
 * when a signal ends it.) Ctrl-C calls `onInterrupt` (SIGINT does the same in cbreak mode). A
 * question the daemon no longer holds (answered elsewhere, or covered by an earlier "a") is
 * skipped.
 */
export function terminalApprover(
  client: DaemonClient,
  opts: { onInterrupt(): void; input?: KeyInput },
): { ask(question: ApprovalQuestion): void; close(): void } {
  const input = opts.input ?? terminalInput();
  const queue: ApprovalQuestion[] = [];
  let busy = false;
  let closed = false;
  let isRaw = false;
  const cooked = () => {
    if (!isRaw) return;
    isRaw = false;
    input.cooked();
    if (Deno.build.os !== "windows") Deno.removeSignalListener("SIGTERM", onTerm);
  };
  // A SIGTERM would end the process with the terminal still raw: put it back, then end.
  const onTerm = () => {
    cooked();
    Deno.exit(128 + 15);
  };
  const raw = () => {
    input.raw();
    isRaw = true;
    if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", onTerm);
  };
  const key = async (): Promise<"y" | "n" | "a" | undefined> => {
    raw();
    try {
      for (;;) {
        const keys = await input.read();
        if (keys === null || closed) return undefined;
        for (const k of keys.toLowerCase()) {
          if (k === "y" || k === "n" || k === "a") return k;
          if (k === "\x03") {
            opts.onInterrupt();
            return undefined;
          }
          if (k === "\x04") return undefined;
        }
        err("press y (yes), n (no) or a (yes to the whole class): ");
      }
    } finally {
      cooked();
    }
  };
  const waiting = async (q: ApprovalQuestion): Promise<boolean> => {
    const { pending } = await client.request("session/approvals", { alias: q.alias }) as {
      pending: PendingApproval[];
    };
    return pending.some((p) => p.request_id === q.request_id);
  };
  const drain = async () => {
    busy = true;
    while (queue.length > 0 && !closed) {
      const q = queue.shift()!;
      try {
        if (!(await waiting(q))) continue;
        err(promptText(q));
        const answer = await key();
        if (!answer) break;
        err(answer);
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
      cooked();
    },
  };
}
