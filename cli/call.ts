/** `ostk call <tool> '<json>'`: one kernel tool call from a script or a shell. */
import { errorLine, OstkError } from "../kernel/errors.ts";
import { locateProject, projectSigner } from "../kernel/project.ts";
import { Kernel, type ToolResponse } from "../kernel/tools.ts";
import { tryConnect } from "./daemon_client.ts";
import { TOOL_SCHEMAS } from "../kernel/tool_schema.ts";
import { type Command, err, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";

const FLAGS = {
  as: { type: "string" },
  json: { type: "boolean" },
} as const;

/** `  file:read    {path, offset?, limit?, force?}`: each tool's arguments, from its schema. */
function toolLines(): string[] {
  const width = Math.max(...Object.keys(TOOL_SCHEMAS).map((name) => name.length));
  return Object.entries(TOOL_SCHEMAS).map(([name, schema]) => {
    const shape = schema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
    const fields = Object.entries(shape).map(([key, field]) =>
      field.safeParse(undefined).success ? `${key}?` : key
    );
    return `  ${name.padEnd(width)}  {${fields.join(", ")}}`;
  });
}

export const callCommand: Command = {
  name: "call",
  summary: `Run one kernel tool with JSON args: ${Object.keys(TOOL_SCHEMAS).join(", ")}.`,
  usage: "call <tool> '<json>' [--as ALIAS] [--json]",
  help: `tools (arguments as a JSON object; '?' marks optional ones):
${toolLines().join("\n")}
shell runs sandboxed: pin deny-verb applies and dangerous commands need approval.

  --as ALIAS  the caller's agent alias (default: operator)
  --json      print the whole response (result or error, and digest) as JSON

Exit codes: 0 the call succeeded (a tier-1 merge included); 1 the kernel refused it (conflict,
policy, bad input; reason on stderr or in the JSON); 2 usage error (bad flags, args not JSON).`,
  flags: FLAGS,
  async run(ctx) {
    const { values, positionals } = parseFlags("call", ctx.argv, FLAGS, true);
    if (values.help) {
      out(helpText(callCommand));
      return EXIT.ok;
    }
    const [tool, json, ...extra] = positionals;
    if (!tool || extra.length > 0) {
      throw new OstkError(
        "usage",
        "expected a tool and one JSON argument",
        {},
        "see 'ostk call --help'",
      );
    }
    let args: unknown = {};
    if (json !== undefined) {
      try {
        args = JSON.parse(json);
      } catch (e) {
        throw new OstkError(
          "usage",
          `arguments are not JSON: ${(e as Error).message}`,
          {},
          `e.g. ostk call file:read '{"path":"README.md"}'`,
        );
      }
    }
    const paths = await locateProject(ctx.cwd);
    const alias = values.as ?? "operator";
    // Through the daemon when one runs (it owns the sessions and their heartbeats), else in-process.
    const client = await tryConnect(paths);
    let kernel: Kernel | undefined;
    try {
      let response: ToolResponse;
      if (client) {
        response = await client.request("kernel/call", { tool, args, as: alias }) as ToolResponse;
      } else {
        const key = await projectSigner(paths);
        kernel = new Kernel(paths, { signer: key.signer });
        response = await kernel.call(tool, args, { alias });
      }
      if (values.json) outJson(response);
      else if (response.ok) {
        const r = response.result;
        if (typeof r.text === "string") out(r.text);
        else if (response.tool === "file:read") out(String(r.content ?? ""));
        else if (response.tool === "shell") {
          out(String(r.output ?? ""));
          out(`[exit ${r.exit_code}${r.timed_out ? ", timed out" : ""}] ${r.kind}`);
        } else {
          const merged = r.merge_note ? `, ${r.merge_note}` : "";
          out(
            `ok ${response.tool} ${r.path} gen=${r.gen}${
              r.unchanged ? " (unchanged)" : ""
            }${merged}`,
          );
        }
        out(response.digest);
      } else {
        const e = response.error;
        err(`ostk: ${errorLine(e)}`);
        if (typeof e.details?.diff === "string") err(e.details.diff);
        if (e.details?.suggestion) err(`suggested edit: ${JSON.stringify(e.details.suggestion)}`);
      }
      return response.ok ? EXIT.ok : EXIT.refused;
    } finally {
      kernel?.close();
      client?.close();
    }
  },
};
