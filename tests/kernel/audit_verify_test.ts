import assert from "node:assert/strict";
import fc from "fast-check";
import { AuditLog, type AuditRow, rowHash } from "../../kernel/audit.ts";
import { writeHead } from "../../kernel/audit_head.ts";
import { verifyAuditLog, type VerifyReason } from "../../kernel/audit_verify.ts";
import { decodeBase64, encodeBase64 } from "../../kernel/base64.ts";
import { fromHex } from "../../kernel/hash.ts";
import { ephemeralSigner, type Signer } from "../../kernel/identity.ts";

/** Rows in every fixture log; tamper cases work on row K. */
const N = 10;
const K = 4;

interface Fixture {
  dir: string;
  logPath: string;
  headPath: string;
  /** The key the log is verified against. */
  signer: Signer;
  /** Another key, for forgeries. */
  other: Signer;
  rows: AuditRow[];
}

/** Append `n` rows one at a time, as the kernel does in use: `os.init`, then `test.row`s. */
async function writeLog(logPath: string, signer: Signer, n: number): Promise<AuditRow[]> {
  const log = new AuditLog(logPath, { signer });
  try {
    const rows: AuditRow[] = [];
    for (let i = 0; i < n; i++) {
      rows.push(
        await log.append({
          event: i === 0 ? "os.init" : "test.row",
          actor: "operator",
          fields: { i, note: `row-${i}` },
        }),
      );
    }
    return rows;
  } finally {
    log.close();
  }
}

async function withFixture(n: number, fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ostk_audit_verify_" });
  try {
    const logPath = `${dir}/audit.jsonl`;
    const signer = await ephemeralSigner();
    const rows = await writeLog(logPath, signer, n);
    await fn({
      dir,
      logPath,
      headPath: `${dir}/audit.head`,
      signer,
      other: await ephemeralSigner(),
      rows,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function verify(fx: Fixture) {
  return verifyAuditLog({
    logPath: fx.logPath,
    headPath: fx.headPath,
    publicRaw: fx.signer.publicRaw,
  });
}

/** The log's lines without their newlines. */
async function readLines(path: string): Promise<string[]> {
  const lines = (await Deno.readTextFile(path)).split("\n");
  assert.equal(lines.pop(), "", "fixture log must end in a newline");
  return lines;
}

async function writeLines(path: string, lines: string[]): Promise<void> {
  await Deno.writeTextFile(path, lines.map((line) => line + "\n").join(""));
}

/** Replace line `index` with the result of `edit` on its parsed row. */
async function editRow(
  path: string,
  index: number,
  edit: (row: AuditRow) => AuditRow | Promise<AuditRow>,
): Promise<void> {
  const lines = await readLines(path);
  lines[index] = JSON.stringify(await edit(JSON.parse(lines[index])));
  await writeLines(path, lines);
}

/** Sign `row` as the kernel does: the signature covers the row hash, which excludes `sig`. */
async function signRow(row: AuditRow, signer: Signer): Promise<AuditRow> {
  const hash = await rowHash(row);
  return { ...row, sig: encodeBase64(await signer.sign(fromHex(hash))) };
}

/** Byte offset of the start of line `index` (0-based) in `bytes`. */
function lineStart(bytes: Uint8Array, index: number): number {
  let offset = 0;
  for (let i = 0; i < index; i++) offset = bytes.indexOf(0x0a, offset) + 1;
  return offset;
}

interface TamperCase {
  name: string;
  tamper: (fx: Fixture) => Promise<void>;
  /** Expected failure; `seq`/`line` omitted where the head, not a row, is at fault. */
  seq?: number;
  line?: number;
  reason: VerifyReason;
}

const CASES: TamperCase[] = [
  {
    name: "a field of row k edited",
    tamper: (fx) => editRow(fx.logPath, K, (row) => ({ ...row, note: "tampered" })),
    seq: K,
    line: K + 1,
    reason: "bad signature",
  },
  {
    name: "the actor of row k edited",
    tamper: (fx) => editRow(fx.logPath, K, (row) => ({ ...row, actor: "mallory" })),
    seq: K,
    line: K + 1,
    reason: "bad signature",
  },
  {
    name: "the signature of row k replaced by row k+1's",
    tamper: (fx) => editRow(fx.logPath, K, (row) => ({ ...row, sig: fx.rows[K + 1].sig })),
    seq: K,
    line: K + 1,
    reason: "bad signature",
  },
  {
    name: "row k edited and re-signed with the same key, row k+1 left alone",
    tamper: (fx) =>
      editRow(fx.logPath, K, (row) => signRow({ ...row, note: "tampered" }, fx.signer)),
    seq: K + 1,
    line: K + 2,
    reason: "hash mismatch",
  },
  {
    name: "row k deleted",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      lines.splice(K, 1);
      await writeLines(fx.logPath, lines);
    },
    seq: K,
    line: K + 1,
    reason: "missing row",
  },
  {
    name: "row 0 deleted",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      lines.shift();
      await writeLines(fx.logPath, lines);
    },
    seq: 0,
    line: 1,
    reason: "missing row",
  },
  {
    name: "rows k and k+1 swapped",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      [lines[K], lines[K + 1]] = [lines[K + 1], lines[K]];
      await writeLines(fx.logPath, lines);
    },
    seq: K,
    line: K + 1,
    reason: "out-of-order seq",
  },
  {
    name: "row k duplicated",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      lines.splice(K + 1, 0, lines[K]);
      await writeLines(fx.logPath, lines);
    },
    seq: K + 1,
    line: K + 2,
    reason: "out-of-order seq",
  },
  {
    name: "a forged row signed by another key inserted after row k",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      const forged = await signRow({
        seq: K + 1,
        ts: fx.rows[K].ts,
        event: "test.row",
        actor: "mallory",
        i: 99,
        note: "forged",
        prev_hash: await rowHash(fx.rows[K]),
        sig: "",
      }, fx.other);
      lines.splice(K + 1, 0, JSON.stringify(forged));
      await writeLines(fx.logPath, lines);
    },
    seq: K + 1,
    line: K + 2,
    reason: "bad signature",
  },
  {
    name: "the log truncated mid-way through the last row",
    tamper: async (fx) => {
      const bytes = await Deno.readFile(fx.logPath);
      const start = lineStart(bytes, N - 1);
      await Deno.truncate(fx.logPath, start + 20);
    },
    seq: N - 1,
    line: N,
    reason: "torn final line",
  },
  {
    name: "the log truncated mid-way through row k",
    tamper: async (fx) => {
      const bytes = await Deno.readFile(fx.logPath);
      const start = lineStart(bytes, K);
      await Deno.truncate(fx.logPath, start + 20);
    },
    seq: K,
    line: K + 1,
    reason: "torn final line",
  },
  {
    name: "the last 3 whole rows cut",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      await writeLines(fx.logPath, lines.slice(0, N - 3));
    },
    seq: N - 3,
    line: N - 3,
    reason: "missing rows",
  },
  {
    name: "the whole log and its head rewritten from scratch with another key",
    tamper: async (fx) => {
      await Deno.remove(fx.logPath);
      await Deno.remove(fx.headPath);
      await writeLog(fx.logPath, fx.other, N);
    },
    seq: 0,
    line: 1,
    reason: "bad signature",
  },
  {
    name: "audit.head deleted",
    tamper: (fx) => Deno.remove(fx.headPath),
    seq: N,
    reason: "missing head",
  },
  {
    name: "audit.head's seq changed",
    tamper: async (fx) => {
      const head = JSON.parse(await Deno.readTextFile(fx.headPath));
      await Deno.writeTextFile(fx.headPath, JSON.stringify({ ...head, seq: K }) + "\n");
    },
    reason: "bad head",
  },
  {
    name: "audit.head's hash changed to an earlier row's",
    tamper: async (fx) => {
      const head = JSON.parse(await Deno.readTextFile(fx.headPath));
      const hash = await rowHash(fx.rows[K]);
      await Deno.writeTextFile(fx.headPath, JSON.stringify({ ...head, hash }) + "\n");
    },
    reason: "bad head",
  },
  {
    name: "audit.head validly signed but naming a hash the row does not have",
    tamper: async (fx) => {
      await writeHead(fx.headPath, { seq: N - 1, hash: "ab".repeat(32) }, fx.signer, new Date());
    },
    seq: N - 1,
    reason: "bad head",
  },
  {
    name: "audit.head signed by another key",
    tamper: async (fx) => {
      const hash = await rowHash(fx.rows[N - 1]);
      await writeHead(fx.headPath, { seq: N - 1, hash }, fx.other, new Date());
    },
    reason: "bad head",
  },
  {
    name: "audit.head not JSON",
    tamper: (fx) => Deno.writeTextFile(fx.headPath, "{seq: 9"),
    reason: "bad head",
  },
  {
    name: "an unparsable (non-JSON) line in place of row k",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      lines[K] = "this is not json {";
      await writeLines(fx.logPath, lines);
    },
    seq: K,
    line: K + 1,
    reason: "unparsable line",
  },
  {
    name: "a JSON line that is not a row in place of row k",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      lines[K] = JSON.stringify({ hello: "world" });
      await writeLines(fx.logPath, lines);
    },
    seq: K,
    line: K + 1,
    reason: "unparsable line",
  },
  {
    name: "an empty line inserted after row k",
    tamper: async (fx) => {
      const lines = await readLines(fx.logPath);
      lines.splice(K + 1, 0, "");
      await writeLines(fx.logPath, lines);
    },
    seq: K + 1,
    line: K + 2,
    reason: "unparsable line",
  },
  {
    name: "invalid UTF-8 bytes inside a string of row k",
    tamper: async (fx) => {
      const bytes = await Deno.readFile(fx.logPath);
      const start = lineStart(bytes, K);
      const end = bytes.indexOf(0x0a, start);
      const line = bytes.subarray(start, end);
      // Overwrite the '-' of "row-4" with a lone continuation byte; the line length is unchanged.
      const at = start + new TextDecoder().decode(line).indexOf(`row-${K}`) + 3;
      assert.equal(bytes[at], "-".charCodeAt(0));
      bytes[at] = 0xff;
      await Deno.writeFile(fx.logPath, bytes);
    },
    seq: K,
    line: K + 1,
    reason: "unparsable line",
  },
];

Deno.test("verifyAuditLog: an untampered log verifies", async () => {
  await withFixture(N, async (fx) => {
    const report = await verify(fx);
    assert.equal(report.failure, undefined);
    assert.equal(report.ok, true);
    assert.equal(report.rows, N);
    assert.equal(report.head?.seq, N - 1);
    assert.equal(report.head?.hash, await rowHash(fx.rows[N - 1]));
  });
});

Deno.test("verifyAuditLog: an untampered log does not verify under another key", async () => {
  await withFixture(N, async (fx) => {
    const report = await verifyAuditLog({
      logPath: fx.logPath,
      headPath: fx.headPath,
      publicRaw: fx.other.publicRaw,
    });
    assert.equal(report.ok, false);
    assert.equal(report.failure?.seq, 0);
    assert.equal(report.failure?.reason, "bad signature");
  });
});

for (const c of CASES) {
  Deno.test(`verifyAuditLog detects: ${c.name}`, async () => {
    await withFixture(N, async (fx) => {
      const before = await verify(fx);
      assert.equal(before.ok, true, "fixture must verify before tampering");
      await c.tamper(fx);
      const report = await verify(fx);
      assert.equal(report.ok, false, `tampering went unnoticed: ${c.name}`);
      assert.ok(report.failure);
      assert.equal(report.failure.reason, c.reason, report.failure.detail);
      if (c.seq !== undefined) assert.equal(report.failure.seq, c.seq, report.failure.detail);
      if (c.line !== undefined) assert.equal(report.failure.line, c.line, report.failure.detail);
      if (c.seq !== undefined && c.reason !== "bad head") {
        // Rows before the failure verified; the report must not claim more.
        assert.equal(report.rows, c.seq);
      }
      assert.ok(report.failure.detail.length > 0);
    });
  });
}

/** One change to one row; each makes the row differ in its canonical form. */
type Mutation =
  | { kind: "seq"; delta: number; down: boolean }
  | { kind: "ts"; date: Date }
  | { kind: "event"; event: string }
  | { kind: "actor"; actor: string }
  | { kind: "prev_hash"; hash: string }
  | { kind: "sig"; at: number; xor: number }
  | { kind: "note"; value: unknown }
  | { kind: "add"; key: string; value: unknown }
  | { kind: "remove" };

const hexChar = fc.constantFrom(..."0123456789abcdef");

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("seq" as const),
    delta: fc.integer({ min: 1, max: 40 }),
    down: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant("ts" as const),
    date: fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }),
  }),
  fc.record({
    kind: fc.constant("event" as const),
    event: fc.stringMatching(/^[a-z][a-z0-9_]{0,8}\.[a-z0-9_]{1,8}$/),
  }),
  fc.record({ kind: fc.constant("actor" as const), actor: fc.string({ minLength: 1 }) }),
  fc.record({
    kind: fc.constant("prev_hash" as const),
    hash: fc.string({ unit: hexChar, minLength: 64, maxLength: 64 }),
  }),
  fc.record({
    kind: fc.constant("sig" as const),
    at: fc.nat({ max: 63 }),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant("note" as const), value: fc.jsonValue() }),
  fc.record({
    kind: fc.constant("add" as const),
    key: fc.stringMatching(/^[a-z]{1,8}$/),
    value: fc.jsonValue(),
  }),
  fc.record({ kind: fc.constant("remove" as const) }),
);

function mutate(row: AuditRow, m: Mutation): AuditRow {
  const out: AuditRow = { ...row };
  switch (m.kind) {
    case "seq":
      out.seq = m.down && row.seq >= m.delta ? row.seq - m.delta : row.seq + m.delta;
      break;
    case "ts": {
      const ts = m.date.toISOString();
      out.ts = ts === row.ts ? new Date(m.date.getTime() + 1).toISOString() : ts;
      break;
    }
    case "event":
      out.event = m.event === row.event ? `${m.event}x` : m.event;
      break;
    case "actor":
      out.actor = m.actor === row.actor ? `${m.actor}x` : m.actor;
      break;
    case "prev_hash":
      out.prev_hash = m.hash === row.prev_hash
        ? (m.hash[0] === "0" ? "1" : "0") + m.hash.slice(1)
        : m.hash;
      break;
    case "sig": {
      // Flip bits of the decoded signature: editing the base64 text could leave the bytes alone.
      const raw = decodeBase64(row.sig);
      raw[m.at] ^= m.xor;
      out.sig = encodeBase64(raw);
      break;
    }
    case "note":
      // JSON text is compared so that e.g. -0 and 0, which serialise alike, count as equal.
      out.note = JSON.stringify(m.value) === JSON.stringify(row.note) ? [m.value] : m.value;
      break;
    case "add":
      out[`x_${m.key}`] = m.value;
      break;
    case "remove":
      delete out.note;
      break;
  }
  return out;
}

const EXPECTED_REASONS: Record<Mutation["kind"], VerifyReason[]> = {
  seq: ["out-of-order seq", "missing row"],
  prev_hash: ["hash mismatch"],
  ts: ["bad signature"],
  event: ["bad signature"],
  actor: ["bad signature"],
  sig: ["bad signature"],
  note: ["bad signature"],
  add: ["bad signature"],
  remove: ["bad signature"],
};

Deno.test("verifyAuditLog property: any single-row change fails at that row's seq", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostk_audit_verify_prop_" });
  // One key for every run: generating keys is not what is under test.
  const signer = await ephemeralSigner();
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30 }),
        fc.nat(),
        mutationArb,
        async (length, pick, mutation) => {
          const runDir = `${dir}/${run++}`;
          await Deno.mkdir(runDir);
          try {
            const logPath = `${runDir}/audit.jsonl`;
            const headPath = `${runDir}/audit.head`;
            const log = new AuditLog(logPath, { signer });
            await log.appendBatch(
              Array.from({ length }, (_, i) => ({
                event: "test.row",
                actor: "operator",
                fields: { i, note: `row-${i}` },
              })),
            );
            log.close();
            const k = pick % length;
            await editRow(logPath, k, (row) => mutate(row, mutation));
            const report = await verifyAuditLog({ logPath, headPath, publicRaw: signer.publicRaw });
            assert.equal(report.ok, false);
            assert.ok(report.failure);
            assert.equal(report.failure.seq, k, `${mutation.kind}: ${report.failure.detail}`);
            assert.equal(report.failure.line, k + 1);
            assert.ok(
              EXPECTED_REASONS[mutation.kind].includes(report.failure.reason),
              `${mutation.kind} gave '${report.failure.reason}'`,
            );
          } finally {
            await Deno.remove(runDir, { recursive: true });
          }
        },
      ),
      { numRuns: 150 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verifyAuditLog: a bad head still reports the rows that verified", async () => {
  // Regression: a head tampered to seq 999 once made the report claim 999 verified rows of a
  // 10-row log; `rows` must count only rows that verified.
  await withFixture(N, async (fx) => {
    const head = JSON.parse(await Deno.readTextFile(fx.headPath));
    await Deno.writeTextFile(fx.headPath, JSON.stringify({ ...head, seq: 999 }) + "\n");
    const report = await verify(fx);
    assert.equal(report.ok, false);
    assert.equal(report.failure?.reason, "bad head");
    assert.equal(report.rows, N);
  });
});
