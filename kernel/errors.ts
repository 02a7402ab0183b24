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

  /** `file:line: message (hint)` — the one-line form the CLI prints (see `errorLine`). */
  toLine(): string {
    return errorLine({ ...this.site, message: this.message, hint: this.hint });
  }
}

/** The parts of a one-line error: where, what, and what to do next. */
export interface ErrorLineParts extends ErrorSite {
  message: string;
  hint?: string;
}

/**
 * `file:line:column: message (hint)` on one line. Kernel messages often name their file already
 * (`src/x.ts: 'old' text not found`): the file is not printed twice, and a line number is
 * spliced in after it. Line 0 means "the file as a whole".
 * Newlines in the message (a child's stderr, say) become " / " so the result stays one line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorLine } from "./errors.ts";
 * assert.equal(
 *   errorLine({ file: "src/x.mjs", message: "src/x.mjs: 'old' text not found", hint: "re-read" }),
 *   "src/x.mjs: 'old' text not found (re-read)",
 * );
 * assert.equal(errorLine({ file: "a.caps", line: 3, message: "bad rule" }), "a.caps:3: bad rule");
 * assert.equal(errorLine({ file: "a.caps", line: 3, message: "a.caps: bad rule" }), "a.caps:3: bad rule");
 * assert.equal(errorLine({ file: "t.jsonl", line: 1, message: "t.jsonl:1: bad" }), "t.jsonl:1: bad");
 * assert.equal(errorLine({ file: "A", line: 0, column: 0, message: "no such file" }), "A: no such file");
 * assert.equal(errorLine({ message: "one\ntwo" }), "one / two");
 * ```
 */
export function errorLine(parts: ErrorLineParts): string {
  const { file, message, hint } = parts;
  const line = parts.line ? parts.line : undefined;
  const column = line !== undefined && parts.column ? parts.column : undefined;
  let text = message;
  if (file) {
    const site = `${file}${line !== undefined ? `:${line}` : ""}${
      column !== undefined ? `:${column}` : ""
    }`;
    // A message that opens with its file gets the line spliced in rather than a second prefix.
    if (message.startsWith(`${site}: `)) text = message;
    else if (message.startsWith(`${file}: `)) text = `${site}${message.slice(file.length)}`;
    else if (line !== undefined || !namesFile(message, file)) text = `${site}: ${message}`;
  }
  return `${text}${hint ? ` (${hint})` : ""}`.replace(/\s*\n\s*/g, " / ").trim();
}

/** True when `message` mentions `file` as a word of its own (not inside a longer path). */
function namesFile(message: string, file: string): boolean {
  for (let at = message.indexOf(file); at >= 0; at = message.indexOf(file, at + 1)) {
    const before = at === 0 ? " " : message[at - 1];
    const after = message[at + file.length] ?? " ";
    if (/[\s'"(]/.test(before) && /[\s'":),]/.test(after)) return true;
  }
  return false;
}

/** True when `err` is a Deno NotFound error (act first, then handle, never check-then-act). */
export function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound;
}
