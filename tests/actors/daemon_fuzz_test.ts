/**
 * Protocol fuzz against a real daemon process: hundreds of malformed and hostile lines on one
 * connection (a fixed corpus plus seeded fast-check samples), more on short-lived connections
 * that vanish mid-message, while a well-behaved client keeps being served. Every line that calls
 * for an answer must get exactly one JSON-RPC error (id null when the id cannot be read), and the
 * daemon must end the run up, with a verifiable audit log.
 *
 * Each fuzz line is followed by a probe request with its own id; the answers read before the
 * probe's answer are that line's answers, so every answer is attributed to the line that caused
 * it without relying on timing.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { DaemonClient } from "../../actors/client.ts";
import { METHODS, RPC_ERRORS } from "../../actors/protocol.ts";
import {
  auditRows,
  call,
  closeClient,
  connect,
  type DaemonProcess,
  killDaemonProcess,
  ostk,
  type Project,
  RawConn,
  startDaemonProcess,
  tryStatus,
  waitFor,
  withProject,
} from "../helpers/daemon_fixture.ts";

const SEED = 20261129;
const MiB = 1024 * 1024;
const encoder = new TextEncoder();
const { parse, invalidRequest, methodNotFound, invalidParams, notFound, tooLarge } = RPC_ERRORS;

/** What one answer must look like: an error with `code` and one of `ids`, or a result. */
interface Expect {
  code?: number;
  ids?: unknown[];
  result?: (result: Record<string, unknown>) => string | undefined;
}

interface Case {
  name: string;
  payload: string | Uint8Array;
  /** The answers, in order. */
  expect: Expect[];
}

const err = (code: number, ...ids: unknown[]): Expect => ({ code, ids });
const PARSE = err(parse, null);
const INVALID = err(invalidRequest, null);

/** A request line (no newline); `id` undefined makes a notification. */
function rq(id: unknown, method: unknown, params?: unknown, extra: object = {}): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    ...(id === undefined ? {} : { id }),
    method,
    ...(params === undefined ? {} : { params }),
    ...extra,
  });
}

/** A kernel/call answer that is a refusal in the tool vocabulary (ok: false), not a crash. */
function refusedCall(code?: string): Expect {
  return {
    result: (r) =>
      r.ok === false && (!code || (r.error as { code: string }).code === code)
        ? undefined
        : `expected ok:false ${code ?? ""}, got ${JSON.stringify(r).slice(0, 300)}`,
  };
}

/**
 * The answers a payload calls for, worked out from the spec for the lines the generators make:
 * nothing for a blank line, a parse error (id null) for what is not JSON, an invalid request for
 * JSON that is not a request object (the id echoed when one can be read, else null).
 */
function classify(payload: string | Uint8Array): Expect[] {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  const out: Expect[] = [];
  let start = 0;
  for (let nl = bytes.indexOf(0x0a); nl >= 0; nl = bytes.indexOf(0x0a, start)) {
    const line = new TextDecoder().decode(bytes.subarray(start, nl));
    start = nl + 1;
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      out.push(PARSE);
      continue;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      out.push(INVALID);
      continue;
    }
    const id = (value as { id?: unknown }).id;
    out.push(err(invalidRequest, null, ...(["string", "number"].includes(typeof id) ? [id] : [])));
  }
  return out;
}

const nested = (open: string, close: string, depth: number, core = "") =>
  open.repeat(depth) + core + close.repeat(depth);

/** Lines that are no request at all, or requests broken in their framing: [name, line, answers]. */
const RAW: [string, string, Expect[]][] = [
  ["not json", "hello there", [PARSE]],
  ["lone brace", "{", [PARSE]],
  ["truncated request", rq(1, "daemon/status").slice(0, 30), [PARSE]],
  ["trailing garbage", rq(1, "daemon/status") + "}}", [PARSE]],
  ["NUL bytes", "\0\0\0", [PARSE]],
  ["json null", "null", [INVALID]],
  ["json number", "42", [INVALID]],
  ["json string", '"daemon/status"', [INVALID]],
  ["empty array", "[]", [INVALID]],
  ["batch", `[${rq(1, "daemon/status")}]`, [INVALID]],
  ["jsonrpc 1.0", '{"jsonrpc":"1.0","id":11,"method":"daemon/status"}', [err(invalidRequest, 11)]],
  ["jsonrpc number", '{"jsonrpc":2,"id":12,"method":"daemon/status"}', [err(invalidRequest, 12)]],
  ["no jsonrpc", '{"id":13,"method":"daemon/status"}', [err(invalidRequest, 13)]],
  ["no method", '{"jsonrpc":"2.0","id":14}', [err(invalidRequest, 14)]],
  ["notification", rq(undefined, "daemon/status", {}), []],
  ["notification that fails", rq(undefined, "session/kill", { alias: "nosuch-9" }), []],
  ["10000 newlines", "\n".repeat(9_999), []],
  ["CRLF blank lines", "\r\n".repeat(1000) + "\r", []],
  ["blank lines around garbage", "\n\n\n{bad\n\n", [PARSE]],
  ["two in one write", `${rq(51, "nope")}\n${rq(52, "session/kill", {})}`, [
    err(methodNotFound, 51),
    err(invalidParams, 52),
  ]],
  ["request split by a newline", rq(53, "daemon/status").replace(",", ",\n"), [PARSE, PARSE]],
  ["deep array", nested("[", "]", 100_000), [INVALID]],
  ["deep object", nested('{"a":', "}", 60_000, "1"), [INVALID]],
  [
    "deep params",
    rq(54, "daemon/status", { deep: "@" }).replace('"@"', nested("[", "]", 100_000)),
    [err(invalidParams, 54)],
  ],
  [
    "deep kernel args",
    rq(55, "kernel/call", { tool: "file:read", args: "@" }).replace('"@"', nested("[", "]", 1e5)),
    [refusedCall("bad_input")],
  ],
  [
    "2 MiB request line",
    rq(50, "kernel/call", {
      tool: "file:write",
      args: { path: "big.txt", content: "A".repeat(2 * MiB) },
    }),
    [err(tooLarge, null)],
  ],
  ["2 MiB of garbage", "{".repeat(2 * MiB), [err(tooLarge, null)]],
];

/** Request-shaped lines: [id, method, params, expected error code]; the id must be echoed. */
const REQUESTS: [number | string, unknown, unknown, number][] = [
  [20, "nope/nope", undefined, methodNotFound],
  [21, "", undefined, invalidRequest],
  [22, "m".repeat(101), undefined, invalidRequest],
  [23, 42, undefined, invalidRequest],
  [24, "daemon/status", [], invalidRequest],
  [25, "daemon/status", "x", invalidRequest],
  [30, "session/kill", { alias: 42 }, invalidParams],
  [31, "session/kill", { alias: "UPPER" }, invalidParams],
  [32, "session/kill", {}, invalidParams],
  [33, "client/subscribe", { from_seq: -1 }, invalidParams],
  [34, "client/subscribe", { from_seq: 1.5 }, invalidParams],
  [35, "kernel/call", { tool: 42, args: {} }, invalidParams],
  [36, "kernel/call", { args: {} }, invalidParams],
  [37, "kernel/call", { tool: "file:read", args: {}, as: "../x" }, invalidParams],
  [38, "session/spawn", { cpu: { kind: "evil" } }, invalidParams],
  [39, "session/spawn", { cpu: { kind: "command", command: [] } }, invalidParams],
  [40, "session/spawn", { cpu: { kind: "script", script: "x", sh: "rm -rf /" } }, invalidParams],
  [41, "session/spawn", { cpu: { kind: "script", script: "x" }, revival: "no" }, invalidParams],
  [42, "daemon/stop", { force: true }, invalidParams],
  [43, "daemon/status", { verbose: true }, invalidParams],
  [44, "session/list", { all: 1 }, invalidParams],
  [45, "lineage/resolve", { alias: "a", action: "nuke" }, invalidParams],
  [46, "client/attach", { alias: "-x" }, invalidParams],
  ["i".repeat(200), "nope", undefined, methodNotFound],
  [-1, "nope", undefined, methodNotFound],
  [61, "session/kill", { alias: "nosuch-1" }, notFound],
  [62, "client/attach", { alias: "nosuch-1" }, notFound],
  [63, "lineage/resolve", { alias: "nosuch-1", action: "reap" }, notFound],
];

/** Ids the daemon cannot take: an invalid request, the id echoed or null. */
const BAD_IDS: unknown[] = [1e308, 2 ** 53, 1.5, "i".repeat(201), null, { a: 1 }, [1], true];

/** Kernel calls that must be refused as tool results: [name, tool, args, error code]. */
const HOSTILE_CALLS: [string, string, unknown, string | undefined][] = [
  ["unknown tool", "shell:exec", { cmd: "id" }, "bad_input"],
  ["path escape", "file:read", { path: "../../../../etc/passwd" }, undefined],
  [
    "absolute path out",
    "file:write",
    { path: "/tmp/ostk-fuzz-escape.txt", content: "x" },
    undefined,
  ],
  ["write into .ostk", "file:write", { path: ".ostk/audit.jsonl", content: "{}\n" }, undefined],
  ["args not an object", "file:read", "hello.txt", "bad_input"],
];

function fixedCorpus(): Case[] {
  const cases: Case[] = RAW.map(([name, line, expect]) => ({ name, payload: line + "\n", expect }));
  for (const [id, method, params, code] of REQUESTS) {
    const name = `${JSON.stringify(method).slice(0, 30)} ${JSON.stringify(params)}`;
    cases.push({ name, payload: rq(id, method, params) + "\n", expect: [err(code, id)] });
  }
  for (const id of BAD_IDS) {
    const echo = ["string", "number"].includes(typeof id) ? [id] : [];
    const expect = [err(invalidRequest, null, ...echo)];
    cases.push({
      name: `id ${JSON.stringify(id)}`,
      payload: rq(id, "daemon/status") + "\n",
      expect,
    });
  }
  cases.push({
    name: "extra key",
    payload: rq(26, "nope", {}, { x: 1 }) + "\n",
    expect: [err(invalidRequest, 26)],
  });
  for (const [name, tool, args, code] of HOSTILE_CALLS) {
    const payload = rq(name, "kernel/call", { tool, args }) + "\n";
    cases.push({ name, payload, expect: [refusedCall(code)] });
  }
  const badUtf8 = [...encoder.encode('{"jsonrpc":"2.0","id":56,"method":"'), 0xff, 0xfe, 0xc3];
  cases.push({
    name: "invalid UTF-8 in the method",
    payload: new Uint8Array([...badUtf8, ...encoder.encode('"}\n')]),
    expect: [err(methodNotFound, 56)],
  });
  return cases;
}

/** Seeded fast-check samples: a few dozen lines per category. */
function generatedCorpus(): Case[] {
  const sample = <T>(arb: fc.Arbitrary<T>, n: number, salt: number) =>
    fc.sample(arb, { seed: SEED + salt, numRuns: n });
  const cases: Case[] = [];
  const add = (name: string, payload: string | Uint8Array, expect = classify(payload)) =>
    cases.push({ name, payload, expect });

  for (const [i, s] of sample(fc.string({ unit: "binary", maxLength: 300 }), 40, 1).entries()) {
    add(`random text #${i}`, s.replaceAll("\n", " ") + "\n");
  }
  for (const [i, b] of sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), 40, 2).entries()) {
    add(`random bytes #${i}`, new Uint8Array([...b.map((x) => x === 0x0a ? 0x20 : x), 0x0a]));
  }
  const notRequest = fc.jsonValue().filter((v) =>
    !(typeof v === "object" && v !== null && !Array.isArray(v) && "jsonrpc" in v)
  );
  for (const [i, v] of sample(notRequest, 30, 3).entries()) {
    add(`random json #${i}`, JSON.stringify(v) + "\n");
  }
  // Methods that take no params, given some: always invalid params. `__proto__` keys are left
  // to a test of their own below (one is dropped, not refused, so `daemon/stop` would run).
  const extra = fc.dictionary(
    fc.string({ minLength: 1, maxLength: 20 }).filter((k) => k !== "__proto__"),
    fc.jsonValue({ maxDepth: 3 }),
    { minKeys: 1, maxKeys: 5 },
  );
  const noParams = fc.constantFrom("daemon/status", "daemon/stop", "session/list", "client/detach");
  for (const [i, [method, params]] of sample(fc.tuple(noParams, extra), 30, 4).entries()) {
    add(`${method} with params #${i}`, rq(i, method, params) + "\n", [err(invalidParams, i)]);
  }
  const notString = fc.oneof(
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 3 }),
    fc.dictionary(fc.string(), fc.integer(), { maxKeys: 3 }),
  );
  for (const [i, tool] of sample(notString, 20, 5).entries()) {
    const payload = rq(i, "kernel/call", { tool, args: {} }) + "\n";
    add(`kernel/call tool ${JSON.stringify(tool)}`, payload, [err(invalidParams, i)]);
  }
  // Names inherited from Object.prototype are left to a test of their own below.
  const unknown = fc.string({ minLength: 1, maxLength: 100 })
    .filter((s) => !(s in METHODS) && !(s in Object.prototype));
  for (const [i, method] of sample(unknown, 30, 6).entries()) {
    const payload = rq(`u-${i}`, method) + "\n";
    add(`unknown method ${JSON.stringify(method)}`, payload, [err(methodNotFound, `u-${i}`)]);
  }
  const anyId = fc.oneof(
    fc.double(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.string({ maxLength: 300 }),
    fc.bigInt().map((b) => b * 10n ** 20n),
  );
  for (const id of sample(anyId, 30, 7)) {
    const literal = typeof id === "bigint" ? String(id) : JSON.stringify(id);
    const payload = `{"jsonrpc":"2.0","id":${literal},"method":"no/such"}\n`;
    // The id as the daemon reads it (NaN became null, -0 became 0, big integers lose digits).
    const seen = JSON.parse(payload).id;
    const valid = Number.isSafeInteger(seen) || (typeof seen === "string" && seen.length <= 200);
    add(`id ${literal.slice(0, 40)}`, payload, [
      valid
        ? err(methodNotFound, seen)
        : err(invalidRequest, null, ...(seen === null ? [] : [seen])),
    ]);
  }
  return cases;
}

/** Send `fuzz`, then a probe; return every answer that arrived before the probe's. */
async function answersTo(conn: RawConn, fuzz: string | Uint8Array, probeId: string) {
  await conn.send(fuzz);
  await conn.send(rq(probeId, "daemon/status") + "\n");
  const answers: Record<string, unknown>[] = [];
  for (;;) {
    const line = await conn.line();
    if (line === undefined) throw new Error("the daemon closed the connection");
    const msg = JSON.parse(line);
    if (msg.id === probeId) {
      assert.equal(typeof msg.result?.pid, "number", `probe answer: ${line}`);
      return answers;
    }
    answers.push(msg);
  }
}

/** Why the answers do not fit the case, or undefined when they do. */
function misfit(c: Case, answers: Record<string, unknown>[]): string | undefined {
  const shown = JSON.stringify(answers).slice(0, 400);
  if (answers.length !== c.expect.length) {
    return `${c.name}: expected ${c.expect.length} answer(s), got ${shown}`;
  }
  for (const [i, e] of c.expect.entries()) {
    const a = answers[i] as {
      jsonrpc?: string;
      id?: unknown;
      error?: { code: number; message: string };
      result?: Record<string, unknown>;
    };
    if (a.jsonrpc !== "2.0") return `${c.name}: not a JSON-RPC 2.0 answer: ${shown}`;
    if (e.result) {
      const why = a.result ? e.result(a.result) : `expected a result, got ${shown}`;
      if (why) return `${c.name}: ${why}`;
      continue;
    }
    if (typeof a.error?.message !== "string") return `${c.name}: expected an error: ${shown}`;
    if (a.error.code !== e.code) return `${c.name}: expected code ${e.code}, got ${shown}`;
    if (!e.ids!.some((id) => Object.is(id, a.id))) {
      return `${c.name}: expected id in ${JSON.stringify(e.ids)}, got ${shown}`;
    }
  }
  return undefined;
}

/** A connection that goes away mid-message or without reading its answers (7 kinds). */
async function shortLived(project: Project, kind: number): Promise<void> {
  const conn = await RawConn.open(project);
  try {
    if (kind === 0) await conn.send(rq(1, "daemon/status").slice(0, 20)); // half a message
    else if (kind === 1) await conn.send("x".repeat(MiB + 4096)); // gone while it is skipped
    else if (kind === 3) {
      const read = { tool: "file:read", args: { path: "hello.txt", force: true } };
      await conn.send(rq(1, "kernel/call", read) + "\n"); // an answer nobody reads
    } else if (kind === 4) await conn.send((rq(1, "daemon/status") + "\n").repeat(200));
    else if (kind === 5) await conn.send(new Uint8Array([0xff, 0x00, 0x0a, 0x7b, 0x22]));
    else if (kind === 6) {
      // Half a message, then the end of input: the fragment is dropped and nothing answers.
      await conn.send(rq(1, "daemon/status"));
      await conn.closeWrite();
      assert.equal(await conn.line(), undefined, "an unterminated line was answered");
    } // kind 2: connect and leave without a byte
  } finally {
    await conn.close();
  }
}

Deno.test("daemon fuzz: 200+ hostile lines are each answered, bystanders keep being served", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let good: DaemonClient | undefined;
    let fuzz: RawConn | undefined;
    let stop = false;
    let rounds = 0;
    let loop: Promise<void> | undefined;
    try {
      daemon = await startDaemonProcess(project);
      good = await connect(project);
      const hello = { path: "hello.txt", content: "hello\n" };
      const created = await call<{ ok: boolean }>(good, "kernel/call", {
        tool: "file:create",
        args: hello,
      });
      assert.equal(created.ok, true);
      const client = good;
      const pid = daemon.pid;
      // The well-behaved client: status and a read, over and over, until the fuzz is done.
      loop = (async () => {
        while (!stop) {
          assert.equal((await call<{ pid: number }>(client, "daemon/status", {})).pid, pid);
          const read = await call<{ ok: boolean; result: { content?: string } }>(
            client,
            "kernel/call",
            { tool: "file:read", args: { path: "hello.txt", force: true } },
          );
          assert.equal(read.ok, true, JSON.stringify(read));
          assert.equal(read.result.content, hello.content);
          rounds++;
        }
      })();
      const progressed = async () => {
        const seen = rounds;
        await Promise.race([
          waitFor("the well-behaved client to be served", () => rounds > seen, 15_000, 5),
          loop!.then(() => assert.fail("the well-behaved client stopped")),
        ]);
      };

      const cases = [...fixedCorpus(), ...generatedCorpus()];
      assert.ok(cases.length >= 200, `only ${cases.length} cases`);
      fuzz = await RawConn.open(project);
      const failures: string[] = [];
      let shortConns = 0;
      for (const [i, c] of cases.entries()) {
        const why = misfit(c, await answersTo(fuzz, c.payload, `probe-${i}`));
        if (why) failures.push(why);
        if (i % 15 === 0) {
          await Promise.all([0, 1, 2, 3].map(() => shortLived(project, shortConns++ % 7)));
          await progressed();
        }
      }
      assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed`);
      assert.ok(shortConns >= 50, `${shortConns} short-lived connections`);
      await progressed();
      stop = true;
      await loop;

      // Still up, still the same daemon, nothing spawned or written by the hostile lines.
      assert.equal((await tryStatus(project))?.pid, daemon.pid);
      assert.deepEqual((await call<{ sessions: [] }>(good, "session/list", {})).sessions, []);
      await assert.rejects(Deno.lstat(`${project.root}/big.txt`), Deno.errors.NotFound);
      await assert.rejects(Deno.lstat("/tmp/ostk-fuzz-escape.txt"), Deno.errors.NotFound);
      const events = new Set((await auditRows(project)).map((r) => r.event));
      assert.ok(!events.has("session.spawn") && !events.has("daemon.stop"), [...events].join());
      const audit = await ostk(project, ["os", "audit"]);
      assert.equal(audit.code, 0, audit.stderr);
      assert.match(audit.stdout, /^ok \d+ rows/);
    } finally {
      stop = true;
      await loop?.catch(() => undefined);
      await fuzz?.close();
      await closeClient(good);
      await killDaemonProcess(daemon);
    }
  });
});

/** One line on a fresh connection: its answer, or a note that the connection was dropped. */
async function askAlone(project: Project, line: string): Promise<Record<string, unknown> | string> {
  const conn = await RawConn.open(project);
  try {
    await conn.send(line + "\n");
    const answer = await conn.line();
    return answer === undefined ? "connection closed without an answer" : JSON.parse(answer);
  } finally {
    await conn.close();
  }
}

/** Run `fn` against a fresh daemon. */
function withDaemon(fn: (project: Project, daemon: DaemonProcess) => Promise<void>) {
  return withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    try {
      daemon = await startDaemonProcess(project);
      await fn(project, daemon);
    } finally {
      await killDaemonProcess(daemon);
    }
  });
}

// Regression: methods were looked up with `METHODS[method]`, so Object.prototype members
// slipped through and the connection closed without an answer.
Deno.test("daemon fuzz: method names inherited from Object.prototype are unknown methods", async () => {
  await withDaemon(async (project, daemon) => {
    const got: [string, unknown][] = [];
    for (const method of ["toString", "constructor", "hasOwnProperty", "valueOf", "__proto__"]) {
      const answer = await askAlone(project, rq(1, method));
      got.push([method, typeof answer === "string" ? answer : (answer.error as Expect)?.code]);
    }
    assert.deepEqual(got, got.map(([method]) => [method, methodNotFound]));
    assert.equal((await tryStatus(project))?.pid, daemon.pid);
  });
});

// Regression: tool names were looked up with `TOOL_SCHEMAS[name]` (prototype members hit).
Deno.test("daemon fuzz: a kernel/call tool named after an Object.prototype member is unknown", async () => {
  await withDaemon(async (project) => {
    for (const tool of ["constructor", "toString", "__proto__"]) {
      const answer = await askAlone(project, rq(1, "kernel/call", { tool, args: {} }));
      const why = typeof answer === "string"
        ? answer
        : misfit({ name: tool, payload: "", expect: [refusedCall("bad_input")] }, [answer]);
      assert.equal(why, undefined);
    }
  });
});

// Regression: a `__proto__` key in params was dropped by the record copy instead of refused.
Deno.test("daemon fuzz: a __proto__ key in params is refused like any unknown key", async () => {
  await withDaemon(async (project) => {
    const line = '{"jsonrpc":"2.0","id":7,"method":"daemon/status","params":{"__proto__":{"x":1}}}';
    const answer = await askAlone(project, line);
    const code = typeof answer === "string" ? answer : (answer.error as Expect)?.code;
    assert.equal(code, invalidParams, JSON.stringify(answer));
  });
});
