/** Refusals of the tool layer as data: the conflict error and its wire-friendly form. */
import { OstkError, type OstkErrorCode } from "./errors.ts";
import type { ToolName } from "./tool_schema.ts";

/** A refused call, as data. */
export interface ToolError {
  code: OstkErrorCode;
  message: string;
  hint?: string;
  file?: string;
  line?: number;
  details?: Record<string, unknown>;
}

/** The conflict for a stale `expected_gen`, with Hot PR's tier and its suggestion or diff. */
export function staleError(
  tool: ToolName,
  rel: string,
  expected: number,
  gen: number,
  tier: 2 | 3,
  extra: Record<string, unknown>,
): OstkError {
  const what = tier === 2
    ? "the edits are close; a rebased edit is suggested"
    : "the changes conflict; re-read the file";
  return new OstkError(
    "conflict",
    `${tool} ${rel}: expected gen ${expected}, current is ${gen}: ${what}`,
    { file: rel },
    tier === 2 ? "send details.suggestion as the next file:edit" : "re-read and redo the edit",
    { expected_gen: expected, gen, tier, ...extra },
  );
}

export function toToolError(err: OstkError): ToolError {
  return {
    code: err.code,
    message: err.message,
    ...(err.hint ? { hint: err.hint } : {}),
    ...(err.site.file ? { file: err.site.file } : {}),
    ...(err.site.line !== undefined ? { line: err.site.line } : {}),
    ...(err.details ? { details: err.details } : {}),
  };
}

export function pick(
  obj: Record<string, unknown> | undefined,
  keys: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) if (obj && obj[key] !== undefined) out[key] = obj[key];
  return out;
}
