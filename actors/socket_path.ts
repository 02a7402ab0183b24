/**
 * Where a project's socket lives. `sun_path` holds 108 bytes, so a deep project falls back to a
 * short path under the runtime dir; the choice is recorded in `.ostk/ostk.sock.path` so clients
 * find it.
 */
import { toHex } from "../kernel/hash.ts";
import type { OstkPaths } from "../kernel/layout.ts";

const MAX_SUN_PATH = 107;

/** The socket path the daemon should bind for `paths`. */
export async function chooseSocketPath(paths: OstkPaths): Promise<string> {
  if (new TextEncoder().encode(paths.socket).length <= MAX_SUN_PATH) return paths.socket;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(paths.root));
  const runtime = Deno.env.get("XDG_RUNTIME_DIR") ?? `/tmp/ostk-${Deno.uid() ?? "user"}`;
  Deno.mkdirSync(runtime, { recursive: true, mode: 0o700 });
  return `${runtime}/ostk-${toHex(new Uint8Array(digest)).slice(0, 16)}.sock`;
}

/** Record a fallback path (or clear the record when the default is used). */
export function recordSocketPath(paths: OstkPaths, socket: string): void {
  const record = `${paths.socket}.path`;
  if (socket === paths.socket) {
    try {
      Deno.removeSync(record);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  } else Deno.writeTextFileSync(record, socket + "\n", { mode: 0o600 });
}

/** The socket a client should connect to. */
export function findSocketPath(paths: OstkPaths): string {
  try {
    return Deno.readTextFileSync(`${paths.socket}.path`).trim();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return paths.socket;
    throw err;
  }
}
