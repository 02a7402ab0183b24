/**
 * Agentfile parsing: a line lexer that yields words with their line and column, one small
 * parser per directive, and the loading of a file's `FROM-PROFILE` chain.
 *
 * The grammar, as decided here:
 * - One directive per line: an upper-case keyword at column 1, then its arguments.
 * - Comments: a line whose first non-blank character is `#`, and a trailing comment that starts
 *   with a `#` standing at the start of a word and followed by a blank or the line end
 *   (`TASK fix #12` keeps `#12`; `LIMIT turns 5 # cap` drops `# cap`). Not inside quotes.
 * - Arguments are shell-like words: blanks separate them; `"..."` (with `\"` and `\\`) and
 *   `'...'` quote, and may sit inside a word (`script:"my file.jsonl"`). Quotes end on their line.
 * - Any line ending with `\` (outside quotes) continues onto the next; the pieces join with one
 *   space. After TASK, indented lines also continue the text, joined with newlines; a blank line
 *   ends them. An indented line anywhere else is an error.
 * - TASK's text is taken as written (quotes and apostrophes are plain characters), except that
 *   text quoted as a whole loses its quotes, so `TASK "a # b"` keeps its `#`.
 */
import {
  type AgentfileAst,
  BudgetValue,
  CountValue,
  type Directive,
  type DirectiveName,
  DIRECTIVES,
  type From,
  IsolationSchema,
  type Limit,
  LIMIT_KEYS,
  type LimitKey,
  LIST_LIMITS,
  NetValue,
  PathValue,
  PermissionModeSchema,
  PlainNameValue,
  RevivalPolicySchema,
  type Source,
  SuccessorSchema,
  TOOL_CLASSES,
  ToolClassSchema,
  type ToolPattern,
  WallClockValue,
} from "./agentfile_schema.ts";
import { OstkError } from "./errors.ts";
import { MODEL_SPEC_FORMS, parseModelSpec } from "./model_spec.ts";
import type { z } from "zod";

/** A word of a line, quotes removed, with the column its first character stood at. */
interface Word {
  text: string;
  line: number;
  column: number;
}

/** One directive's lexed line (and its continuations). */
interface LexedLine {
  keyword: Word;
  words: Word[];
  /** TASK only: its text, continuations joined. */
  text?: string;
  /** A lexing problem was reported; the parser skips the line. */
  broken?: boolean;
}

/** The result of a lenient parse: every problem, not just the first. */
export interface ParseResult {
  ast: AgentfileAst;
  /** Errors, plus a few warnings (`details.severity`); `details.rule` names the lint rule. */
  problems: OstkError[];
}

/** Raise a problem found at `at` (in `file`) under lint rule `rule`. */
export function agentfileProblem(
  file: string,
  at: { line: number; column: number },
  rule: string,
  message: string,
  more: { hint?: string; severity?: "error" | "warning"; directive?: string } = {},
): OstkError {
  const { hint, severity = "error", directive } = more;
  const site = { file, line: at.line, column: at.column };
  return new OstkError("bad_input", message, site, hint, { rule, severity, directive });
}

/**
 * Parse one Agentfile and collect every problem, each with file, line and column. A line with a
 * problem is left out of the AST; the rest still parse, so lint can report them all at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAgentfileLenient } from "./agentfile_parse.ts";
 * const { ast, problems } = parseAgentfileLenient("FROM script:a.jsonl\nLIMT turns 3\n", "x");
 * assert.equal(ast.directives.length, 1);
 * assert.equal(problems[0].site.line, 2);
 * ```
 */
export function parseAgentfileLenient(text: string, file: string): ParseResult {
  const problems: OstkError[] = [];
  const directives: Directive[] = [];
  for (const lexed of lex(text, file, problems)) {
    if (lexed.broken) continue;
    const { keyword } = lexed;
    const source: Source = { file, line: keyword.line, column: keyword.column };
    if (!(DIRECTIVES as readonly string[]).includes(keyword.text)) {
      const near = didYouMean(keyword.text, DIRECTIVES);
      problems.push(agentfileProblem(
        file,
        keyword,
        "unknown-directive",
        `unknown directive '${keyword.text}'${near ? `; did you mean '${near}'?` : ""}`,
        { hint: `directives are ${DIRECTIVES.join(", ")}` },
      ));
      continue;
    }
    try {
      directives.push(parseDirective(keyword.text as DirectiveName, lexed, source));
    } catch (err) {
      if (!(err instanceof OstkError)) throw err;
      problems.push(err);
    }
  }
  return { ast: { file, directives }, problems };
}

/**
 * Parse one Agentfile, throwing the first error as an {@linkcode OstkError} whose site names
 * the file, line and column.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAgentfile } from "./agentfile_parse.ts";
 * const ast = parseAgentfile("FROM script:a.jsonl\nTASK tidy up \\\n  the docs\n", "a");
 * assert.equal(ast.directives[1].directive, "TASK");
 * ```
 */
export function parseAgentfile(text: string, file: string): AgentfileAst {
  const { ast, problems } = parseAgentfileLenient(text, file);
  const first = problems.find((p) => p.details?.severity === "error");
  if (first) throw first;
  return ast;
}

// ---- lexer ----

function lex(text: string, file: string, problems: OstkError[]): LexedLine[] {
  const lines: LexedLine[] = [];
  const physical = text.split(/\r?\n/);
  let current: LexedLine | undefined;
  let continues = false;
  const fail = (at: { line: number; column: number }, msg: string, hint?: string) => {
    const directive = current?.keyword.text;
    problems.push(agentfileProblem(file, at, "syntax", msg, { hint, directive }));
    if (current) current.broken = true;
  };
  for (let i = 0; i < physical.length; i++) {
    const s = physical[i];
    const line = i + 1;
    const indent = s.length - s.trimStart().length;
    if (continues && current) {
      continues = appendSegment(current, s, line, indent, " ", fail);
      continue;
    }
    if (s.trim() === "") {
      current = undefined; // a blank line ends a TASK's indented continuation
      continue;
    }
    if (s.trimStart().startsWith("#")) continue;
    if (indent > 0) {
      if (current?.keyword.text === "TASK") {
        if (!current.broken) continues = appendSegment(current, s, line, indent, "\n", fail);
        const first = /^\S+/.exec(s.slice(indent))?.[0] ?? "";
        if ((DIRECTIVES as readonly string[]).includes(first)) {
          problems.push(agentfileProblem(
            file,
            { line, column: indent + 1 },
            "task-looks-like-directive",
            `this indented line is part of the TASK text, yet it starts with '${first}'`,
            { hint: "remove the indentation to make it a directive", severity: "warning" },
          ));
        }
      } else {
        current = undefined;
        fail(
          { line, column: 1 },
          "unexpected indentation: only TASK text continues on indented lines",
          "start directives at column 1",
        );
      }
      continue;
    }
    const keywordText = /^\S+/.exec(s)![0];
    current = { keyword: { text: keywordText, line, column: 1 }, words: [] };
    lines.push(current);
    continues = appendSegment(current, s, line, keywordText.length, "", fail);
  }
  if (continues && current) {
    fail({ line: physical.length, column: 1 }, "the file ends after a line continued with '\\'");
  }
  return lines;
}

type Fail = (at: { line: number; column: number }, msg: string, hint?: string) => void;

/** Lex `s` from `start` into `target`; true when the piece ends with a continuing `\`. */
function appendSegment(
  target: LexedLine,
  s: string,
  line: number,
  start: number,
  joiner: string,
  fail: Fail,
): boolean {
  if (target.keyword.text !== "TASK") return scanWords(s, start, line, target.words, fail);
  const piece = scanText(s, start, line, target.text === undefined, fail);
  target.text = [target.text ?? "", piece.text].filter((t) => t !== "").join(joiner);
  return piece.continues;
}

/** Shell-like words of `s` from `start`, appended to `words`. */
function scanWords(s: string, start: number, line: number, words: Word[], fail: Fail): boolean {
  let j = start;
  const blank = (c: string | undefined) => c === undefined || c === " " || c === "\t";
  const endsHere = (k: number) => s[k] === "\\" && s.slice(k + 1).trim() === "";
  while (j < s.length) {
    while (blank(s[j]) && j < s.length) j++;
    if (j >= s.length) break;
    if (s[j] === "#" && blank(s[j + 1])) return false; // trailing comment
    if (endsHere(j)) return true;
    const column = j + 1;
    let text = "";
    while (j < s.length && !blank(s[j])) {
      const c = s[j];
      if (endsHere(j)) {
        words.push({ text, line, column });
        return true;
      }
      if (c === '"' || c === "'") {
        const close = closingQuote(s, j);
        if (close < 0) {
          fail({ line, column: j + 1 }, `unterminated ${c} quote`, "quotes end on their own line");
          return false;
        }
        text += unquote(s.slice(j, close + 1));
        j = close + 1;
      } else {
        text += c;
        j++;
      }
    }
    words.push({ text, line, column });
  }
  return false;
}

/** TASK text of `s` from `start`: comments cut, a wholly quoted first piece unquoted. */
function scanText(
  s: string,
  start: number,
  line: number,
  mayQuote: boolean,
  fail: Fail,
): { text: string; continues: boolean } {
  const rest = s.slice(start).trimStart();
  const column = s.length - rest.length + 1;
  if (mayQuote && (rest.startsWith('"') || rest.startsWith("'"))) {
    const close = closingQuote(rest, 0);
    const after = close < 0 ? "" : rest.slice(close + 1).trim();
    if (close < 0) fail({ line, column }, `unterminated ${rest[0]} quote`);
    else if (after !== "" && !/^#(\s|$)/.test(after)) {
      fail(
        { line, column: column + rest.indexOf(after, close + 1) },
        "text after the closing quote",
        "quote the whole TASK text or none of it",
      );
    } else return { text: unquote(rest.slice(0, close + 1)), continues: false };
    return { text: "", continues: false };
  }
  const comment = /(^|\s)#(\s|$)/.exec(rest);
  let text = (comment ? rest.slice(0, comment.index) : rest).trimEnd();
  const continues = text.endsWith("\\");
  if (continues) text = text.slice(0, -1).trimEnd();
  return { text, continues };
}

/** Index of the quote closing the one at `s[open]`, or -1. */
function closingQuote(s: string, open: number): number {
  const q = s[open];
  for (let k = open + 1; k < s.length; k++) {
    if (q === '"' && s[k] === "\\") k++;
    else if (s[k] === q) return k;
  }
  return -1;
}

/** The contents of a quoted string; in double quotes `\"` and `\\` stand for `"` and `\`. */
function unquote(quoted: string): string {
  const inner = quoted.slice(1, -1);
  return quoted[0] === '"' ? inner.replace(/\\(["\\])/g, "$1") : inner;
}

// ---- per-directive parsers ----

function parseDirective(name: DirectiveName, lexed: LexedLine, source: Source): Directive {
  const { words, keyword } = lexed;
  const file = source.file;
  const bad = (at: { line: number; column: number }, msg: string, hint?: string): never => {
    throw agentfileProblem(file, at, "bad-value", msg, { hint, directive: name });
  };
  const only = (what: string): Word => {
    if (words.length === 0) bad(keyword, `${name} needs ${what}`);
    if (words.length > 1) {
      bad(
        words[1],
        `${name} takes one value, found '${words[1].text}' after it`,
        "quote a value with spaces",
      );
    }
    return words[0];
  };
  const value = <T>(schema: z.ZodType<T>, w: Word, what: string, options?: readonly string[]) => {
    const r = schema.safeParse(w.text);
    if (r.success) return r.data;
    const near = options ? didYouMean(w.text, options) : undefined;
    const expected = options ? `expected one of ${options.join(", ")}` : r.error.issues[0].message;
    const guess = near ? `; did you mean '${near}'?` : "";
    return bad(w, `${what}: ${expected}, found '${w.text}'${guess}`);
  };
  switch (name) {
    case "FROM":
      return { directive: name, source, from: parseFrom(words, keyword, bad) };
    case "TASK": {
      const text = lexed.text ?? "";
      if (text === "") bad(keyword, "TASK needs a text saying what the agent is to do");
      return { directive: name, source, text };
    }
    case "LIMIT":
      return { directive: name, source, limit: parseLimit(words, keyword, bad, value) };
    case "PIN":
    case "FROM-PROFILE": {
      const w = only("a profile name");
      return { directive: name, source, name: value(PlainNameValue, w, name) };
    }
    case "ISOLATION": {
      const w = only(`one of ${IsolationSchema.options.join(", ")}`);
      return {
        directive: name,
        source,
        isolation: value(IsolationSchema, w, "ISOLATION", IsolationSchema.options),
      };
    }
    case "TOOL":
      return { directive: name, source, tool: parseTool(only("a tool class"), bad, value) };
  }
}

type Bad = (at: { line: number; column: number }, msg: string, hint?: string) => never;
type Value = <T>(schema: z.ZodType<T>, w: Word, what: string, options?: readonly string[]) => T;

function parseFrom(words: Word[], keyword: Word, bad: Bad): From {
  const cpus = `script:<path>, command:<argv...>, or a model: ${MODEL_SPEC_FORMS}`;
  if (words.length === 0) bad(keyword, `FROM needs a CPU: ${cpus}`);
  const [first, ...rest] = words;
  if (first.text.startsWith("command:")) {
    const argv = [first.text.slice("command:".length), ...rest.map((w) => w.text)];
    if (argv[0] === "") argv.shift();
    if (argv.length === 0 || argv[0] === "") bad(first, "FROM command: needs a program to run");
    return { kind: "command", command: argv };
  }
  if (rest.length > 0) {
    bad(
      rest[0],
      `FROM takes one CPU, found '${rest[0].text}' after it`,
      "quote a path with spaces",
    );
  }
  if (first.text.startsWith("script:")) {
    const script = first.text.slice("script:".length);
    if (script === "") bad(first, "FROM script: needs the path of a transcript");
    return { kind: "script", script };
  }
  // The parser `ostk spawn --model` and the daemon use, so a FROM line takes every model form
  // they take and refuses what they would refuse, with the same reason.
  try {
    return { kind: "model", provider: parseModelSpec(first.text).provider, model: first.text };
  } catch (err) {
    if (!(err instanceof OstkError)) throw err;
    const why = String(err.details?.why ?? err.message);
    if (why === "unknown provider") {
      return bad(first, `FROM: expected ${cpus}; found '${first.text}'`);
    }
    return bad(first, `FROM ${first.text}: ${why}`, `a model is ${MODEL_SPEC_FORMS}`);
  }
}

function parseLimit(words: Word[], keyword: Word, bad: Bad, value: Value): Limit {
  if (words.length === 0) bad(keyword, `LIMIT needs a key: ${LIMIT_KEYS.join(", ")}`);
  const [keyWord, ...args] = words;
  if (!(LIMIT_KEYS as readonly string[]).includes(keyWord.text)) {
    const near = didYouMean(keyWord.text, LIMIT_KEYS);
    bad(
      keyWord,
      `unknown LIMIT '${keyWord.text}'${near ? `; did you mean '${near}'?` : ""}`,
      `limits are ${LIMIT_KEYS.join(", ")}`,
    );
  }
  const key = keyWord.text as LimitKey;
  if (args.length === 0) bad(keyWord, `LIMIT ${key} needs a value`);
  const what = `LIMIT ${key}`;
  if ((LIST_LIMITS as readonly string[]).includes(key)) {
    const schema = key === "net" ? NetValue : PathValue;
    const list = args.map((w) => value(schema, w, what));
    return { key: key as typeof LIST_LIMITS[number], value: list };
  }
  if (args.length > 1) bad(args[1], `${what} takes one value, found '${args[1].text}' after it`);
  const w = args[0];
  switch (key) {
    case "budget_usd":
      return { key, value: value(BudgetValue, w, what) };
    case "turns":
    case "tokens":
      return { key, value: value(CountValue, w, what) };
    case "wall_clock":
      return { key, value: value(WallClockValue, w, what) };
    case "permissions":
      return { key, value: value(PermissionModeSchema, w, what, PermissionModeSchema.options) };
    case "successor":
      return { key, value: value(SuccessorSchema, w, what, SuccessorSchema.options) };
    default:
      return {
        key: "revival_policy",
        value: value(RevivalPolicySchema, w, what, RevivalPolicySchema.options),
      };
  }
}

/** `Class` or `Class(substring)`, as one word (quote a substring that has blanks). */
function parseTool(w: Word, bad: Bad, value: Value): ToolPattern {
  const open = w.text.indexOf("(");
  const name = open < 0 ? w.text : w.text.slice(0, open);
  const cls = value(ToolClassSchema, { ...w, text: name }, "TOOL class", TOOL_CLASSES);
  if (open < 0) return { class: cls };
  if (!w.text.endsWith(")")) {
    bad(w, `TOOL ${name}(: missing ')' at the end`, `quote a pattern with spaces: ${name}("a b")`);
  }
  const substring = w.text.slice(open + 1, -1);
  if (substring === "") bad(w, `TOOL ${name}(): the pattern is empty; write just ${name}`);
  return { class: cls, substring };
}

/** The closest of `options` to `word` (case-insensitive edit distance ≤ 2), if any. */
export function didYouMean(word: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const option of options) {
    const d = editDistance(word.toLowerCase(), option.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [option, d];
  }
  return best;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
