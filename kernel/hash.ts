/** Domain-separated SHA-256 over RFC 8785 canonical JSON. */
import canonicalizeModule from "canonicalize";

// The package ships CommonJS typings that Deno reads as a namespace; at runtime the default
// export is the function itself.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/**
 * The domains we hash in. Each prefix is distinct and ends in a newline, so the hash of an audit
 * row can never equal the hash of a head record or a file, whatever their contents.
 */
export const HASH_DOMAINS = {
  auditRow: "ostk/audit-row/v1\n",
  auditHead: "ostk/audit-head/v1\n",
  content: "ostk/content/v1\n",
} as const;

export type HashDomain = keyof typeof HASH_DOMAINS;

const encoder = new TextEncoder();

/** RFC 8785 canonical JSON text of `value`. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("value has no canonical JSON form");
  return text;
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Bytes of a lower-case or upper-case hex string; throws on odd length or non-hex. */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`expected hex, got ${JSON.stringify(hex.slice(0, 16))}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * SHA-256 of `domain`'s prefix followed by `data`, as raw bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { domainHash, toHex } from "./hash.ts";
 * const h = await domainHash("content", "hi");
 * // `printf 'ostk/content/v1\nhi' | sha256sum`: the domain prefix, then the bytes.
 * assert.equal(toHex(h), "098c147b787f015dfc7681fe665c39531e8f83e06605c0a3fd07cd96e8d97b71");
 * assert.notEqual(toHex(await domainHash("auditRow", "hi")), toHex(h));
 * ```
 */
export async function domainHash(
  domain: HashDomain,
  data: string | Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const prefix = encoder.encode(HASH_DOMAINS[domain]);
  const body = typeof data === "string" ? encoder.encode(data) : data;
  const buf = new Uint8Array(prefix.length + body.length);
  buf.set(prefix, 0);
  buf.set(body, prefix.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
}

/** Domain hash of the canonical JSON of `value`, as raw bytes. */
export function canonicalHash(
  domain: HashDomain,
  value: unknown,
): Promise<Uint8Array<ArrayBuffer>> {
  return domainHash(domain, canonicalJson(value));
}

/** The chain's genesis `prev_hash`. */
export const ZERO_HASH = "0".repeat(64);
