/**
 * Whether a path exists, for the places that only report or choose (doctor, policy defaults);
 * code that then acts on the file should act and handle NotFound instead, so nothing can change
 * between the look and the act.
 */

/**
 * True when `path` exists (a dangling symlink counts as missing); other errors are thrown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exists } from "./exists.ts";
 * const dir = await Deno.makeTempDir();
 * assert.equal(await exists(dir), true);
 * assert.equal(await exists(`${dir}/nothing`), false);
 * await Deno.remove(dir);
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
