/**
 * `ostk doctor` against set-ups that are right and set-ups that are wrong in one way each: no
 * `ostk` on PATH, a launcher whose Deno is gone, a launcher of another checkout, a key readable by
 * others or not the project's, a stale daemon socket, no Landlock, and `.mcp.json` naming a
 * command that does not resolve. Each wrong one must say so, with a fix, and decide the exit code.
 */
import assert from "node:assert/strict";
import { launcherScript, lockHash } from "../../cli/install.ts";
import type { Check } from "../../cli/doctor.ts";
import { VERSION } from "../../cli/version.ts";
import { loadOrCreateOperatorKey } from "../../kernel/identity.ts";
import {
  killDaemonProcess,
  type Project,
  startDaemonProcess,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { type OstkResult, runOstk, withScratch } from "../helpers/run_ostk.ts";

const REPO = await Deno.realPath(
  decodeURIComponent(new URL("../../", import.meta.url).pathname),
);
const SYSTEM_PATH = "/usr/bin:/bin";

interface Report {
  ok: boolean;
  checks: Check[];
}

function parse(r: OstkResult): Report {
  assert.doesNotMatch(r.stderr, /Uncaught|^\s+at /m, r.stderr);
  return JSON.parse(r.stdout) as Report;
}

function checkOf(report: Report, name: Check["check"]): Check {
  const found = report.checks.find((c) => c.check === name);
  assert.ok(found, `no '${name}' check in ${JSON.stringify(report.checks)}`);
  return found;
}

/** A bin dir holding an `ostk` launcher for `source` whose Deno is `deno`. */
async function fakeInstall(
  dir: string,
  opts: { source?: string; deno?: string; version?: string; lockHash?: string } = {},
): Promise<string> {
  const bin = `${dir}/bin`;
  await Deno.mkdir(`${dir}/cache`, { recursive: true });
  await Deno.mkdir(bin, { recursive: true });
  const info = {
    version: opts.version ?? VERSION,
    source: opts.source ?? REPO,
    deno: opts.deno ?? Deno.execPath(),
    denoDir: `${dir}/cache`,
    lockHash: opts.lockHash ?? await lockHash(REPO),
  };
  await Deno.writeTextFile(`${bin}/ostk`, launcherScript(info, []), { mode: 0o755 });
  return bin;
}

/** `ostk doctor --json` in the project, with `PATH` and extra env. */
function doctor(project: Project, path: string, env: Record<string, string> = {}) {
  return runOstk(project.scratch, ["doctor", "--json"], {
    cwd: project.root,
    env: { ...project.env, PATH: path, ...env },
  });
}

async function writeMcpJson(project: Project, command: string, args = ["mcp"]) {
  await Deno.writeTextFile(
    `${project.root}/.mcp.json`,
    JSON.stringify({ mcpServers: { ostk: { command, args } } }),
  );
}

Deno.test("doctor: a complete set-up is all ok and exits 0", async () => {
  await withProject(async (project) => {
    const bin = await fakeInstall(`${project.scratch.dir}/install`);
    await writeMcpJson(project, "ostk");
    const r = await doctor(project, `${bin}:${SYSTEM_PATH}`);
    const report = parse(r);
    assert.equal(r.code, 0, r.stdout);
    assert.equal(report.ok, true);
    for (const name of ["path", "deno", "landlock", "key", "project", "daemon", "mcp"] as const) {
      assert.equal(checkOf(report, name).status, "ok", JSON.stringify(checkOf(report, name)));
    }
    assert.match(checkOf(report, "path").detail, new RegExp(`launcher for ${REPO}`));
    assert.match(checkOf(report, "key").detail, /matches \.ostk\/identity\.pub/);
    assert.match(checkOf(report, "daemon").detail, /not running/);
    assert.match(checkOf(report, "mcp").detail, new RegExp(`runs ${bin}/ostk mcp`));
  });
});

Deno.test("doctor: no ostk on PATH fails path and the .mcp.json that names it", async () => {
  await withProject(async (project) => {
    await writeMcpJson(project, "ostk");
    const r = await doctor(project, SYSTEM_PATH);
    const report = parse(r);
    assert.equal(r.code, 1);
    assert.equal(report.ok, false);
    const path = checkOf(report, "path");
    assert.equal(path.status, "fail");
    assert.match(path.fix ?? "", /task install/);
    const mcp = checkOf(report, "mcp");
    assert.equal(mcp.status, "fail");
    assert.match(mcp.detail, /spawn ostk ENOENT/);
    assert.ok(mcp.fix);
  });
});

Deno.test("doctor: a launcher whose Deno is gone fails; another checkout's or an old lock warns", async () => {
  await withProject(async (project) => {
    const gone = await fakeInstall(`${project.scratch.dir}/gone`, {
      deno: `${project.scratch.dir}/nowhere/deno`,
    });
    const r = await doctor(project, `${gone}:${SYSTEM_PATH}`);
    assert.equal(r.code, 1);
    const deno = checkOf(parse(r), "deno");
    assert.equal(deno.status, "fail");
    assert.match(deno.detail, /nowhere\/deno is missing/);
    assert.match(deno.fix ?? "", /task install/);

    const other = await fakeInstall(`${project.scratch.dir}/other`, { source: "/elsewhere/ostk" });
    const o = await doctor(project, `${other}:${SYSTEM_PATH}`);
    const path = checkOf(parse(o), "path");
    assert.equal(path.status, "warn");
    assert.match(path.detail, /another checkout, \/elsewhere\/ostk/);
    assert.equal(o.code, 0, "a warning alone does not fail");

    const stale = await fakeInstall(`${project.scratch.dir}/stale`, { lockHash: "0".repeat(64) });
    const l = checkOf(parse(await doctor(project, `${stale}:${SYSTEM_PATH}`)), "path");
    assert.equal(l.status, "warn");
    assert.match(l.detail, /deno\.lock changed since the install/);
    assert.match(l.fix ?? "", /task install/);
  });
});

Deno.test("doctor: a key readable by others, or not the project's, fails with the fix", async () => {
  await withProject(async (project) => {
    const bin = await fakeInstall(`${project.scratch.dir}/install`);
    await Deno.chmod(project.keyPath, 0o644);
    const loose = await doctor(project, `${bin}:${SYSTEM_PATH}`);
    assert.equal(loose.code, 1);
    const key = checkOf(parse(loose), "key");
    assert.equal(key.status, "fail");
    assert.match(key.detail, /readable by others \(mode 644\)/);
    assert.equal(key.fix, `run 'chmod 600 ${project.keyPath}'`);
    await Deno.chmod(project.keyPath, 0o600);

    const stranger = `${project.scratch.dir}/stranger.key`;
    await loadOrCreateOperatorKey(stranger);
    const wrong = await doctor(project, `${bin}:${SYSTEM_PATH}`, { OSTK_IDENTITY: stranger });
    assert.equal(wrong.code, 1);
    const mismatch = checkOf(parse(wrong), "key");
    assert.equal(mismatch.status, "fail");
    assert.match(mismatch.detail, /is not this project's key/);
    assert.match(mismatch.fix ?? "", /OSTK_IDENTITY/);
  });
});

Deno.test("doctor: a running daemon is ok; its socket left behind is reported stale", async () => {
  await withProject(async (project) => {
    const bin = await fakeInstall(`${project.scratch.dir}/install`);
    const daemon = await startDaemonProcess(project);
    try {
      const live = checkOf(parse(await doctor(project, `${bin}:${SYSTEM_PATH}`)), "daemon");
      assert.equal(live.status, "ok");
      assert.match(live.detail, new RegExp(`^pid ${daemon.pid}, up `));
      // Killed without warning, the daemon leaves its socket file with nothing listening on it.
      daemon.kill("SIGKILL");
      await daemon.exited;
    } finally {
      await killDaemonProcess(daemon);
    }
    await Deno.lstat(project.paths.socket);
    const stale = checkOf(parse(await doctor(project, `${bin}:${SYSTEM_PATH}`)), "daemon");
    assert.equal(stale.status, "warn");
    assert.match(stale.detail, /^stale socket .*ostk\.sock: nothing answers/);
    assert.match(stale.fix ?? "", /ostk listen --background/);
  });
});

Deno.test("doctor: no Landlock fails with how to get it", async () => {
  await withProject(async (project) => {
    const bin = await fakeInstall(`${project.scratch.dir}/install`);
    const r = await doctor(project, `${bin}:${SYSTEM_PATH}`, {
      OSTK_SANDBOX_FAKE_NO_LANDLOCK: "1",
    });
    assert.equal(r.code, 1);
    const landlock = checkOf(parse(r), "landlock");
    assert.equal(landlock.status, "fail");
    assert.match(landlock.detail, /^unavailable: /);
    assert.match(landlock.fix ?? "", /lsm=/);
  });
});

Deno.test("doctor: .mcp.json that is missing, broken, or without an ostk server", async () => {
  await withProject(async (project) => {
    const bin = await fakeInstall(`${project.scratch.dir}/install`);
    const path = `${bin}:${SYSTEM_PATH}`;
    const missing = checkOf(parse(await doctor(project, path)), "mcp");
    assert.equal(missing.status, "warn");
    assert.match(missing.fix ?? "", /"command": "ostk", "args": \["mcp"\]/);

    await Deno.writeTextFile(`${project.root}/.mcp.json`, "{ not json");
    const broken = await doctor(project, path);
    assert.equal(broken.code, 1);
    assert.equal(checkOf(parse(broken), "mcp").status, "fail");

    await Deno.writeTextFile(
      `${project.root}/.mcp.json`,
      JSON.stringify({ mcpServers: { other: { command: "sh", args: [] } } }),
    );
    const none = checkOf(parse(await doctor(project, path)), "mcp");
    assert.equal(none.status, "warn");
    assert.match(none.detail, /no ostk server \(servers: other\)/);

    await writeMcpJson(project, "ostk", ["serve"]);
    const args = checkOf(parse(await doctor(project, path)), "mcp");
    assert.equal(args.status, "fail");
    assert.equal(args.fix, 'set "args": ["mcp"]');
  });
});

Deno.test("doctor: outside a project it says so and still checks the rest; text form", async () => {
  await withScratch(async (scratch) => {
    const r = await runOstk(scratch, ["doctor"], { env: { PATH: SYSTEM_PATH } });
    assert.equal(r.code, 1, "no key and no ostk on PATH fail");
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^fail {2}path +no 'ostk' on PATH/);
    assert.match(lines[1], /^ {16}fix: /);
    assert.ok(lines.some((l) => /^warn {2}project +not inside an ostk project/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^fail {2}key +.*no operator key/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^ {16}fix: run 'ostk init'/.test(l)), r.stdout);
    assert.match(lines.at(-1)!, /^\d+ failed, \d+ warning\(s\), \d+ ok$/);
    assert.equal(r.stderr, "");
  });
});

Deno.test("doctor: --help, and a stray argument is a usage error", async () => {
  await withScratch(async (scratch) => {
    const help = await runOstk(scratch, ["doctor", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: ostk doctor \[--json\]/);
    const bad = await runOstk(scratch, ["doctor", "--nope"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^ostk: /);
  });
});
