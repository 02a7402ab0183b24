/**
 * The checks behind `ostk doctor`, one function per concern: each returns what it found and, when
 * that is not ok, the command that fixes it.
 */
import { readAnchorInfo } from "../actors/anchor.ts";
import { findSocketPath } from "../actors/socket_path.ts";
import { errorLine, OstkError } from "../kernel/errors.ts";
import { loadOperatorKey, operatorKeyPath } from "../kernel/identity.ts";
import type { OstkPaths } from "../kernel/layout.ts";
import { projectSigner } from "../kernel/project.ts";
import { landlockSupport } from "../sandbox/mod.ts";
import { tryConnect } from "./daemon_client.ts";
import { type LauncherInfo, lockHash, readLauncherInfo, SOURCE } from "./install.ts";
import { MCP_JSON_PATH } from "./mcp.ts";
import { VERSION } from "./version.ts";
import { whichAll } from "../kernel/which.ts";
import { exists } from "../kernel/exists.ts";

/** One finding: what was checked, how it went, and how to fix it when it did not go well. */
export interface Check {
  check: "path" | "deno" | "landlock" | "key" | "project" | "daemon" | "mcp";
  status: "ok" | "warn" | "fail";
  detail: string;
  fix?: string;
}

const INSTALL = "npx -y deno@2.9.6 task install";
/** A daemon that accepts but does not answer within this is reported as hung. */
const DAEMON_ANSWER_MS = 3_000;

/** This checkout, as the launcher records it. */

/** What an `ostk` file on PATH is: one of our launchers, or something else. */
async function describeOstk(path: string): Promise<LauncherInfo | undefined> {
  const file = await Deno.open(path);
  try {
    // The launcher's info is on its second line; a compiled binary is not read any further.
    const head = new Uint8Array(4096);
    const n = await file.read(head) ?? 0;
    return readLauncherInfo(new TextDecoder().decode(head.subarray(0, n)));
  } finally {
    file.close();
  }
}

async function realSource(): Promise<string> {
  return await Deno.realPath(SOURCE);
}

/** PATH and Deno: is `ostk` found, is it this install, and is what it runs still there. */
export async function checkPathAndDeno(): Promise<Check[]> {
  const found = await whichAll("ostk");
  const running = Deno.execPath();
  const fromSource = /\/deno$/.test(running);
  const npxCache = /\/_npx\//.test(running);
  const denoLine = `deno ${Deno.version.deno} at ${running}`;
  if (found.length === 0) {
    // Started through a launcher that is not on PATH: name the line that puts it there.
    const root = /^(.*)\/lib\/ostk\/deno-[^/]+\/deno$/.exec(running)?.[1];
    const bin = root !== undefined && await exists(`${root}/bin/ostk`) ? `${root}/bin` : "";
    return [
      {
        check: "path",
        status: "fail",
        detail: 'no \'ostk\' on PATH; MCP clients configured with "command": "ostk" cannot start',
        fix: bin
          ? `add this line to ~/.profile (or your shell's rc): export PATH="${bin}:$PATH"`
          : `run '${INSTALL}' in the ostk checkout and add the bin dir it prints to PATH`,
      },
      npxCache
        ? {
          check: "deno",
          status: "warn",
          detail: `${denoLine}, inside the npx cache, which 'npm cache clean' may delete`,
          fix: `run '${INSTALL}': the launcher keeps its own copy`,
        }
        : { check: "deno", status: "ok", detail: denoLine },
    ];
  }
  const [first] = found;
  const info = await describeOstk(first);
  const checks: Check[] = [];
  if (!info) {
    const self = !fromSource && first === await Deno.realPath(running);
    checks.push(
      self ? { check: "path", status: "ok", detail: `${first} (this binary)` } : {
        check: "path",
        status: "warn",
        detail: `${first} is not an ostk launcher nor this ostk (${running})`,
        fix: `remove it or put the bin dir of '${INSTALL}' before it on PATH`,
      },
    );
    checks.push({ check: "deno", status: "ok", detail: denoLine });
    return checks;
  }
  const source = await realSource();
  const others = found.length > 1 ? ` (also on PATH: ${found.slice(1).join(", ")})` : "";
  if (info.source !== source) {
    checks.push({
      check: "path",
      status: "warn",
      detail: `${first} runs another checkout, ${info.source}, not ${source}${others}`,
      fix: `run '${INSTALL}' in ${source} to point it here`,
    });
  } else if (info.lockHash && info.lockHash !== await lockHash(source)) {
    checks.push({
      check: "path",
      status: "warn",
      detail: `${first}: deno.lock changed since the install, so modules it now pins may not ` +
        "be in the launcher's cache (it runs --cached-only)",
      fix: `run '${INSTALL}' again`,
    });
  } else if (info.version !== VERSION) {
    checks.push({
      check: "path",
      status: "warn",
      detail: `${first} was installed for ostk ${info.version}; this checkout is ${VERSION}`,
      fix: `run '${INSTALL}' again`,
    });
  } else {
    checks.push({
      check: "path",
      status: "ok",
      detail: `${first}: launcher for ${info.source} (ostk ${info.version})${others}`,
    });
  }
  if (!(await exists(info.deno))) {
    checks.push({
      check: "deno",
      status: "fail",
      detail: `the launcher's Deno ${info.deno} is missing`,
      fix: `run '${INSTALL}' again`,
    });
  } else if (!(await exists(info.denoDir))) {
    checks.push({
      check: "deno",
      status: "fail",
      detail: `the launcher's module cache ${info.denoDir} is missing`,
      fix: `run '${INSTALL}' again`,
    });
  } else {
    const same = running === info.deno;
    checks.push({
      check: "deno",
      status: "ok",
      detail: same
        ? `deno ${Deno.version.deno} pinned at ${info.deno}`
        : `${denoLine}; the launcher pins ${info.deno}`,
    });
  }
  return checks;
}

/** What this kernel can enforce: Landlock and its ABI, or Seatbelt on macOS. */
export async function checkLandlock(): Promise<Check> {
  if (Deno.build.os === "darwin") {
    return await exists("/usr/bin/sandbox-exec")
      ? { check: "landlock", status: "ok", detail: "macOS: agents are confined by Seatbelt" }
      : {
        check: "landlock",
        status: "fail",
        detail: "macOS without /usr/bin/sandbox-exec: agents cannot be sandboxed here",
        fix: "run agents with --allow-unsandboxed (no isolation)",
      };
  }
  const support = landlockSupport();
  if (!support.supported) {
    return {
      check: "landlock",
      status: "fail",
      detail: `unavailable: ${support.reason}; agents cannot be sandboxed here`,
      fix: "use a Linux kernel ≥ 5.13 with 'landlock' in its lsm= list, or run agents with " +
        "--allow-unsandboxed (no isolation)",
    };
  }
  const yes = (b: boolean) => (b ? "yes" : "no");
  const detail = `ABI ${support.abi}: fs yes, net ${yes(support.net)}, scoped ${
    yes(support.scoped)
  }`;
  return support.net ? { check: "landlock", status: "ok", detail } : {
    check: "landlock",
    status: "warn",
    detail: `${detail}; network is not confined (needs ABI 4, Linux 6.7)`,
    fix: "a newer kernel confines agents' TCP too",
  };
}

function fromError(check: Check["check"], err: unknown): Check {
  if (err instanceof OstkError) {
    return {
      check,
      status: "fail",
      detail: errorLine({ ...err.site, message: err.message }),
      fix: err.hint,
    };
  }
  throw err;
}

/** The operator key: present, private, and the one this project trusts. */
export async function checkKey(paths: OstkPaths | undefined): Promise<Check> {
  let keyPath: string;
  try {
    keyPath = operatorKeyPath();
    const key = await loadOperatorKey(keyPath);
    if (!paths) {
      return {
        check: "key",
        status: "ok",
        detail: `${key.fingerprint} at ${keyPath}, mode 600`,
      };
    }
    await projectSigner(paths, keyPath);
    return {
      check: "key",
      status: "ok",
      detail: `${key.fingerprint} at ${keyPath}, mode 600, matches .ostk/identity.pub`,
    };
  } catch (err) {
    return fromError("key", err);
  }
}

/** The daemon: not running, answering, hung, or gone leaving its socket behind. */
export async function checkDaemon(paths: OstkPaths): Promise<Check> {
  const socket = findSocketPath(paths);
  try {
    await Deno.lstat(socket);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return {
      check: "daemon",
      status: "ok",
      detail: "not running (optional: 'ostk listen --background' starts one)",
    };
  }
  const client = await tryConnect(paths);
  if (!client) {
    return {
      check: "daemon",
      status: "warn",
      detail: `stale socket ${socket}: nothing answers on it (the daemon died without cleaning up)`,
      fix: "'ostk listen --background' takes the anchor and replaces the socket",
    };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const status = await Promise.race([
      client.request("daemon/status", {}) as Promise<{ pid: number; uptime_ms: number }>,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), DAEMON_ANSWER_MS);
      }),
    ]);
    if (!status) {
      const holder = readAnchorInfo(paths);
      return {
        check: "daemon",
        status: "fail",
        detail: `the daemon at ${socket} accepts connections but does not answer within ${
          DAEMON_ANSWER_MS / 1000
        } s`,
        fix: `see .ostk/daemon.log; stop it with 'kill ${holder?.pid ?? "<pid>"}'`,
      };
    }
    return {
      check: "daemon",
      status: "ok",
      detail: `pid ${status.pid}, up ${Math.round(status.uptime_ms / 1000)} s, at ${socket}`,
    };
  } catch (err) {
    return {
      check: "daemon",
      status: "fail",
      detail: `the daemon at ${socket} failed to answer: ${(err as Error).message}`,
      fix: "see .ostk/daemon.log; 'ostk stop', then 'ostk listen --background'",
    };
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

interface McpServer {
  command?: unknown;
  args?: unknown;
}

/** `.mcp.json` in `dir`: is there an ostk server, and does its command start from this PATH. */
export async function checkMcp(dir: string): Promise<Check> {
  const file = `${dir}/.mcp.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return {
      check: "mcp",
      status: "warn",
      detail: `no .mcp.json in ${dir}`,
      fix: `to use ostk from an MCP client, write ${file}: ${MCP_JSON_PATH}`,
    };
  }
  let servers: Record<string, McpServer>;
  try {
    const parsed = JSON.parse(text);
    servers = parsed?.mcpServers ?? {};
    if (typeof servers !== "object" || Array.isArray(servers)) throw new SyntaxError("mcpServers");
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return {
      check: "mcp",
      status: "fail",
      detail: `${file}: not JSON with an "mcpServers" object (${err.message})`,
      fix: `write it as ${MCP_JSON_PATH}`,
    };
  }
  const isOstk = ([name, s]: [string, McpServer]) =>
    name === "ostk" ||
    (typeof s?.command === "string" && /(^|\/)ostk$/.test(s.command));
  const entry = Object.entries(servers).find(isOstk);
  if (!entry) {
    return {
      check: "mcp",
      status: "warn",
      detail: `${file} has no ostk server (servers: ${Object.keys(servers).join(", ") || "none"})`,
      fix: `add "ostk": {"command": "ostk", "args": ["mcp"]} under "mcpServers"`,
    };
  }
  const [name, server] = entry;
  const command = typeof server.command === "string" ? server.command : "";
  const args = Array.isArray(server.args) ? server.args : [];
  if (!command) {
    return {
      check: "mcp",
      status: "fail",
      detail: `${file}: server '${name}' has no "command"`,
      fix: `write it as ${MCP_JSON_PATH}`,
    };
  }
  const [resolved] = await whichAll(command);
  if (!resolved) {
    return {
      check: "mcp",
      status: "fail",
      detail: `${file}: server '${name}' runs '${command}', which is not ${
        command.includes("/") ? "an executable file" : "on PATH"
      }; the client will fail with 'spawn ${command} ENOENT'`,
      fix: `run '${INSTALL}' and put its bin dir on the client's PATH, or give the launcher's ` +
        'absolute path as "command"',
    };
  }
  if (/(^|\/)ostk$/.test(command) && args[0] !== "mcp") {
    return {
      check: "mcp",
      status: "fail",
      detail: `${file}: server '${name}' runs '${command} ${args.join(" ")}', not 'ostk mcp'`,
      fix: `set "args": ["mcp"]`,
    };
  }
  return {
    check: "mcp",
    status: "ok",
    detail: `${file}: server '${name}' runs ${resolved}${
      args.length ? ` ${args.join(" ")}` : ""
    } (as resolved on this PATH; the client's PATH must find it too)`,
  };
}
