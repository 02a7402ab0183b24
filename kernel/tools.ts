/**
 * The kernel's tool layer: the only door through which agents read and change project files.
 * Each call runs the write path of DESIGN.md in order: validate → resolve → policy → CAS (with
 * Hot PR on a stale base) → atomic write → gen bump → audit row → response + digest.
 */
import { AuditLog } from "./audit.ts";
import { describeIssue } from "./audit_schema.ts";
import type { DangerRequest, ShellSpawner } from "./shell.ts";
import { auditFieldsFor, runShell } from "./shell.ts";
import { encodeBase64 } from "./base64.ts";
import { type ContextBudget, renderDigest } from "./digest.ts";
import { OstkError } from "./errors.ts";
import { countMatches, replaceText, safeDecode } from "./text_edit.ts";
import { pick, staleError, type ToolError, toToolError } from "./tool_errors.ts";
import { FoldCache } from "./fold_cache.ts";
import { appendNudge, nudgeRefusal, takeNudges } from "./nudge.ts";
import { contentHash, GenTable, readShadow } from "./gen_table.ts";
import { hotPr, tierOneWords } from "./hot_pr.ts";
import type { Signer } from "./identity.ts";
import type { OstkPaths } from "./layout.ts";
import { checkWrite, loadPolicy, type Policy } from "./pin_caps.ts";
import { isKernelPath, resolveProjectPath } from "./resolve_path.ts";
import {
  type FileCreateArgs,
  type FileEditArgs,
  type FileReadArgs,
  type FileWriteArgs,
  type NudgeArgs,
  type ShellArgs,
  TOOL_SCHEMAS,
  type ToolName,
} from "./tool_schema.ts";

/** Default cap on the bytes one write may carry (configurable per kernel). */
export const DEFAULT_MAX_WRITE_BYTES = 16 * 1024 * 1024;

/** Who is calling. */
export interface Caller {
  alias: string;
  budget?: ContextBudget;
  /**
   * An idempotency key (`<alias>:<turn>:<index>` from a session's CPU), recorded in the call's
   * audit row so a turn replayed after a crash can skip calls that already happened.
   */
  callId?: string;
}

/** Options for {@linkcode Kernel}. */
export interface KernelOptions {
  /** Signs audit rows: the operator's key. */
  signer: Signer;
  maxWriteBytes?: number;
  /**
   * Record `tool.file_read` rows. On by default: the rows are what lets 304 elision and the
   * `[files]` digest line survive a restart. `OSTK_AUDIT_READS=0` turns them off (elision then
   * only remembers reads made through this kernel object). Writes are always recorded.
   */
  auditReads?: boolean;
  shadowKeep?: number;
  /** Pin profile; defaults to `OSTK_PIN` or `default`. */
  pin?: string;
  /**
   * Runs a shell command inside the caller's sandbox. Without one, `shell` runs unsandboxed
   * (the operator's own calls); sessions get theirs from the daemon.
   */
  sandboxFor?: (caller: Caller) => ShellSpawner | undefined;
  /** Asked before a dangerous command runs (the approval chain's step 2); absent = refuse. */
  approveDanger?: (caller: Caller, request: DangerRequest) => Promise<boolean>;
  now?: () => number;
}

export type { ToolError };

/** The answer to every tool call: the result or the error, and the digest. */
export type ToolResponse =
  | { ok: true; tool: ToolName; result: Record<string, unknown>; digest: string }
  | { ok: false; tool: string; error: ToolError; digest: string };

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * One project's kernel tools. Cheap to hold for a long time (the audit fold is incremental).
 *
 * A second read of an unchanged file answers `[304]`; the content hash decides "unchanged",
 * so a file edited around the kernel (same size, same gen) is sent again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Kernel } from "./tools.ts";
 * import { loadOrCreateOperatorKey } from "./identity.ts";
 * import { ostkPaths } from "./layout.ts";
 * import { initProject } from "./project_init.ts";
 * const dir = await Deno.makeTempDir();
 * const key = await loadOrCreateOperatorKey(`${dir}/identity.key`);
 * await Deno.mkdir(`${dir}/proj`);
 * const { root } = await initProject(`${dir}/proj`, key);
 * const kernel = new Kernel(ostkPaths(root), { signer: key.signer, pin: "default" });
 * const read = () => kernel.call("file:read", { path: "notes.txt" }, { alias: "claude-1" });
 * await Deno.writeTextFile(`${root}/notes.txt`, "one\n");
 * const first = await read();
 * assert.ok(first.ok);
 * assert.equal(first.result.content, "one\n");
 * const again = await read();
 * assert.ok(again.ok);
 * assert.equal(again.result.text, "[304] notes.txt gen=0 (current)");
 * await Deno.writeTextFile(`${root}/notes.txt`, "two\n"); // by hand: same size, still gen 0
 * const fresh = await read();
 * assert.ok(fresh.ok);
 * assert.equal(fresh.result.content, "two\n");
 * kernel.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class Kernel {
  readonly paths: OstkPaths;
  #log: AuditLog;
  #fold: FoldCache;
  #table: GenTable;
  #options: KernelOptions;
  #maxWrite: number;
  #auditReads: boolean;
  #now: () => number;
  /** Reads made through this object: alias → path → {gen, hash}; covers unaudited reads. */
  #reads = new Map<string, Map<string, { gen: number; hash: string }>>();

  constructor(paths: OstkPaths, options: KernelOptions) {
    this.paths = paths;
    this.#options = options;
    this.#log = new AuditLog(paths.audit, { signer: options.signer, headPath: paths.head });
    this.#fold = new FoldCache(paths.audit);
    this.#table = new GenTable(paths.dir, { shadowKeep: options.shadowKeep });
    this.#maxWrite = options.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES;
    this.#auditReads = options.auditReads ?? Deno.env.get("OSTK_AUDIT_READS") !== "0";
    this.#now = options.now ?? Date.now;
  }

  /** Release the audit log's file descriptor. */
  close(): void {
    this.#log.close();
  }

  /** Run one tool call. Never throws for a refused call: the refusal is in the response. */
  async call(tool: string, args: unknown, caller: Caller): Promise<ToolResponse> {
    let response: ToolResponse;
    try {
      if (!/^[a-z][a-z0-9_-]*$/.test(caller.alias)) {
        throw new OstkError("bad_input", `bad caller alias '${caller.alias}'`);
      }
      const name = tool as ToolName;
      const schema = Object.hasOwn(TOOL_SCHEMAS, name) ? TOOL_SCHEMAS[name] : undefined;
      if (!schema) {
        throw new OstkError(
          "bad_input",
          `unknown tool '${tool}'`,
          {},
          `known tools: ${Object.keys(TOOL_SCHEMAS).join(", ")}`,
        );
      }
      const parsed = schema.safeParse(args);
      if (!parsed.success) {
        throw new OstkError("bad_input", `${tool}: ${describeIssue(parsed.error)}`);
      }
      const result = await this.#dispatch(name, parsed.data, caller);
      response = { ok: true, tool: name, result, digest: "" };
    } catch (err) {
      if (!(err instanceof OstkError)) throw err;
      response = { ok: false, tool, error: toToolError(err), digest: "" };
    }
    const nudges = await this.#deliverNudges(caller.alias);
    response.digest = renderDigest({
      state: await this.#fold.refresh(),
      reader: caller.alias,
      nowMs: this.#now(),
      budget: caller.budget,
      nudges,
    });
    return response;
  }

  #dispatch(tool: ToolName, args: unknown, caller: Caller): Promise<Record<string, unknown>> {
    switch (tool) {
      case "file:read":
        return this.#read(args as FileReadArgs, caller);
      case "file:edit":
        return this.#edit(args as FileEditArgs, caller);
      case "file:write":
        return this.#write(tool, args as FileWriteArgs, caller, "replace");
      case "file:create":
        return this.#write(tool, args as FileCreateArgs, caller, "create");
      case "shell":
        return this.#shell(args as ShellArgs, caller);
      case "nudge":
        return this.#nudge(args as NudgeArgs, caller);
    }
  }

  /** Queue a nudge for a live (or session-less) known alias; anything else is refused. */
  async #nudge(args: NudgeArgs, caller: Caller): Promise<Record<string, unknown>> {
    const why = nudgeRefusal(await this.#fold.refresh(), args.to);
    if (why) {
      throw new OstkError(
        why.startsWith("unknown") ? "not_found" : "conflict",
        `nudge: ${why}`,
        {},
        "see 'ostk ps' and 'ostk alias'",
      );
    }
    const bytes = await appendNudge(this.paths.dir, args.to, {
      from: caller.alias,
      text: args.text,
      ts: new Date(this.#now()).toISOString(),
    });
    await this.#log.append({
      event: "nudge.send",
      actor: caller.alias,
      fields: {
        ...(caller.callId ? { call_id: caller.callId } : {}),
        to: args.to,
        from: caller.alias,
        bytes,
      },
    });
    return { to: args.to, queued: true, bytes };
  }

  /** Take the caller's pending nudges for this response's digest; the delivery is audited. */
  async #deliverNudges(alias: string) {
    const nudges = await takeNudges(this.paths.dir, alias);
    if (nudges.length === 0) return undefined;
    await this.#log.append({
      event: "nudge.deliver",
      actor: "kernel",
      fields: { to: alias, count: nudges.length },
    });
    return nudges;
  }

  /** Resolve inside the root and apply pin caps; a denial is audited as `policy.deny`. */
  async #admit(tool: ToolName, path: string, caller: Caller, writing: boolean) {
    const policy = await loadPolicy(this.paths.dir, this.#options.pin);
    // Resolve with .ostk/ allowed so that a refusal there comes from the pin rule, which names
    // its file and line, rather than from the resolver.
    const resolved = await resolveProjectPath(this.paths.root, path, { allowKernel: true });
    if (resolved.rel === ".") {
      throw new OstkError("bad_input", `${path} is the project root, not a file`);
    }
    try {
      if (Deno.statSync(resolved.abs).isDirectory) {
        throw new OstkError("bad_input", `${resolved.rel} is a directory, not a file`, {
          file: resolved.rel,
        });
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (writing || isKernelPath(resolved.rel)) {
      await this.#enforce(tool, resolved.rel, policy, caller);
    }
    return resolved;
  }

  async #enforce(tool: ToolName, rel: string, policy: Policy, caller: Caller): Promise<void> {
    const decision = checkWrite(policy, rel);
    if (decision.allowed) return;
    const source = `${decision.source.file}:${decision.source.line}`;
    await this.#log.append({
      event: "policy.deny",
      actor: caller.alias,
      fields: {
        ...(caller.callId ? { call_id: caller.callId } : {}),
        tool,
        path: rel,
        rule: decision.rule,
        source,
      },
    });
    throw new OstkError(
      "permission",
      `${tool} ${rel}: denied by '${decision.rule}': ${decision.reason}`,
      decision.source,
      undefined,
      { rule: decision.rule, source },
    );
  }

  async #auditBypass(
    rel: string,
    row: { gen: number; hash: string },
    prevGen: number,
    caller: Caller,
  ): Promise<Record<string, number>> {
    await this.#log.append({
      event: "bypass.detected",
      actor: "kernel",
      fields: { path: rel, gen: row.gen, prev_gen: prevGen, hash: row.hash, seen_by: caller.alias },
    });
    return { gen: row.gen, prev_gen: prevGen };
  }

  async #shell(args: ShellArgs, caller: Caller): Promise<Record<string, unknown>> {
    const policy = await loadPolicy(this.paths.dir, this.#options.pin);
    let result;
    try {
      result = await runShell(args, {
        root: this.paths.root,
        policy,
        sandbox: this.#options.sandboxFor?.(caller),
        approveDanger: this.#options.approveDanger
          ? (request) => this.#options.approveDanger!(caller, request)
          : undefined,
      });
    } catch (err) {
      if (err instanceof OstkError && err.code === "permission") {
        await this.#log.append({
          event: "policy.deny",
          actor: caller.alias,
          fields: {
            ...(caller.callId ? { call_id: caller.callId } : {}),
            tool: "shell",
            cmd: args.cmd,
            rule: String(err.details?.rule ?? err.details?.pattern ?? "dangerous"),
            ...(err.details?.source ? { source: err.details.source } : {}),
          },
        });
      }
      throw err;
    }
    await this.#log.append({
      event: "tool.shell",
      actor: caller.alias,
      fields: { ...(caller.callId ? { call_id: caller.callId } : {}), ...auditFieldsFor(result) },
    });
    return {
      exit_code: result.exit_code,
      kind: result.kind,
      output: result.output,
      duration_ms: result.duration_ms,
      timed_out: result.timed_out,
      bytes_before: result.bytes_before,
      bytes_after: result.bytes_after,
    };
  }

  async #read(args: FileReadArgs, caller: Caller): Promise<Record<string, unknown>> {
    const { rel, abs } = await this.#admit("file:read", args.path, caller, false);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(abs);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new OstkError("not_found", `${rel}: no such file`, { file: rel });
      }
      if (err instanceof Deno.errors.IsADirectory) {
        throw new OstkError("bad_input", `${rel} is a directory`, { file: rel });
      }
      throw err;
    }
    let row = await this.#table.read(rel);
    let hash = await contentHash(bytes);
    let bypass: Record<string, number> | undefined;
    if (row && row.hash !== hash) {
      // The lock-free look says the file changed around the kernel (or a write is landing);
      // decide under the lock, and take the bytes the adoption saw.
      const adoption = await this.#table.adopt(rel, abs);
      if (adoption.adopted && adoption.row) {
        bypass = await this.#auditBypass(rel, adoption.row, adoption.view.row?.gen ?? 0, caller);
      }
      if (!adoption.view.disk) throw new OstkError("not_found", `${rel}: no such file`);
      bytes = adoption.view.disk;
      hash = adoption.view.diskHash!;
      row = adoption.row ?? adoption.view.row;
    }
    // A row that disagrees with the bytes read means a write raced this read; report the
    // bytes as untracked rather than pair them with the wrong gen.
    const gen = row && row.hash === hash ? row.gen : 0;
    const ranged = args.offset !== undefined || args.limit !== undefined;
    const last = await this.#lastRead(caller.alias, rel);
    const unchanged = last !== undefined && last.gen === gen && last.hash === hash;
    const base = { path: rel, gen, ...(bypass ? { bypass } : {}) };
    if (unchanged && !ranged && !args.force) {
      await this.#noteRead(caller, rel, gen, hash, bytes.length, true, false);
      return { ...base, elided: true, text: `[304] ${rel} gen=${gen} (current)` };
    }
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      // Not text: hand back bytes a caller can still carry; edits to it are refused.
      await this.#noteRead(caller, rel, gen, hash, bytes.length, false, ranged);
      return { ...base, encoding: "base64", content: encodeBase64(bytes), bytes: bytes.length };
    }
    let content = text;
    if (ranged) {
      const lines = text.split("\n");
      const from = args.offset ?? 0;
      content = lines.slice(from, args.limit !== undefined ? from + args.limit : undefined)
        .join("\n");
    }
    await this.#noteRead(caller, rel, gen, hash, bytes.length, false, ranged);
    return { ...base, content, bytes: bytes.length };
  }

  async #lastRead(alias: string, rel: string) {
    const mine = this.#reads.get(alias)?.get(rel);
    if (mine) return mine;
    const seen = (await this.#fold.refresh()).reads.get(alias)?.get(rel);
    return seen ? { gen: seen.gen, hash: seen.hash ?? "" } : undefined;
  }

  async #noteRead(
    caller: Caller,
    rel: string,
    gen: number,
    hash: string,
    bytes: number,
    elided: boolean,
    ranged: boolean,
  ): Promise<void> {
    if (!ranged) {
      let seen = this.#reads.get(caller.alias);
      if (!seen) this.#reads.set(caller.alias, seen = new Map());
      seen.set(rel, { gen, hash });
    }
    if (!this.#auditReads) return;
    await this.#log.append({
      event: "tool.file_read",
      actor: caller.alias,
      fields: {
        ...(caller.callId ? { call_id: caller.callId } : {}),
        path: rel,
        gen,
        hash,
        bytes,
        elided,
        ...(ranged ? { ranged: true } : {}),
      },
    });
  }

  async #edit(args: FileEditArgs, caller: Caller): Promise<Record<string, unknown>> {
    this.#checkSize(args.new);
    const { rel, abs } = await this.#admit("file:edit", args.path, caller, true);
    return await this.#commit(
      "file:edit",
      rel,
      abs,
      caller,
      args.expected_gen,
      (current) => {
        const count = countMatches(current, args.old);
        if (count === 0) {
          throw new OstkError(
            "conflict",
            `${rel}: 'old' text not found`,
            { file: rel },
            "re-read the file; it may have changed",
          );
        }
        if (count > 1 && !args.replace_all) {
          throw new OstkError(
            "bad_input",
            `${rel}: 'old' text matches ${count} times`,
            { file: rel },
            "add surrounding lines to make it unique, or pass replace_all: true",
          );
        }
        return replaceText(current, args.old, args.new, args.replace_all ?? false);
      },
      (base) => {
        if (countMatches(base, args.old) !== 1 && !args.replace_all) return undefined;
        return replaceText(base, args.old, args.new, args.replace_all ?? false);
      },
    );
  }

  async #write(
    tool: "file:write" | "file:create",
    args: FileWriteArgs | FileCreateArgs,
    caller: Caller,
    mode: "replace" | "create",
  ): Promise<Record<string, unknown>> {
    this.#checkSize(args.content);
    const { rel, abs } = await this.#admit(tool, args.path, caller, true);
    const expected = "expected_gen" in args ? args.expected_gen : undefined;
    return await this.#commit(
      tool,
      rel,
      abs,
      caller,
      expected,
      (_current, exists) => {
        if (mode === "create" && exists) {
          throw new OstkError(
            "conflict",
            `${rel} already exists`,
            { file: rel },
            "use file:write to replace it, or file:edit to change it",
          );
        }
        return args.content;
      },
      () => args.content,
    );
  }

  #checkSize(text: string): void {
    // UTF-8 is at most 3 bytes per UTF-16 unit; only encode when the cheap bound is exceeded.
    if (text.length * 3 <= this.#maxWrite) return;
    const size = encoder.encode(text).length;
    if (size > this.#maxWrite) {
      throw new OstkError(
        "bad_input",
        `write of ${size} bytes exceeds the ${this.#maxWrite}-byte cap`,
        {},
        "split the change, or raise maxWriteBytes",
      );
    }
  }

  /**
   * The CAS under the gen-table lock. `apply` turns the current text into the new one; when the
   * caller's expected gen is stale, `applyToBase` replays the edit on the shadow of the gen the
   * caller read and Hot PR decides whether both changes can stand.
   */
  async #commit(
    tool: ToolName,
    rel: string,
    abs: string,
    caller: Caller,
    expectedGen: number | undefined,
    apply: (current: string, exists: boolean) => string,
    applyToBase: (base: string) => string | undefined,
  ): Promise<Record<string, unknown>> {
    let outcome: { merged?: string; words?: string; unchanged?: boolean } = {};
    let conflict: OstkError | undefined;
    let adopted: { row: { gen: number; hash: string }; prevGen: number } | undefined;
    let bypass: Record<string, number> | undefined;
    const { row, prev } = await this.#table.transact(rel, abs, async (view) => {
      const gen = view.row?.gen ?? 0;
      const exists = view.disk !== undefined;
      if (!exists && tool === "file:edit") {
        throw new OstkError("not_found", `${rel}: no such file`, { file: rel }, "use file:create");
      }
      // Decoded only when the call needs the text (an edit, a merge, an unchanged check), so
      // file:write can still replace a file that is not UTF-8.
      let decoded: string | undefined;
      const text = (): string => {
        if (decoded !== undefined) return decoded;
        if (!view.disk) return decoded = "";
        const value = safeDecode(view.disk);
        if (value === undefined) {
          throw new OstkError(
            "bad_input",
            `${rel} is not UTF-8 text; the kernel edits text only`,
            { file: rel },
            "replace it whole with file:write",
          );
        }
        return decoded = value;
      };
      let next: string;
      if (expectedGen !== undefined && expectedGen !== gen) {
        const shadow = await readShadow(this.paths.dir, rel, expectedGen);
        const base = shadow ? safeDecode(shadow) : undefined;
        const mine = base !== undefined ? applyToBase(base) : undefined;
        if (base === undefined || mine === undefined) {
          conflict = staleError(tool, rel, expectedGen, gen, 3, {
            reason: base === undefined
              ? `no shadow of gen ${expectedGen} is kept`
              : `'old' does not match once in gen ${expectedGen}`,
          });
          throw conflict;
        }
        const merge = hotPr({ base, current: text(), mine, path: rel });
        if (merge.tier === 2) {
          conflict = staleError(tool, rel, expectedGen, gen, 2, {
            suggestion: merge.suggestion,
            reason: merge.reason,
          });
          throw conflict;
        }
        if (merge.tier === 3) {
          conflict = staleError(tool, rel, expectedGen, gen, 3, {
            diff: merge.diff,
            reason: merge.reason,
          });
          throw conflict;
        }
        next = merge.text;
        outcome = { merged: merge.kind, words: tierOneWords(merge) };
      } else {
        next = apply(tool === "file:edit" ? text() : "", exists);
      }
      const bytes = encoder.encode(next);
      if (bytes.length > this.#maxWrite) {
        // Checked on the result: replace_all can multiply a small `new` past the cap.
        throw new OstkError(
          "bad_input",
          `${rel}: the result would be ${bytes.length} bytes, over the ${this.#maxWrite}-byte cap`,
          { file: rel },
        );
      }
      if (exists && view.disk && sameBytes(view.disk, bytes)) {
        outcome.unchanged = true;
        return { result: undefined };
      }
      return { write: { bytes, writer: caller.alias, callId: caller.callId }, result: undefined };
    }, { adoptBypass: true, onAdopt: (a) => (adopted = a) }).catch(async (err) => {
      if (adopted) await this.#auditBypass(rel, adopted.row, adopted.prevGen, caller);
      // Every lost compare-and-swap is logged, not only stale gens, so load figures are true.
      if (err instanceof OstkError && err.code === "conflict") {
        await this.#log.append({
          event: "tool.conflict",
          actor: caller.alias,
          fields: {
            ...(caller.callId ? { call_id: caller.callId } : {}),
            tool,
            path: rel,
            ...pick(err.details, ["expected_gen", "gen", "tier"]),
          },
        });
      }
      throw err;
    });
    if (adopted) bypass = await this.#auditBypass(rel, adopted.row, adopted.prevGen, caller);
    const extra = {
      ...(bypass ? { bypass } : {}),
      // `merged` is the kind, for programs (and the audit row); `merge_note` is for people.
      ...(outcome.merged ? { merged: outcome.merged, merge_note: outcome.words } : {}),
    };
    if (!row) return { path: rel, gen: prev?.gen ?? 0, unchanged: true, ...extra };
    await this.#log.append({
      event: tool === "file:edit"
        ? "tool.file_edit"
        : tool === "file:write"
        ? "tool.file_write"
        : "tool.file_create",
      actor: caller.alias,
      fields: {
        ...(caller.callId ? { call_id: caller.callId } : {}),
        path: rel,
        gen: row.gen,
        prev_gen: prev?.gen ?? 0,
        hash: row.hash,
        ...(outcome.merged ? { merged: outcome.merged } : {}),
      },
    });
    this.#reads.get(caller.alias)?.set(rel, { gen: row.gen, hash: row.hash });
    return { path: rel, gen: row.gen, prev_gen: prev?.gen ?? 0, ...extra };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
