/**
 * `.ostk/audit.head`: the chain's last seq and hash, signed, kept outside the log. A chain alone
 * cannot notice whole rows cut from its end or a rewrite from scratch; the head can.
 */
import { encodeBase64 } from "./base64.ts";
import { OstkError } from "./errors.ts";
import { canonicalHash } from "./hash.ts";
import type { Signer } from "./identity.ts";
import { type AuditHead, AuditHeadSchema, describeIssue } from "./audit_schema.ts";

/** The bytes a head signature covers: the head-domain hash of `{seq, hash, ts}`. */
export function headDigest(head: Omit<AuditHead, "sig">): Promise<Uint8Array<ArrayBuffer>> {
  return canonicalHash("auditHead", { seq: head.seq, hash: head.hash, ts: head.ts });
}

/**
 * Rewrite the head atomically (temp file + rename). Not fsynced: the log is synced first, so
 * after a power cut the head can only lag the log, which verification accepts, never run ahead
 * of it. Synchronous calls on purpose: the head is a few dozen bytes written on every append, and
 * Deno's async file ops each cost a thread-pool round trip that tripled the append time.
 */
export async function writeHead(
  path: string,
  last: { seq: number; hash: string },
  signer: Signer | null,
  now: Date,
): Promise<AuditHead> {
  const unsigned = { seq: last.seq, hash: last.hash, ts: now.toISOString() };
  const sig = signer ? encodeBase64(await signer.sign(await headDigest(unsigned))) : "";
  const head = { ...unsigned, sig };
  const tmp = `${path}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(head) + "\n", { mode: 0o644 });
  try {
    Deno.renameSync(tmp, path);
  } catch (err) {
    Deno.removeSync(tmp);
    throw err;
  }
  return head;
}

/** Read the head; `undefined` when there is none, an integrity error when it is unreadable. */
export async function readHead(path: string): Promise<AuditHead | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new OstkError("integrity", `head is not JSON: ${(err as Error).message}`, {
      file: path,
      line: 1,
    });
  }
  const parsed = AuditHeadSchema.safeParse(value);
  if (!parsed.success) {
    throw new OstkError("integrity", `malformed head: ${describeIssue(parsed.error)}`, {
      file: path,
      line: 1,
    });
  }
  return parsed.data;
}
