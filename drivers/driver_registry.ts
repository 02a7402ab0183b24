/**
 * Declared drivers: HUMANFILE's `DRIVER <name> [command…]` and `mcp: <name> <command…>` lines,
 * and what is known of each at run time (`.ostk/drivers/<name>.json`, written by `driver call`
 * and `driver serve`; `.ostk/drivers/<name>.sock` while one is served).
 */
import { atomicWrite } from "../kernel/atomic_write.ts";
import { OstkError } from "../kernel/errors.ts";
import { toHex } from "../kernel/hash.ts";
import { parseHumanfile } from "../kernel/humanfile.ts";
import type { OstkPaths } from "../kernel/layout.ts";

/** One declared driver. */
export interface DriverEntry {
  name: string;
  /** `mcp` for `mcp:` lines; `driver` for `DRIVER` lines (an empty command is a built-in). */
  kind: "mcp" | "driver";
  /** Program and arguments, without leading `NAME=value` words. */
  command: string[];
  /** `NAME=value` words written before the program. */
  env: Record<string, string>;
  /** HUMANFILE line, for messages. */
  line: number;
}

/** What the last `driver call` / `driver serve` recorded. */
export interface DriverStatus {
  state: "running" | "failed" | "ok" | "stopped";
  tools?: number;
  pid?: number;
  error?: string;
  at: string;
}

/** The state `driver list` shows. */
export type DriverState = "declared" | "running" | "failed";

const ENV_WORD = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

/** Every driver HUMANFILE declares, in file order. A name declared twice: the last line wins. */
export async function loadDrivers(paths: OstkPaths): Promise<DriverEntry[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(paths.humanfile);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const human = parseHumanfile(text);
  const byName = new Map<string, DriverEntry>();
  const add = (
    kind: DriverEntry["kind"],
    decl: { name: string; command: string[]; line: number },
  ) => {
    const env: Record<string, string> = {};
    let i = 0;
    for (; i < decl.command.length; i++) {
      const m = ENV_WORD.exec(decl.command[i]);
      if (!m) break;
      env[m[1]] = m[2];
    }
    byName.delete(decl.name);
    byName.set(decl.name, {
      name: decl.name,
      kind,
      command: decl.command.slice(i),
      env,
      line: decl.line,
    });
  };
  for (const d of human.drivers) add("driver", d);
  for (const d of human.mcp) add("mcp", d);
  return [...byName.values()].sort((a, b) => a.line - b.line);
}

/** The driver called `name`, or a not_found error that lists the declared ones. */
export async function findDriver(paths: OstkPaths, name: string): Promise<DriverEntry> {
  const all = await loadDrivers(paths);
  const entry = all.find((d) => d.name === name);
  if (!entry) {
    throw new OstkError(
      "not_found",
      `no driver '${name}' in ${paths.humanfile}`,
      { file: paths.humanfile },
      all.length
        ? `declared: ${all.map((d) => d.name).join(", ")}`
        : "declare one: 'mcp: <name> <command …>' in HUMANFILE",
    );
  }
  if (entry.command.length === 0) {
    throw new OstkError(
      "not_found",
      `driver '${name}' has no command (a built-in FCP driver; none is built in yet)`,
      { file: paths.humanfile, line: entry.line },
      "give it a command: 'DRIVER <name> <command …>' or 'mcp: <name> <command …>'",
    );
  }
  return entry;
}

/** Directory for driver sockets and status files. */
export function driversDir(paths: OstkPaths): string {
  return `${paths.dir}/drivers`;
}

const MAX_SUN_PATH = 107;

/**
 * The Unix socket `driver serve <name>` listens on: `.ostk/drivers/<name>.sock`, or a short
 * path under the runtime dir when that is longer than `sun_path` allows (keyed by its hash, so
 * `serve` and `call` agree without a record file).
 */
export async function driverSocketPath(paths: OstkPaths, name: string): Promise<string> {
  const preferred = `${driversDir(paths)}/${name}.sock`;
  if (new TextEncoder().encode(preferred).length <= MAX_SUN_PATH) return preferred;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(preferred));
  const runtime = Deno.env.get("XDG_RUNTIME_DIR") ?? `/tmp/ostk-${Deno.uid() ?? "user"}`;
  await Deno.mkdir(runtime, { recursive: true, mode: 0o700 });
  return `${runtime}/ostk-driver-${toHex(new Uint8Array(digest)).slice(0, 16)}.sock`;
}

function statusPath(paths: OstkPaths, name: string): string {
  return `${driversDir(paths)}/${name}.json`;
}

/** The recorded status of `name`, or undefined when nothing was recorded. */
export async function readDriverStatus(
  paths: OstkPaths,
  name: string,
): Promise<DriverStatus | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(statusPath(paths, name))) as DriverStatus;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** Record `name`'s status (atomically; readers never see half a file). */
export async function writeDriverStatus(
  paths: OstkPaths,
  name: string,
  status: Omit<DriverStatus, "at">,
): Promise<void> {
  await Deno.mkdir(driversDir(paths), { recursive: true });
  const previous = await readDriverStatus(paths, name);
  const merged = { tools: previous?.tools, ...status, at: new Date().toISOString() };
  await atomicWrite(statusPath(paths, name), JSON.stringify(merged) + "\n", { durable: false });
}

/** True when something accepts connections on `socket`. */
export async function socketAnswers(socket: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path: socket })).close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.ConnectionRefused) {
      return false;
    }
    throw err;
  }
}

/** One row of `driver list`. */
export interface DriverListRow {
  name: string;
  kind: DriverEntry["kind"];
  command: string;
  state: DriverState;
  tools: number | null;
  line: number;
}

/** Every declared driver with its state: running (its socket answers), failed, or declared. */
export async function listDrivers(paths: OstkPaths): Promise<DriverListRow[]> {
  const rows: DriverListRow[] = [];
  for (const d of await loadDrivers(paths)) {
    const status = await readDriverStatus(paths, d.name);
    const running = await socketAnswers(await driverSocketPath(paths, d.name));
    rows.push({
      name: d.name,
      kind: d.kind,
      command: d.command.length ? d.command.join(" ") : "(built-in)",
      state: running ? "running" : status?.state === "failed" ? "failed" : "declared",
      tools: status?.tools ?? null,
      line: d.line,
    });
  }
  return rows;
}
