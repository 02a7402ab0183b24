/**
 * The tools `ostk mcp` offers, one table: name, description, input schema and handler. The file
 * tools take their schemas from kernel/tool_schema.ts, so MCP clients see exactly what the
 * kernel will accept. How calls reach the kernel (daemon socket or in-process) is the
 * {@linkcode McpBackend}'s business; this module only shapes requests and answers.
 */
import { z } from "zod";
import { errorLine, OstkError } from "../kernel/errors.ts";
import { isKernelPath, resolveProjectPath } from "../kernel/resolve_path.ts";
import {
  FileCreateArgs,
  FileEditArgs,
  FileReadArgs,
  FileWriteArgs,
  ShellArgs,
} from "../kernel/tool_schema.ts";
import type { ToolResponse } from "../kernel/tools.ts";

/** Daemon methods the session tools use. */
export type DaemonMethod = "session/list" | "session/spawn" | "session/kill" | "lineage/resolve";

/** Where tool calls go. The CLI implements it over the daemon socket with an in-process fallback. */
export interface McpBackend {
  /** The project root (realpath). */
  readonly root: string;
  /** Run one kernel tool as `alias`. */
  kernelCall(tool: string, args: unknown, alias: string): Promise<ToolResponse>;
  /** A daemon request; throws OstkError("not_found", "no daemon …") when none runs. */
  daemon(method: DaemonMethod, params: Record<string, unknown>): Promise<unknown>;
  /** Issue the next `<name>-<n>` alias on the project's signed audit log. */
  issueAlias(name: string): Promise<string>;
  /** True when a daemon answers right now (for `help`). */
  daemonRunning(): Promise<boolean>;
}

/** What a handler gets besides its arguments. */
export interface ToolContext {
  backend: McpBackend;
  /** This connection's alias, issued on first use. */
  alias(): Promise<string>;
}

/** An MCP tool result (the SDK's CallToolResult, narrowed to what we produce). */
export interface ToolResult {
  [key: string]: unknown;
  content: { type: "text"; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

/** One tool of the table. */
export interface McpTool {
  name: string;
  description: string;
  inputSchema: z.ZodObject;
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<ToolResult>;
}

/**
 * The documented tool list: each tool's parameters (`?` marks optional). `ostk mcp --help`
 * prints it and `ostk mcp diag` fails when a live server's schemas drift from it.
 */
export const DOCUMENTED_TOOLS: Record<string, string[]> = {
  read: ["path", "offset?", "limit?", "force?"],
  edit: ["path", "old", "new", "expected_gen?", "replace_all?"],
  write: ["path", "content", "expected_gen?"],
  create: ["path", "content"],
  shell: ["cmd", "cwd?", "timeout_s?"],
  search: ["query", "glob?", "max?"],
  ps: [],
  spawn: ["name", "command", "revival?"],
  session: ["alias", "action"],
  help: [],
};

const SearchArgs = z.strictObject({
  query: z.string().min(1).describe("text to find in file names and contents"),
  glob: z.string().optional().describe("only files matching this glob, e.g. 'src/**/*.ts'"),
  max: z.number().int().positive().max(1000).optional().describe("most hits returned (50)"),
});

const SpawnArgs = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/).describe("agent name; the alias is <name>-<n>"),
  command: z.array(z.string()).min(1).describe("program and arguments, run in the project root"),
  revival: z.enum(["revive", "reap", "ask"]).optional(),
});

const SessionArgs = z.strictObject({
  alias: z.string().regex(/^[a-z][a-z0-9_-]*$/),
  action: z.enum(["show", "kill", "revive", "reap"]).describe(
    "show its ps row; kill it; revive or reap an orphan",
  ),
});

/** The file tools, MCP name → kernel tool. */
const FILE_TOOLS = [
  [
    "read",
    "file:read",
    FileReadArgs,
    "Read a project file. Records the gen you saw; an unchanged re-read answers [304].",
  ],
  [
    "edit",
    "file:edit",
    FileEditArgs,
    "Replace unique 'old' text with 'new'. Pass expected_gen from your read: a stale gen is merged (Hot PR) when the changes are apart, else refused with a diff.",
  ],
  [
    "write",
    "file:write",
    FileWriteArgs,
    "Replace a whole file (expected_gen guards against lost updates).",
  ],
  ["create", "file:create", FileCreateArgs, "Create a new file; refused if it exists."],
] as const;

/** The whole tool table. */
export function mcpTools(): McpTool[] {
  const tools: McpTool[] = FILE_TOOLS.map(([name, kernelTool, schema, description]) => ({
    name,
    description,
    inputSchema: schema,
    run: async (args, ctx) =>
      kernelResult(await ctx.backend.kernelCall(kernelTool, args, await ctx.alias())),
  }));
  tools.push({
    name: "shell",
    description: "Run a command line in the project (or cwd under it) under the pin policy; " +
      "dangerous commands are refused. Output comes back compressed for reading.",
    inputSchema: ShellArgs,
    run: async (args, ctx) =>
      kernelResult(await ctx.backend.kernelCall("shell", args, await ctx.alias())),
  });
  tools.push({
    name: "search",
    description: "Find files by name and by content inside the project (skips .ostk/ and .git/).",
    inputSchema: SearchArgs,
    run: async (args, ctx) => {
      await ctx.alias();
      const hits = await searchProject(ctx.backend.root, args as z.infer<typeof SearchArgs>);
      const text = hits.lines.length
        ? hits.lines.join("\n")
        : `no match for ${JSON.stringify(args.query)}`;
      return {
        content: [{ type: "text", text: hits.truncated ? `${text}\n… (more; raise max)` : text }],
        structuredContent: { hits: hits.lines.length, truncated: hits.truncated },
      };
    },
  });
  tools.push({
    name: "ps",
    description: "List the daemon's sessions (needs a running daemon: 'ostk listen').",
    inputSchema: z.strictObject({}),
    run: async (_args, ctx) => {
      await ctx.alias();
      const { sessions } = await ctx.backend.daemon("session/list", {}) as { sessions: Row[] };
      const lines = sessions.map((s) => `${s.alias}  ${s.cpu}  ${s.state}  turns=${s.turns}`);
      return {
        content: [{ type: "text", text: lines.join("\n") || "no sessions" }],
        structuredContent: { sessions },
      };
    },
  });
  tools.push({
    name: "spawn",
    description: "Start an agent session running a command (needs a running daemon).",
    inputSchema: SpawnArgs,
    run: async (args, ctx) => {
      await ctx.alias();
      const a = args as z.infer<typeof SpawnArgs>;
      const result = await ctx.backend.daemon("session/spawn", {
        name: a.name,
        cpu: { kind: "command", command: a.command, cwd: ctx.backend.root },
        ...(a.revival ? { revival: a.revival } : {}),
      }) as { alias: string; state: string };
      return {
        content: [{ type: "text", text: `${result.alias} ${result.state}` }],
        structuredContent: result,
      };
    },
  });
  tools.push({
    name: "session",
    description: "Show, kill, revive or reap one session (needs a running daemon).",
    inputSchema: SessionArgs,
    run: async (args, ctx) => {
      await ctx.alias();
      const { alias, action } = args as z.infer<typeof SessionArgs>;
      let result: Record<string, unknown>;
      if (action === "show") {
        const { sessions } = await ctx.backend.daemon("session/list", {}) as { sessions: Row[] };
        const row = sessions.find((s) => s.alias === alias);
        if (!row) throw new OstkError("not_found", `no session '${alias}'`, {}, "see the ps tool");
        result = row;
      } else if (action === "kill") {
        result = await ctx.backend.daemon("session/kill", { alias }) as Record<string, unknown>;
      } else {
        result = await ctx.backend.daemon("lineage/resolve", { alias, action }) as Record<
          string,
          unknown
        >;
      }
      return {
        content: [{ type: "text", text: JSON.stringify(result) }],
        structuredContent: result,
      };
    },
  });
  tools.push({
    name: "help",
    description: "How to use these tools, your alias, and whether a daemon runs.",
    inputSchema: z.strictObject({}),
    run: async (_args, ctx) => {
      const alias = await ctx.alias();
      const daemon = await ctx.backend.daemonRunning() ? "running" : "not running";
      const text = `You are ${alias} in ${ctx.backend.root} (daemon ${daemon}).\n` +
        `Every write is compare-and-swap: read first, pass expected_gen to edit/write.\n` +
        `A digest of what moved in the project follows each file tool's answer.\n\n` +
        documentedToolLines().join("\n");
      return { content: [{ type: "text", text }], structuredContent: { alias, daemon } };
    },
  });
  return tools;
}

interface Row {
  alias: string;
  cpu: string;
  state: string;
  turns: number;
  [key: string]: unknown;
}

/** `name(param, opt?)` lines of the documented list, for help texts. */
export function documentedToolLines(): string[] {
  return Object.entries(DOCUMENTED_TOOLS).map(([name, params]) =>
    `  ${name}(${params.join(", ")})`
  );
}

/** Turn a kernel response into an MCP result: text, the digest envelope, structured fields. */
export function kernelResult(response: ToolResponse): ToolResult {
  const digest = response.digest ? `\n\n${response.digest}` : "";
  if (!response.ok) {
    const e = response.error;
    // The same one line the CLI prints, without the hint, which travels as its own field.
    const message = errorLine({ file: e.file, line: e.line, message: e.message });
    return errorResult(message, { hint: e.hint, details: e.details, digest, code: e.code });
  }
  const r = response.result;
  if (response.tool === "shell") {
    const status = `[shell] exit=${r.exit_code}${
      r.timed_out ? " (timed out)" : ""
    } ${r.duration_ms} ms`;
    return {
      content: [{ type: "text", text: `${status}\n${r.output ?? ""}${digest}` }],
      structuredContent: { tool: response.tool, ...r },
    };
  }
  const flags = `${r.unchanged ? " (unchanged)" : ""}${r.merge_note ? `, ${r.merge_note}` : ""}`;
  let text = `[${response.tool}] ${r.path} gen=${r.gen}${flags}`;
  if (typeof r.text === "string") text = r.text;
  else if (r.encoding === "base64") text += ` (binary, ${r.bytes} bytes, base64)\n${r.content}`;
  else if (typeof r.content === "string") text += `\n${r.content}`;
  return {
    content: [{ type: "text", text: text + digest }],
    structuredContent: { tool: response.tool, ...r },
  };
}

/** An MCP tool error (isError) carrying the kernel's words. */
export function errorResult(
  message: string,
  extra: { hint?: string; details?: Record<string, unknown>; digest?: string; code?: string } = {},
): ToolResult {
  let text = message + (extra.hint ? ` (${extra.hint})` : "");
  if (typeof extra.details?.diff === "string") text += `\n${extra.details.diff}`;
  if (extra.details?.suggestion) {
    text += `\nsuggested edit: ${JSON.stringify(extra.details.suggestion)}`;
  }
  return {
    content: [{ type: "text", text: text + (extra.digest ?? "") }],
    structuredContent: {
      error: { message, code: extra.code ?? "error", ...(extra.hint ? { hint: extra.hint } : {}) },
    },
    isError: true,
  };
}

/** Any thrown value as a tool error: typed kernel errors keep their code and hint. */
export function thrownResult(err: unknown): ToolResult {
  if (err instanceof OstkError) return errorResult(err.message, { hint: err.hint, code: err.code });
  return errorResult(err instanceof Error ? err.message : String(err));
}

const MAX_SEARCH_FILE = 1024 * 1024;
const MAX_SEARCH_FILES = 50_000;
const SKIP_DIRS = new Set([".git", ".ostk", "node_modules"]);

/**
 * Search the project for `query` in paths and in lines of text files. Name hits come as
 * `path`, content hits as `path:line: text`. Symlinks are resolved through the kernel's path
 * gate, so a link leading out of the project is never read.
 */
export async function searchProject(
  root: string,
  args: { query: string; glob?: string; max?: number },
): Promise<{ lines: string[]; truncated: boolean }> {
  const max = args.max ?? 50;
  const sensitive = args.query !== args.query.toLowerCase();
  const needle = sensitive ? args.query : args.query.toLowerCase();
  const norm = (s: string) => sensitive ? s : s.toLowerCase();
  const glob = args.glob ? globRegExp(args.glob) : undefined;
  const lines: string[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let seen = 0;
  // One hit past `max` tells whether the answer was cut.
  const full = () => lines.length > max;
  const visit = async (rel: string): Promise<void> => {
    if (full() || ++seen > MAX_SEARCH_FILES) return;
    let abs = `${root}/${rel}`;
    let info = await Deno.lstat(abs);
    if (info.isSymlink) {
      try {
        abs = (await resolveProjectPath(root, rel)).abs;
        info = await Deno.stat(abs);
      } catch (err) {
        if (err instanceof OstkError || err instanceof Deno.errors.NotFound) return;
        throw err;
      }
      if (info.isDirectory) return; // never follow directory links: no loops, no double counts
    }
    if (info.isDirectory) {
      const names: string[] = [];
      for await (const entry of Deno.readDir(abs)) names.push(entry.name);
      for (const name of names.sort()) {
        if (SKIP_DIRS.has(name) || isKernelPath(rel ? `${rel}/${name}` : name)) continue;
        await visit(rel ? `${rel}/${name}` : name);
      }
      return;
    }
    if (
      !info.isFile || (glob && !glob.test(args.glob!.includes("/") ? rel : rel.split("/").pop()!))
    ) return;
    if (norm(rel).includes(needle)) lines.push(rel);
    if (full() || info.size > MAX_SEARCH_FILE) return;
    let text: string;
    try {
      text = decoder.decode(await Deno.readFile(abs));
    } catch (err) {
      if (err instanceof TypeError || err instanceof Deno.errors.PermissionDenied) return; // not text
      throw err;
    }
    const rows = text.split("\n");
    for (let i = 0; i < rows.length && !full(); i++) {
      if (norm(rows[i]).includes(needle)) lines.push(`${rel}:${i + 1}: ${rows[i].slice(0, 200)}`);
    }
  };
  await visit("");
  return { lines: lines.slice(0, max), truncated: lines.length > max };
}

/** A glob as a RegExp: `**` any depth, `*` and `?` within one path component. */
export function globRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      re += glob[i + 2] === "/" ? "(?:.*/)?" : ".*";
      i += glob[i + 2] === "/" ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}
