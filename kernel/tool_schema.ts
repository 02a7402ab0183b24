/** The one schema module for kernel tool arguments; every caller's input is parsed here. */
import { z } from "zod";

const path = z.string().describe("project-relative path, or absolute inside the project");
const gen = z.number().int().nonnegative();

export const FileReadArgs = z.strictObject({
  path,
  offset: z.number().int().nonnegative().optional().describe("first line, 0-based"),
  limit: z.number().int().positive().optional().describe("number of lines"),
  force: z.boolean().optional().describe("return the bytes even when unchanged since last read"),
});

export const FileEditArgs = z.strictObject({
  path,
  old: z.string().min(1, "old must not be empty (use file:write to replace a whole file)"),
  new: z.string(),
  expected_gen: gen.optional(),
  replace_all: z.boolean().optional(),
});

export const FileWriteArgs = z.strictObject({
  path,
  content: z.string(),
  expected_gen: gen.optional(),
});

export const FileCreateArgs = z.strictObject({ path, content: z.string() });

export const ShellArgs = z.strictObject({
  cmd: z.string().min(1, "cmd must not be empty"),
  cwd: z.string().optional().describe("project-relative working directory"),
  timeout_s: z.number().positive().max(3600).optional(),
});

export const NudgeArgs = z.strictObject({
  to: z.string().regex(/^[a-z][a-z0-9_-]*$/, "to must be an agent alias").describe(
    "the alias of the agent to nudge",
  ),
  text: z.string().min(1, "text must not be empty").max(2000).describe(
    "the message; it reaches the agent with its next tool response",
  ),
});

/** Tool name → its argument schema. */
export const TOOL_SCHEMAS = {
  "file:read": FileReadArgs,
  "file:edit": FileEditArgs,
  "file:write": FileWriteArgs,
  "file:create": FileCreateArgs,
  shell: ShellArgs,
  nudge: NudgeArgs,
} as const;

export type ToolName = keyof typeof TOOL_SCHEMAS;
export type FileReadArgs = z.infer<typeof FileReadArgs>;
export type FileEditArgs = z.infer<typeof FileEditArgs>;
export type FileWriteArgs = z.infer<typeof FileWriteArgs>;
export type FileCreateArgs = z.infer<typeof FileCreateArgs>;
export type ShellArgs = z.infer<typeof ShellArgs>;
export type NudgeArgs = z.infer<typeof NudgeArgs>;
