/** Find a program on PATH the way a shell (or an MCP client spawning it) would. */

/**
 * Every executable file named `name` in the directories of `path`, in PATH order, as real paths
 * (symlinks resolved, duplicates dropped). A name with a `/` is looked up as given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { whichAll } from "./which.ts";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${dir}/tool`, "#!/bin/sh\n", { mode: 0o755 });
 * await Deno.writeTextFile(`${dir}/data`, "not a program\n", { mode: 0o644 });
 * assert.deepEqual(await whichAll("tool", `/nonexistent:${dir}`), [`${dir}/tool`]);
 * assert.deepEqual(await whichAll("data", dir), []);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function whichAll(
  name: string,
  path: string = Deno.env.get("PATH") ?? "",
): Promise<string[]> {
  const candidates = name.includes("/")
    ? [name]
    : path.split(":").filter((d) => d).map((d) => `${d}/${name}`);
  const found: string[] = [];
  for (const candidate of candidates) {
    try {
      const real = await Deno.realPath(candidate);
      const info = await Deno.stat(real);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0 && !found.includes(real)) {
        found.push(real);
      }
    } catch (err) {
      // A PATH entry that is missing, not a directory or unreadable holds no program.
      if (
        !(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory ||
          err instanceof Deno.errors.PermissionDenied)
      ) throw err;
    }
  }
  return found;
}
