/**
 * Agentfiles as a whole: loading a file with its `FROM-PROFILE` chain, merging the chain into
 * one spec with provenance, and lint — the rules that look across directives and files.
 *
 * Lint rule ids: `unreadable`, `syntax`, `unknown-directive`, `bad-value`,
 * `task-looks-like-directive` (warning), `missing-from`, `missing-task`, `duplicate-directive`,
 * `missing-profile`, `profile-cycle`, `permissions-tool-conflict`, `privileged-tool` (warning),
 * `net-none-mixed`, `write-outside-read` (warning), `isolation-none-unenforced` (warning),
 * `isolation-unsupported` (warning).
 */
import { agentfileProblem, parseAgentfileLenient } from "./agentfile_parse.ts";
import {
  type AgentfileAst,
  type Finding,
  type Isolation,
  LIST_LIMITS,
  PRIVILEGED_CLASSES,
  READ_CLASSES,
  type ResolvedSpec,
  type Source,
  type Sourced,
} from "./agentfile_schema.ts";
import { OstkError } from "./errors.ts";
import { findRoot } from "./layout.ts";

/** Profiles may chain; a chain longer than this is refused rather than followed. */
const MAX_CHAIN = 16;

/** One file of a chain, parsed leniently. */
export interface ChainFile {
  ast: AgentfileAst;
  problems: OstkError[];
}

/** An Agentfile and the profiles it inherits, nearest first, plus what went wrong loading them. */
export interface Chain {
  files: ChainFile[];
  problems: OstkError[];
}

/** Where the profiles of an Agentfile live, unless the caller says. */
export interface ResolveOptions {
  /** Holds `<name>.Agentfile` profiles; default `.ostk/profiles/` of the file's project. */
  profilesDir?: string;
}

/** What to check: a file on disk, or text (named `file` in findings). */
export type LintInput = { path: string } | { text: string; file?: string };

/**
 * Read an Agentfile as UTF-8, failing with an {@linkcode OstkError} that names the file.
 */
export async function readAgentfileText(path: string): Promise<string> {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(await Deno.readFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError("not_found", "no such Agentfile", { file: path }, "check the path");
    }
    if (err instanceof TypeError) {
      throw new OstkError("bad_input", "the Agentfile is not valid UTF-8", { file: path });
    }
    throw err;
  }
}

/** `.ostk/profiles` of the project holding `path`, or undefined outside any project. */
export async function defaultProfilesDir(path: string): Promise<string | undefined> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  try {
    return `${await findRoot(dir)}/.ostk/profiles`;
  } catch (err) {
    // Outside any project (or in a directory that is gone) there is nowhere to look.
    if (err instanceof OstkError && err.code === "not_found") return undefined;
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Load an Agentfile and follow its `FROM-PROFILE` lines through `profilesDir`. Never throws for
 * a bad file: problems (a missing profile, a cycle, an unreadable file) are returned with the
 * file, line and column of the directive that led there.
 */
export async function loadChain(input: LintInput, options: ResolveOptions = {}): Promise<Chain> {
  const problems: OstkError[] = [];
  const files: ChainFile[] = [];
  let file = "path" in input ? input.path : input.file ?? "<text>";
  let text: string;
  try {
    text = "path" in input ? await readAgentfileText(input.path) : input.text;
  } catch (err) {
    if (!(err instanceof OstkError)) throw err;
    const message = err.hint ? `${err.message} (${err.hint})` : err.message;
    problems.push(agentfileProblem(file, { line: 0, column: 0 }, "unreadable", message));
    return { files, problems };
  }
  const profilesDir = options.profilesDir ??
    ("path" in input ? await defaultProfilesDir(input.path) : undefined);
  // Files are told apart by real path, so `./a` and `a` (or a symlink) count as one in a cycle.
  const seen = new Map<string, string>();
  if ("path" in input) seen.set(await Deno.realPath(input.path), file);
  for (;;) {
    const parsed = parseAgentfileLenient(text, file);
    files.push(parsed);
    const parent = parsed.ast.directives.find((d) => d.directive === "FROM-PROFILE");
    if (!parent) break;
    const fail = (rule: string, msg: string, hint?: string) =>
      problems.push(agentfileProblem(file, parent.source, rule, msg, { hint }));
    if (!profilesDir) {
      fail(
        "missing-profile",
        `profile '${parent.name}' cannot be found: not inside an ostk project`,
        "pass --profiles <dir>",
      );
      break;
    }
    const next = `${profilesDir}/${parent.name}.Agentfile`;
    try {
      text = await readAgentfileText(next);
    } catch (err) {
      if (!(err instanceof OstkError)) throw err;
      if (err.code === "not_found") {
        fail("missing-profile", `profile '${parent.name}' does not exist (${next})`);
      } else fail("unreadable", `profile '${parent.name}': ${err.message} (${next})`);
      break;
    }
    const real = await Deno.realPath(next);
    if (seen.has(real) || files.length >= MAX_CHAIN) {
      const names = [...seen.values(), next];
      fail(
        "profile-cycle",
        seen.has(real)
          ? `profile cycle: ${names.join(" -> ")}`
          : `profile chain longer than ${MAX_CHAIN}: ${names.join(" -> ")}`,
        "remove one FROM-PROFILE line of the loop",
      );
      break;
    }
    seen.set(real, next);
    file = next;
  }
  return { files, problems };
}

/**
 * Merge a chain (nearest first) into one spec. Single values: the nearest file wins, and within
 * a file the first line wins (lint reports the others). TOOL lines add up along the chain. A list
 * limit (write-path, read-path, net) adds up over the lines of one file, and the nearest file
 * that sets it replaces what farther profiles said, so a profile can be narrowed.
 */
export function mergeChain(files: ChainFile[]): ResolvedSpec {
  const spec: ResolvedSpec = {
    file: files[0]?.ast.file ?? "<text>",
    chain: files.map((f) => f.ast.file),
    limits: {},
    tools: [],
  };
  const limits = spec.limits as Record<string, unknown>;
  for (const { ast } of [...files].reverse()) {
    const setHere = new Set<string>();
    const lists = new Map<string, Sourced<string>[]>();
    const once = (key: string, assign: () => void) => {
      if (!setHere.has(key)) assign();
      setHere.add(key);
    };
    for (const d of ast.directives) {
      const { source } = d;
      if (d.directive === "FROM") once("FROM", () => spec.from = { value: d.from, source });
      if (d.directive === "TASK") once("TASK", () => spec.task = { value: d.text, source });
      if (d.directive === "PIN") once("PIN", () => spec.pin = { value: d.name, source });
      if (d.directive === "ISOLATION") {
        once("ISOLATION", () => spec.isolation = { value: d.isolation, source });
      }
      if (d.directive === "TOOL") {
        const same = (t: Sourced<typeof d.tool>) =>
          t.value.class === d.tool.class && t.value.substring === d.tool.substring;
        spec.tools = [...spec.tools.filter((t) => !same(t)), { value: d.tool, source }];
      }
      if (d.directive !== "LIMIT") continue;
      const { key, value } = d.limit;
      if (Array.isArray(value)) {
        lists.set(key, [...lists.get(key) ?? [], ...value.map((v) => ({ value: v, source }))]);
      } else once(`LIMIT ${key}`, () => limits[key] = { value, source });
    }
    for (const [key, entries] of lists) limits[key] = entries;
  }
  return spec;
}

/**
 * The merged spec of the Agentfile at `path`, with each value's source (file, line, column).
 * Throws the first error of any file in the chain as an {@linkcode OstkError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveAgentfile } from "./agentfile_lint.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/base.Agentfile`, "FROM script:a.jsonl\nLIMIT turns 9\n");
 * await Deno.writeTextFile(`${dir}/a.Agentfile`, "FROM-PROFILE base\nTASK go\nLIMIT turns 3\n");
 * const spec = await resolveAgentfile(`${dir}/a.Agentfile`, { profilesDir: dir });
 * assert.equal(spec.limits.turns?.value, 3);
 * assert.equal(spec.from?.source.line, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function resolveAgentfile(
  path: string,
  options: ResolveOptions = {},
): Promise<ResolvedSpec> {
  const chain = await loadChain({ path }, options);
  const all = [...chain.files.flatMap((f) => f.problems), ...chain.problems];
  const first = all.find((p) => p.details?.severity === "error");
  if (first) throw first;
  return mergeChain(chain.files);
}

/**
 * Lint an Agentfile (a path, or text) with its profiles: every finding, errors and warnings,
 * in file order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lint } from "./agentfile_lint.ts";
 * const findings = await lint({ text: "FORM script:a.jsonl\nTASK go\n", file: "a" });
 * assert.ok(findings.some((f) => f.rule === "unknown-directive" && f.line === 1));
 * ```
 */
export async function lint(input: LintInput, options: ResolveOptions = {}): Promise<Finding[]> {
  return (await checkAgentfile(input, options)).findings;
}

/**
 * One finding as `file:line:column: severity [rule] message`; a finding about the whole file
 * (line 0, such as an unreadable one) names the file alone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatFinding } from "./agentfile_lint.ts";
 * const at = { file: "a.Agentfile", severity: "error" as const };
 * assert.equal(
 *   formatFinding({ ...at, line: 2, column: 1, rule: "syntax", message: "bad" }),
 *   "a.Agentfile:2:1: error [syntax] bad",
 * );
 * assert.equal(
 *   formatFinding({ ...at, line: 0, column: 0, rule: "unreadable", message: "no such Agentfile" }),
 *   "a.Agentfile: error [unreadable] no such Agentfile",
 * );
 * ```
 */
export function formatFinding(f: Finding): string {
  const site = f.line > 0 ? `${f.file}:${f.line}:${f.column}` : f.file;
  return `${site}: ${f.severity} [${f.rule}] ${f.message}`;
}

/** Lint findings and the merged spec they were found in (absent when nothing could be read). */
export async function checkAgentfile(
  input: LintInput,
  options: ResolveOptions = {},
): Promise<{ findings: Finding[]; spec?: ResolvedSpec }> {
  const chain = await loadChain(input, options);
  const problems = [...chain.files.flatMap((f) => f.problems), ...chain.problems];
  const findings = problems.map(toFinding);
  if (chain.files.length === 0) return { findings };
  const spec = mergeChain(chain.files);
  const add = (rule: string, at: Source, message: string, severity: Finding["severity"]) =>
    findings.push({ rule, severity, ...at, message });
  for (const { ast } of chain.files) duplicates(ast, add);
  // A directive that failed to parse is not "missing"; say only what is wrong with it.
  const failed = (directive: string) => problems.some((p) => p.details?.directive === directive);
  const top = { file: spec.file, line: 1, column: 1 };
  if (!spec.from && !failed("FROM")) {
    add("missing-from", top, "no FROM line: say what runs the agent", "error");
  }
  if (!spec.task && !failed("TASK")) {
    add("missing-task", top, "no TASK line: say what the agent is to do", "error");
  }
  conflicts(spec, add);
  const order = new Map(spec.chain.map((f, i) => [f, i]));
  return {
    findings: findings.sort((a, b) =>
      (order.get(a.file) ?? -1) - (order.get(b.file) ?? -1) || a.line - b.line ||
      a.column - b.column
    ),
    spec,
  };
}

type Add = (rule: string, at: Source, message: string, severity: Finding["severity"]) => void;

function toFinding(p: OstkError): Finding {
  return {
    rule: String(p.details?.rule ?? "syntax"),
    severity: p.details?.severity === "warning" ? "warning" : "error",
    file: p.site.file ?? "",
    line: p.site.line ?? 0,
    column: p.site.column ?? 0,
    message: p.message + (p.hint ? ` (${p.hint})` : ""),
  };
}

/** Directives (and LIMIT keys) that may appear once per file. */
function duplicates(ast: AgentfileAst, add: Add): void {
  const first = new Map<string, Source>();
  for (const d of ast.directives) {
    if (d.directive === "TOOL") continue;
    if (d.directive === "LIMIT" && (LIST_LIMITS as readonly string[]).includes(d.limit.key)) {
      continue;
    }
    const name = d.directive === "LIMIT" ? `LIMIT ${d.limit.key}` : d.directive;
    const earlier = first.get(name);
    if (earlier) {
      add(
        "duplicate-directive",
        d.source,
        `${name} is already set on line ${earlier.line}; keep one`,
        "error",
      );
    } else first.set(name, d.source);
  }
}

function conflicts(spec: ResolvedSpec, add: Add): void {
  const { limits } = spec;
  const mode = limits.permissions;
  const at = (s: Source) => `${s.file}:${s.line}`;
  for (const tool of spec.tools) {
    const cls = tool.value.class;
    if (mode?.value === "plan" && !READ_CLASSES.includes(cls)) {
      add(
        "permissions-tool-conflict",
        tool.source,
        `TOOL ${cls} grants a class that changes or runs things, but LIMIT permissions plan ` +
          `(${at(mode.source)}) is read-only`,
        "error",
      );
    } else if (PRIVILEGED_CLASSES.includes(cls) && mode?.value !== "autonomous") {
      add(
        "privileged-tool",
        tool.source,
        `TOOL ${cls} is privileged: it grants nothing unless LIMIT permissions autonomous`,
        "warning",
      );
    }
  }
  const net = limits.net ?? [];
  const none = net.find((n) => n.value === "none");
  const host = net.find((n) => n.value !== "none");
  if (none && host) {
    add(
      "net-none-mixed",
      host.source,
      `LIMIT net none (${at(none.source)}) and a host entry '${host.value}' contradict each other`,
      "error",
    );
  }
  const reads = limits["read-path"];
  for (const w of reads ? limits["write-path"] ?? [] : []) {
    if (!reads!.some((r) => covers(r.value, w.value))) {
      add(
        "write-outside-read",
        w.source,
        `write-path '${w.value}' is outside every read-path; the agent could write but not read it`,
        "warning",
      );
    }
  }
  const iso = spec.isolation;
  const fenced = LIST_LIMITS.filter((k) => limits[k] !== undefined);
  if (iso?.value === "none" && fenced.length > 0) {
    add(
      "isolation-none-unenforced",
      iso.source,
      `ISOLATION none: LIMIT ${fenced.join(", ")} will not be enforced by a sandbox`,
      "warning",
    );
  }
  if (iso && NOT_YET.includes(iso.value)) {
    add("isolation-unsupported", iso.source, notYet(iso.value), "warning");
  }
}

/** True when path `outer` is `inner` or one of its parent directories. */
function covers(outer: string, inner: string): boolean {
  const norm = (p: string) => p.replace(/^(\.\/)+/, "").replace(/\/+$/, "") || ".";
  const [o, i] = [norm(outer), norm(inner)];
  return o === "." || o === i || i.startsWith(o === "/" ? "/" : `${o}/`);
}

/**
 * Can this kernel run a session under `isolation` on `os`? `docker` and `firecracker` parse but
 * are not supported yet; `landlock` needs Linux and `seatbelt` macOS.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isolationSupport } from "./agentfile_lint.ts";
 * assert.ok(!isolationSupport("docker").supported);
 * assert.ok(isolationSupport("landlock", "linux").supported);
 * ```
 */
export function isolationSupport(
  isolation: Isolation,
  os: typeof Deno.build.os = Deno.build.os,
): { supported: true } | { supported: false; reason: string } {
  switch (isolation) {
    case "none":
      return { supported: true };
    case "landlock":
      return os === "linux"
        ? { supported: true }
        : { supported: false, reason: "ISOLATION landlock needs Linux" };
    case "seatbelt":
      return os === "darwin"
        ? { supported: true }
        : { supported: false, reason: "ISOLATION seatbelt needs macOS" };
    case "docker":
    case "firecracker":
      return { supported: false, reason: notYet(isolation) };
  }
}

/** Isolations the grammar accepts before the kernel can run them. */
const NOT_YET: readonly Isolation[] = ["docker", "firecracker"];
const notYet = (isolation: Isolation) =>
  `ISOLATION ${isolation} is not supported yet; use landlock (Linux) or seatbelt (macOS)`;
