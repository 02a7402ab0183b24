/**
 * Comment-preserving edits to JSONC text. jsonc-parser parses and applies (`parseTree`,
 * `createScanner`, `applyEdits`); the edit spans are computed here, line-aware, because
 * `modify`'s own removal and insertion take a neighbour's trailing comment with them (removing
 * the last member deletes the previous member's `// note`; appending moves it onto the new
 * line). Here a removed member takes its own lines and nothing else, and a new member gets its
 * own line at its siblings' indentation. Bytes outside the returned spans never change.
 */
import {
  applyEdits,
  createScanner,
  type Edit,
  type Node,
  type ParseError,
  parseTree,
  printParseErrorCode,
  type SyntaxKind,
} from "jsonc-parser";
import { FcpError } from "../fcp/mod.ts";
import { formatPath, type Segment } from "./path.ts";

export type { Edit, Node };

/** The file's indentation unit and line ending, so new text looks like the old. */
export interface Style {
  indent: string;
  eol: string;
}

/**
 * The scanner's token kinds we test for. `SyntaxKind` is an ambient const enum, which isolated
 * modules cannot read at run time, so its (stable, documented) values are repeated here.
 */
const KIND = {
  comma: 5 as SyntaxKind,
  lineComment: 12 as SyntaxKind,
  blockComment: 13 as SyntaxKind,
  lineBreak: 14 as SyntaxKind,
  space: 15 as SyntaxKind,
  eof: 17 as SyntaxKind,
};

const PARSE = { allowTrailingComma: true, disallowComments: false, allowEmptyContent: true };

/** Guess the indentation unit (tab, or the smallest indent in spaces) and the line ending. */
export function detectStyle(text: string): Style {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  let smallest = Infinity;
  for (const line of text.split("\n")) {
    const ws = /^[ \t]+(?=\S)/.exec(line)?.[0];
    if (!ws) continue;
    if (ws[0] === "\t") return { indent: "\t", eol };
    smallest = Math.min(smallest, ws.length);
  }
  return { indent: " ".repeat(Number.isFinite(smallest) ? Math.min(smallest, 8) : 2), eol };
}

/** Parse, refusing text with syntax errors (naming line and column). */
export function parseDoc(text: string, name = "document"): Node | undefined {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, PARSE);
  if (errors.length > 0) {
    const e = errors[0];
    const before = text.slice(0, e.offset).split("\n");
    const where = `${before.length}:${before[before.length - 1].length + 1}`;
    throw new FcpError("parse", `${name}:${where}: ${printParseErrorCode(e.error)}`);
  }
  return root;
}

/** Where a path leads: the node it names, or the deepest one that exists and what is left. */
export interface Located {
  node?: Node;
  /** The deepest existing value node on the way (the root when nothing matched). */
  at?: Node;
  /** The resolved path to `at` (keys as strings, indices as numbers). */
  path: (string | number)[];
  remaining: Segment[];
}

/** The property of object `obj` whose key is `key`. */
function property(obj: Node, key: string): Node | undefined {
  return obj.children?.find((p) => p.children?.[0].value === key);
}

/**
 * Follow `segs` from `root`. A dotted run that matches no key is tried joined back together,
 * longest first, so `editor.tabSize` finds VS Code's flat key "editor.tabSize". Throws when a
 * segment indexes into a scalar.
 */
export function locate(root: Node | undefined, segs: Segment[]): Located {
  let at = root;
  const path: (string | number)[] = [];
  let i = 0;
  while (i < segs.length) {
    const seg = segs[i];
    if (!at) return { at, path, remaining: segs.slice(i) };
    if (at.type === "object") {
      let prop = property(at, seg.text);
      let used = 1;
      for (let j = segs.length; !prop && !seg.bracket && j > i + 1; j--) {
        if (segs.slice(i + 1, j).some((s) => s.bracket)) continue;
        prop = property(at, segs.slice(i, j).map((s) => s.text).join("."));
        if (prop) used = j - i;
      }
      if (!prop) return { at, path, remaining: segs.slice(i) };
      path.push(String(prop.children?.[0].value));
      at = prop.children?.[1];
      i += used;
    } else if (at.type === "array") {
      if (seg.quoted || !/^\d+$/.test(seg.text)) {
        throw new FcpError(
          "conflict",
          `${formatPath(path)} is an array; '${seg.text}' is no index`,
        );
      }
      const next = at.children?.[Number(seg.text)];
      if (!next) return { at, path, remaining: segs.slice(i) };
      path.push(Number(seg.text));
      at = next;
      i++;
    } else {
      throw new FcpError(
        "conflict",
        `${formatPath(path)} is a ${at.type}, not an object or array`,
        { hint: `set ${formatPath(path)} itself` },
      );
    }
  }
  return { node: at, at, path, remaining: [] };
}

const end = (n: Node) => n.offset + n.length;

function lineStart(text: string, pos: number): number {
  return text.lastIndexOf("\n", pos - 1) + 1;
}

function indentAt(text: string, pos: number): string {
  const start = lineStart(text, pos);
  return /^[ \t]*/.exec(text.slice(start, pos))![0];
}

function multiline(text: string, n: Node): boolean {
  return text.slice(n.offset, end(n)).includes("\n");
}

/** The next token that is not whitespace, a line break or a comment. */
function nextToken(text: string, pos: number): { kind: SyntaxKind; offset: number; end: number } {
  const scanner = createScanner(text, true);
  scanner.setPosition(pos);
  const kind = scanner.scan();
  return { kind, offset: scanner.getTokenOffset(), end: scanner.getPosition() };
}

/**
 * From `pos` to the end of its line: `clean` when only whitespace and comments follow, with
 * the line break's span (EOF counts as a break of length 0).
 */
function restOfLine(text: string, pos: number): { clean: boolean; eol: number; next: number } {
  const scanner = createScanner(text, false);
  scanner.setPosition(pos);
  for (;;) {
    const kind = scanner.scan();
    const offset = scanner.getTokenOffset();
    if (kind === KIND.lineBreak) return { clean: true, eol: offset, next: scanner.getPosition() };
    if (kind === KIND.eof) return { clean: true, eol: offset, next: offset };
    if (kind === KIND.space || kind === KIND.lineComment) continue;
    if (kind === KIND.blockComment && !scanner.getTokenValue().includes("\n")) continue;
    return { clean: false, eol: offset, next: offset };
  }
}

/** One-line JSON with a space after `,` and `:` and inside non-empty braces. */
export function inline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inline).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`);
    return entries.length ? `{ ${entries.join(", ")} }` : "{}";
  }
  return JSON.stringify(value);
}

/** JSON for `value` placed on a line indented by `base`, multi-line or inline. */
export function render(value: unknown, base: string, style: Style, lines: boolean): string {
  if (!lines) return inline(value);
  return JSON.stringify(value, null, style.indent).split("\n").join(style.eol + base);
}

function memberText(
  key: string | undefined,
  value: unknown,
  base: string,
  style: Style,
  lines: boolean,
) {
  const v = render(value, base, style, lines);
  return key === undefined ? v : `${JSON.stringify(key)}: ${v}`;
}

/** Edits that add a member (`key` for objects, none for arrays) after the container's last. */
export function insertMember(
  text: string,
  container: Node,
  key: string | undefined,
  value: unknown,
  style: Style,
): Edit[] {
  const members = container.children ?? [];
  const open = container.offset;
  const close = end(container) - 1;
  if (members.length === 0) {
    const base = indentAt(text, open);
    const inner = base + style.indent;
    const member = memberText(key, value, inner, style, true);
    const between = text.slice(open + 1, close);
    if (between.trim() === "") {
      return [{
        offset: open + 1,
        length: between.length,
        content: style.eol + inner + member + style.eol + base,
      }];
    }
    // Comments inside: keep them and add the member on its own line before the bracket.
    if (/^[ \t]*$/.test(text.slice(lineStart(text, close), close))) {
      return [{ offset: lineStart(text, close), length: 0, content: inner + member + style.eol }];
    }
    return [{
      offset: open + 1,
      length: 0,
      content: ` ${memberText(key, value, "", style, false)}`,
    }];
  }
  const last = members[members.length - 1];
  const after = nextToken(text, end(last));
  const comma = after.kind === KIND.comma;
  const rest = restOfLine(text, comma ? after.end : end(last));
  if (!multiline(text, container) || !rest.clean) {
    return [{
      offset: end(last),
      length: 0,
      content: `, ${memberText(key, value, "", style, false)}`,
    }];
  }
  const indent = indentAt(text, last.offset);
  const line = style.eol + indent + memberText(key, value, indent, style, true);
  if (comma) return [{ offset: rest.eol, length: 0, content: `${line},` }];
  if (rest.eol === end(last)) return [{ offset: end(last), length: 0, content: `,${line}` }];
  return [{ offset: end(last), length: 0, content: "," }, {
    offset: rest.eol,
    length: 0,
    content: line,
  }];
}

/** Edits that remove `member` (a property node or an array element) from `container`. */
export function removeMember(text: string, container: Node, member: Node): Edit[] {
  const members = container.children ?? [];
  const i = members.indexOf(member);
  const prev = members[i - 1];
  const next = members[i + 1];
  const after = nextToken(text, end(member));
  const comma = after.kind === KIND.comma;
  const stop = comma ? after.end : end(member);
  if (multiline(text, container)) {
    const start = lineStart(text, member.offset);
    const rest = restOfLine(text, stop);
    if (/^[ \t]*$/.test(text.slice(start, member.offset)) && rest.clean) {
      // The member owns its lines: remove them whole, with its same-line comment. A container
      // left with only whitespace closes up to `{}` / `[]`.
      const open = container.offset + 1;
      const close = end(container) - 1;
      if (text.slice(open, start).trim() === "" && text.slice(rest.next, close).trim() === "") {
        return [{ offset: open, length: close - open, content: "" }];
      }
      const edits: Edit[] = [{ offset: start, length: rest.next - start, content: "" }];
      if (!comma && prev) {
        const sep = nextToken(text, end(prev));
        if (sep.kind === KIND.comma) edits.push({ offset: sep.offset, length: 1, content: "" });
      }
      return edits;
    }
  }
  const spaces = (pos: number) => pos + /^[ \t]*/.exec(text.slice(pos))![0].length;
  if (comma && next) {
    return [{ offset: member.offset, length: spaces(stop) - member.offset, content: "" }];
  }
  if (prev) {
    const sep = nextToken(text, end(prev));
    const from = comma ? sep.end : end(prev);
    return [{ offset: from, length: stop - from, content: "" }];
  }
  return [{ offset: member.offset, length: stop - member.offset, content: "" }];
}

/** The edit that renames the key of property node `prop`. */
export function renameKey(prop: Node, newKey: string): Edit[] {
  const key = prop.children![0];
  return [{ offset: key.offset, length: key.length, content: JSON.stringify(newKey) }];
}

/** The edit that replaces value node `node` with `value`, styled like its container. */
export function replaceValue(text: string, node: Node, value: unknown, style: Style): Edit[] {
  const container = node.parent?.type === "property" ? node.parent.parent : node.parent;
  const lines = container ? multiline(text, container) : true;
  const line = node.parent?.type === "property" ? node.parent.offset : node.offset;
  const content = render(value, indentAt(text, line), style, lines);
  return [{ offset: node.offset, length: node.length, content }];
}

/**
 * The edits that undo `edits` once they are applied to `text`: each span's new extent, shifted
 * by the growth of the spans before it, gets its old bytes back.
 */
export function invertEdits(text: string, edits: Edit[]): Edit[] {
  const sorted = [...edits].sort((a, b) => a.offset - b.offset);
  let shift = 0;
  return sorted.map((e) => {
    const inverse = {
      offset: e.offset + shift,
      length: e.content.length,
      content: text.slice(e.offset, e.offset + e.length),
    };
    shift += e.content.length - e.length;
    return inverse;
  });
}

export { applyEdits };
