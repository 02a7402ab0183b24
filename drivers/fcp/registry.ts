/**
 * The verb registry: each verb declares its positionals and params as zod schemas once, and that
 * one declaration drives validation at dispatch and the `D_help()` reference card.
 */
import { z } from "zod";
import { FcpError } from "./errors.ts";
import type { ParsedOp } from "./grammar.ts";
import { closest, suggestionHint } from "./suggest.ts";

/** Line prefixes of a response: created, changed, removed, lifecycle/meta, error. */
export type Prefix = "+" | "~" | "-" | "!" | "?";

/**
 * One mutation, as an event with its inverse. States are values: `apply` and `revert` return a
 * new state and must not change their argument (a batch's rollback keeps the old value).
 */
export interface FcpChange<S> {
  prefix: "+" | "~" | "-";
  /** What changed, for the response line (without the prefix). */
  message: string;
  apply(state: S): S;
  revert(state: S): S;
}

/** Declared arguments: positionals in order (key order is the order), then key:value params. */
export interface VerbShape<P extends z.ZodRawShape, K extends z.ZodRawShape> {
  /** Positionals in order. A last `z.array(...)` takes the rest; `.optional()` may be left out. */
  positionals?: P;
  /** key:value params; values arrive as strings, so use `z.coerce` or `z.enum` for others. */
  params?: K;
}

/** A verb (mutation, query or session action) before its types are erased. */
export interface VerbSpec<S, R, P extends z.ZodRawShape, K extends z.ZodRawShape>
  extends VerbShape<P, K> {
  name: string;
  summary: string;
  /** Selector types the verb accepts (`"*"` for any); ops with others are refused. */
  selectors?: string[];
  /** Whether arrows (`->`, `<->`, `--`) may appear. */
  arrows?: boolean;
  examples?: string[];
  run(state: S, args: z.output<z.ZodObject<P & K>>, op: ParsedOp): R;
}

/** A verb as the registry holds it. */
export type Verb<S, R> = VerbSpec<S, R, z.ZodRawShape, z.ZodRawShape>;

/**
 * Declare a verb with its arguments typed from its schemas.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { parseOp } from "./grammar.ts";
 * import { defineVerb, VerbRegistry } from "./registry.ts";
 * const echo = defineVerb({
 *   name: "echo",
 *   summary: "say a word",
 *   positionals: { word: z.string().describe("what to say") },
 *   run: (_state: null, args) => args.word,
 * });
 * const verbs = new VerbRegistry<null, string>("verb", [echo]);
 * const op = parseOp("echo hi");
 * const { verb, args } = verbs.resolve(op);
 * assert.equal(verb.run(null, args, op), "hi");
 * assert.throws(() => verbs.resolve(parseOp("echo")), { code: "invalid_args" });
 * assert.throws(() => verbs.resolve(parseOp("ecko hi")), { code: "unknown_verb" });
 * ```
 */
export function defineVerb<
  S,
  R,
  P extends z.ZodRawShape = Record<never, never>,
  K extends z.ZodRawShape = Record<never, never>,
>(spec: VerbSpec<S, R, P, K>): Verb<S, R> {
  return spec as unknown as Verb<S, R>;
}

/** Peel `.optional()` / `.default()` wrappers to reach the described schema. */
function inner(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) {
    s = s.unwrap() as z.ZodType;
  }
  return s;
}

function describe(schema: z.ZodType): string | undefined {
  return schema.description ?? inner(schema).description;
}

function isOptional(schema: z.ZodType): boolean {
  return schema.safeParse(undefined).success;
}

function isRest(schema: z.ZodType): boolean {
  return inner(schema) instanceof z.ZodArray;
}

/** A validated call: the verb and its parsed arguments. */
export interface Dispatch<S, R> {
  verb: Verb<S, R>;
  args: Record<string, unknown>;
}

/**
 * Verbs by name. `resolve` validates a parsed op against the declaration; `help` renders the
 * card from the same declarations.
 */
export class VerbRegistry<S, R> {
  readonly kind: string;
  #verbs = new Map<string, { verb: Verb<S, R>; schema: z.ZodType }>();

  /** `kind` names the registry in messages ("verb", "query", "session action"). */
  constructor(kind: string, verbs: Verb<S, R>[] = []) {
    this.kind = kind;
    for (const verb of verbs) this.register(verb);
  }

  register(verb: Verb<S, R>): this {
    const name = verb.name.toLowerCase();
    if (!/^[a-z][a-z0-9_-]*$/.test(name)) {
      throw new FcpError("internal", `bad ${this.kind} name '${verb.name}'`);
    }
    if (this.#verbs.has(name)) throw new FcpError("internal", `${this.kind} '${name}' twice`);
    const positionals = Object.entries(verb.positionals ?? {});
    const params = Object.keys(verb.params ?? {});
    const clash = params.find((p) => Object.hasOwn(verb.positionals ?? {}, p));
    if (clash) throw new FcpError("internal", `${name}: '${clash}' is a positional and a param`);
    const restAt = positionals.findIndex(([, s]) => isRest(s as z.ZodType));
    if (restAt >= 0 && restAt !== positionals.length - 1) {
      throw new FcpError("internal", `${name}: only the last positional may take the rest`);
    }
    const schema = z.strictObject({ ...verb.positionals, ...verb.params });
    this.#verbs.set(name, { verb, schema });
    return this;
  }

  names(): string[] {
    return [...this.#verbs.keys()];
  }

  get(name: string): Verb<S, R> | undefined {
    return this.#verbs.get(name.toLowerCase())?.verb;
  }

  /** Validate `op` against its verb; throws `unknown_verb` or `invalid_args` with a hint. */
  resolve(op: ParsedOp): Dispatch<S, R> {
    const entry = this.#verbs.get(op.verb);
    if (!entry) {
      throw new FcpError("unknown_verb", `unknown ${this.kind} '${op.verb}'`, {
        hint: suggestionHint(op.verb, this.names(), `known ${this.kind}s`),
      });
    }
    const { verb, schema } = entry;
    const usage = `usage: ${this.usage(verb)}`;
    const bad = (message: string, hint = usage) =>
      new FcpError("invalid_args", `${verb.name}: ${message}`, { hint });
    const input: Record<string, unknown> = {};
    const paramNames = Object.keys(verb.params ?? {});
    for (const [key, value] of Object.entries(op.params)) {
      if (!paramNames.includes(key)) {
        const near = closest(key, paramNames);
        throw bad(
          `unknown param '${key}'`,
          near.length
            ? `did you mean: ${near.map((n) => `${n}:`).join(", ")}?`
            : `if '${key}:${value}' is a value, quote it; ${usage}`,
        );
      }
      input[key] = value;
    }
    const accepted = verb.selectors ?? [];
    for (const sel of op.selectors) {
      if (!accepted.includes("*") && !accepted.includes(sel.type)) {
        const text = `@${sel.negated ? "not:" : ""}${sel.type}${sel.value ? `:${sel.value}` : ""}`;
        throw bad(
          `selector ${text} not accepted`,
          accepted.length
            ? `accepted: ${accepted.map((a) => `@${a}`).join(" ")}`
            : `if '${text}' is a value, quote it; ${usage}`,
        );
      }
    }
    if (op.arrows.length > 0 && !verb.arrows) throw bad(`takes no arrows (${op.arrows[0]})`);
    const declared = Object.entries(verb.positionals ?? {}) as [string, z.ZodType][];
    const given = [...op.positionals];
    for (const [name, s] of declared) {
      if (isRest(s)) {
        input[name] = given.splice(0);
        break;
      }
      const value = given.shift();
      if (value === undefined && !isOptional(s)) throw bad(`missing <${name}>`);
      if (value !== undefined) input[name] = value;
    }
    if (given.length > 0) {
      throw bad(`unexpected positional '${given[0]}' (takes ${declared.length})`);
    }
    const parsed = schema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
      throw bad(`${where}${issue.message}`);
    }
    return { verb, args: parsed.data as Record<string, unknown> };
  }

  /** `name <pos> [opt] <rest…> key:<…> [key:…]` for one verb. */
  usage(verb: Verb<S, R>): string {
    const parts = [verb.name];
    for (const [name, s] of Object.entries(verb.positionals ?? {}) as [string, z.ZodType][]) {
      const label = isRest(s) ? `${name}…` : name;
      parts.push(isOptional(s) ? `[${label}]` : `<${label}>`);
    }
    for (const [name, s] of Object.entries(verb.params ?? {}) as [string, z.ZodType][]) {
      parts.push(isOptional(s) ? `[${name}:…]` : `${name}:<…>`);
    }
    if (verb.selectors?.length) parts.push(`[@${verb.selectors.join("|@")}…]`);
    if (verb.arrows) parts.push("[->|<->|--]");
    return parts.join(" ");
  }

  /** The registry's part of the reference card: usage, summary, argument notes, examples. */
  help(indent = "  "): string[] {
    const lines: string[] = [];
    for (const { verb } of this.#verbs.values()) {
      lines.push(`${indent}${this.usage(verb)}`, `${indent}    ${verb.summary}`);
      const fields = { ...verb.positionals, ...verb.params } as Record<string, z.ZodType>;
      for (const [name, s] of Object.entries(fields)) {
        const text = describe(s);
        if (text) lines.push(`${indent}    ${name}: ${text}`);
      }
      for (const example of verb.examples ?? []) lines.push(`${indent}    e.g. ${example}`);
    }
    return lines;
  }
}
