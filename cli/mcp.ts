/**
 * `ostk mcp`: this project's kernel as an MCP server (stdio, or Streamable HTTP on loopback), and
 * `ostk mcp diag`, which connects to it as a client and checks its tools against the docs.
 */
import type { DaemonClient } from "../actors/client.ts";
import { issueAlias } from "../kernel/alias.ts";
import { AuditLog } from "../kernel/audit.ts";
import { OstkError } from "../kernel/errors.ts";
import type { Signer } from "../kernel/identity.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { locateProject, projectSigner } from "../kernel/project.ts";
import { Kernel, type ToolResponse } from "../kernel/tools.ts";
import { parseListenAddress, serveHttp } from "../drivers/mcp_http.ts";
import { createMcpServer, diagnose, serveStdio } from "../drivers/mcp_server.ts";
import { type DaemonMethod, documentedToolLines, type McpBackend } from "../drivers/mcp_tools.ts";
import { selfArgv } from "./self.ts";
import { type Command, err, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";
import { tryConnect } from "./daemon_client.ts";
import { VERSION } from "./version.ts";

/**
 * Tool calls of one `ostk mcp` process: through the daemon's socket while one runs (it owns
 * sessions and heartbeats), else through an in-process kernel. The daemon is looked for again
 * at each call, so one that starts or stops while a client is connected is noticed.
 */
export class ProjectBackend implements McpBackend {
  readonly root: string;
  #paths: OstkPaths;
  #signer: Signer;
  #client?: Promise<DaemonClient | undefined>;
  #kernel?: Kernel;

  constructor(paths: OstkPaths, signer: Signer) {
    this.#paths = paths;
    this.#signer = signer;
    this.root = paths.root;
  }

  #daemonClient(): Promise<DaemonClient | undefined> {
    // One connection attempt at a time; a closed connection is forgotten so the next call retries.
    this.#client ??= tryConnect(this.#paths).then((client) => {
      if (!client) this.#client = undefined;
      else {
        const forget = () => {
          if (this.#client === pending) this.#client = undefined;
        };
        client.done.then(forget, forget);
      }
      return client;
    }, (e) => {
      this.#client = undefined;
      throw e;
    });
    const pending = this.#client;
    return pending;
  }

  async kernelCall(tool: string, args: unknown, alias: string): Promise<ToolResponse> {
    const client = await this.#daemonClient();
    if (client) {
      return await client.request("kernel/call", { tool, args, as: alias }) as ToolResponse;
    }
    this.#kernel ??= new Kernel(this.#paths, { signer: this.#signer });
    return await this.#kernel.call(tool, args, { alias });
  }

  async daemon(method: DaemonMethod, params: Record<string, unknown>): Promise<unknown> {
    const client = await this.#daemonClient();
    if (!client) {
      throw new OstkError(
        "not_found",
        `no daemon is running for ${this.root}`,
        {},
        "start one with 'ostk listen --background'",
      );
    }
    return await client.request(method, params as never);
  }

  async daemonRunning(): Promise<boolean> {
    return (await this.#daemonClient()) !== undefined;
  }

  async issueAlias(name: string): Promise<string> {
    // A short-lived handle: appends from many processes are serialised by the log's flock.
    const log = new AuditLog(this.#paths.audit, {
      signer: this.#signer,
      headPath: this.#paths.head,
    });
    try {
      return await issueAlias(log, name, "operator");
    } finally {
      log.close();
    }
  }

  async close(): Promise<void> {
    this.#kernel?.close();
    (await this.#client?.catch(() => undefined))?.close();
  }
}

/** How `ostk mcp` is started from this process: the way this process itself was started. */
export function selfCommand(): { command: string; args: string[] } {
  const [command, ...args] = selfArgv();
  return { command, args: [...args, "mcp"] };
}

/** The `.mcp.json` that starts ostk from PATH, as the README and doctor give it. */
export const MCP_JSON_PATH = `{ "mcpServers": { "ostk": { "command": "ostk", "args": ["mcp"] } } }`;
// Not `deno run … main.ts`: set-up never puts `deno` on PATH (the client would fail with
// `spawn deno ENOENT`), and that form would ignore deno.lock. The launcher pins both.
const MCP_JSON_ABSOLUTE =
  `{ "mcpServers": { "ostk": { "command": "/home/you/.local/bin/ostk", "args": ["mcp"] } } }`;

export const mcpCommand: Command = {
  name: "mcp",
  summary: "Serve this project's kernel to MCP clients (stdio or loopback HTTP); 'mcp diag'.",
  usage: "mcp [--http HOST:PORT [--allow-remote --token T]] | mcp diag [--json]",
  help: `Speaks MCP on stdin/stdout for the client that started it. The project is found by
walking up from the working directory (or -C <dir>); the operator key (OSTK_IDENTITY) signs.
Each connection is an agent: its alias is the client's name from 'initialize', sanitised
("Claude Code" → claude-code-1; "mcp-<n>" when the name is unusable), issued at its first tool
call. Calls go to the running daemon ('ostk listen'), else to an in-process kernel. Every file
tool's answer ends with the digest; refusals come back as tool errors (isError).

tools:
${documentedToolLines().join("\n")}

  --http HOST:PORT   serve Streamable HTTP at http://HOST:PORT/mcp instead (PORT 0 picks one;
                     the URL is printed on stderr). Loopback only by default.
  --allow-remote     allow a non-loopback HOST; needs --token
  --token T          require 'Authorization: Bearer T' on every request

diag                 start 'ostk mcp' as a client would, list its tools, and compare each schema
                     with the list above; exit 1 on drift. --json prints the report.

.mcp.json (in the project root), with 'ostk' on the client's PATH — the launcher that
'npx -y deno@2.9.6 task install' puts in ~/.local/bin, or a compiled binary:
  ${MCP_JSON_PATH}
When the client's PATH lacks it, give the launcher's absolute path ('ostk doctor' checks):
  ${MCP_JSON_ABSOLUTE}
Add "env": { "OSTK_IDENTITY": "/path/to/identity.key" } when the key is not in the default place.`,
  async run(ctx) {
    const { values, positionals } = parseFlags("mcp", ctx.argv, {
      http: { type: "string" },
      "allow-remote": { type: "boolean" },
      token: { type: "string" },
      json: { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(mcpCommand));
      return EXIT.ok;
    }
    const usage = (m: string) => new OstkError("usage", m, {}, "see 'ostk mcp --help'");
    if (positionals.length > 1 || (positionals[0] && positionals[0] !== "diag")) {
      throw usage(`unexpected '${positionals.join(" ")}'`);
    }
    if (positionals[0] === "diag") return await runDiag(ctx.cwd, values.json ?? false);
    if (values.json) throw usage("--json goes with 'mcp diag'");
    if ((values["allow-remote"] || values.token) && !values.http) {
      throw usage("--allow-remote and --token go with --http");
    }
    const address = values.http !== undefined ? parseListenAddress(values.http) : undefined;
    const paths = await locateProject(ctx.cwd);
    // Check the key before serving: a client would otherwise see every call fail.
    const key = await projectSigner(paths);
    const backend = new ProjectBackend(paths, key.signer);
    try {
      if (!address) {
        // Typed by hand in a terminal it would wait for JSON-RPC without a word: say what it is.
        if (Deno.stdin.isTerminal()) {
          err("ostk mcp: serving MCP on stdin/stdout for an MCP client; Ctrl-C stops it");
        }
        await serveStdio({ backend, version: VERSION });
        return EXIT.ok;
      }
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      Deno.addSignalListener("SIGINT", onSignal);
      Deno.addSignalListener("SIGTERM", onSignal);
      try {
        await serveHttp({
          ...address,
          token: values.token,
          allowRemote: values["allow-remote"],
          newServer: () => createMcpServer({ backend, version: VERSION }),
          signal: stop.signal,
          onListen: (url) => err(`ostk mcp: serving ${paths.root} at ${url}`),
        });
      } finally {
        Deno.removeSignalListener("SIGINT", onSignal);
        Deno.removeSignalListener("SIGTERM", onSignal);
      }
      return EXIT.ok;
    } finally {
      await backend.close();
    }
  },
};

async function runDiag(cwd: string, json: boolean): Promise<number> {
  const { command, args } = selfCommand();
  const env = Deno.env.toObject();
  delete env.OSTK_CWD; // the child starts in `cwd`; OSTK_CWD would move it elsewhere
  const report = await diagnose(command, args, env, cwd);
  if (json) outJson(report);
  else {
    out(
      `server ${report.server?.name ?? "?"} ${
        report.server?.version ?? "?"
      }: ${report.tools.length} tools`,
    );
    for (const t of report.tools) out(`  ${t.name}(${t.params.join(", ")})`);
    out(
      report.drift.length ? `drift:\n${report.drift.map((d) => `  ${d}`).join("\n")}` : "no drift",
    );
  }
  return report.drift.length ? EXIT.refused : EXIT.ok;
}
