/** Start the project's daemon as a detached process and wait until its socket answers. */
import { OstkError } from "../kernel/errors.ts";
import { ostkPaths } from "../kernel/layout.ts";
import { tryConnect } from "./daemon_client.ts";
import { selfArgv } from "./self.ts";

const READY_TIMEOUT_MS = 15_000;

/**
 * Spawn `ostk listen` for `root` in its own session (it outlives this process), its stderr going
 * to `.ostk/daemon.log`, and resolve with its pid once it answers `daemon/status`.
 */
export async function startInBackground(
  root: string,
  options: { tickMs?: number; extraArgs?: string[] } = {},
): Promise<{ pid: number }> {
  const paths = ostkPaths(root);
  const running = await tryConnect(paths);
  // A daemon that is dying may still accept and then drop the connection: that is not running.
  const status = running
    ? await running.request("daemon/status", {}).catch(() => undefined).finally(() =>
      running.close()
    )
    : undefined;
  if (status) {
    throw new OstkError(
      "conflict",
      `already running (pid ${(status as { pid: number }).pid})`,
      {},
      "use 'ostk status', or 'ostk stop' first",
    );
  }
  const [program, ...self] = selfArgv();
  const args = [
    ...self,
    "-C",
    root,
    "listen",
    ...(options.tickMs ? ["--tick-ms", String(options.tickMs)] : []),
    ...(options.extraArgs ?? []),
  ];
  const logPath = `${paths.dir}/daemon.log`;
  // Through sh so the daemon's stderr goes straight to the log file: a pipe to this process
  // would break when it exits, while the daemon lives on.
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$0" "$@" 2>>"$OSTK_DAEMON_LOG"', program, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
    env: { OSTK_CWD: root, OSTK_DAEMON_LOG: logPath },
  }).spawn();
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const client = await tryConnect(paths);
    if (client) {
      try {
        const status = await client.request("daemon/status", {}) as { pid: number };
        child.unref();
        return { pid: status.pid };
      } finally {
        client.close();
      }
    }
    if (exited) {
      const tail = readTail(logPath);
      throw new OstkError("io", `the daemon exited before answering: ${tail}`, { file: logPath });
    }
    if (Date.now() > deadline) {
      throw new OstkError("io", `no answer within ${READY_TIMEOUT_MS / 1000} s`, { file: logPath });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function readTail(path: string): string {
  try {
    return Deno.readTextFileSync(path).trim().split("\n").slice(-2).join(" / ");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "(no log)";
    throw err;
  }
}
