/**
 * `.ostk/.gitignore` as git reads it: every runtime file of the `.ostk/` table in DESIGN.md is
 * ignored, and every file a clone needs (the log, its head, the gen table, policy, specs) is not.
 * Paths come from the code's own path helpers where there is one, so a renamed file is checked
 * under its new name.
 */
import assert from "node:assert/strict";
import { handoffPath } from "../../actors/llm/handoff.ts";
import { sidecarPath } from "../../actors/llm/sidecar.ts";
import { tracesDir } from "../../actors/traces.ts";
import { driversDir } from "../../drivers/driver_registry.ts";
import { loadOrCreateOperatorKey } from "../../kernel/identity.ts";
import { nudgePath } from "../../kernel/nudge.ts";
import { initProject } from "../../kernel/project_init.ts";

/** Run git with no user or system config, so a global excludes file cannot hide a file. */
async function git(cwd: string, args: string[]): Promise<{ code: number; stdout: string }> {
  const env = { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" };
  const out = await new Deno.Command("git", { args, cwd, env, stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

Deno.test("init: .ostk/.gitignore keeps runtime files out of git and state in", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk-gitignore-" }));
  const keyDir = await Deno.makeTempDir({ prefix: "ostk-gitignore-key-" });
  try {
    assert.equal((await git(dir, ["init", "-q"])).code, 0);
    const key = await loadOrCreateOperatorKey(`${keyDir}/identity.key`);
    const { paths } = await initProject(dir, key);
    const rel = (p: string) => p.slice(dir.length + 1);
    const runtime = [
      paths.socket,
      `${paths.socket}.path`,
      paths.anchorLock,
      `${paths.dir}/daemon.log`,
      `${driversDir(paths)}/files.sock`,
      paths.genLock,
      `${paths.shadows}/a.txt/1.0123456789abcdef`,
      `${paths.drain}/coder-1.json`,
      sidecarPath(dir, "coder-1"),
      handoffPath(dir, "coder-1"),
      nudgePath(paths.dir, "coder-1"),
      `${tracesDir(paths)}/coder-1.jsonl`,
      `${paths.dir}/needles/issues.lock`,
      `${paths.dir}/.audit.head.123.0.tmp`,
    ];
    const kept = [
      paths.humanfile,
      paths.audit,
      paths.head,
      paths.genTable,
      paths.identityPub,
      paths.defaultPin,
      `${paths.agents}/coder.Agentfile`,
      `${paths.dir}/profiles/base.Agentfile`,
      `${paths.dir}/needles/issues.jsonl`,
      paths.gitignore,
    ];
    for (const path of [...runtime, ...kept]) {
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(path, "x\n", { append: true });
    }
    // check-ignore prints the paths that are ignored (exit 1 when none are).
    const checked = await git(dir, [
      "check-ignore",
      "--no-index",
      ...[...runtime, ...kept].map(rel),
    ]);
    const ignored = checked.stdout.split("\n").filter((l) => l !== "");
    assert.deepEqual(ignored, runtime.map(rel));
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(keyDir, { recursive: true });
  }
});
