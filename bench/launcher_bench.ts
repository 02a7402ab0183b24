/**
 * Start-up of the `ostk` launcher (`deno task install`) against the way every command was typed
 * before it, `npx -y deno@2.9.6 task --config <repo>/deno.json ostk …`, for `ostk --version`
 * (start-up alone) and `ostk status` (start-up, project discovery and one socket round trip to a
 * running daemon). Each command runs once unmeasured (both sides then start from warm caches),
 * then N times (default 10); prints the median, min and max wall time of each and the ratio of
 * the medians. The target is a launcher at least 2× faster.
 *
 *   npx -y deno@2.9.6 run --allow-read --allow-write --allow-env --allow-run \
 *     bench/launcher_bench.ts [--runs N] [--launcher PATH]
 *
 * Without --launcher it installs one into a temp root first (a cold install of its own module
 * cache: the npm packages deno.lock pins are downloaded once), and removes it after.
 */
import { parseArgs } from "node:util";

const REPO = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string" }, launcher: { type: "string" } },
});
const RUNS = Number(values.runs ?? 10);
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error("launcher_bench: --runs needs an integer ≥ 1");
  Deno.exit(2);
}

interface Summary {
  median: number;
  min: number;
  max: number;
}

function summarise(ms: number[]): Summary {
  const s = [...ms].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1] };
}

/** Run to completion; a non-zero exit stops the bench with the command's stderr. */
async function runOnce(cmd: string[], cwd: string, env: Record<string, string>): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`${cmd.join(" ")} exited ${code}: ${new TextDecoder().decode(stderr)}`);
  }
  return new TextDecoder().decode(stdout);
}

async function time(cmd: string[], cwd: string, env: Record<string, string>): Promise<Summary> {
  await runOnce(cmd, cwd, env); // unmeasured: compile caches and the page cache are warm after
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await runOnce(cmd, cwd, env);
    ms.push(performance.now() - t0);
  }
  return summarise(ms);
}

async function installLauncher(root: string): Promise<string> {
  console.error(`launcher_bench: installing a launcher under ${root} (downloads npm packages)`);
  await runOnce(
    [
      Deno.execPath(),
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      `${REPO}/cli/install.ts`,
      "--root",
      root,
    ],
    REPO,
    env,
  );
  return `${root}/bin/ostk`;
}

const fmt = (s: Summary) =>
  `${s.median.toFixed(0).padStart(5)} ms (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;

const scratch = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_launcher_bench_" }));
const project = `${scratch}/project`;
// Both sides start in the project as a user's shell would: an INIT_CWD or OSTK_CWD inherited from
// the npx that runs this bench would point `deno task ostk` at this checkout instead.
const env: Record<string, string> = {
  ...Deno.env.toObject(),
  XDG_CONFIG_HOME: `${scratch}/config`,
};
delete env.INIT_CWD;
delete env.OSTK_CWD;
let launcher = values.launcher;
let daemonStarted = false;
try {
  launcher ??= await installLauncher(`${scratch}/root`);
  await Deno.mkdir(project);
  await runOnce([launcher, "init"], project, env);
  await runOnce([launcher, "listen", "--background"], project, env);
  daemonStarted = true;
  const task = ["npx", "-y", "deno@2.9.6", "task", "--config", `${REPO}/deno.json`, "ostk"];
  console.log(`ostk start-up, ${RUNS} runs each after one warm-up: median (min–max)`);
  console.log(`  launcher: ${launcher}`);
  console.log(`  task:     ${task.join(" ")}`);
  console.log("");
  console.log(`${"command".padEnd(16)}${"launcher".padEnd(22)}${"deno task ostk".padEnd(22)}ratio`);
  for (const args of [["--version"], ["status"]]) {
    const viaLauncher = await time([launcher, ...args], project, env);
    const viaTask = await time([...task, ...args], project, env);
    const ratio = viaTask.median / viaLauncher.median;
    console.log(
      `${`ostk ${args.join(" ")}`.padEnd(16)}${fmt(viaLauncher).padEnd(22)}${
        fmt(viaTask).padEnd(22)
      }${ratio.toFixed(1)}× ${ratio >= 2 ? "(target ≥ 2× met)" : "(target ≥ 2× MISSED)"}`,
    );
  }
} finally {
  if (daemonStarted && launcher) await runOnce([launcher, "stop"], project, env);
  await Deno.remove(scratch, { recursive: true });
}
