/**
 * `ostk sandbox exec`, `ostk sandbox check`, and the internal `ostk _sandbox-exec` helper that
 * restricts itself and execs the target (hidden from the command list by its `_`).
 */
import { OstkError } from "../kernel/errors.ts";
import { whichAll } from "../kernel/which.ts";
import { findRoot } from "../kernel/layout.ts";
import {
  defaultPolicy,
  landlockSupport,
  parseHelperArgs,
  runSandboxExec,
  spawnSandboxed,
  withGrants,
} from "../sandbox/mod.ts";
import { type Command, err, EXIT, helpText, out, outJson, parseFlags } from "./command.ts";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "[::1]", "*"]);

export const sandboxExecCommand: Command = {
  name: "sandbox exec",
  summary: "Run a command under the project's sandbox policy (Landlock / Seatbelt).",
  usage:
    "sandbox exec [--write PATH]… [--read PATH]… [--net HOST:PORT|all]… [--bind PORT]… [--allow-metadata] [--allow-unsandboxed] -- CMD…",
  help: `The default policy: read and execute the system dirs and the project; write each
top-level entry of the project except .ostk/ (new top-level entries cannot be created);
a private TMPDIR removed afterwards; no network. Flags add to it.

  --write PATH          also grant write (and read) on an existing PATH
  --read PATH           also grant read and execute on an existing PATH
  --net HOST:PORT       allow TCP connect to PORT (Landlock filters by port, not host);
                        --net all opens the network
  --bind PORT           allow TCP bind/listen on PORT
  --allow-metadata      allow chmod/chown/utimes/xattrs by path (Landlock cannot scope
                        them, so they are refused everywhere by default; tar, npm and pip
                        need them when unpacking)
  --allow-unsandboxed   run even where the kernel cannot enforce the policy (loud warning)

Exit code: the command's own (128+N if it died of signal N); 1 if the sandbox refused.`,
  async run(ctx) {
    const sep = ctx.argv.indexOf("--");
    const head = sep < 0 ? ctx.argv : ctx.argv.slice(0, sep);
    const { values, positionals } = parseFlags("sandbox exec", head, {
      write: { type: "string", multiple: true },
      read: { type: "string", multiple: true },
      net: { type: "string", multiple: true },
      bind: { type: "string", multiple: true },
      "allow-metadata": { type: "boolean" },
      "allow-unsandboxed": { type: "boolean" },
    }, true);
    if (values.help) {
      out(helpText(sandboxExecCommand));
      return EXIT.ok;
    }
    const cmd = sep < 0 ? positionals : [...positionals, ...ctx.argv.slice(sep + 1)];
    if (cmd.length === 0) throw usage("sandbox exec needs a command after --");
    const root = await findRoot(ctx.cwd);
    const connect: number[] = [];
    let netAll = false;
    for (const spec of values.net ?? []) {
      if (spec === "all") netAll = true;
      else connect.push(parseNet(spec));
    }
    const policy = withGrants(await defaultPolicy(root), {
      read: await Promise.all((values.read ?? []).map((p) => existing(ctx.cwd, p, "--read"))),
      write: await Promise.all((values.write ?? []).map((p) => existing(ctx.cwd, p, "--write"))),
      connect,
      bind: (values.bind ?? []).map((p) => parsePort(p, `--bind ${p}`)),
      netAll,
      allowMetadata: values["allow-metadata"] ?? false,
      allowUnsandboxed: values["allow-unsandboxed"] ?? false,
    });
    const child = spawnSandboxed(policy, cmd, { cwd: ctx.cwd });
    const forward = () => child.kill("SIGTERM");
    Deno.addSignalListener("SIGTERM", forward);
    try {
      return (await child.status).code;
    } finally {
      Deno.removeSignalListener("SIGTERM", forward);
    }
  },
};

export const sandboxCheckCommand: Command = {
  name: "sandbox check",
  summary: "Report what this machine can enforce: Landlock ABI, Seatbelt, bubblewrap.",
  usage: "sandbox check [--json]",
  help: `Exit code 0 when ostk can sandbox agents here (Landlock on Linux, Seatbelt on macOS),
1 when it cannot.

  --json   one JSON object instead of lines`,
  async run(ctx) {
    const { values } = parseFlags("sandbox check", ctx.argv, { json: { type: "boolean" } });
    if (values.help) {
      out(helpText(sandboxCheckCommand));
      return EXIT.ok;
    }
    const landlock = landlockSupport();
    const seatbelt = Deno.build.os === "darwin" && await isFile("/usr/bin/sandbox-exec");
    const bwrap = await which("bwrap");
    const usable = landlock.supported || seatbelt;
    if (values.json) outJson({ os: Deno.build.os, landlock, seatbelt, bwrap, usable });
    else {
      out(
        landlock.supported
          ? `landlock  ABI ${landlock.abi}: fs yes, net ${yes(landlock.net)}, scoped ${
            yes(landlock.scoped)
          }`
          : `landlock  unavailable: ${landlock.reason}`,
      );
      out(`seatbelt  ${seatbelt ? "/usr/bin/sandbox-exec" : "unavailable"}`);
      out(`bwrap     ${bwrap ?? "not installed"} (not used by ostk; for comparison)`);
      if (!usable) err("ostk: no OS sandbox here; agents need --allow-unsandboxed");
    }
    return usable ? EXIT.ok : EXIT.refused;
  },
};

export const sandboxHelperCommand: Command = {
  name: "_sandbox-exec",
  summary: "Internal: restrict this process to a policy, then exec the command.",
  usage: "_sandbox-exec [--tmpdir DIR] <policy-json> -- <command> [args…]",
  help: `Started by 'ostk sandbox exec' and the kernel; not meant to be typed.
On success this process becomes the command. Exit 1: refused (no Landlock and no
allow_unsandboxed); 126: not executable; 127: not found.`,
  run(ctx) {
    if (ctx.argv[0] === "--help" || ctx.argv[0] === "-h") {
      out(helpText(sandboxHelperCommand));
      return Promise.resolve(EXIT.ok);
    }
    return Promise.resolve(runSandboxExec(parseHelperArgs(ctx.argv)));
  },
};

function yes(b: boolean): string {
  return b ? "yes" : "no";
}

function usage(message: string): OstkError {
  return new OstkError("usage", message, {}, "see 'ostk sandbox exec --help'");
}

function parsePort(text: string, what: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw usage(`${what}: expected a port 1-65535, got '${text}'`);
  }
  return port;
}

/** `HOST:PORT` → PORT; warns when HOST is not loopback, since Landlock cannot filter hosts. */
function parseNet(spec: string): number {
  const colon = spec.lastIndexOf(":");
  const host = colon < 0 ? "*" : spec.slice(0, colon);
  const port = parsePort(colon < 0 ? spec : spec.slice(colon + 1), `--net ${spec}`);
  if (!LOOPBACK.has(host)) {
    err(`ostk: warning: --net ${spec}: Landlock allows port ${port} on every host, not ${host}`);
  }
  return port;
}

async function existing(cwd: string, path: string, flag: string): Promise<string> {
  const abs = path.startsWith("/") ? path : `${cwd}/${path}`;
  try {
    return await Deno.realPath(abs);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw usage(`${flag} ${path}: no such file or directory (grant an existing parent)`);
    }
    throw e;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function which(name: string): Promise<string | null> {
  return (await whichAll(name))[0] ?? null;
}
