/**
 * The FCP framework's one family of local errors. A tool handler turns them into `?` lines and an
 * MCP tool error (`isError: true`); they never reach the wire as a bare string.
 */

/** What went wrong, coarse enough for a driver or a test to branch on. */
export type FcpErrorCode =
  | "parse" // the op text is malformed (unbalanced quote, empty op, duplicate key)
  | "unknown_verb" // no verb or query by that name
  | "invalid_args" // the verb exists but its positionals or params do not fit
  | "no_document" // a mutation or query with nothing open
  | "not_found" // a path, key, checkpoint or file that should exist does not
  | "conflict" // the change contradicts the document (key exists, wrong type)
  | "storage" // loading or saving the bytes failed
  | "internal"; // a driver broke its own contract (an edit made the document invalid)

/**
 * A typed FCP error. `message` says what was expected and what was found; `hint` says what to do
 * next and becomes the suggestion on the `?` line. `column` (1-based) points into the op text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FcpError } from "./errors.ts";
 * const err = new FcpError("parse", "unbalanced \" quote", { column: 5, hint: "close the quote" });
 * assert.equal(err.code, "parse");
 * assert.equal(err.toLine(), "unbalanced \" quote (column 5); close the quote");
 * ```
 */
export class FcpError extends Error {
  readonly code: FcpErrorCode;
  readonly column?: number;
  readonly hint?: string;

  constructor(
    code: FcpErrorCode,
    message: string,
    options: { column?: number; hint?: string } = {},
  ) {
    super(message);
    this.name = "FcpError";
    this.code = code;
    this.column = options.column;
    this.hint = options.hint;
  }

  /** The one-line form used after a `?` prefix: message, column and suggestion. */
  toLine(): string {
    const at = this.column !== undefined ? ` (column ${this.column})` : "";
    return `${this.message}${at}${this.hint ? `; ${this.hint}` : ""}`;
  }
}
