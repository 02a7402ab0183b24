/**
 * The kernel's one family of local errors. Wire errors (JSON-RPC codes) live in the protocol
 * module; this family never leaves the process as a bare string.
 */

/** What went wrong, coarse enough for a caller to choose an exit code or a wire error. */
export type OstkErrorCode =
  | "usage" // the caller asked for something malformed
  | "not_found" // a file, project or alias that should exist does not
  | "bad_input" // content that failed validation (schema, UTF-8, size)
  | "integrity" // a signature, hash or chain check failed
  | "permission" // file modes or policy forbid the action
  | "conflict" // a compare-and-swap lost
  | "io"; // the operating system refused

/** Where in a file the problem sits, so every message can name file and line. */
export interface ErrorSite {
  file?: string;
  line?: number;
  column?: number;
}

/**
 * A typed kernel error. `message` is one line a person can act on: what was expected, what was
 * found, and what to do next.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OstkError } from "./errors.ts";
 * const err = new OstkError("bad_input", "expected a dotted event name", {
 *   file: ".ostk/audit.jsonl",
 *   line: 7,
 * }, "run 'ostk os audit'");
 * assert.equal(err.code, "bad_input");
 * const line = ".ostk/audit.jsonl:7: expected a dotted event name (run 'ostk os audit')";
 * assert.equal(err.toLine(), line);
 * assert.equal(new OstkError("not_found", "no .ostk/ here").toLine(), "no .ostk/ here");
 * ```
 */
export class OstkError extends Error {
  readonly code: OstkErrorCode;
  readonly site: ErrorSite;
  readonly hint?: string;
  /** Structured facts a caller may act on (a conflict's diff, a denial's rule). */
  readonly details?: Record<string, unknown>;

  constructor(
    code: OstkErrorCode,
    message: string,
    site: ErrorSite = {},
    hint?: string,
    details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "OstkError";
    this.code = code;
    this.site = site;
    this.hint = hint;
    this.details = details;
  }

  /** `file:line: message (hint)` — the one-line form the CLI prints. */
  toLine(): string {
    const where = this.site.file
      ? `${this.site.file}${this.site.line !== undefined ? `:${this.site.line}` : ""}${
        this.site.column !== undefined ? `:${this.site.column}` : ""
      }: `
      : "";
    return `${where}${this.message}${this.hint ? ` (${this.hint})` : ""}`;
  }
}

/** True when `err` is a Deno NotFound error (act first, then handle, never check-then-act). */
export function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound;
}
