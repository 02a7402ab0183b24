// deno-lint-ignore-file no-control-regex -- matching terminal control bytes is this file's job
/**
 * Output compression for the shell tool: what a command printed, cut down to what a model needs
 * to read. A pure function of the text (and the exit code), in stages:
 *
 * 1. strip terminal escapes (CSI colours, OSC titles/links, charset shifts, backspace overstrike);
 * 2. CRLF → LF, and a line redrawn with `\r` (progress bars) keeps only its final state;
 * 3. trailing blanks dropped, blank runs collapsed, runs of identical lines folded to
 *    `line (×N)`. Lines that differ only in digits are NOT folded: test numbers, line numbers and
 *    byte counts are often the information;
 * 4. over-long non-error lines cut to `maxLineChars`;
 * 5. long output keeps its head and tail; the middle is replaced by `… [cut N lines, M bytes] …`
 *    markers, except error lines, which are kept in order wherever they are.
 *
 * An error line is never dropped or shortened, and the result is never longer than the input.
 */

/** What the output is, for the caller's one-word summary. */
export type OutputKind = "success" | "failure" | "diff" | "test-report";

/** Knobs for {@linkcode compressOutput}; the defaults suit a model's context window. */
export interface CompressOptions {
  /** The command's exit code; when given it decides success versus failure. */
  exitCode?: number;
  /** Lines kept from the start of long output (default 40). */
  head?: number;
  /** Lines kept from the end of long output (default 80). */
  tail?: number;
  /** Longest non-error line kept whole, in UTF-16 units (default 2000). */
  maxLineChars?: number;
}

/** The compressed text and how much it saved, in UTF-8 bytes. */
export interface Compressed {
  text: string;
  kind: OutputKind;
  before: number;
  after: number;
  /** Present when whole lines were cut from the middle or long lines were shortened. */
  cut?: { lines: number; bytes: number };
}

/**
 * Lines that are never dropped. Deliberately broad (any "error" or "fail" substring, panics,
 * exceptions, tracebacks, assertions, `npm ERR!`, apt's `E:`, "command not found"): keeping a
 * harmless line costs a few bytes, dropping the one line that explains a failure costs a turn.
 */
const ERROR_LINE =
  /error|fail|panic|exception|traceback|assert|fatal|abort|segmentation fault|core dumped|denied|not found|cannot|unable to|undefined reference|\bERR!|^E: /i;

const ANSI =
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[()*+][0-9A-Za-z]|\x1b[@-Z\\-_=>]|\x9b[0-?]*[ -/]*[@-~]/g;
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

/** `… [what was left out] …`: the form every marker in the output takes. */
const NOTE = /^… \[.*\] …$/;

const TEST_SUMMARY = [
  /^(ok|FAILED) \| \d+ passed/, // deno test
  /^Tests:\s+.*\d+ (passed|failed|total)/, // jest
  /^\s*Test Files\s+.*\d+ (passed|failed)/, // vitest
  /^=+ .*\b\d+ (passed|failed|errors?|skipped|xfailed|deselected)\b.* in [\d.]+m?s\b/, // pytest
  /^test result: (ok|FAILED)\. \d+ passed/, // cargo test
  /^(ok|FAIL)\s+\S+\s+(\d+\.\d+s|\(cached\))/, // go test
  /^--- (PASS|FAIL): /, // go test -v
  /^Ran \d+ tests? in [\d.]+s$/, // python unittest
  /^\s*\d+ passing \(/, // mocha
];

/** True for a line compression must keep: the predicate the tests and the bench share. */
export function isErrorLine(line: string): boolean {
  return ERROR_LINE.test(line);
}

/**
 * Remove terminal escape sequences and stray control characters (tab, LF and CR stay).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stripAnsi } from "./compress.ts";
 * assert.equal(stripAnsi("\x1b[31merror\x1b[0m: x"), "error: x");
 * ```
 */
export function stripAnsi(text: string): string {
  // Overstrike (`N\bN`, `_\bx`) is how man pages print bold and underline.
  return text.replace(ANSI, "").replace(/[^\n\x08]\x08/g, "").replace(CONTROL, "");
}

/**
 * Split into lines: CRLF is one break, and a line redrawn with bare `\r` keeps its final state
 * plus any error text it overwrote on the way (a terminal would hide it; a log must not).
 */
export function splitLines(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.replace(/\r+\n/g, "\n").split("\n")) {
    if (!raw.includes("\r")) {
      out.push(raw);
      continue;
    }
    const parts = raw.split("\r");
    let last = parts.length - 1;
    while (last > 0 && parts[last].trim() === "") last--;
    for (let i = 0; i < last; i++) if (isErrorLine(parts[i])) out.push(parts[i]);
    out.push(parts[last]);
  }
  return out;
}

/**
 * Fold runs: blank runs become one blank line, N identical lines become `line (×N)` when that
 * is shorter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { foldRuns } from "./compress.ts";
 * assert.deepEqual(foldRuns(["a long line", "a long line", "x"]), ["a long line (×2)", "x"]);
 * ```
 */
export function foldRuns(lines: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length;) {
    let j = i + 1;
    while (j < lines.length && lines[j] === lines[i]) j++;
    const n = j - i;
    const folded = `${lines[i]} (×${n})`;
    if (n === 1) out.push(lines[i]);
    else if (lines[i] === "") out.push("");
    else if (bytes(folded) < n * (bytes(lines[i]) + 1)) out.push(folded);
    else for (let k = i; k < j; k++) out.push(lines[k]);
    i = j;
  }
  return out;
}

/** The marker that stands for lines cut from the middle. */
export function cutMarker(lines: number, size: number): string {
  return `… [cut ${lines} lines, ${size} bytes] …`;
}

/**
 * Keep the first `head` and last `tail` lines, and every error line in between, in order; each
 * run of dropped lines becomes one {@linkcode cutMarker} (kept as is when the marker would be
 * longer than what it replaces).
 */
export function headTail(
  lines: string[],
  head: number,
  tail: number,
): { lines: string[]; cutLines: number; cutBytes: number } {
  if (lines.length <= head + tail) return { lines, cutLines: 0, cutBytes: 0 };
  const out = lines.slice(0, head);
  let cutLines = 0;
  let cutBytes = 0;
  let gap: string[] = [];
  const flush = () => {
    const size = gap.reduce((sum, l) => sum + bytes(l) + 1, 0);
    const marker = cutMarker(gap.length, size);
    if (gap.length > 0 && bytes(marker) + 1 < size) {
      out.push(marker);
      cutLines += gap.length;
      cutBytes += size;
    } else out.push(...gap);
    gap = [];
  };
  for (const line of lines.slice(head, lines.length - tail)) {
    // A note an earlier stage wrote (the shell's truncation marker) is kept like an error.
    if (isErrorLine(line) || NOTE.test(line)) {
      flush();
      out.push(line);
    } else gap.push(line);
  }
  flush();
  out.push(...lines.slice(lines.length - tail));
  return { lines: out, cutLines, cutBytes };
}

/**
 * What the output is: a test run's report, a unified diff, a failure or a success. A known exit
 * code decides failure versus success (`grep -r error src/` exiting 0 is a success); without one,
 * any error line makes it a failure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classify } from "./compress.ts";
 * assert.equal(classify(["test result: ok. 3 passed; 0 failed"], 0), "test-report");
 * assert.equal(classify(["boom"], 2), "failure");
 * ```
 */
export function classify(lines: string[], exitCode?: number): OutputKind {
  if (lines.some((l) => TEST_SUMMARY.some((re) => re.test(l)))) return "test-report";
  if (isUnifiedDiff(lines)) return "diff";
  const failed = exitCode !== undefined ? exitCode !== 0 : lines.some(isErrorLine);
  return failed ? "failure" : "success";
}

/**
 * Compress command output for a model to read. Pure: the same text and options give the same
 * result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compressOutput } from "./compress.ts";
 * const text = Array.from({ length: 500 }, (_, i) => `line ${i}`).join("\n") + "\nerror: x\n";
 * const out = compressOutput(text, { exitCode: 1 });
 * assert.equal(out.kind, "failure");
 * assert.ok(out.after < out.before);
 * assert.ok(out.text.includes("error: x"));
 * ```
 */
export function compressOutput(text: string, opts: CompressOptions = {}): Compressed {
  const { head = 40, tail = 80, maxLineChars = 2000 } = opts;
  const before = bytes(text);
  const endsWithNewline = /\n$/.test(text);
  let lines = splitLines(stripAnsi(text)).map((l) => l.trimEnd());
  if (endsWithNewline && lines.at(-1) === "") lines.pop();
  lines = foldRuns(lines);
  const kind = classify(lines, opts.exitCode);
  let cutBytes = 0;
  lines = lines.map((line) => {
    if (line.length <= maxLineChars || isErrorLine(line)) return line;
    const dropped = bytes(line.slice(maxLineChars));
    cutBytes += dropped;
    return `${line.slice(0, maxLineChars)} … [cut ${dropped} bytes]`;
  });
  const kept = headTail(lines, Math.max(0, head), Math.max(0, tail));
  cutBytes += kept.cutBytes;
  let out = kept.lines.join("\n") + (endsWithNewline && kept.lines.length > 0 ? "\n" : "");
  // Every stage only removes or shortens, so this cannot happen; it guards the promise anyway.
  if (bytes(out) > before) out = text;
  return {
    text: out,
    kind,
    before,
    after: bytes(out),
    ...(cutBytes > 0 ? { cut: { lines: kept.cutLines, bytes: cutBytes } } : {}),
  };
}

function isUnifiedDiff(lines: string[]): boolean {
  for (let i = 0; i + 2 < lines.length; i++) {
    if (lines[i].startsWith("diff --git ")) return true;
    if (
      lines[i].startsWith("--- ") && lines[i + 1].startsWith("+++ ") &&
      /^@@ -\d+(,\d+)? \+\d+(,\d+)? @@/.test(lines[i + 2])
    ) return true;
  }
  return false;
}

/** UTF-8 length of `s` without allocating. */
function bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
