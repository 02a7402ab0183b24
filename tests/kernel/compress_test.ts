import assert from "node:assert/strict";
import fc from "fast-check";
import {
  classify,
  compressOutput,
  cutMarker,
  foldRuns,
  isErrorLine,
  type OutputKind,
  splitLines,
  stripAnsi,
} from "../../kernel/compress.ts";

const FIXTURES = new URL("../../fixtures/compress/", import.meta.url);
const utf8 = (s: string) => new TextEncoder().encode(s).length;
const numbered = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `line ${from + i}`);

// --- stage 1: terminal escapes ------------------------------------------------------------

Deno.test("compress: stripAnsi removes CSI, OSC, charset shifts and overstrike", () => {
  const cases: [string, string][] = [
    ["\x1b[0m\x1b[1m\x1b[31merror\x1b[0m: x", "error: x"],
    ["\x1b[01m\x1b[Kmain.c:6:10:\x1b[m\x1b[K note", "main.c:6:10: note"],
    ["\x1b[38;5;245m(3ms)\x1b[0m", "(3ms)"],
    ["\x1b]0;window title\x07prompt", "prompt"],
    ["\x1b]8;;https://x.dev\x1b\\link\x1b]8;;\x1b\\ text", "link text"],
    ["\x1b(Bplain\x1b=", "plain"],
    ["\x1b[2K\x1b[1Gdone", "done"],
    ["N\bNA\bAM\bME\bE _\bu", "NAME u"],
    ["tab\tstays\r\nand\rCR", "tab\tstays\r\nand\rCR"],
    ["bell\x07 nul\x00 gone", "bell nul gone"],
  ];
  for (const [input, want] of cases) assert.equal(stripAnsi(input), want, JSON.stringify(input));
});

// --- stage 2: line ends and progress lines --------------------------------------------------

Deno.test("compress: CRLF is one break and a redrawn line keeps its final state", () => {
  assert.deepEqual(splitLines("a\r\nb\r\n"), ["a", "b", ""]);
  assert.deepEqual(splitLines("get 10%\rget 50%\rget 100%\nnext"), ["get 100%", "next"]);
  // A trailing \r (redraw pending) does not blank the line.
  assert.deepEqual(splitLines("get 10%\rget 100%\r\r\nnext"), ["get 100%", "next"]);
  // Text a progress redraw overwrote is kept when it is an error.
  assert.deepEqual(splitLines("dl 10%\rerror: reset by peer\rdl 11%"), [
    "error: reset by peer",
    "dl 11%",
  ]);
});

// --- stage 3: folding -----------------------------------------------------------------------

Deno.test("compress: runs of identical lines fold to 'line (×N)'", () => {
  const warn = "npm warn deprecated inflight@1.0.6";
  assert.deepEqual(foldRuns([warn, warn, warn, warn, warn, "end"]), [`${warn} (×5)`, "end"]);
  // Separate runs stay separate, order kept.
  assert.deepEqual(foldRuns(["xxxxxxxx", "xxxxxxxx", "y", "xxxxxxxx"]), [
    "xxxxxxxx (×2)",
    "y",
    "xxxxxxxx",
  ]);
  // Folding a tiny line would make it longer: left alone.
  assert.deepEqual(foldRuns(["a", "a"]), ["a", "a"]);
  // Blank runs become one blank line.
  assert.deepEqual(foldRuns(["a", "", "", "", "b"]), ["a", "", "b"]);
  // Lines that differ only in digits are information (test numbers, counts): not folded.
  assert.deepEqual(foldRuns(["test 1 ... ok", "test 2 ... ok"]), [
    "test 1 ... ok",
    "test 2 ... ok",
  ]);
});

Deno.test("compress: folding shows up in compressOutput", () => {
  const text = "start\n" + "waiting for lock on .ostk/gen_table.lock\n".repeat(30) + "done\n";
  const out = compressOutput(text, { exitCode: 0 });
  assert.equal(out.text, "start\nwaiting for lock on .ostk/gen_table.lock (×30)\ndone\n");
  assert.equal(out.cut, undefined);
});

// --- stage 4/5: long lines, head and tail ---------------------------------------------------

Deno.test("compress: long output keeps head and tail with an exact cut marker", () => {
  const lines = numbered(500);
  const out = compressOutput(lines.join("\n") + "\n", { exitCode: 0 });
  const middle = lines.slice(40, 420);
  const size = middle.reduce((n, l) => n + utf8(l) + 1, 0);
  const marker = `… [cut 380 lines, ${size} bytes] …`;
  assert.equal(cutMarker(380, size), marker);
  assert.equal(out.text, [...lines.slice(0, 40), marker, ...lines.slice(420)].join("\n") + "\n");
  assert.deepEqual(out.cut, { lines: 380, bytes: size });
  assert.equal(out.after, utf8(out.text));
});

Deno.test("compress: head and tail sizes are configurable; short output is left whole", () => {
  const lines = numbered(30);
  const out = compressOutput(lines.join("\n"), { head: 2, tail: 3 });
  assert.deepEqual(out.text.split("\n"), [
    "line 0",
    "line 1",
    cutMarker(25, lines.slice(2, 27).reduce((n, l) => n + utf8(l) + 1, 0)),
    "line 27",
    "line 28",
    "line 29",
  ]);
  assert.equal(compressOutput(lines.join("\n")).text, lines.join("\n"));
});

Deno.test("compress: error lines in the cut middle are kept, in order, between markers", () => {
  const lines = numbered(1000);
  lines[300] = "src/kernel/a.ts:12:5: error: expected ';'";
  lines[301] = "src/kernel/a.ts:13:1: error: unexpected '}'";
  lines[600] = "thread 'main' panicked at src/lib.rs:7:47";
  lines[700] = "Traceback (most recent call last):";
  const out = compressOutput(lines.join("\n"), { exitCode: 1 });
  const got = out.text.split("\n");
  const kept = [300, 301, 600, 700].map((i) => got.indexOf(lines[i]));
  assert.ok(kept.every((k, i) => k > 40 && (i === 0 || k > kept[i - 1])), `${kept}`);
  assert.equal(kept[1], kept[0] + 1);
  // Gaps: 40..299, 302..599, 601..699, 701..919 → four markers.
  assert.equal(got.filter((l) => l.startsWith("… [cut ")).length, 4);
  assert.equal(out.cut?.lines, 1000 - 40 - 80 - 4);
  assert.equal(out.kind, "failure");
});

Deno.test("compress: an over-long line is shortened unless it is an error line", () => {
  const blob = "x".repeat(5000);
  const err = "error: " + "y".repeat(5000);
  const out = compressOutput(`${blob}\n${err}\n`, { maxLineChars: 100 });
  const [first, second] = out.text.split("\n");
  assert.equal(first, `${"x".repeat(100)} … [cut 4900 bytes]`);
  assert.equal(second, err);
  assert.deepEqual(out.cut, { lines: 0, bytes: 4900 });
});

// --- classification -------------------------------------------------------------------------

Deno.test("compress: classification table", () => {
  const cases: { lines: string[]; exit?: number; kind: OutputKind }[] = [
    { lines: ["ok | 12 passed | 0 failed (1s)"], exit: 0, kind: "test-report" },
    { lines: ["FAILED | 31 passed | 2 failed (23ms)"], exit: 1, kind: "test-report" },
    { lines: ["Tests:       1 failed, 9 passed, 10 total"], exit: 1, kind: "test-report" },
    { lines: ["===== 2 failed, 41 passed in 0.12s ====="], exit: 1, kind: "test-report" },
    { lines: ["test result: ok. 4 passed; 0 failed; 0 ignored"], exit: 0, kind: "test-report" },
    { lines: ["ok  \texample.com/pkg\t0.012s"], exit: 0, kind: "test-report" },
    { lines: ["--- FAIL: TestParse (0.00s)"], exit: 1, kind: "test-report" },
    { lines: ["Ran 7 tests in 0.003s", "", "OK"], exit: 0, kind: "test-report" },
    { lines: ["  3 passing (12ms)"], exit: 0, kind: "test-report" },
    { lines: ["--- a/x.ts", "+++ b/x.ts", "@@ -1,2 +1,2 @@", "-a", "+b"], exit: 1, kind: "diff" },
    { lines: ["diff --git a/x b/x", "index 1..2", "Binary files differ"], exit: 0, kind: "diff" },
    { lines: ["--- not a diff", "+++ either"], exit: 0, kind: "success" },
    { lines: ["compiled 3 files"], exit: 2, kind: "failure" },
    { lines: ["main.c:6:10: error: undeclared"], kind: "failure" },
    { lines: ["all good"], kind: "success" },
    // A known exit code decides: grep finding "error" and exiting 0 succeeded.
    { lines: ["src/a.ts:3: // error handling"], exit: 0, kind: "success" },
  ];
  for (const { lines, exit, kind } of cases) {
    assert.equal(classify(lines, exit), kind, JSON.stringify(lines));
  }
  // compressOutput classifies after stripping colour.
  assert.equal(
    compressOutput("\x1b[32mok\x1b[0m | 3 passed | 0 failed\n", { exitCode: 0 }).kind,
    "test-report",
  );
});

// --- the real corpus ------------------------------------------------------------------------

interface Meta {
  command: string;
  exit_code: number;
  ran_in: string;
  shows: string;
  provenance: string;
}

interface Fixture {
  name: string;
  text: string;
  meta: Meta;
}

/** fixtures/compress/manifest.json: provenance per fixture, keyed by name. */
async function manifest(): Promise<Record<string, Meta>> {
  return JSON.parse(await Deno.readTextFile(new URL("manifest.json", FIXTURES))).fixtures;
}

async function corpus(): Promise<Fixture[]> {
  const metas = await manifest();
  const out: Fixture[] = [];
  for await (const entry of Deno.readDir(FIXTURES)) {
    if (!entry.name.endsWith(".out")) continue;
    const name = entry.name.slice(0, -4);
    const text = new TextDecoder().decode(await Deno.readFile(new URL(entry.name, FIXTURES)));
    out.push({ name, text, meta: metas[name] });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Independent of compress.ts: a plain CSI/OSC strip and every kind of line end. */
function plainLines(text: string): string[] {
  // deno-lint-ignore no-control-regex
  const stripped = text.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g, "");
  return stripped.split(/\r\n|\n|\r/).map((l) => l.trim()).filter((l) => l !== "");
}

Deno.test("compress corpus: at least 8 real fixtures, each with its provenance in the manifest", async () => {
  const all = await corpus();
  assert.ok(all.length >= 8, `${all.length} fixtures`);
  assert.deepEqual(
    Object.keys(await manifest()).sort(),
    all.map((f) => f.name),
    "manifest.json has exactly one entry per .out file",
  );
  for (const f of all) {
    assert.ok(f.meta, `${f.name} has no entry in manifest.json`);
    assert.equal(typeof f.meta.exit_code, "number", f.name);
    for (const field of ["command", "ran_in", "shows", "provenance"] as const) {
      assert.ok(
        typeof f.meta[field] === "string" && f.meta[field].length > 0,
        `${f.name}.${field}`,
      );
    }
    assert.ok(f.text.length > 0, f.name);
  }
  // The diff fixture is a diff between two real revisions, not against an empty file.
  const diff = all.find((f) => f.name === "git_diff_tools")!;
  assert.match(
    diff.text,
    /^diff --git a\/kernel\/tools\.ts b\/kernel\/tools\.ts\nindex [0-9a-f]+\.\.[0-9a-f]+ /,
  );
  assert.doesNotMatch(diff.text, /^@@ -0,0 /m);
  assert.ok(
    (diff.text.match(/^-(?!--)/gm) ?? []).length > 0,
    "lines removed from the old revision",
  );
  // Raw bytes were saved: colour is in the corpus for the ANSI stage to chew on.
  assert.ok(all.filter((f) => f.text.includes("\x1b[")).length >= 5);
  assert.ok(all.some((f) => /\r(?!\n)/.test(f.text)), "a fixture with \\r progress lines");
});

Deno.test("compress corpus: every line a plain /error|fail/i grep finds survives", async () => {
  for (const f of await corpus()) {
    const out = compressOutput(f.text, { exitCode: f.meta.exit_code });
    for (const line of plainLines(f.text).filter((l) => /error|fail/i.test(l))) {
      assert.ok(out.text.includes(line), `${f.name}: lost ${JSON.stringify(line)}`);
    }
    for (const line of plainLines(f.text).filter(isErrorLine)) {
      assert.ok(out.text.includes(line), `${f.name}: lost error line ${JSON.stringify(line)}`);
    }
  }
});

Deno.test("compress corpus: never larger than the input, sizes reported truly", async () => {
  for (const f of await corpus()) {
    const out = compressOutput(f.text, { exitCode: f.meta.exit_code });
    assert.equal(out.before, utf8(f.text), f.name);
    assert.equal(out.after, utf8(out.text), f.name);
    assert.ok(out.after <= out.before, f.name);
    assert.ok(!out.text.includes("\x1b"), `${f.name} still has escapes`);
    assert.deepEqual(compressOutput(f.text, { exitCode: f.meta.exit_code }), out, "pure");
  }
});

Deno.test("compress corpus: each fixture is classified as what it is", async () => {
  const expected: Record<string, OutputKind> = {
    apt_get_dry_run: "success",
    cargo_test_fail: "test-report",
    deno_check_error: "failure",
    deno_test_fail: "test-report",
    deno_test_pass: "test-report",
    git_diff_tools: "diff",
    git_clone_progress: "success",
    git_log_stat: "success",
    ls_laR_doc: "success",
    make_gcc_error: "failure",
    npm_install_verbose: "success",
    pytest_fail: "test-report",
  };
  for (const f of await corpus()) {
    if (!(f.name in expected)) continue;
    const out = compressOutput(f.text, { exitCode: f.meta.exit_code });
    assert.equal(out.kind, expected[f.name], f.name);
  }
});

// --- properties -----------------------------------------------------------------------------

Deno.test("compress property: never grows, keeps every error line", () => {
  const line = fc.oneof(
    fc.constantFrom("", "ok", "error: boom", "FAIL x", "\x1b[31mred\x1b[0m", "50%\r100%", "same"),
    fc.string({ maxLength: 30 }),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 300 }), fc.nat(50), fc.nat(50), (lines, head, tail) => {
      const text = lines.join("\n");
      const out = compressOutput(text, { head, tail });
      assert.ok(out.after <= out.before);
      for (const l of splitLines(stripAnsi(text)).map((s) => s.trimEnd())) {
        if (isErrorLine(l)) assert.ok(out.text.includes(l), JSON.stringify(l));
      }
    }),
    { numRuns: 300 },
  );
});
