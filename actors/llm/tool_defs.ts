/**
 * The kernel tools as a model sees them. Schemas are derived from the zod schemas of
 * kernel/tool_schema.ts (`z.toJSONSchema`), so the model and the kernel read one definition.
 * Names are wire-safe (`file_read`): providers allow only `[a-zA-Z0-9_-]` in tool names.
 */
import { z } from "zod";
import { TOOL_SCHEMAS, type ToolName } from "../../kernel/tool_schema.ts";
import type { ToolDef } from "./provider.ts";

const DESCRIPTIONS: Record<ToolName, string> = {
  "file:read":
    "Read a project file. Returns its text and gen (version). A second read of an unchanged file returns '[304] path gen=N'; pass force to get the text again.",
  "file:edit":
    "Replace one exact occurrence of 'old' with 'new' in a file. Pass expected_gen (the gen you read) so concurrent edits are merged or reported.",
  "file:write": "Replace a whole file's content. Pass expected_gen when replacing a file you read.",
  "file:create": "Create a new file; fails if it exists.",
  shell: "Run a shell command in the project (sandboxed); returns exit code and output.",
  nudge:
    "Leave a short message for another agent (by alias); it reads it with its next tool response.",
};

/** The wire name of a kernel tool: `file:read` → `file_read`. */
export function wireName(tool: ToolName): string {
  return tool.replace(":", "_");
}

const BY_WIRE = new Map<string, ToolName>(
  (Object.keys(TOOL_SCHEMAS) as ToolName[]).map((t) => [wireName(t), t]),
);

/** The kernel tool a wire name stands for, or undefined. */
export function kernelTool(wire: string): ToolName | undefined {
  return BY_WIRE.get(wire);
}

/**
 * Tool definitions for every kernel tool.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelToolDefs } from "./tool_defs.ts";
 * const read = kernelToolDefs().find((t) => t.name === "file_read")!;
 * assert.ok((read.parameters.required as string[]).includes("path"));
 * ```
 */
export function kernelToolDefs(): ToolDef[] {
  return (Object.keys(TOOL_SCHEMAS) as ToolName[]).map((tool) => {
    const { $schema: _drop, ...parameters } = z.toJSONSchema(TOOL_SCHEMAS[tool], { io: "input" });
    return { name: wireName(tool), description: DESCRIPTIONS[tool], parameters };
  });
}
