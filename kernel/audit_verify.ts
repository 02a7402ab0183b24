/**
 * Re-walk the audit chain and name the first row that fails. Read-only: verification never
 * repairs, drops or rewrites anything.
 */
import { decodeBase64 } from "./base64.ts";
import { fromHex, ZERO_HASH } from "./hash.ts";
import { verifierFor } from "./identity.ts";
import { type AuditHead, AuditRowSchema, describeIssue } from "./audit_schema.ts";
import { rowHash } from "./audit.ts";
import { headDigest, readHead } from "./audit_head.ts";
import { OstkError } from "./errors.ts";

/** Why verification stopped. */
export type VerifyReason =
  | "unparsable line"
  | "hash mismatch"
  | "bad signature"
  | "missing row"
  | "out-of-order seq"
  | "torn final line"
  | "missing rows"
  | "missing head"
  | "bad head";

/** The first failure: the seq that should have been there, its line, why, and detail. */
export interface VerifyFailure {
  seq: number;
  line: number;
  reason: VerifyReason;
  detail: string;
}

/** The outcome of {@linkcode verifyAuditLog}. */
export interface VerifyReport {
  ok: boolean;
  file: string;
  /** Whole rows that verified before the first failure (all of them when ok). */
  rows: number;
  head?: AuditHead;
  failure?: VerifyFailure;
}

/** Paths and key for {@linkcode verifyAuditLog}. */
export interface VerifyInput {
  logPath: string;
  headPath: string;
  /** The project's public key (from `identity.pub`). */
  publicRaw: Uint8Array<ArrayBuffer>;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Verify every row's seq, `prev_hash` and signature, then the head record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuditLog } from "./audit.ts";
 * import { verifyAuditLog } from "./audit_verify.ts";
 * import { ephemeralSigner } from "./identity.ts";
 * const dir = await Deno.makeTempDir();
 * const signer = await ephemeralSigner();
 * const write = async (name: string, texts: string[]) => {
 *   const headPath = `${dir}/${name}.head`;
 *   const log = new AuditLog(`${dir}/${name}.jsonl`, { signer, headPath });
 *   for (const text of texts) {
 *     await log.append({ event: "note.add", actor: "op", fields: { text } });
 *   }
 *   log.close();
 *   return (await Deno.readTextFile(`${dir}/${name}.jsonl`)).split("\n");
 * };
 * const a = await write("a", ["first", "second"]);
 * const { publicRaw } = signer;
 * const input = { logPath: `${dir}/a.jsonl`, headPath: `${dir}/a.head`, publicRaw };
 * const report = await verifyAuditLog(input);
 * assert.ok(report.ok);
 * assert.equal(report.rows, 2);
 * // Rewrite history: the first row no longer matches its signature.
 * await Deno.writeTextFile(input.logPath, a.join("\n").replace('"first"', '"forged"'));
 * assert.equal((await verifyAuditLog(input)).failure?.reason, "bad signature");
 * // Splice in a row from another log signed by the same key: each signature holds, the chain not.
 * const b = await write("b", ["other", "spliced"]);
 * await Deno.writeTextFile(input.logPath, [a[0], b[1], ""].join("\n"));
 * const spliced = await verifyAuditLog(input);
 * assert.equal(spliced.failure?.seq, 1);
 * assert.equal(spliced.failure?.reason, "hash mismatch");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function verifyAuditLog(input: VerifyInput): Promise<VerifyReport> {
  const file = input.logPath;
  const verifier = await verifierFor(input.publicRaw);
  let head: AuditHead | undefined;
  let headError: OstkError | undefined;
  try {
    head = await readHead(input.headPath);
  } catch (err) {
    if (!(err instanceof OstkError)) throw err;
    headError = err;
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError("not_found", "audit log is missing", { file }, "run 'ostk init'");
    }
    throw err;
  }
  // `rows` counts rows that verified; it defaults to the failing seq, which is the same thing
  // while walking the chain, and is passed explicitly for head failures found after the walk.
  const fail = (
    seq: number,
    line: number,
    reason: VerifyReason,
    detail: string,
    rows = seq,
  ) => ({
    ok: false,
    file,
    rows,
    head,
    failure: { seq, line, reason, detail },
  });

  const lines = splitLines(bytes);
  let expected = 0;
  let prevHash = ZERO_HASH;
  let headRowHash: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const { text, complete } = lines[i];
    if (!complete) {
      return fail(
        expected,
        lineNo,
        "torn final line",
        `${text.length} bytes after the last whole row (a crash mid-append); ` +
          "run 'ostk os audit --repair' to cut it back",
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(text));
    } catch (err) {
      return fail(expected, lineNo, "unparsable line", (err as Error).message);
    }
    const parsed = AuditRowSchema.safeParse(value);
    if (!parsed.success) {
      return fail(expected, lineNo, "unparsable line", describeIssue(parsed.error));
    }
    const row = parsed.data;
    if (row.seq !== expected) {
      if (row.seq < expected) {
        return fail(
          expected,
          lineNo,
          "out-of-order seq",
          `found seq ${row.seq} after ${expected - 1}`,
        );
      }
      const next = i + 1 < lines.length ? peekSeq(lines[i + 1].text) : undefined;
      return next === expected
        ? fail(expected, lineNo, "out-of-order seq", `found seq ${row.seq} before ${expected}`)
        : fail(expected, lineNo, "missing row", `expected seq ${expected}, found ${row.seq}`);
    }
    if (row.prev_hash !== prevHash) {
      return fail(
        expected,
        lineNo,
        "hash mismatch",
        `prev_hash ${row.prev_hash.slice(0, 12)}… does not match the hash of seq ${expected - 1} (${
          prevHash.slice(0, 12)
        }…): an earlier row was changed`,
      );
    }
    const hash = await rowHash(row);
    if (!await checkSig(verifier.verify, row.sig, fromHex(hash))) {
      return fail(
        expected,
        lineNo,
        "bad signature",
        "the signature does not match this row under identity.pub " +
          "(the row was changed, or signed by another key)",
      );
    }
    if (head && row.seq === head.seq) headRowHash = hash;
    prevHash = hash;
    expected++;
  }
  const rows = expected;
  const lastLine = lines.length;
  if (headError) return fail(rows, lastLine, "bad head", headError.message, rows);
  if (!head) {
    return rows === 0 ? { ok: true, file, rows } : fail(
      rows,
      lastLine,
      "missing head",
      "audit.head is missing: the log may have been replaced",
    );
  }
  if (!await checkSig(verifier.verify, head.sig, await headDigest(head))) {
    return fail(
      Math.min(head.seq, rows),
      lastLine,
      "bad head",
      "audit.head signature does not verify",
      rows,
    );
  }
  if (head.seq >= rows) {
    return fail(
      rows,
      lastLine,
      "missing rows",
      `the log ends at seq ${rows - 1} but audit.head records seq ${head.seq}: rows were cut`,
    );
  }
  if (headRowHash !== head.hash) {
    return fail(
      head.seq,
      head.seq + 1,
      "bad head",
      `the row at seq ${head.seq} does not have the hash audit.head records`,
      rows,
    );
  }
  return { ok: true, file, rows, head };
}

async function checkSig(
  verify: (sig: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>) => Promise<boolean>,
  sig: string,
  data: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = decodeBase64(sig);
  } catch {
    return false;
  }
  return raw.length === 64 && await verify(raw, data);
}

function peekSeq(text: Uint8Array): number | undefined {
  try {
    const seq = JSON.parse(decoder.decode(text))?.seq;
    return typeof seq === "number" ? seq : undefined;
  } catch {
    return undefined;
  }
}

/** Lines of the log; the last one is incomplete when the file does not end in a newline. */
function splitLines(bytes: Uint8Array): { text: Uint8Array; complete: boolean }[] {
  const out: { text: Uint8Array; complete: boolean }[] = [];
  let start = 0;
  for (;;) {
    const nl = bytes.indexOf(0x0a, start);
    if (nl < 0) break;
    out.push({ text: bytes.subarray(start, nl), complete: true });
    start = nl + 1;
  }
  if (start < bytes.length) out.push({ text: bytes.subarray(start), complete: false });
  return out;
}
