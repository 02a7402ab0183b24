/**
 * The FCP op grammar: `VERB positional… key:value… @selector…`, one op per string.
 *
 * Tokens: split on whitespace; a single- or double-quoted span joins one token and may sit
 * inside it (`label:"Auth Service"` is one token, `label:Auth Service`). Inside quotes `\"`,
 * `\'`, `\\`, `\n` and `\t` are escapes; any other backslash stays as written (so `C:\dir`
 * survives). Outside quotes a backslash is an ordinary character.
 *
 * Classes, decided per token (the first token is always the verb, lower-cased):
 * - a token that begins with a quote is a positional, whatever it contains (`"@all"`, `"a:b"`,
 *   `"->"` are literal values: quoting is how a value opts out of the other classes);
 * - `->`, `<->`, `--` are arrows;
 * - `@type:value` is a selector, `@not:type:value` a negated one, `@type` (e.g. `@all`) a selector
 *   with an empty value;
 * - a token starting with `=` is a positional (a formula);
 * - a token with `:` not at position 0 is a key:value, key before the first `:`, unless it is a
 *   range (see {@linkcode isRange}), which is a positional;
 * - everything else is a positional.
 */
import { FcpError } from "./errors.ts";

/** One token with where it started (1-based column) and whether it began with a quote. */
export interface Token {
  text: string;
  column: number;
  quoted: boolean;
}

/** A selector: `@type:value`, `@not:type:value`, or `@type` with an empty value. */
export interface Selector {
  type: string;
  value: string;
  negated: boolean;
}

/** A parsed op. Every list keeps the order the tokens had in the op. */
export interface ParsedOp {
  verb: string;
  positionals: string[];
  params: Record<string, string>;
  selectors: Selector[];
  arrows: string[];
}

const ARROWS = new Set(["->", "<->", "--"]);
const ESCAPES: Record<string, string> = { '"': '"', "'": "'", "\\": "\\", n: "\n", t: "\t" };

/**
 * Split an op into tokens with their columns. Throws a `parse` {@linkcode FcpError} naming the
 * column of an unbalanced quote.
 */
export function scanTokens(op: string): Token[] {
  const tokens: Token[] = [];
  let text = "";
  let start = -1; // index where the current token began; -1 between tokens
  let quoted = false;
  let i = 0;
  while (i < op.length) {
    const ch = op[i];
    if (/\s/.test(ch)) {
      if (start >= 0) tokens.push({ text, column: start + 1, quoted });
      text = "";
      start = -1;
      i++;
      continue;
    }
    if (start < 0) {
      start = i;
      quoted = ch === '"' || ch === "'";
    }
    if (ch !== '"' && ch !== "'") {
      text += ch;
      i++;
      continue;
    }
    // A quoted span: read to the matching quote, decoding escapes.
    const open = i++;
    for (;;) {
      if (i >= op.length) {
        throw new FcpError("parse", `unbalanced ${ch} quote opened at column ${open + 1}`, {
          column: open + 1,
          hint: `close it with ${ch}, or escape it as \\${ch}`,
        });
      }
      const c = op[i];
      if (c === ch) {
        i++;
        break;
      }
      if (c === "\\" && i + 1 < op.length && ESCAPES[op[i + 1]] !== undefined) {
        text += ESCAPES[op[i + 1]];
        i += 2;
        continue;
      }
      text += c;
      i++;
    }
  }
  if (start >= 0) tokens.push({ text, column: start + 1, quoted });
  return tokens;
}

/**
 * Split an op into token strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenize } from "./grammar.ts";
 * const t = tokenize(`add box label:"Auth Service" @type:db`);
 * assert.equal(t.length, 4);
 * assert.equal(t[2], "label:Auth Service");
 * ```
 */
export function tokenize(op: string): string[] {
  return scanTokens(op).map((t) => t.text);
}

// A cell (`A1`, `$B$7`, `aa10`), a whole row (`5`) or a whole column (`C`, `$AB`; upper-case
// only, so `mode:fast` stays a key:value).
const CELL = /^\$?[A-Za-z]{1,3}\$?[0-9]+$/;
const ROW = /^[0-9]+$/;
const COLUMN = /^\$?[A-Z]{1,3}$/;

function refKind(side: string): "cell" | "row" | "column" | undefined {
  const bare = side.includes("!") ? side.slice(side.lastIndexOf("!") + 1) : side;
  if (CELL.test(bare)) return "cell";
  if (ROW.test(bare)) return "row";
  if (COLUMN.test(bare)) return "column";
  return undefined;
}

/**
 * The range rule: a token with a `:` is a positional range rather than a key:value when
 * 1. the part before the first `:` contains `!` (sheet-qualified: `Sheet2!A1:B10`), or
 * 2. the part before the first `:` is all digits (`1:5`, `10:`; a key is never a number), or
 * 3. it has exactly one `:` and both sides are references of the same kind: cells (`A1:F1`,
 *    `$a$1:b2`) or upper-case columns (`A:C`).
 * So `h1:bold`, `mode:fast` and `url:http://x` stay key:values; quote a value to force a
 * positional (`"mode:fast"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRange } from "./grammar.ts";
 * assert.ok(isRange("A1:F1"));
 * assert.ok(isRange("1:5"));
 * assert.ok(isRange("Sheet2!A1:B10"));
 * assert.ok(!isRange("label:x"));
 * assert.ok(!isRange("h1:bold"));
 * ```
 */
export function isRange(token: string): boolean {
  const colon = token.indexOf(":");
  if (colon <= 0) return false;
  const key = token.slice(0, colon);
  const rest = token.slice(colon + 1);
  if (key.includes("!") || ROW.test(key)) return true;
  if (rest.includes(":")) return false;
  const left = refKind(key);
  return left !== undefined && left !== "row" && left === refKind(rest);
}

/** What a token (other than the verb) is. */
export type TokenClass = "positional" | "param" | "selector" | "arrow";

/** Classify one token by the rules in this module's header. */
export function classifyToken(token: Token | string): TokenClass {
  const t = typeof token === "string" ? { text: token, column: 1, quoted: false } : token;
  if (t.quoted) return "positional";
  if (ARROWS.has(t.text)) return "arrow";
  if (t.text.startsWith("@") && t.text.length > 1) return "selector";
  if (t.text.startsWith("=")) return "positional";
  if (t.text.indexOf(":") > 0 && !isRange(t.text)) return "param";
  return "positional";
}

/** Parse `@type:value`, `@not:type:value` or `@type` (text includes the `@`). */
export function parseSelector(text: string): Selector {
  let body = text.slice(1);
  let negated = false;
  if (body.startsWith("not:")) {
    negated = true;
    body = body.slice(4);
  }
  const colon = body.indexOf(":");
  if (colon < 0) return { type: body, value: "", negated };
  return { type: body.slice(0, colon), value: body.slice(colon + 1), negated };
}

/**
 * Parse one op. Throws a `parse` {@linkcode FcpError} for an empty op, an unbalanced quote, an
 * empty selector (`@not:`) or a key given twice.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseOp } from "./grammar.ts";
 * const op = parseOp(`Link a -> b weight:2 @not:kind:test`);
 * assert.equal(op.verb, "link");
 * assert.equal(op.arrows[0], "->");
 * assert.equal(op.params.weight, "2");
 * assert.ok(op.selectors[0].negated);
 * assert.equal(op.selectors[0].type, "kind");
 * ```
 */
export function parseOp(op: string): ParsedOp {
  const tokens = scanTokens(op);
  if (tokens.length === 0) {
    throw new FcpError("parse", "empty operation", { column: 1, hint: "start with a verb" });
  }
  const parsed: ParsedOp = {
    verb: tokens[0].text.toLowerCase(),
    positionals: [],
    params: {},
    selectors: [],
    arrows: [],
  };
  for (const token of tokens.slice(1)) {
    switch (classifyToken(token)) {
      case "arrow":
        parsed.arrows.push(token.text);
        break;
      case "selector": {
        const selector = parseSelector(token.text);
        if (selector.type === "") {
          throw new FcpError("parse", `selector '${token.text}' names no type`, {
            column: token.column,
            hint: "write @type:value, @not:type:value or @all",
          });
        }
        parsed.selectors.push(selector);
        break;
      }
      case "param": {
        const colon = token.text.indexOf(":");
        const key = token.text.slice(0, colon);
        if (Object.hasOwn(parsed.params, key)) {
          throw new FcpError("parse", `key '${key}' given twice`, {
            column: token.column,
            hint: "keep one",
          });
        }
        // defineProperty, not assignment: a key named `__proto__` must stay an own property.
        Object.defineProperty(parsed.params, key, {
          value: token.text.slice(colon + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        break;
      }
      case "positional":
        parsed.positionals.push(token.text);
    }
  }
  return parsed;
}
