/** The one error family of model providers: what failed talking to a model, as a value. */

/** Why a model call failed; `rate_limit`, `server` and `network` are retried before the stream. */
export type ProviderErrorCode =
  | "auth" // no key, or the key was refused (401/403)
  | "bad_request" // the provider refused the request itself (4xx other than 429)
  | "rate_limit" // 429 after every retry
  | "server" // 5xx (or an `error` event in the stream) after every retry
  | "network" // the connection failed, dropped, or went idle
  | "protocol" // the stream did not follow the provider's wire format
  | "aborted"; // the caller's signal fired

/**
 * A failed model call. `message` says which provider and model, what was expected and what
 * came back; it never holds an API key (bodies are masked before they are quoted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProviderError } from "./errors.ts";
 * const message = "anthropic:claude-sonnet-4: 429 after 4 retries";
 * const err = new ProviderError("rate_limit", message, 429);
 * assert.ok(err instanceof Error);
 * assert.equal(err.code, "rate_limit");
 * assert.equal(err.status, 429);
 * assert.equal(String(err), `ProviderError: ${message}`);
 * ```
 */
export class ProviderError extends Error {
  readonly code: ProviderErrorCode;
  readonly status?: number;

  constructor(code: ProviderErrorCode, message: string, status?: number) {
    super(message);
    this.name = "ProviderError";
    this.code = code;
    this.status = status;
  }
}
