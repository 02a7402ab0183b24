/** HUMANFILE: the operator's own file of identity, preferences and declared drivers. */

/** A `DRIVER name [command…]` line. */
export interface DriverDecl {
  name: string;
  command: string[];
  line: number;
}

/** An `mcp: name command…` line: an outbound MCP server. */
export interface McpDecl {
  name: string;
  command: string[];
  line: number;
}

/** What HUMANFILE declares. Unknown lines are kept as preferences, not errors. */
export interface Humanfile {
  operator?: string;
  drivers: DriverDecl[];
  mcp: McpDecl[];
  prefs: Map<string, string>;
}

/** The commented template `ostk init` writes. */
export const HUMANFILE_TEMPLATE = `# HUMANFILE — who runs this project and how ostk treats them.
# One directive per line; '#' starts a comment. The operator edits this file; agents may not
# (pin token 'modify-governance').
#
# OPERATOR <name> <email>          who answers for this project
# OPERATOR Ada Lovelace <ada@example.org>
#
# DRIVER <name> [command ...]      an FCP driver the kernel may spawn on demand
# DRIVER files
#
# mcp: <name> <command ...>        an outbound MCP server agents may use
# mcp: search npx -y some-mcp-server
#
# PRICE <model-prefix> <usd-in/Mtok> <usd-out/Mtok> [context-window]
#                                  override a model's price for budgets, e.g.
# PRICE claude-sonnet-4 3 15 200000
#
# SECRET <provider> env:<VAR> | cmd:<command>   where a model provider's API key comes from
#
# <key> <value>                    any other line is a preference, e.g.
# editor vim
`;

/**
 * Parse HUMANFILE text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHumanfile } from "./humanfile.ts";
 * const h = parseHumanfile("DRIVER files\n# DRIVER off\n");
 * assert.equal(h.drivers.length, 1);
 * assert.equal(h.drivers[0].name, "files");
 * ```
 */
export function parseHumanfile(text: string): Humanfile {
  const out: Humanfile = { drivers: [], mcp: [], prefs: new Map() };
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    const [head, ...rest] = line.split(/\s+/);
    if (head === "OPERATOR") out.operator = rest.join(" ");
    else if (head === "DRIVER" && rest.length > 0) {
      out.drivers.push({ name: rest[0], command: rest.slice(1), line: i + 1 });
    } else if (head === "mcp:" && rest.length > 0) {
      out.mcp.push({ name: rest[0], command: rest.slice(1), line: i + 1 });
    } else out.prefs.set(head, rest.join(" "));
  });
  return out;
}
