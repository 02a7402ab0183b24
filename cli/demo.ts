/**
 * `ostk demo`: the whole system on a throwaway git project. Two scripted agents edit one file at
 * once through the daemon (Hot PR merges their edits), the daemon is SIGKILLed halfway, started
 * again, revives both sessions from the log and their drain snapshots, and they finish. Every
 * step is checked; the exit code is 0 only if all of them held.
 */
import type { DaemonClient } from "../actors/client.ts";
import { readAuditRows } from "../kernel/audit.ts";
import { verifyAuditLog } from "../kernel/audit_verify.ts";
import { loadOrCreateOperatorKey, readIdentityPub } from "../kernel/identity.ts";
import { ostkPaths } from "../kernel/layout.ts";
import { initProject } from "../kernel/project_init.ts";
import { processAlive } from "../kernel/proc.ts";
import { startInBackground } from "./background.ts";
import { type Command, EXIT, helpText, out, parseFlags } from "./command.ts";
import { connectOrFail } from "./daemon_client.ts";
import type { PsRow } from "./sessions.ts";

const FIXTURES = new URL("../fixtures/agents/", import.meta.url);
const AGENTS = ["editor_a", "editor_b"];

export const demoCommand: Command = {
  name: "demo",
  summary: "Two agents edit one file through the daemon; SIGKILL it midway; revive; verify.",
  usage: "demo [--keep]",
  help: `Runs in a temp directory with a throwaway operator key (yours is not touched):
git init, ostk init, start the daemon, spawn two script agents that edit shared.txt at once,
SIGKILL the daemon halfway, start it again, watch both sessions revive and finish, verify the
audit chain and the file, and print a summary. Exits 0 only if every check passed.

  --keep   leave the temp directory in place and print its path`,
  async run(ctx) {
    const { values } = parseFlags("demo", ctx.argv, { keep: { type: "boolean" } });
    if (values.help) {
      out(helpText(demoCommand));
      return EXIT.ok;
    }
    const base = await Deno.makeTempDir({ prefix: "ostk-demo-" });
    const root = `${base}/project`;
    Deno.env.set("OSTK_IDENTITY", `${base}/operator/identity.key`);
    const checks: [string, boolean][] = [];
    const check = (what: string, ok: boolean) => {
      checks.push([what, ok]);
      out(`  ${ok ? "ok  " : "FAIL"} ${what}`);
      return ok;
    };
    let daemonPid: number | undefined;
    try {
      out(`demo project: ${root}`);
      await Deno.mkdir(root);
      await Deno.copyFile(new URL("shared.txt", FIXTURES), `${root}/shared.txt`);
      check(
        "git init + first commit",
        await git(root, ["init", "-q"]) && await git(root, ["add", "."]) &&
          await git(root, [
            "-c",
            "user.name=ostk demo",
            "-c",
            "user.email=demo@ostk.invalid",
            "commit",
            "-qm",
            "start",
          ]),
      );
      const original = await Deno.readTextFile(`${root}/shared.txt`);
      const init = await initProject(root, await loadOrCreateOperatorKey());
      check("ostk init", init.created.includes(".ostk/audit.jsonl"));
      const paths = ostkPaths(init.root);

      out("\n$ ostk listen --background");
      daemonPid = (await startInBackground(init.root, { tickMs: 100 })).pid;
      check(`daemon up (pid ${daemonPid})`, true);
      let client = await connectOrFail(paths);
      const aliases: string[] = [];
      for (const agent of AGENTS) {
        const r = await client.request("session/spawn", {
          name: "editor",
          cpu: { kind: "script", script: new URL(`${agent}.jsonl`, FIXTURES).pathname },
        }) as { alias: string };
        aliases.push(r.alias);
        out(
          `$ ostk spawn editor --cpu script --script fixtures/agents/${agent}.jsonl → ${r.alias}`,
        );
      }

      // Halfway: once the agents have done a few turns between them, pull the plug.
      await waitFor(client, (rows) => rows.reduce((n, r) => n + r.turns, 0) >= 8, 30_000);
      const before = await list(client);
      client.close();
      Deno.kill(daemonPid, "SIGKILL");
      while (await processAlive(daemonPid)) await new Promise((r) => setTimeout(r, 10));
      out(
        `\n$ kill -9 ${daemonPid}   (turns so far: ${
          before.map((r) => `${r.alias}=${r.turns}`).join(", ")
        })`,
      );
      check("daemon killed mid-run", before.some((r) => r.state !== "finished"));

      out("\n$ ostk listen --background");
      const restartAt = performance.now();
      daemonPid = (await startInBackground(init.root, { tickMs: 100 })).pid;
      client = await connectOrFail(paths);
      const revived = await list(client);
      const recoveryMs = performance.now() - restartAt;
      check(
        `daemon restarted (pid ${daemonPid}); sessions revived: ${
          revived.map((r) => `${r.alias}@${r.turns}`).join(", ")
        }`,
        aliases.every((a) => revived.some((r) => r.alias === a)),
      );
      const finished = await waitFor(
        client,
        (rows) => rows.every((r) => r.state === "finished"),
        60_000,
      );
      check(
        "both sessions finished",
        finished.every((r) => r.state === "finished" && r.turns === 10),
      );
      await client.request("daemon/stop", {}).catch(() => undefined);
      client.close();
      await waitGone(paths);
      daemonPid = undefined;

      out("\n$ ostk os audit");
      const report = await verifyAuditLog({
        logPath: paths.audit,
        headPath: paths.head,
        publicRaw: await readIdentityPub(paths.identityPub),
      });
      check(
        `audit chain: ${report.ok ? `ok ${report.rows} rows` : report.failure?.reason}`,
        report.ok,
      );
      const text = await Deno.readTextFile(`${root}/shared.txt`);
      const edits = text.split("\n").filter((l) => l.includes("(edited by")).length;
      check(
        `shared.txt holds all 16 edits, each once`,
        edits === 16 && text.split("\n").length === original.split("\n").length,
      );
      const rows = await readAuditRows(paths.audit);
      const merges = rows.filter((r) =>
        r.event === "tool.file_edit" && typeof r.merged === "string"
      ).length;
      const conflicts = rows.filter((r) => r.event === "tool.conflict").length;
      const revivals = rows.filter((r) => r.event === "session.revive").length;
      const turns = finished.reduce((n, r) => n + r.turns, 0);
      check("the log shows Hot PR merges and revivals", merges > 0 && revivals >= 2);

      out("\nsummary");
      out(`  turns      ${turns} (${finished.map((r) => `${r.alias} ${r.turns}`).join(", ")})`);
      out(`  merges     ${merges} Hot PR tier-1 merges of concurrent edits`);
      out(`  conflicts  ${conflicts}`);
      out(`  revived    ${revivals} session(s) after SIGKILL of the daemon`);
      out(`  recovery   ${Math.round(recoveryMs)} ms from restart to sessions back in the table`);
      out(`  audit      ${rows.length} rows, chain verified`);
    } catch (err) {
      check(`demo step threw: ${(err as Error).message}`, false);
    } finally {
      if (daemonPid) killQuietly(daemonPid);
      if (values.keep) out(`\nkept ${root}`);
      else await Deno.remove(base, { recursive: true });
    }
    const failed = checks.filter(([, ok]) => !ok).length;
    out(
      failed === 0
        ? `\ndemo: all ${checks.length} checks passed`
        : `\ndemo: ${failed} check(s) FAILED`,
    );
    return failed === 0 ? EXIT.ok : EXIT.refused;
  },
};

function killQuietly(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) console.error(`demo: ${(err as Error).message}`);
  }
}

async function git(cwd: string, args: string[]): Promise<boolean> {
  const result = await new Deno.Command("git", { args, cwd, stdout: "null", stderr: "null" })
    .output();
  return result.success;
}

async function list(client: DaemonClient): Promise<PsRow[]> {
  return ((await client.request("session/list", {})) as { sessions: PsRow[] }).sessions;
}

/** Poll `ps` until `done` holds (or the deadline passes, returning the last rows). */
async function waitFor(
  client: DaemonClient,
  done: (rows: PsRow[]) => boolean,
  timeoutMs: number,
): Promise<PsRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await list(client);
    if (done(rows) || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function waitGone(paths: ReturnType<typeof ostkPaths>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const c = await connectOrFail(paths);
      c.close();
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
