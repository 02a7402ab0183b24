/**
 * The jsonc driver's verbs (`set`, `unset`, `push`, `rename`, `merge`) and queries (`get`,
 * `keys`, `dump`). The document is its text; each verb plans its edits on a draft and returns
 * them as an event whose inverse is the inverted edits.
 */
import { getNodeValue } from "jsonc-parser";
import { z } from "zod";
import { defineVerb, type FcpChange, FcpError, suggestionHint, type Verb } from "../fcp/mod.ts";
import {
  applyEdits,
  detectStyle,
  type Edit,
  insertMember,
  invertEdits,
  locate,
  type Node,
  parseDoc,
  removeMember,
  renameKey,
  render,
  replaceValue,
  type Style,
} from "./edit.ts";
import { formatPath, parsePath, type Segment } from "./path.ts";

/** A value as typed: JSON when it parses (`true`, `3`, `[1]`, `"x"`), else the text itself. */
export function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    // The tokenizer strips quotes, so ["a"] typed bare arrives as [a]: refuse rather than
    // store that text as a string.
    if (/^\s*[[{]/.test(raw)) {
      throw new FcpError("invalid_args", `'${raw}' looks like JSON but does not parse`, {
        hint: `wrap JSON in single quotes: '{"a":["b"]}'`,
      });
    }
    return raw;
  }
}

function preview(value: unknown): string {
  const s = JSON.stringify(value) ?? "undefined";
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isIndex(seg: Segment): boolean {
  return seg.bracket && !seg.quoted && /^\d+$/.test(seg.text);
}

/** Checks that a whole-text step leaves `text` where `steps` expect it; see Draft.change. */
function replay(text: string, steps: Edit[][], from: number, to: number): string {
  if (text.length !== from) {
    throw new FcpError("internal", "the event log is out of step with the document");
  }
  const out = steps.reduce((t, edits) => applyEdits(t, edits), text);
  if (out.length !== to) throw new FcpError("internal", "an event replayed to the wrong length");
  return out;
}

/** A verb's working copy: edits applied one step at a time, each checked to still parse. */
class Draft {
  readonly before: string;
  readonly style: Style;
  text: string;
  #steps: Edit[][] = [];
  #inverse: Edit[][] = [];

  constructor(text: string) {
    this.before = this.text = text;
    this.style = detectStyle(text);
  }

  root(): Node | undefined {
    return parseDoc(this.text);
  }

  apply(edits: Edit[]): void {
    if (edits.length === 0) return;
    const next = applyEdits(this.text, edits);
    try {
      parseDoc(next);
    } catch (err) {
      if (!(err instanceof FcpError)) throw err;
      throw new FcpError("internal", `the edit would break the document (${err.message})`);
    }
    this.#inverse.unshift(invertEdits(this.text, edits));
    this.#steps.push(edits);
    this.text = next;
  }

  change(prefix: FcpChange<string>["prefix"], message: string): FcpChange<string> {
    const [forward, inverse] = [this.#steps, this.#inverse];
    const [from, to] = [this.before.length, this.text.length];
    return {
      prefix,
      message,
      apply: (s) => replay(s, forward, from, to),
      revert: (s) => replay(s, inverse, to, from),
    };
  }
}

function nest(segs: Segment[], value: unknown): unknown {
  return segs.reduceRight<unknown>((v, seg) => ({ [seg.text]: v }), value);
}

/** Set `segs` to `value`, creating missing objects on the way. */
function setPath(d: Draft, segs: Segment[], value: unknown): { path: string; previous?: unknown } {
  if (segs.length === 0) {
    throw new FcpError("invalid_args", "give a path below the root", {
      hint: "merge $ <object> changes top-level keys",
    });
  }
  const root = d.root();
  const loc = locate(root, segs);
  if (loc.node) {
    const previous = getNodeValue(loc.node);
    if (JSON.stringify(previous) !== JSON.stringify(value)) {
      d.apply(replaceValue(d.text, loc.node, value, d.style));
    }
    return { path: formatPath(loc.path), previous };
  }
  const [first, ...more] = loc.remaining;
  const made = formatPath([
    ...loc.path,
    ...loc.remaining.map((s) => isIndex(s) ? Number(s.text) : s.text),
  ]);
  if (more.some(isIndex) || (isIndex(first) && loc.at?.type !== "array")) {
    throw new FcpError("not_found", `${made}: cannot create an array element by index`, {
      hint: "push <array> <value>, or set the whole array",
    });
  }
  const nested = nest(more, value);
  if (!root || !loc.at) {
    // An empty document (perhaps only comments): the new object goes after what is there.
    const { eol } = d.style;
    const blank = d.text.trim() === "";
    const lead = blank || d.text.endsWith("\n") ? "" : eol;
    d.apply([{
      offset: blank ? 0 : d.text.length,
      length: blank ? d.text.length : 0,
      content: lead + render(nest(segs, value), "", d.style, true) + eol,
    }]);
  } else if (loc.at.type === "array") {
    const length = loc.at.children?.length ?? 0;
    if (Number(first.text) !== length) {
      throw new FcpError("not_found", `${made}: index past the end (length ${length})`, {
        hint: `push ${formatPath(loc.path)} <value> appends`,
      });
    }
    d.apply(insertMember(d.text, loc.at, undefined, nested, d.style));
  } else {
    d.apply(insertMember(d.text, loc.at, first.text, nested, d.style));
  }
  return { path: made };
}

function mustFind(d: Draft, src: string): { node: Node; path: (string | number)[] } {
  const loc = locate(d.root(), parsePath(src));
  if (loc.node) return { node: loc.node, path: loc.path };
  const missing = loc.remaining[0]?.text ?? src;
  const keys = loc.at?.type === "object"
    ? (loc.at.children ?? []).map((p) => String(p.children?.[0].value))
    : [];
  throw new FcpError("not_found", `no ${formatPath([...loc.path, missing])}`, {
    hint: keys.length
      ? suggestionHint(missing, keys, `keys at ${formatPath(loc.path)}`)
      : undefined,
  });
}

const path = z.string().describe('a.b, a[2], tasks["my task"], $ for the root');
const json = z.string().describe('JSON (true, 3, [1], {"a":1}, "x"); anything else is a string');

/** The mutation verbs. */
export const jsoncVerbs: Verb<string, FcpChange<string>>[] = [
  defineVerb({
    name: "set",
    summary: "set a value, creating missing objects on the way",
    positionals: { path, value: json },
    examples: ["set compilerOptions.strict true", 'set tasks["dev"] "deno run -A main.ts"'],
    run(text: string, a) {
      const d = new Draft(text);
      const value = parseValue(a.value);
      const r = setPath(d, parsePath(a.path), value);
      if (!("previous" in r)) return d.change("+", `${r.path} = ${preview(value)}`);
      const was = JSON.stringify(r.previous) === JSON.stringify(value)
        ? "unchanged"
        : `was ${preview(r.previous)}`;
      return d.change("~", `${r.path} = ${preview(value)} (${was})`);
    },
  }),
  defineVerb({
    name: "unset",
    summary: "remove a key or an array element (its own lines and same-line comment go with it)",
    positionals: { path },
    run(text: string, a) {
      const d = new Draft(text);
      const { node, path: at } = mustFind(d, a.path);
      const prop = node.parent?.type === "property" ? node.parent : undefined;
      const container = prop ? prop.parent : node.parent;
      if (!container) throw new FcpError("invalid_args", "cannot unset the root");
      d.apply(removeMember(d.text, container, prop ?? node));
      return d.change("-", `${formatPath(at)} (was ${preview(getNodeValue(node))})`);
    },
  }),
  defineVerb({
    name: "push",
    summary: "append to an array (a missing path becomes a one-element array)",
    positionals: { path, value: json },
    examples: ["push compilerOptions.lib dom"],
    run(text: string, a) {
      const d = new Draft(text);
      const value = parseValue(a.value);
      const segs = parsePath(a.path);
      const loc = locate(d.root(), segs);
      if (!loc.node) {
        const r = setPath(d, segs, [value]);
        return d.change("+", `${r.path} = ${preview([value])}`);
      }
      if (loc.node.type !== "array") {
        throw new FcpError(
          "conflict",
          `${formatPath(loc.path)} is a ${loc.node.type}, not an array`,
        );
      }
      const index = loc.node.children?.length ?? 0;
      d.apply(insertMember(d.text, loc.node, undefined, value, d.style));
      return d.change("+", `${formatPath([...loc.path, index])} = ${preview(value)}`);
    },
  }),
  defineVerb({
    name: "rename",
    summary: "rename a key in place (value, position and comments stay)",
    positionals: { path, newkey: z.string().min(1).describe("the new key") },
    run(text: string, a) {
      const d = new Draft(text);
      const { node, path: at } = mustFind(d, a.path);
      const prop = node.parent;
      if (prop?.type !== "property") {
        throw new FcpError("invalid_args", `${formatPath(at)} is not an object key`);
      }
      const taken = prop.parent?.children?.some((p) => p.children?.[0].value === a.newkey);
      if (taken) {
        throw new FcpError("conflict", `${formatPath([...at.slice(0, -1), a.newkey])} exists`, {
          hint: "unset it first",
        });
      }
      d.apply(renameKey(prop, a.newkey));
      return d.change(
        "~",
        `${formatPath(at)} renamed to ${formatPath([...at.slice(0, -1), a.newkey])}`,
      );
    },
  }),
  defineVerb({
    name: "merge",
    summary: "deep-merge a JSON object into an object (keys set one by one, others kept)",
    positionals: { path, object: z.string().describe('a JSON object, e.g. {"strict":true}') },
    examples: ['merge compilerOptions {"strict":true,"lib":["dom"]}'],
    run(text: string, a) {
      const d = new Draft(text);
      const value = parseValue(a.object);
      if (!isObject(value)) throw new FcpError("invalid_args", "merge: expected a JSON object");
      const segs = parsePath(a.path);
      let count = 0;
      const into = (at: Segment[], obj: Record<string, unknown>) => {
        for (const [k, v] of Object.entries(obj)) {
          const child = [...at, { text: k, bracket: true, quoted: true }];
          const found = locate(d.root(), child).node;
          if (found?.type === "object" && isObject(v)) into(child, v);
          else {
            setPath(d, child, v);
            count++;
          }
        }
      };
      const target = locate(d.root(), segs).node;
      if (target && target.type !== "object") {
        throw new FcpError("conflict", `${a.path} is a ${target.type}, not an object`);
      }
      if (target || segs.length === 0) into(segs, value);
      else {
        setPath(d, segs, value);
        count = Object.keys(value).length;
      }
      return d.change("~", `merged ${count} key(s) into ${formatPath(segs.map((s) => s.text))}`);
    },
  }),
];

function describeNode(n: Node | undefined): string {
  if (!n) return "missing";
  if (n.type === "object") return `object (${n.children?.length ?? 0} keys)`;
  if (n.type === "array") return `array (${n.children?.length ?? 0} items)`;
  return `${n.type} ${preview(n.value)}`;
}

/** The read-only queries. */
export const jsoncQueries: Verb<string, string>[] = [
  defineVerb({
    name: "get",
    summary: "a value as JSON, or its source text with raw:true",
    positionals: { path: path.optional() },
    params: {
      raw: z.enum(["true", "false"]).optional().describe("true: the source text with comments"),
    },
    run(text: string, a) {
      const d = new Draft(text);
      if (!d.root()) return "(empty document)";
      const { node } = mustFind(d, a.path ?? "$");
      if (a.raw === "true") return text.slice(node.offset, node.offset + node.length);
      return JSON.stringify(getNodeValue(node), null, 2);
    },
  }),
  defineVerb({
    name: "keys",
    summary: "the keys of an object or the items of an array, with their types",
    positionals: { path: path.optional() },
    run(text: string, a) {
      const d = new Draft(text);
      if (!d.root()) return "(empty document)";
      const { node, path: at } = mustFind(d, a.path ?? "$");
      if (node.type === "object") {
        return (node.children ?? []).map((p) =>
          `${p.children?.[0].value}: ${describeNode(p.children?.[1])}`
        )
          .join("\n") || "(no keys)";
      }
      if (node.type === "array") {
        return (node.children ?? []).map((c, i) => `[${i}]: ${describeNode(c)}`).join("\n") ||
          "(no items)";
      }
      throw new FcpError("conflict", `${formatPath(at)} is a ${node.type}; it has no keys`);
    },
  }),
  defineVerb({
    name: "dump",
    summary: "the whole document text, comments and all",
    run: (text: string) => text,
  }),
];
