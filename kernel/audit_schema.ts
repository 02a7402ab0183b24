/** The one schema for audit rows and the head record; everything that reads them parses here. */
import { z } from "zod";

/** Field names the kernel owns; an event's own fields may not reuse them. */
export const RESERVED_FIELDS = ["seq", "ts", "event", "actor", "prev_hash", "sig"] as const;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lower-case hex digits");

/** A row as stored: kernel fields plus the event's own (kept as-is, hence loose). */
export const AuditRowSchema = z.looseObject({
  seq: z.number().int().nonnegative(),
  ts: z.string().min(1),
  event: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/, "expected a dotted event name"),
  actor: z.string().min(1),
  prev_hash: hex64,
  sig: z.string(),
});

export type AuditRow = z.infer<typeof AuditRowSchema>;

/** What a caller asks to append; the kernel fills in seq, ts, prev_hash and sig. */
export interface AuditEntry {
  event: string;
  actor: string;
  fields?: Record<string, unknown>;
}

/** `.ostk/audit.head`: the last row's seq and hash, signed, kept apart from the log. */
export const AuditHeadSchema = z.object({
  seq: z.number().int().nonnegative(),
  hash: hex64,
  ts: z.string().min(1),
  sig: z.string(),
});

export type AuditHead = z.infer<typeof AuditHeadSchema>;

/** Explain a zod failure in one line. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
  return `${where}${issue?.message ?? "invalid"}`;
}
