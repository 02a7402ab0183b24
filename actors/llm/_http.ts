/**
 * Opening a model's response stream: POST, then retry with exponential backoff (capped, with
 * equal jitter) on 429 (honouring `retry-after` / `retry-after-ms`), 5xx and connections that
 * fail before the first byte of the body. Once a byte has arrived nothing is retried: the
 * caller may already have acted on part of the stream, so a later drop is an error to surface.
 */
import { ProviderError } from "./errors.ts";
import { maskSecrets } from "./secrets.ts";

/** How hard to retry. `sleep` and `random` are injectable so tests never wait. */
export interface RetryPolicy {
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A `retry-after` longer than this is cut to it. */
  maxRetryAfterMs: number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  random(): number;
}

/** One retry, as the audit callback receives it. */
export interface RetryInfo {
  provider: string;
  /** 1 for the first retry. */
  attempt: number;
  reason: "rate_limit" | "server" | "network";
  status?: number;
  delay_ms: number;
  detail: string;
}

/** What a provider passes for each request. */
export interface HttpOptions {
  /** `provider:model`, for messages. */
  label: string;
  retry?: Partial<RetryPolicy>;
  onRetry?: (info: RetryInfo) => void | Promise<void>;
  idleTimeoutMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxRetries: 4,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
  sleep: abortableSleep,
  random: Math.random,
};

const DEFAULT_IDLE_MS = 300_000;
const EXCERPT_CHARS = 300;

type Failure = { reason: RetryInfo["reason"]; status?: number; afterMs?: number; detail: string };

/**
 * POST `body` to `url` and return the response body as chunks, first byte already received.
 * Throws `ProviderError` when retries are spent, for refusals that retrying cannot fix, and
 * (code `aborted`) when `signal` fires.
 */
export async function openStream(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  http: HttpOptions,
  secrets: string[],
  signal?: AbortSignal,
): Promise<AsyncGenerator<Uint8Array>> {
  const policy = { ...DEFAULT_RETRY, ...http.retry };
  const idleMs = http.idleTimeoutMs ?? DEFAULT_IDLE_MS;
  const payload = JSON.stringify(body);
  for (let attempt = 0;; attempt++) {
    if (signal?.aborted) throw aborted(http.label);
    let failure: Failure | undefined;
    let response: Response | undefined;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: payload,
        signal,
      });
    } catch (err) {
      if (signal?.aborted) throw aborted(http.label);
      failure = { reason: "network", detail: `connection failed: ${describe(err)}` };
    }
    if (response?.ok && !response.body) {
      failure = { reason: "network", detail: "empty response body" };
    } else if (response?.ok && response.body) {
      const reader = response.body.getReader();
      try {
        const first = await readWithin(reader, idleMs);
        return chunks(first, reader, idleMs, http.label, signal);
      } catch (err) {
        await reader.cancel().catch(() => {});
        if (signal?.aborted) throw aborted(http.label);
        failure = {
          reason: "network",
          detail: `connection dropped before the first byte: ${describe(err)}`,
        };
      }
    } else if (response) {
      const text = maskSecrets(await response.text().catch(() => ""), secrets);
      const excerpt = text.slice(0, EXCERPT_CHARS).replace(/\s+/g, " ").trim();
      const status = response.status;
      if (status === 429 || status >= 500) {
        failure = {
          reason: status === 429 ? "rate_limit" : "server",
          status,
          afterMs: retryAfterMs(response.headers),
          detail: `HTTP ${status}${excerpt ? `: ${excerpt}` : ""}`,
        };
      } else {
        const code = status === 401 || status === 403 ? "auth" : "bad_request";
        throw new ProviderError(
          code,
          `${http.label}: HTTP ${status}: ${excerpt || "(no body)"}`,
          status,
        );
      }
    }
    failure ??= { reason: "network", detail: "no response" };
    if (attempt >= policy.maxRetries) {
      throw new ProviderError(
        failure.reason,
        `${http.label}: ${failure.detail} (gave up after ${policy.maxRetries} retries)`,
        failure.status,
      );
    }
    const delay = failure.afterMs !== undefined
      ? Math.min(failure.afterMs, policy.maxRetryAfterMs)
      : backoffMs(attempt, policy);
    await http.onRetry?.({
      provider: http.label,
      attempt: attempt + 1,
      reason: failure.reason,
      ...(failure.status !== undefined ? { status: failure.status } : {}),
      delay_ms: delay,
      detail: failure.detail,
    });
    try {
      await policy.sleep(delay, signal);
    } catch (err) {
      if (signal?.aborted) throw aborted(http.label);
      throw err;
    }
  }
}

/**
 * The delay before retry `attempt` (0-based): base·2^attempt capped, then equal jitter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffMs, DEFAULT_RETRY } from "./_http.ts";
 * const p = { ...DEFAULT_RETRY, random: () => 1 };
 * assert.equal(backoffMs(0, p), 500);
 * assert.equal(backoffMs(10, p), 8000);
 * ```
 */
export function backoffMs(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (policy.random() * ceiling) / 2);
}

/** `retry-after-ms`, else `retry-after` in seconds or as an HTTP date; undefined when absent. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(headers.get("retry-after-ms") ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value);
  if (value.trim() !== "" && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

async function* chunks(
  first: ReadableStreamReadResult<Uint8Array>,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleMs: number,
  label: string,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  try {
    let next = first;
    while (!next.done) {
      yield next.value;
      next = await readWithin(reader, idleMs);
    }
  } catch (err) {
    if (signal?.aborted) throw aborted(label);
    throw new ProviderError("network", `${label}: connection dropped mid-stream: ${describe(err)}`);
  } finally {
    // Also runs when the consumer stops early: free the connection.
    await reader.cancel().catch(() => {});
  }
}

/** One read, or a rejection once `ms` pass with no bytes (a stalled server never hangs us). */
function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no bytes for ${ms} ms`)), ms);
  });
  return Promise.race([reader.read(), idle]).finally(() => clearTimeout(timer));
}

/** Wait `ms`, rejecting at once if `signal` fires. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function aborted(label: string): ProviderError {
  return new ProviderError("aborted", `${label}: the call was aborted`);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
