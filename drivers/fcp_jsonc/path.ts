/**
 * Paths into a JSON document: `compilerOptions.strict`, `tasks["my task"]`, `a.b[2]`,
 * `["files.exclude"]`, `$` for the root. The op tokenizer strips quotes, so `tasks["my task"]`
 * often arrives as `tasks[my task]`: bare text in brackets is a key too, unless it is all digits,
 * which indexes an array (and names a key in an object, so `a[2]` works on `{"2": …}`).
 */
import { FcpError } from "../fcp/mod.ts";

/** One step of a path, as written; whether it is an index is decided against the document. */
export interface Segment {
  text: string;
  /** Written in brackets (`[2]`, `["x"]`), as opposed to after a dot. */
  bracket: boolean;
  /** Written as a quoted string in brackets: always a key, never an index. */
  quoted: boolean;
}

const ESCAPES: Record<string, string> = {
  '"': '"',
  "'": "'",
  "\\": "\\",
  "/": "/",
  n: "\n",
  t: "\t",
  r: "\r",
  b: "\b",
  f: "\f",
};

function bad(src: string, at: number, what: string): FcpError {
  return new FcpError("invalid_args", `bad path '${src}' at character ${at + 1}: ${what}`, {
    hint: 'write a.b, a[2] or a["key with . or ]"]',
  });
}

/**
 * Parse a path; `""`, `$` and `.` are the root (an empty list).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePath } from "./path.ts";
 * const p = parsePath('tasks["my task"].cmd');
 * assert.equal(p.length, 3);
 * assert.equal(p[1].text, "my task");
 * assert.ok(p[1].quoted);
 * ```
 */
export function parsePath(src: string): Segment[] {
  let body = src.startsWith("$") ? src.slice(1) : src;
  if (body.startsWith(".")) body = body.slice(1);
  const offset = src.length - body.length;
  const segs: Segment[] = [];
  let i = 0;
  while (i < body.length) {
    if (body[i] === "[") {
      const open = i++;
      const q = body[i];
      if (q === '"' || q === "'") {
        let text = "";
        i++;
        while (i < body.length && body[i] !== q) {
          if (body[i] === "\\" && i + 1 < body.length) {
            text += ESCAPES[body[i + 1]] ?? body[i + 1];
            i += 2;
          } else text += body[i++];
        }
        if (body[i] !== q) throw bad(src, offset + i, `unclosed ${q}`);
        if (body[i + 1] !== "]") throw bad(src, offset + i + 1, "expected ]");
        i += 2;
        segs.push({ text, bracket: true, quoted: true });
      } else {
        const close = body.indexOf("]", i);
        if (close < 0) throw bad(src, offset + open, "unclosed [");
        segs.push({ text: body.slice(i, close), bracket: true, quoted: false });
        i = close + 1;
      }
    } else {
      const start = i;
      while (i < body.length && body[i] !== "." && body[i] !== "[") i++;
      if (i === start) throw bad(src, offset + i, "empty key");
      segs.push({ text: body.slice(start, i), bracket: false, quoted: false });
    }
    if (i < body.length) {
      if (body[i] === ".") {
        i++;
        if (i >= body.length) throw bad(src, offset + i, "path ends with .");
      } else if (body[i] !== "[") throw bad(src, offset + i, `unexpected '${body[i]}'`);
    }
  }
  return segs;
}

const IDENT = /^[A-Za-z_$][\w$-]*$/;

/**
 * Render a resolved path the way a user would type it back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPath } from "./path.ts";
 * assert.equal(formatPath(["tasks", "my task", 0]), 'tasks["my task"][0]');
 * ```
 */
export function formatPath(path: (string | number)[]): string {
  if (path.length === 0) return "$";
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
