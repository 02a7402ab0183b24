/**
 * `ostk agentfile new | show | lint | validate`: write, read back and check Agentfiles.
 */
import { parseAgentfile, parseAgentfileLenient } from "../kernel/agentfile_parse.ts";
import { checkAgentfile, formatFinding, resolveAgentfile } from "../kernel/agentfile_lint.ts";
import {
  type From,
  LIMIT_KEYS,
  type ResolvedSpec,
  type Source,
} from "../kernel/agentfile_schema.ts";
import { OstkError } from "../kernel/errors.ts";
import { type Command, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";

const PROFILES_HELP = `  --profiles <dir>   where FROM-PROFILE looks for <name>.Agentfile
                     (default: .ostk/profiles of the project holding the file)`;

/** Parse `argv` for an `agentfile <verb> <path>` command; undefined when --help was asked. */
function args(command: Command, argv: string[], withJson: boolean) {
  const { values, positionals } = parseFlags(command.name, argv, {
    profiles: { type: "string" },
    ...(withJson ? { json: { type: "boolean" } } : {}),
  }, true);
  if (values.help) {
    out(helpText(command));
    return undefined;
  }
  if (positionals.length !== 1) {
    throw new OstkError(
      "usage",
      `expected one Agentfile path, got ${positionals.length}`,
      {},
      `see 'ostk ${command.name} --help'`,
    );
  }
  const options = { profilesDir: values.profiles as string | undefined };
  return { path: positionals[0], json: values.json === true, options };
}

export const agentfileNewCommand: Command = {
  name: "agentfile new",
  summary: "Write a commented Agentfile template (never overwrites a file).",
  usage: "agentfile new <path> [--from <cpu>] [--task <text>]",
  help: `  --from <cpu>    script:<transcript.jsonl>, command:<argv...>, or a model:
                  anthropic:<model>, openai:<model>, ollama:<model> or
                  openai-compatible:<base-url>#<model> (default script:transcript.jsonl)
  --task <text>   what the agent is to do (default: a placeholder to replace)`,
  async run(ctx) {
    const { values, positionals } = parseFlags("agentfile new", ctx.argv, {
      from: { type: "string" },
      task: { type: "string" },
    }, true);
    if (values.help) {
      out(helpText(agentfileNewCommand));
      return EXIT.ok;
    }
    if (positionals.length !== 1) {
      throw new OstkError("usage", "expected one path", {}, "see 'ostk agentfile new --help'");
    }
    const path = positionals[0];
    const text = agentfileTemplate(
      values.from ?? "script:transcript.jsonl",
      values.task ?? "replace this with what the agent is to do",
    );
    try {
      await Deno.writeTextFile(path, text, { createNew: true });
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) {
        throw new OstkError(
          "conflict",
          `${path} already exists; not overwritten`,
          {},
          "pick a new path",
        );
      }
      if (err instanceof Deno.errors.NotFound) {
        throw new OstkError("not_found", `no directory for ${path}`, {}, "create it first");
      }
      throw err;
    }
    out(`wrote ${path}`);
    return EXIT.ok;
  },
};

export const agentfileShowCommand: Command = {
  name: "agentfile show",
  summary: "Print an Agentfile with its profiles merged, each value with its file:line.",
  usage: "agentfile show <path> [--json] [--profiles <dir>]",
  help: `  --json             the resolved spec as one JSON object
${PROFILES_HELP}`,
  async run(ctx) {
    const a = args(agentfileShowCommand, ctx.argv, true);
    if (!a) return EXIT.ok;
    const spec = await resolveAgentfile(a.path, a.options);
    if (a.json) outJson(spec);
    else out(renderSpec(spec));
    return EXIT.ok;
  },
};

export const agentfileLintCommand: Command = {
  name: "agentfile lint",
  summary: "Check an Agentfile and its profiles; exit 1 when any finding is an error.",
  usage: "agentfile lint <path> [--json] [--profiles <dir>]",
  help: `Prints one line per finding: file:line:column: severity [rule] message.

  --json             the findings as one JSON array
${PROFILES_HELP}`,
  async run(ctx) {
    const a = args(agentfileLintCommand, ctx.argv, true);
    if (!a) return EXIT.ok;
    const { findings } = await checkAgentfile({ path: a.path }, a.options);
    const errors = findings.filter((f) => f.severity === "error").length;
    if (a.json) outJson(findings);
    else {
      for (const f of findings) out(formatFinding(f));
      out(`${errors} error(s), ${findings.length - errors} warning(s)`);
    }
    return errors > 0 ? EXIT.refused : EXIT.ok;
  },
};

export const agentfileValidateCommand: Command = {
  name: "agentfile validate",
  summary: "Print one JSON verdict {valid, errors, warnings, spec?}; exit 1 when invalid.",
  usage: "agentfile validate <path> [--profiles <dir>]",
  help: `The verdict carries the resolved spec only when the file is valid.

${PROFILES_HELP}`,
  async run(ctx) {
    const a = args(agentfileValidateCommand, ctx.argv, false);
    if (!a) return EXIT.ok;
    const { findings, spec } = await checkAgentfile({ path: a.path }, a.options);
    const errors = findings.filter((f) => f.severity === "error");
    const warnings = findings.filter((f) => f.severity === "warning");
    const valid = errors.length === 0;
    outJson({ valid, errors, warnings, ...(valid ? { spec } : {}) });
    return valid ? EXIT.ok : EXIT.refused;
  },
};

/**
 * The template `agentfile new` writes. It is parsed back before it is written, so a --from or
 * --task that would not read back as given is a usage error rather than a surprising file.
 */
export function agentfileTemplate(from: string, task: string): string {
  const render = (taskText: string) =>
    `# Agentfile: what one ostk worker runs, does, and may touch. One directive per line;
# '#' starts a comment. Check it with 'ostk agentfile lint <file>'.
#
#   FROM script:<transcript.jsonl> | command:<argv...> | <model>, where <model> is one of
#        anthropic:<name> openai:<name> ollama:<name> openai-compatible:<base-url>#<name>
#   TASK <text>        continue it with a trailing '\\' or on indented lines
#   LIMIT budget_usd <dollars> | turns <n> | tokens <n> | wall_clock <30s|10m|2h>
#   LIMIT permissions plan|governed|auto|autonomous
#   LIMIT write-path <paths...> | read-path <paths...> | net <host:port...>|none
#   LIMIT revival_policy revive|reap|ask
#   LIMIT successor auto|none    a model session that drains with a handoff is continued
#   PIN <pin>          TOOL <Class>[(substring)]       ISOLATION none|landlock|seatbelt
#   FROM-PROFILE <name>  inherit .ostk/profiles/<name>.Agentfile; lines here win

FROM ${from}
TASK ${taskText}

LIMIT permissions governed
LIMIT turns 50
# LIMIT wall_clock 30m
# LIMIT budget_usd 5
# LIMIT write-path src/ tests/
# LIMIT net none
# TOOL FileEdit(src/)
# TOOL ShellRead
# ISOLATION landlock
# FROM-PROFILE base
`;
  try {
    parseAgentfile(`FROM ${from}`, "--from");
  } catch (err) {
    if (!(err instanceof OstkError)) throw err;
    throw new OstkError("usage", err.message, {}, "see 'ostk agentfile new --help'");
  }
  // Plain text (lines after the first indented) reads back as given unless it holds a ' # '
  // comment marker or a leading quote; then the one-line quoted form may.
  for (const candidate of [task.split("\n").join("\n  "), quote(task)]) {
    const text = render(candidate);
    const { ast } = parseAgentfileLenient(text, "<template>");
    const read = ast.directives.find((d) => d.directive === "TASK");
    if (read?.directive === "TASK" && read.text === task) return text;
  }
  throw new OstkError(
    "usage",
    "--task cannot be written as given (empty, or several lines with a blank one or a ' # ')",
    {},
    "write a simpler --task and edit the file",
  );
}

/** The resolved spec as Agentfile lines, each followed by the file:line it came from. */
export function renderSpec(spec: ResolvedSpec): string {
  const rows: [string, Source][] = [];
  const { limits } = spec;
  if (spec.from) rows.push([`FROM ${renderFrom(spec.from.value)}`, spec.from.source]);
  if (spec.task) rows.push([`TASK ${spec.task.value.split("\n").join("\n  ")}`, spec.task.source]);
  for (const key of LIMIT_KEYS) {
    const v = limits[key];
    if (v === undefined) continue;
    if (!Array.isArray(v)) {
      const shown = key === "wall_clock" ? duration(v.value as number) : v.value;
      rows.push([`LIMIT ${key} ${shown}`, v.source]);
      continue;
    }
    for (const [source, values] of groupBySource(v)) {
      rows.push([`LIMIT ${key} ${values.map(quote).join(" ")}`, source]);
    }
  }
  if (spec.pin) rows.push([`PIN ${spec.pin.value}`, spec.pin.source]);
  for (const { value, source } of spec.tools) {
    const sub = value.substring === undefined ? "" : `(${quote(value.substring)})`;
    rows.push([`TOOL ${value.class}${sub}`, source]);
  }
  if (spec.isolation) rows.push([`ISOLATION ${spec.isolation.value}`, spec.isolation.source]);
  const width = Math.max(0, ...rows.map(([text]) => text.split("\n")[0].length)) + 2;
  const lines = rows.map(([text, s]) => {
    const [first, ...more] = text.split("\n");
    return [`${first.padEnd(width)}# ${s.file}:${s.line}`, ...more].join("\n");
  });
  return [`# ${spec.chain.join(" <- ")}`, ...lines].join("\n");
}

function renderFrom(from: From): string {
  if (from.kind === "script") return `script:${quote(from.script)}`;
  if (from.kind === "command") return `command:${from.command.map(quote).join(" ")}`;
  return from.model;
}

function groupBySource(entries: { value: string; source: Source }[]): [Source, string[]][] {
  const groups = new Map<string, [Source, string[]]>();
  for (const { value, source } of entries) {
    const key = `${source.file}:${source.line}`;
    if (!groups.has(key)) groups.set(key, [source, []]);
    groups.get(key)![1].push(value);
  }
  return [...groups.values()];
}

/** Milliseconds in the largest unit that divides them (h, m, s). */
function duration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

/** A word as the Agentfile lexer reads it back: bare when safe, else in double quotes. */
function quote(word: string): string {
  if (word !== "" && !/[\s"'#\\]/.test(word)) return word;
  return `"${word.replace(/["\\]/g, "\\$&")}"`;
}
