/**
 * The anchor: one daemon per project, held as an flock on `.ostk/anchor.lock`. The holder's pid
 * and start time are written into the file so a refused second daemon can say who holds it.
 */
import { OstkError } from "../kernel/errors.ts";
import type { OstkPaths } from "../kernel/layout.ts";

/** How long to wait for the lock before concluding another daemon holds it. */
const LOCK_PROBE_MS = 300;

/** A held anchor; close() releases it. */
export interface Anchor {
  id: string;
  close(): void;
}

/** What the anchor file says about its holder. */
export function readAnchorInfo(
  paths: OstkPaths,
): { pid: number; id: string; since: string } | undefined {
  try {
    const info = JSON.parse(Deno.readTextFileSync(paths.anchorLock));
    return typeof info?.pid === "number" ? info : undefined;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/**
 * Take the anchor or throw `conflict` naming the pid that holds it. Deno has no non-blocking
 * flock, so a lock that is not granted within a short probe means someone else holds it; this
 * process then exits, which abandons the queued lock request with it.
 */
export async function acquireAnchor(paths: OstkPaths): Promise<Anchor> {
  const file = Deno.openSync(paths.anchorLock, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const granted = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), LOCK_PROBE_MS))),
  ]);
  clearTimeout(timer);
  if (!granted) {
    const holder = readAnchorInfo(paths);
    throw new OstkError(
      "conflict",
      `already running (pid ${holder?.pid ?? "unknown"})`,
      { file: paths.anchorLock },
      "use 'ostk status', or 'ostk stop' first",
    );
  }
  const id = crypto.randomUUID();
  const info = JSON.stringify({ pid: Deno.pid, id, since: new Date().toISOString() }) + "\n";
  file.truncateSync(0);
  file.writeSync(new TextEncoder().encode(info));
  let open = true;
  return {
    id,
    close() {
      if (!open) return;
      open = false;
      try {
        file.truncateSync(0);
      } finally {
        file.close();
      }
    },
  };
}
