/**
 * Pin caps: deny-only policy profiles read from `.ostk/pins/<name>/pin.caps`. The `default`
 * profile always applies and the active pin (`OSTK_PIN`) adds to it, so a pin can only narrow
 * what an agent may do. A profile that cannot be read or parsed fails closed.
 */

import { OstkError } from "./errors.ts";
import { isKernelPath } from "./resolve_path.ts";

/** The pin.caps that `ostk init` writes into `.ostk/pins/default/`. */
export const DEFAULT_PIN_CAPS =
  `# pin.caps: what agents running under this pin may NOT do. Deny-only.
# The 'default' pin always applies; OSTK_PIN=<name> adds .ostk/pins/<name>/pin.caps on top,
# so a pin can take permissions away but never give them back.
#
# deny: <tokens>         space or comma separated, any of:
#   write-kernel         anything under .ostk/
#   modify-governance    HUMANFILE, ENTITYFILE (at the root or in .ostk/),
#                        .ostk/agents/*.Agentfile, .ostk/pins/**
#   write-src            project files: everything outside .ostk/ that is not governance
#   write-all            every write
# deny-path: <entries>   space separated. A plain entry is a path prefix on component
#                        boundaries (src/secret denies src/secret/x, not src/secrets).
#                        An entry with * (within a component), ** (any depth) or ? (one
#                        character) is a glob; it also denies everything under a match.
# deny-verb: <command>   the rest of the line is one command prefix, matched word by word
#                        (deny-verb: git push denies 'git push origin', not 'git pushx').
#                        Repeat the line for more commands.
#
# Comments start with # on their own line.

deny: write-kernel
# deny: modify-governance
# deny-path: secrets/ **/*.pem
# deny-verb: git push
# deny-verb: rm -rf
`;

/** The tokens `deny:` understands. */
export const DENY_TOKENS = ["write-kernel", "modify-governance", "write-src", "write-all"] as const;
export type DenyToken = typeof DENY_TOKENS[number];

/** Where a rule was written, so a denial can point at it. */
export interface RuleSource {
  file: string;
  line: number;
}

/** One parsed line of a pin.caps file. */
export type PinRule =
  | { kind: "deny"; token: DenyToken; source: RuleSource }
  | { kind: "deny-path"; entry: string; glob?: RegExp; source: RuleSource }
  | { kind: "deny-verb"; words: string[]; source: RuleSource };

/** A parsed pin.caps file. */
export interface PinCaps {
  file: string;
  rules: PinRule[];
}

/** The effective policy: the union of the default and active pins' rules. */
export interface Policy {
  /** Pin names whose rules are in force, `default` first. */
  pins: string[];
  rules: PinRule[];
  /** Set when a pin failed to load; the policy then denies every write and every command. */
  error?: { message: string; source: RuleSource };
}

/** The answer to "may this happen?"; a denial names the rule and where it was written. */
export type Decision =
  | { allowed: true }
  | { allowed: false; rule: string; source: RuleSource; reason: string };

const DIRECTIVES = "'deny:', 'deny-path:' or 'deny-verb:'";
const MAX_PIN_BYTES = 64 * 1024;

/**
 * Parse the text of one pin.caps file. `file` is used only to name the source of each rule and
 * of errors. Throws {@linkcode OstkError} `bad_input` with the file and line of the first bad
 * line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePinCaps } from "./pin_caps.ts";
 * const caps = parsePinCaps("deny: write-src\ndeny-verb: git push\n", "pin.caps");
 * assert.equal(caps.rules.length, 2);
 * assert.equal(caps.rules[1].source.line, 2);
 * ```
 */
export function parsePinCaps(text: string, file: string): PinCaps {
  const rules: PinRule[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const source = { file, line: i + 1 };
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    const bad = (what: string): never => {
      throw new OstkError("bad_input", what, source, "see the comments in pins/default/pin.caps");
    };
    if (colon < 0) bad(`expected '<directive>: <value>' with ${DIRECTIVES}, found '${line}'`);
    const directive = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (directive === "deny") {
      const tokens = value.split(/[\s,]+/).filter((t) => t !== "");
      if (tokens.length === 0) bad(`'deny:' needs a token: ${DENY_TOKENS.join(", ")}`);
      for (const token of tokens) {
        if (!(DENY_TOKENS as readonly string[]).includes(token)) {
          const note = token.startsWith("#") ? " (comments go on their own line)" : "";
          bad(`unknown deny token '${token}'; expected one of ${DENY_TOKENS.join(", ")}${note}`);
        }
        rules.push({ kind: "deny", token: token as DenyToken, source });
      }
    } else if (directive === "deny-path") {
      const entries = value.split(/\s+/).filter((e) => e !== "");
      if (entries.length === 0) bad("'deny-path:' needs at least one path prefix or glob");
      for (const raw of entries) {
        const problem = pathEntryProblem(raw);
        if (problem) bad(`bad deny-path entry '${raw}': ${problem}`);
        const entry = raw.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
        rules.push({ kind: "deny-path", entry, glob: globToRegExp(entry), source });
      }
    } else if (directive === "deny-verb") {
      const words = value.split(/\s+/).filter((w) => w !== "");
      if (words.length === 0) {
        bad("'deny-verb:' needs a command prefix, e.g. 'deny-verb: git push'");
      }
      rules.push({ kind: "deny-verb", words, source });
    } else {
      bad(`unknown directive '${directive}:'; expected ${DIRECTIVES}`);
    }
  }
  return { file, rules };
}

/**
 * Load the effective policy for `active` from `<ostkDir>/pins/`. Never throws for a bad or
 * missing pin: it returns a fail-closed policy whose `error` names the file and line, because a
 * typo in a policy file must not silently widen what agents may do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkWrite, loadPolicy } from "./pin_caps.ts";
 * const dir = await Deno.makeTempDir();
 * const policy = await loadPolicy(`${dir}/.ostk`, "default"); // no pins/ yet: fails closed
 * assert.notEqual(policy.error, undefined);
 * assert.ok(!checkWrite(policy, "src/a.ts").allowed);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadPolicy(
  ostkDir: string,
  active: string = Deno.env.get("OSTK_PIN") ?? "default",
): Promise<Policy> {
  // `OSTK_PIN= ostk ...` is how people unset a variable inline; read it as "no extra pin".
  const chosen = active === "" ? "default" : active;
  const pins = chosen === "default" ? ["default"] : ["default", chosen];
  // Sources are shown relative to the project root (".ostk/pins/..."), the frame users edit in.
  const shownDir = ostkDir.replace(/\/+$/, "").split("/").at(-1) || ".ostk";
  const rules: PinRule[] = [];
  for (const name of pins) {
    const shown = `${shownDir}/pins/${name}/pin.caps`;
    const failClosed = (message: string, line = 0): Policy => ({
      pins,
      rules: [],
      error: { message, source: { file: shown, line } },
    });
    // The name becomes a path; refuse anything that could step outside pins/.
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name)) {
      return failClosed(`pin name '${name}' is not a plain name (letters, digits, . _ -)`);
    }
    let text: string;
    try {
      const bytes = await Deno.readFile(`${ostkDir}/pins/${name}/pin.caps`);
      if (bytes.length > MAX_PIN_BYTES) {
        return failClosed(`pin file is ${bytes.length} bytes; the limit is ${MAX_PIN_BYTES}`);
      }
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        const fix = name === "default" ? "run 'ostk init'" : `create it or unset OSTK_PIN`;
        return failClosed(`pin '${name}' does not exist (${fix})`);
      }
      if (err instanceof TypeError) return failClosed("pin file is not valid UTF-8");
      return failClosed(`cannot read pin file: ${err}`);
    }
    try {
      rules.push(...parsePinCaps(text, shown).rules);
    } catch (err) {
      if (!(err instanceof OstkError)) throw err;
      return failClosed(err.message, err.site.line ?? 0);
    }
  }
  return { pins, rules };
}

/**
 * May a write to the root-relative path `relPath` (as returned by `resolveProjectPath`) go
 * ahead? The first matching rule, default pin first, is reported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkWrite, parsePinCaps } from "./pin_caps.ts";
 * const policy = { pins: ["default"], rules: parsePinCaps("deny: write-kernel", "p").rules };
 * assert.ok(checkWrite(policy, "src/a.ts").allowed);
 * assert.ok(!checkWrite(policy, ".ostk/audit.jsonl").allowed);
 * ```
 */
export function checkWrite(policy: Policy, relPath: string): Decision {
  if (policy.error) return failClosedDecision(policy.error, "write");
  const rel = relPath.replace(/^(\.\/)+/, "").replace(/\/+$/, "") || ".";
  // The gate trusts only paths that already went through resolveProjectPath; anything else
  // could alias a denied path, so it is denied rather than guessed at.
  if (rel.startsWith("/") || rel.split("/").includes("..")) {
    return {
      allowed: false,
      rule: "path",
      source: { file: "<kernel>", line: 0 },
      reason: `'${relPath}' is not a root-relative path; resolve it first`,
    };
  }
  for (const rule of policy.rules) {
    if (rule.kind === "deny" && tokenCovers(rule.token, rel)) {
      return deny(`deny: ${rule.token}`, rule.source, `write to ${rel}`);
    }
    if (rule.kind === "deny-path" && pathEntryCovers(rule, rel)) {
      return deny(`deny-path: ${rule.entry}`, rule.source, `write to ${rel}`);
    }
  }
  return { allowed: true };
}

/**
 * May the shell command `commandLine` run? `deny-verb` prefixes match whole words after
 * whitespace is normalised, in each `;`, `&&`, `||`, `|` segment. This is a tripwire for
 * honest mistakes, not a sandbox: `sh -c`, aliases or `git -C x push` get past it, which is
 * why the sandbox and the dangerous-command check exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkVerb, parsePinCaps } from "./pin_caps.ts";
 * const policy = { pins: ["default"], rules: parsePinCaps("deny-verb: git push", "p").rules };
 * assert.ok(!checkVerb(policy, "git  push origin").allowed);
 * assert.ok(checkVerb(policy, "git pushx").allowed);
 * ```
 */
export function checkVerb(policy: Policy, commandLine: string): Decision {
  if (policy.error) return failClosedDecision(policy.error, "command");
  const segments = commandLine.split(/[;&|\n()`]|\$\(/).map(commandWords);
  for (const rule of policy.rules) {
    if (rule.kind !== "deny-verb") continue;
    for (const words of segments) {
      if (rule.words.length <= words.length && rule.words.every((w, i) => words[i] === w)) {
        return deny(
          `deny-verb: ${rule.words.join(" ")}`,
          rule.source,
          `command '${words.join(" ")}'`,
        );
      }
    }
  }
  return { allowed: true };
}

/**
 * True when `rel` is a governance file: HUMANFILE or ENTITYFILE at the root or in `.ostk/`,
 * an Agentfile in `.ostk/agents/`, or anything under `.ostk/pins/`. Compared without case.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isGovernancePath } from "./pin_caps.ts";
 * assert.ok(isGovernancePath(".ostk/agents/coder.Agentfile"));
 * assert.ok(!isGovernancePath("src/a.ts"));
 * ```
 */
export function isGovernancePath(rel: string): boolean {
  // Without case, like isKernelPath: on macOS `humanfile` opens HUMANFILE.
  return /^(\.ostk\/)?(HUMANFILE|ENTITYFILE)$/i.test(rel) ||
    /^\.ostk\/agents\/[^/]+\.Agentfile$/i.test(rel) ||
    /^\.ostk\/pins(\/|$)/i.test(rel);
}

function tokenCovers(token: DenyToken, rel: string): boolean {
  const kernel = isKernelPath(rel);
  switch (token) {
    case "write-all":
      return true;
    case "write-kernel":
      return kernel;
    case "modify-governance":
      return isGovernancePath(rel);
    case "write-src":
      return !kernel && !isGovernancePath(rel);
  }
}

function pathEntryCovers(rule: { entry: string; glob?: RegExp }, rel: string): boolean {
  if (!rule.glob) return rel === rule.entry || rel.startsWith(rule.entry + "/");
  // A glob that matches a directory denies what is inside it too, like a plain prefix does.
  const parts = rel.split("/");
  for (let n = 1; n <= parts.length; n++) {
    if (rule.glob.test(parts.slice(0, n).join("/"))) return true;
  }
  return false;
}

/** Why a deny-path entry is unusable, or undefined when it is fine. */
function pathEntryProblem(raw: string): string | undefined {
  if (raw.startsWith("/")) return "expected a path relative to the project root";
  const entry = raw.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  if (entry === "" || entry === ".") return "it names the whole project; use 'deny: write-all'";
  if (entry.split("/").includes("..")) return "'..' is not allowed";
  if (/[[\]{}]/.test(entry)) return "only *, ** and ? are supported in globs";
  return undefined;
}

/** Compile a glob to an anchored RegExp, or undefined for a plain prefix entry. */
function globToRegExp(entry: string): RegExp | undefined {
  if (!/[*?]/.test(entry)) return undefined;
  let out = "";
  for (let i = 0; i < entry.length; i++) {
    const c = entry[i];
    if (c === "*" && entry[i + 1] === "*") {
      const slashAfter = entry[i + 2] === "/";
      const atStart = i === 0 || entry[i - 1] === "/";
      // `**/` may match no directories at all, so `a/**/b` covers `a/b`.
      out += atStart && slashAfter ? "(?:[^/]+/)*" : ".*";
      i += slashAfter && atStart ? 2 : 1;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

/** Words of one command segment, leading `VAR=value` assignments dropped. */
function commandWords(segment: string): string[] {
  const words = segment.trim().split(/\s+/).filter((w) => w !== "");
  let start = 0;
  while (start < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[start])) start++;
  return words.slice(start);
}

function deny(rule: string, source: RuleSource, what: string): Decision {
  return {
    allowed: false,
    rule,
    source,
    reason: `${what} denied by '${rule}' (${source.file}:${source.line})`,
  };
}

function failClosedDecision(error: NonNullable<Policy["error"]>, what: string): Decision {
  const where = `${error.source.file}${error.source.line ? `:${error.source.line}` : ""}`;
  return {
    allowed: false,
    rule: "fail-closed",
    source: error.source,
    reason: `every ${what} is denied: the policy did not load (${where}: ${error.message})`,
  };
}
