/**
 * The approval chain: every tool call is sorted into a {@linkcode ToolClass}, then seven steps
 * decide it in order, the first that matches wins:
 *
 * 1. pin caps deny (hard deny: writes by path, shell commands by verb)
 * 2. a dangerous shell command (kernel/dangerous.ts) always asks the operator
 * 3. KernelRead is allowed
 * 4. the permission mode allows by class (plan, governed: none; auto: file classes and
 *    ShellRead; autonomous: all)
 * 5. the session's approve-all list (classes the operator answered "a" for)
 * 6. the Agentfile's TOOL patterns (privileged classes also need `permissions autonomous`)
 * 7. ask the operator ({@linkcode askOperator}); no answer means deny
 *
 * Every decision carries the audit fields `{class, decision, step, reason}`.
 */
import {
  type PermissionMode,
  PRIVILEGED_CLASSES,
  type ToolClass,
  type ToolPattern,
} from "./agentfile_schema.ts";
import { detectDanger } from "./dangerous.ts";
import { checkVerb, checkWrite, type Policy } from "./pin_caps.ts";

export type { ToolClass } from "./agentfile_schema.ts";

/** One tool call as the kernel received it. */
export interface ToolCall {
  tool: string;
  args?: unknown;
}

/** Step 2's test (kernel/dangerous.ts `detectDanger` by default): a match means "ask first". */
export type DangerDetector = (cmd: string) => { pattern: string; reason: string } | undefined;

/** What the chain knows about the session making the call. */
export interface ApprovalContext {
  /** Pin caps in force (kernel/pin_caps.ts `loadPolicy`). */
  policy: Policy;
  permissions: PermissionMode;
  /** Classes the operator approved for the rest of the session. */
  approveAll?: ReadonlySet<ToolClass>;
  /** The Agentfile's TOOL lines. */
  tools?: readonly ToolPattern[];
  /** Defaults to `detectDanger` from kernel/dangerous.ts. */
  detectDanger?: DangerDetector;
}

/** The audit fields of one decision. */
export interface ApprovalDecision {
  class: ToolClass;
  decision: "allow" | "deny" | "ask";
  step: 1 | 2 | 3 | 4 | 5 | 6 | 7;
  reason: string;
}

const SHELL_CLASSES: readonly ToolClass[] = ["ShellRead", "ShellWrite", "ShellExec", "ShellSecret"];
const AUTO_CLASSES: readonly ToolClass[] = ["FileRead", "FileEdit", "FileWrite", "ShellRead"];

/**
 * Decide a call: the first of the seven steps that matches. `args.path` of a file call must be
 * root-relative (as `resolveProjectPath` returns it); anything else is denied at step 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decide } from "./approval.ts";
 * const policy = { pins: ["default"], rules: [] };
 * const d = decide({ tool: "file:edit", args: { path: "a.ts" } }, { policy, permissions: "auto" });
 * assert.equal(d.decision, "allow");
 * assert.equal(d.step, 4);
 * ```
 */
export function decide(call: ToolCall, ctx: ApprovalContext): ApprovalDecision {
  const cls = classify(call.tool, call.args);
  const at = (
    step: ApprovalDecision["step"],
    decision: ApprovalDecision["decision"],
    reason: string,
  ) => ({ class: cls, decision, step, reason }) as ApprovalDecision;
  const shell = SHELL_CLASSES.includes(cls);
  const command = commandOf(call.args);
  const path = pathOf(call.args);
  if (cls === "FileEdit" || cls === "FileWrite") {
    if (path === undefined) return at(1, "deny", `${call.tool} without a path is refused`);
    const pin = checkWrite(ctx.policy, path);
    if (!pin.allowed) return at(1, "deny", pin.reason);
  }
  if (shell) {
    const pin = checkVerb(ctx.policy, command);
    if (!pin.allowed) return at(1, "deny", pin.reason);
    const danger = (ctx.detectDanger ?? detectDanger)(command);
    if (danger) {
      return at(2, "ask", `dangerous command (${danger.pattern}): ${danger.reason}`);
    }
  }
  if (cls === "KernelRead") return at(3, "allow", "kernel reads are always allowed");
  const mode = ctx.permissions;
  if (mode === "autonomous" || (mode === "auto" && AUTO_CLASSES.includes(cls))) {
    return at(4, "allow", `permissions ${mode} allows ${cls}`);
  }
  if (ctx.approveAll?.has(cls)) {
    return at(5, "allow", `the operator approved every ${cls} call for this session`);
  }
  // A privileged class needs permissions autonomous as well as a TOOL line; autonomous has
  // already allowed everything at step 4, so here a TOOL line never grants one.
  const privileged = PRIVILEGED_CLASSES.includes(cls);
  const target = shell ? command : path ?? "";
  for (const pattern of privileged ? [] : ctx.tools ?? []) {
    if (pattern.class !== cls) continue;
    if (pattern.substring !== undefined && !target.includes(pattern.substring)) continue;
    const shown = pattern.substring === undefined ? cls : `${cls}(${pattern.substring})`;
    return at(6, "allow", `the Agentfile allows TOOL ${shown}`);
  }
  const why = privileged && (ctx.tools ?? []).some((p) => p.class === cls)
    ? ` (TOOL ${cls} needs permissions autonomous)`
    : "";
  return at(7, "ask", `no rule allows ${cls} under permissions ${mode}${why}; ask the operator`);
}

// ---- step 7: the operator ----

/** An operator's answer: yes once, no, or yes to every call of this class from now on. */
export type OperatorAnswer = "y" | "n" | "a";

/** What a source shows the operator. */
export interface ApprovalRequest extends ToolCall {
  class: ToolClass;
  reason: string;
}

/** Somewhere an operator can answer (a terminal, an attached client); undefined: no answer. */
export interface ApprovalSource {
  ask(request: ApprovalRequest, signal?: AbortSignal): Promise<OperatorAnswer | undefined>;
}

/**
 * Ask every source at once; the first real answer wins: `y` allows this call, `a` allows it and
 * adds its class to `approveAll`, `n` denies. No source, no answer (every source said
 * undefined or failed: the question was withdrawn), or no answer within `timeoutMs` denies, and
 * the reason says which. The other sources' questions are withdrawn through the abort signal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { askOperator } from "./approval.ts";
 * const req = { tool: "shell", args: { command: "make" }, class: "ShellExec" as const, reason: "" };
 * const d = await askOperator([{ ask: () => Promise.resolve("y" as const) }], req, 1000);
 * assert.equal(d.decision, "allow");
 * assert.equal(d.step, 7);
 * ```
 */
export async function askOperator(
  sources: readonly ApprovalSource[],
  request: ApprovalRequest,
  timeoutMs: number,
  approveAll?: Set<ToolClass>,
): Promise<ApprovalDecision & { answer?: OperatorAnswer }> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const answer = await new Promise<OperatorAnswer | undefined>((resolve) => {
    let pending = sources.length;
    if (pending === 0) return resolve(undefined);
    timer = setTimeout(() => {
      timedOut = true;
      resolve(undefined);
    }, timeoutMs);
    const settle = (a: unknown) => {
      if (a === "y" || a === "n" || a === "a") resolve(a);
      else if (--pending === 0) resolve(undefined);
    };
    for (const source of sources) {
      // A source that fails (a client gone mid-question) is one that did not answer.
      source.ask(request, controller.signal).then(settle, () => settle(undefined));
    }
  });
  clearTimeout(timer);
  controller.abort();
  const cls = request.class;
  const decided = (decision: "allow" | "deny", reason: string) => ({
    class: cls,
    decision,
    step: 7 as const,
    reason,
    answer,
  });
  if (answer === "y") return decided("allow", "the operator approved this call");
  if (answer === "a") {
    approveAll?.add(cls);
    return decided("allow", `the operator approved every ${cls} call for this session`);
  }
  if (answer === "n") return decided("deny", "the operator denied this call");
  return decided(
    "deny",
    sources.length === 0
      ? "no operator can be asked; denied"
      : timedOut
      ? `no operator answered within ${timeoutMs} ms; denied`
      : "the question was withdrawn before anyone answered (its session ended); denied",
  );
}

// ---- classification ----

const FILE_READS = new Set(["file:read", "file:list", "file:glob", "file:grep", "file:stat"]);
const KERNEL_READ_VERBS = new Set([
  "status",
  "ps",
  "pstree",
  "log",
  "audit",
  "boot",
  "lineage",
  "list",
  "read",
  "inspect",
]);

/**
 * The class of a call. File tools by name (`file:edit` FileEdit, other writers FileWrite);
 * shell tools (`shell`, `shell:*`, `bash`) by their command (see {@linkcode classifyCommand});
 * `kernel:`/`session:` tools by verb (status-like reads KernelRead, `spawn` KernelSpawn,
 * `secret`/`identity` KernelSecret, the rest KernelWrite). An unknown tool is ShellExec, which
 * no mode short of autonomous allows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classify } from "./approval.ts";
 * assert.equal(classify("file:create", { path: "a" }), "FileWrite");
 * assert.equal(classify("shell", { command: "git status" }), "ShellRead");
 * ```
 */
export function classify(tool: string, args: unknown): ToolClass {
  const [space, verb = ""] = tool.replace("/", ":").split(":", 2);
  if (space === "file") {
    if (tool === "file:edit") return "FileEdit";
    return FILE_READS.has(tool) ? "FileRead" : "FileWrite";
  }
  if (space === "shell" || tool === "bash") return classifyCommand(commandOf(args));
  if (space === "secret" || verb === "secret" || verb === "identity") return "KernelSecret";
  if (space === "kernel" || space === "session") {
    if (verb === "spawn") return "KernelSpawn";
    return KERNEL_READ_VERBS.has(verb) ? "KernelRead" : "KernelWrite";
  }
  if (tool === "ps" || tool === "status") return "KernelRead";
  return "ShellExec";
}

const RANK: Record<string, number> = { ShellRead: 0, ShellWrite: 1, ShellExec: 2, ShellSecret: 3 };

/** Commands that only read (when nothing is redirected into a file). */
const READ_COMMANDS = new Set(
  ("cd ls cat head tail grep egrep fgrep rg find wc pwd echo printf which whereis file stat du df " +
    "tree less more sort uniq cut diff cmp basename dirname realpath readlink true false date " +
    "whoami uname test [ jq sed").split(" "),
);
/** Commands that change files. */
const WRITE_COMMANDS = new Set(
  ("mv cp rm rmdir mkdir touch ln chmod chown chgrp truncate dd install tee patch unlink " +
    "shred rsync").split(" "),
);
const GIT_READS = new Set(
  "status diff log show blame grep ls-files rev-parse describe shortlog".split(" "),
);
/** Paths and words that hold or print secrets. */
const SECRET_WORD =
  /(^|[/~])\.(ssh|gnupg|aws|netrc|pgpass|docker)(\/|$)|credentials|(^|\/)id_(rsa|dsa|ecdsa|ed25519)|(^|\/)\.env(\.|$)|\.(pem|key|p12|pfx)$|^\/etc\/shadow$|\$\{?\w*(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|PRIVATE)/i;
const SECRET_COMMANDS = new Set(["printenv", "security", "keychain"]);

/**
 * The class of a shell command: ShellSecret when any part touches secrets (`env`, `printenv`,
 * `~/.ssh`, credentials, `.env`, key files, `$…TOKEN`), else ShellExec when any part runs a
 * program not known to be harmless, else ShellWrite when any part changes files (a redirect,
 * `mv`, `rm`, `sed -i`, `git commit`…), else ShellRead. Parts are split at `;`, `&&`, `||`,
 * `|`, newlines and `$( … )`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyCommand } from "./approval.ts";
 * assert.equal(classifyCommand("ls -la | grep x"), "ShellRead");
 * assert.equal(classifyCommand("echo hi > notes.txt"), "ShellWrite");
 * assert.equal(classifyCommand("cat ~/.ssh/id_rsa"), "ShellSecret");
 * assert.equal(classifyCommand("npm test"), "ShellExec");
 * ```
 */
export function classifyCommand(command: string): ToolClass {
  let worst: ToolClass = command.trim() === "" ? "ShellExec" : "ShellRead";
  for (const segment of shellSegments(command)) {
    const cls = classifySegment(segment);
    if (RANK[cls] > RANK[worst]) worst = cls;
  }
  return worst;
}

function classifySegment({ words, writes }: Segment): ToolClass {
  let i = 0;
  while (i < words.length && /^[A-Za-z_]\w*=/.test(words[i])) i++;
  if (words[i] === "env") {
    i++;
    while (i < words.length && /^[A-Za-z_]\w*=/.test(words[i])) i++;
    if (i === words.length) return "ShellSecret"; // bare `env` prints the environment
  }
  const [name, ...rest] = words.slice(i);
  const program = name?.split("/").at(-1) ?? "";
  const all = [...words, ...writes];
  if (SECRET_COMMANDS.has(program) || all.some((w) => SECRET_WORD.test(w))) return "ShellSecret";
  if ((program === "export" || program === "set") && rest.length === 0) return "ShellSecret";
  if (program === "") return writes.length > 0 ? "ShellWrite" : "ShellRead";
  if (WRITE_COMMANDS.has(program)) return "ShellWrite";
  if (program === "git") {
    const sub = rest.find((w) => !w.startsWith("-")) ?? "";
    const listing = sub === "branch" && rest.every((w) => /^(branch|-a|-r|-l|-v|--list)$/.test(w));
    if (!GIT_READS.has(sub) && !listing) return "ShellWrite";
  } else if (program === "find") {
    if (rest.some((w) => /^-(exec|execdir|ok|okdir)$/.test(w))) return "ShellExec";
    if (rest.includes("-delete")) return "ShellWrite";
  } else if (program === "sed" && rest.some((w) => /^(-i|--in-place)/.test(w))) {
    return "ShellWrite";
  } else if (!READ_COMMANDS.has(program)) return "ShellExec";
  return writes.length > 0 ? "ShellWrite" : "ShellRead";
}

/** One simple command: its words and the files it redirects output into. */
interface Segment {
  words: string[];
  writes: string[];
}

/** Split a command line into simple commands, with shell quoting and output redirects. */
function shellSegments(command: string): Segment[] {
  const segments: Segment[] = [{ words: [], writes: [] }];
  let word: string | undefined;
  let redirect = false;
  const endWord = () => {
    if (word === undefined) return;
    const seg = segments.at(-1)!;
    if (redirect) {
      if (word !== "/dev/null") seg.writes.push(word);
      redirect = false;
    } else seg.words.push(word);
    word = undefined;
  };
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      for (; j < command.length && command[j] !== c; j++) {
        if (c === '"' && command[j] === "\\") j++;
      }
      word = (word ?? "") + command.slice(i + 1, j);
      i = j;
    } else if (c === "\\") {
      word = (word ?? "") + (command[++i] ?? "");
    } else if (c === " " || c === "\t") endWord();
    else if (";&|\n()`".includes(c) || (c === "$" && command[i + 1] === "(")) {
      if (c === "&" && command[i + 1] === ">") continue; // `&>` redirects both streams
      endWord();
      segments.push({ words: [], writes: [] });
    } else if (c === ">") {
      if (word !== undefined && /^\d+$/.test(word)) word = undefined; // `2>`: a descriptor
      endWord();
      if (command[i + 1] === ">") i++;
      if (command[i + 1] !== "&") redirect = true;
      else while (/[&\d-]/.test(command[i + 1] ?? "")) i++; // `2>&1` names a descriptor
    } else if (c === "<") endWord();
    else word = (word ?? "") + c;
  }
  endWord();
  return segments.filter((s) => s.words.length > 0 || s.writes.length > 0);
}

function commandOf(args: unknown): string {
  const value = (args as { command?: unknown } | undefined)?.command;
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    return value.map((w) => /[\s'"]/.test(String(w)) ? JSON.stringify(String(w)) : w).join(" ");
  }
  return "";
}

function pathOf(args: unknown): string | undefined {
  const value = (args as { path?: unknown } | undefined)?.path;
  return typeof value === "string" ? value : undefined;
}
