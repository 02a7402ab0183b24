/**
 * Where a driver's documents live: load and save bytes for a path. `memoryStorage` for tests,
 * `kernelStorage` to read and write through the ostk kernel (gen-checked, audited), and
 * `fileStorage` for a plain directory outside any project.
 */
import { atomicWrite } from "../../kernel/atomic_write.ts";
import { decodeBase64 } from "../../kernel/base64.ts";
import type { ToolResponse } from "../../kernel/tools.ts";
import { FcpError } from "./errors.ts";

/** Load and save the bytes of a document by path. */
export interface FcpStorage {
  /** The bytes at `path`; throws a `not_found` {@linkcode FcpError} when there are none. */
  load(path: string): Promise<Uint8Array>;
  /** Replace the bytes at `path`; may return a short note for the `!` line (e.g. `gen 4`). */
  save(path: string, bytes: Uint8Array): Promise<string | void>;
}

/** An in-memory storage; `files` is open for tests to seed and inspect. */
export interface MemoryStorage extends FcpStorage {
  files: Map<string, Uint8Array>;
  /** The file's text, or `undefined` if absent. */
  text(path: string): string | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryStorage } from "./storage.ts";
 * const store = memoryStorage({ "a.json": "{}" });
 * await store.save("b.json", new TextEncoder().encode("[]"));
 * assert.equal(store.text("b.json"), "[]");
 * ```
 */
export function memoryStorage(seed: Record<string, string | Uint8Array> = {}): MemoryStorage {
  const files = new Map<string, Uint8Array>();
  for (const [path, content] of Object.entries(seed)) {
    files.set(path, typeof content === "string" ? encoder.encode(content) : content);
  }
  return {
    files,
    text: (path) => {
      const bytes = files.get(path);
      return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
    },
    load: (path) => {
      const bytes = files.get(path);
      if (bytes === undefined) return Promise.reject(missing(path));
      return Promise.resolve(bytes.slice());
    },
    save: (path, bytes) => {
      files.set(path, bytes.slice());
      return Promise.resolve();
    },
  };
}

function missing(path: string): FcpError {
  return new FcpError("not_found", `${path}: no such file`, {
    hint: "check the path, or start with new and save as:<path>",
  });
}

/** A kernel tool call: `file:read` / `file:write` / `file:create` with their JSON args. */
export type KernelCall = (
  tool: string,
  args: Record<string, unknown>,
) => Promise<ToolResponse> | ToolResponse;

/**
 * Storage through the ostk kernel. Loads with `file:read` and remembers the generation it saw;
 * saves with `file:write` carrying that `expected_gen`, so a concurrent edit is merged by Hot PR
 * or refused as a conflict rather than overwritten. A path never loaded is saved with
 * `file:create`, which refuses to replace an existing file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadOrCreateOperatorKey } from "../../kernel/identity.ts";
 * import { initProject } from "../../kernel/project_init.ts";
 * import { Kernel } from "../../kernel/tools.ts";
 * import { kernelStorage } from "./storage.ts";
 * const dir = await Deno.makeTempDir();
 * const key = await loadOrCreateOperatorKey(`${dir}/key/identity.key`);
 * const { paths } = await initProject(dir, key);
 * await Deno.writeTextFile(`${dir}/a.json`, "{}\n");
 * await Deno.writeTextFile(`${dir}/b.json`, "[]\n");
 * const kernel = new Kernel(paths, { signer: key.signer });
 * const storage = kernelStorage({
 *   call: (tool, args) => kernel.call(tool, args, { alias: "fcp-jsonc" }),
 * });
 * const bytes = await storage.load("a.json");
 * assert.match(String(await storage.save("a.json", bytes)), /^gen \d+/);
 * // b.json was never loaded, so saving it would replace what it holds unseen: refused.
 * await assert.rejects(storage.save("b.json", bytes), { code: "storage" });
 * assert.equal(await Deno.readTextFile(`${dir}/b.json`), "[]\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function kernelStorage(options: { call: KernelCall }): FcpStorage {
  const gens = new Map<string, number>();
  const refused = (path: string, res: Extract<ToolResponse, { ok: false }>) =>
    new FcpError(
      res.error.code === "not_found" ? "not_found" : "storage",
      `${path}: ${res.tool} refused: ${res.error.message}`,
      { hint: res.error.hint ?? (res.error.code === "conflict" ? "re-open and redo" : undefined) },
    );
  return {
    async load(path) {
      const res = await options.call("file:read", { path, force: true });
      if (!res.ok) throw refused(path, res);
      const { content, encoding, gen } = res.result;
      if (typeof gen === "number") gens.set(path, gen);
      if (typeof content !== "string") throw new FcpError("storage", `${path}: no content`);
      return encoding === "base64" ? decodeBase64(content) : encoder.encode(content);
    },
    async save(path, bytes) {
      let content: string;
      try {
        content = decoder.decode(bytes);
      } catch {
        throw new FcpError("storage", `${path}: the kernel writes UTF-8 text only`);
      }
      const gen = gens.get(path);
      const res = gen === undefined
        ? await options.call("file:create", { path, content })
        : await options.call("file:write", { path, content, expected_gen: gen });
      if (!res.ok) throw refused(path, res);
      if (typeof res.result.gen === "number") gens.set(path, res.result.gen);
      const merged = res.result.merged ? `, merged with a concurrent edit (re-open to see it)` : "";
      return `gen ${res.result.gen}${merged}`;
    },
  };
}

/**
 * Plain files under `root` (no kernel: for use outside an ostk project). Paths are relative to
 * `root` and may not climb out of it; writes are atomic.
 */
export function fileStorage(root: string): FcpStorage {
  const resolve = (path: string): string => {
    const parts: string[] = [];
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === ".." && parts.pop() !== undefined) continue;
      if (part === "..") throw new FcpError("storage", `${path}: outside ${root}`);
      parts.push(part);
    }
    if (path.startsWith("/") || parts.length === 0) {
      throw new FcpError("storage", `${path}: give a path relative to ${root}`);
    }
    return `${root}/${parts.join("/")}`;
  };
  return {
    async load(path) {
      try {
        return await Deno.readFile(resolve(path));
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) throw missing(path);
        throw err;
      }
    },
    async save(path, bytes) {
      await atomicWrite(resolve(path), bytes);
    },
  };
}
