/**
 * What `session/spawn` checks before it answers: that the CPU it was asked for can start at
 * all. A transcript that is missing or does not parse, an agent program that is not on PATH
 * (or not executable), a model spec no provider takes: each is refused with the reason and
 * the fix, instead of a session that starts, crashes, is revived and crashes again.
 *
 * The check runs in the daemon because the daemon is what starts the CPU: its PATH, its working
 * directory and its view of the files are the ones that count, and every client (the CLI, a
 * socket client, a successor spawned by the daemon itself) goes through it.
 */
import { OstkError } from "../kernel/errors.ts";
import { parseTranscript } from "./cpu_script.ts";
import { parseModelSpec } from "./llm/mod.ts";
import type { CpuSpec } from "./session_schema.ts";

/**
 * Refuse a CPU spec that cannot start; resolves when it can.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateCpu } from "./session_validate.ts";
 * await validateCpu({ kind: "command", command: ["sh", "-c", "true"] });
 * await assert.rejects(validateCpu({ kind: "command", command: ["no-such-program-x"] }));
 * await assert.rejects(validateCpu({ kind: "model", model: "nosuch:model" }), /unknown provider/);
 * ```
 */
export async function validateCpu(cpu: CpuSpec): Promise<void> {
  if (cpu.kind === "script") await validateScript(cpu.script);
  else if (cpu.kind === "command") await findProgram(cpu.command[0], cpu.cwd, cpu.env?.PATH);
  else parseModelSpec(cpu.model);
}

/**
 * A transcript larger than this is refused rather than read: the daemon reads it whole, and a
 * path such as /dev/zero would otherwise never end.
 */
const MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024;

async function validateScript(script: string): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(script);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new OstkError(
        "not_found",
        `script '${script}' does not exist`,
        {},
        "give the path of a transcript (.jsonl, one turn per line, as in fixtures/agents/)",
      );
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new OstkError(
        "permission",
        `script '${script}' cannot be read by the daemon`,
        {},
        "make it readable by the user running 'ostk listen'",
      );
    }
    throw err;
  }
  // Stat the open handle, not the path, so what is checked is what gets read.
  let info: Deno.FileInfo;
  try {
    info = await file.stat();
  } catch (err) {
    file.close();
    throw err;
  }
  if (!info.isFile || info.size > MAX_TRANSCRIPT_BYTES) {
    file.close();
    throw !info.isFile
      ? new OstkError(
        "bad_input",
        `script '${script}' is not a regular file`,
        {},
        "give a transcript file",
      )
      : new OstkError(
        "bad_input",
        `script '${script}' is ${info.size} bytes; a transcript may have ${MAX_TRANSCRIPT_BYTES}`,
        {},
        "split the transcript, or use a command or model CPU",
      );
  }
  // Reading `readable` to its end closes the handle.
  const text = await new Response(file.readable).text();
  parseTranscript(text, script);
}

/**
 * Where `program` would be found when started from `cwd` with `path` (the daemon's PATH when
 * undefined): a name with a slash is a path (relative to `cwd`), any other name is looked up in
 * PATH. Throws `not_found` or `permission` with the fix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findProgram } from "./session_validate.ts";
 * assert.match(await findProgram("sh"), /\/sh$/);
 * ```
 */
export async function findProgram(program: string, cwd?: string, path?: string): Promise<string> {
  if (program.includes("/")) {
    const full = program.startsWith("/") ? program : `${cwd ?? Deno.cwd()}/${program}`;
    const why = await notExecutable(full);
    if (why === undefined) return full;
    throw new OstkError(
      why === "missing" ? "not_found" : "permission",
      `agent program '${program}' ${why === "missing" ? "does not exist" : why}`,
      {},
      why === "missing"
        ? "check the path (a relative one is taken from the session's working directory)"
        : "make it an executable file (chmod +x), or run it through its interpreter",
    );
  }
  const dirs = (path ?? Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const dir of dirs) {
    const full = `${dir}/${program}`;
    if ((await notExecutable(full)) === undefined) return full;
  }
  throw new OstkError(
    "not_found",
    `agent program '${program}' is not on the daemon's PATH`,
    {},
    dirs.length
      ? "give its full path, or install it into one of PATH's directories and restart the daemon"
      : "the daemon runs without PATH; give the program's full path",
  );
}

/** Undefined when `path` is an executable file, else why not. */
async function notExecutable(path: string): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return "missing";
    }
    if (err instanceof Deno.errors.PermissionDenied) return "cannot be reached (permission denied)";
    throw err;
  }
  if (!info.isFile) return "is not a file";
  // Without a mode (Windows) there is nothing to check; the spawn itself will say.
  if (info.mode !== null && (info.mode & 0o111) === 0) return "is not executable";
  return undefined;
}
