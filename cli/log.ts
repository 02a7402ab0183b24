/** `ostk log`: a readable view of the audit log; `--follow` keeps printing new rows. */
import { type AuditRow, parseRowLine } from "../kernel/audit.ts";
import { locateProject } from "../kernel/project.ts";
import { type Command, EXIT, helpText, out, parseFlags } from "./command.ts";

const POLL_MS = 200;

const FLAGS = {
  follow: { type: "boolean", short: "f" },
  event: { type: "string", short: "e" },
  json: { type: "boolean" },
} as const;

export const logCommand: Command = {
  name: "log",
  summary: "Print the audit log, one row per line; --follow waits for new rows.",
  usage: "log [--follow] [--event PREFIX] [--json]",
  help: `  -f, --follow        keep printing rows as they are appended (Ctrl-C to stop)
  -e, --event PREFIX  only rows whose event starts with PREFIX (e.g. 'agent', 'tool.file_')
  --json              print each row as it is stored (JSON Lines)

An unreadable line stops the listing with its file and line number and exit code 1.`,
  flags: FLAGS,
  async run(ctx) {
    const { values } = parseFlags("log", ctx.argv, FLAGS);
    if (values.help) {
      out(helpText(logCommand));
      return EXIT.ok;
    }
    const paths = await locateProject(ctx.cwd);
    const show = (line: string, row: AuditRow) => {
      if (values.event && !row.event.startsWith(values.event)) return;
      // The stored line itself: re-serialising the parsed row would reorder its keys.
      if (values.json) out(line);
      else out(formatRow(row));
    };
    let offset = 0;
    let lineNo = 0;
    let pending = "";
    const decoder = new TextDecoder();
    for (;;) {
      const file = await Deno.open(paths.audit, { read: true });
      try {
        await file.seek(offset, Deno.SeekMode.Start);
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = await file.read(buf);
          if (n === null) break;
          offset += n;
          pending += decoder.decode(buf.subarray(0, n), { stream: true });
          const lines = pending.split("\n");
          pending = lines.pop()!;
          for (const line of lines) show(line, parseRowLine(line, paths.audit, ++lineNo));
        }
      } finally {
        file.close();
      }
      if (!values.follow) return EXIT.ok;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  },
};

/** `seq  ts  actor  event  key=value…` with the chain fields left out. */
export function formatRow(row: AuditRow): string {
  const { seq, ts, event, actor, prev_hash: _p, sig: _s, ...fields } = row;
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${String(seq).padStart(5)}  ${ts}  ${actor.padEnd(12)} ${event}${
    extra ? "  " + extra : ""
  }`;
}
