/** How CLI commands reach a running daemon (or learn that none is running). */
import { DaemonClient } from "../actors/client.ts";
import { findSocketPath } from "../actors/socket_path.ts";
import { OstkError } from "../kernel/errors.ts";
import type { OstkPaths } from "../kernel/layout.ts";

/** Connect to the project's daemon, or undefined when none answers. */
export async function tryConnect(paths: OstkPaths): Promise<DaemonClient | undefined> {
  try {
    return await DaemonClient.connect(findSocketPath(paths));
  } catch (err) {
    if (err instanceof OstkError && err.code === "not_found") return undefined;
    throw err;
  }
}

/** Connect or fail with a message that says how to start one. */
export async function connectOrFail(paths: OstkPaths): Promise<DaemonClient> {
  const client = await tryConnect(paths);
  if (!client) {
    throw new OstkError(
      "not_found",
      `no daemon is running for ${paths.root}`,
      {},
      "start one with 'ostk listen --background'",
    );
  }
  return client;
}
