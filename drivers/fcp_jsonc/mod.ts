/**
 * `fcp-jsonc`: the built-in FCP driver for JSON/JSONC config files (`deno.json`,
 * `tsconfig.json`, `.vscode/settings.json`). Tools: `jsonc(ops)`, `jsonc_query(q)`,
 * `jsonc_session(action)`, `jsonc_help()`. Comments and formatting outside the edited spans
 * are kept byte for byte.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Client } from "@modelcontextprotocol/sdk/client/index.js";
 * import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
 * import { memoryStorage } from "../fcp/mod.ts";
 * import { createJsoncServer } from "./mod.ts";
 * const storage = memoryStorage({ "deno.json": '{\n  // tasks\n  "tasks": {}\n}\n' });
 * const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
 * await createJsoncServer(storage).connect(serverSide);
 * const client = new Client({ name: "doc", version: "0.0.0" });
 * await client.connect(clientSide);
 * await client.callTool({ name: "jsonc_session", arguments: { action: "open deno.json" } });
 * const ops = ['set tasks.dev "deno run main.ts"'];
 * await client.callTool({ name: "jsonc", arguments: { ops } });
 * await client.callTool({ name: "jsonc_session", arguments: { action: "save" } });
 * // The edit lands and the comment survives.
 * assert.equal(
 *   storage.text("deno.json"),
 *   '{\n  // tasks\n  "tasks": {\n    "dev": "deno run main.ts"\n  }\n}\n',
 * );
 * await client.close();
 * ```
 *
 * @module
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { createFcpServer, type FcpDriver, FcpError, type FcpStorage } from "../fcp/mod.ts";
import { parseDoc } from "./edit.ts";
import { jsoncQueries, jsoncVerbs } from "./verbs.ts";

export { parseValue } from "./verbs.ts";
export { formatPath, parsePath, type Segment } from "./path.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The jsonc driver over `storage`; the document state is the file's text. */
export function jsoncDriver(storage: FcpStorage): FcpDriver<string> {
  return {
    domain: "jsonc",
    description: "JSON/JSONC config files (deno.json, tsconfig.json, .vscode/settings.json)",
    verbs: jsoncVerbs,
    query: jsoncQueries,
    storage,
    session: {
      create: () => "{}\n",
      decode(bytes, path) {
        let text: string;
        try {
          text = decoder.decode(bytes);
        } catch {
          throw new FcpError("parse", `${path} is not UTF-8 text`);
        }
        parseDoc(text, path);
        return text;
      },
      encode: (text) => encoder.encode(text),
      summary(text) {
        const root = parseDoc(text);
        const shape = root?.type === "object"
          ? `${root.children?.length ?? 0} keys`
          : root?.type === "array"
          ? `${root.children?.length ?? 0} items`
          : root
          ? root.type
          : "empty";
        return `${shape}, ${encoder.encode(text).length} bytes`;
      },
    },
    notes: [
      'paths: a.b, a[2], tasks["my task"] (or tasks[my task]), ["files.exclude"], $ = root',
      'values: JSON when they parse (true, 3, null, [1], {"a":1}), else the text as a string;',
      '  quote a value with spaces, ":" or a leading "@" ("https://x", "@scope/pkg", "two words");',
      '  wrap JSON arrays and objects in single quotes (\'["a"]\', \'{"a":1}\'): bare " quotes are',
      "  stripped by the tokenizer; '\"true\"' is the string true",
      "comments and formatting outside the edited lines are kept byte for byte",
    ],
  };
}

/** The MCP server of the jsonc driver. */
export function createJsoncServer(storage: FcpStorage): McpServer {
  return createFcpServer({ ...jsoncDriver(storage), name: "fcp-jsonc" });
}
