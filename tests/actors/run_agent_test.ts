/**
 * `ostk run <Agentfile>` end to end: the real CLI, a real daemon (its own process, or the one
 * `ostk run` starts inside itself when none runs), real workers. The Agentfiles are
 * fixtures/agentfiles/run_*.Agentfile, copied into each scratch project with the transcript.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import {
  AGENT_FIXTURES,
  auditRows,
  closeClient,
  connect,
  type DaemonProcess,
  killDaemonProcess,
  ostk,
  type Project,
  ps,
  rowOf,
  startDaemonProcess,
  tryStatus,
  waitFor,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { OSTK_PERMISSIONS } from "../helpers/run_ostk.ts";

const AGENTFILES = decodeURIComponent(
  new URL("../../fixtures/agentfiles/", import.meta.url).pathname,
);

/** Copy `run_<name>.Agentfile` and the six-turn writer transcript into the project root. */
async function setUp(project: Project, name: string): Promise<string> {
  await Deno.copyFile(`${AGENT_FIXTURES}writer_1.jsonl`, `${project.root}/writer.jsonl`);
  const file = `${name}.Agentfile`;
  await Deno.copyFile(`${AGENTFILES}run_${name}.Agentfile`, `${project.root}/${file}`);
  return file;
}

/** The last JSON line `ostk run --json` printed: the outcome. */
function outcomeOf(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

Deno.test("ostk run --dry-run prints the plan and starts nothing", async () => {
  await withProject(async (project) => {
    const file = await setUp(project, "script");
    const text = await ostk(project, ["run", file, "--dry-run"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^cpu +script ${project.root}/writer\\.jsonl$`, "m"));
    assert.match(text.stdout, /^task +Write writer_1\.txt in six steps\.$/m);
    assert.match(text.stdout, /^limits +budget_usd 1\.5 \(script\/command CPUs spend \$0\)$/m);
    assert.match(text.stdout, /^permissions +auto$/m);
    assert.match(text.stdout, /^revival +reap$/m);
    assert.match(text.stdout, /^pin +default$/m);
    assert.match(text.stdout, /^isolation +landlock \(Agentfile\); /m);
    assert.match(text.stdout, /^sandbox +read .*\/usr/m);
    assert.match(text.stdout, /^ +net none$/m);

    const json = await ostk(project, ["run", file, "--dry-run", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const plan = JSON.parse(json.stdout);
    assert.deepEqual(plan.cpu, { kind: "script", script: `${project.root}/writer.jsonl` });
    assert.deepEqual(plan.limits, { budget_usd: 1.5 });
    assert.equal(plan.permissions, "auto");
    assert.ok(plan.policy.read.includes(project.root), JSON.stringify(plan.policy));
    assert.ok(!plan.policy.write.includes(`${project.root}/.ostk`), "the kernel dir stays closed");
    // Nothing ran: no session was spawned, no daemon left behind.
    const rows = await auditRows(project);
    assert.ok(!rows.some((r) => r.event === "session.spawn" || r.event === "daemon.start"));
  });
});

Deno.test("ostk run plans a model FROM as a model CPU and refuses lint errors", async () => {
  await withProject(async (project) => {
    const model = await setUp(project, "model");
    const planned = await ostk(project, ["run", model, "--dry-run", "--json"]);
    assert.equal(planned.code, 0, planned.stderr);
    assert.match(planned.stdout, /"kind":\s*"model"/);
    assert.match(planned.stdout, /anthropic\/claude-sonnet-4/);

    const bad = await setUp(project, "bad");
    const lint = await ostk(project, ["run", bad, "--dry-run"]);
    assert.equal(lint.code, 1);
    assert.match(lint.stderr, /^ostk: .*bad\.Agentfile:3:13: error \[bad-value\] LIMIT turns/);
    const missing = await ostk(project, ["run", "nosuch.Agentfile"]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^ostk: .*nosuch\.Agentfile: error \[unreadable\] no such Agentfile \(check the path\)\n$/,
    );
    const rows = await auditRows(project);
    assert.ok(!rows.some((r) => r.event === "session.spawn"), "nothing was spawned");
  });
});

Deno.test(
  "ostk run with no daemon running runs a script worker to completion in-process (exit 0)",
  async () => {
    await withProject(async (project) => {
      const file = await setUp(project, "script");
      const run = await ostk(project, ["run", file, "--json"]);
      assert.equal(run.code, 0, run.stderr + run.stdout);
      const outcome = outcomeOf(run.stdout);
      assert.equal(outcome.outcome, "finished");
      assert.equal(outcome.reason, "done");
      assert.equal(outcome.turns, 6);
      const text = await Deno.readTextFile(`${project.root}/writer_1.txt`);
      assert.equal(text, "writer 1\nstep 0\nstep 1\nstep 2\nstep 3\nstep 4\nstep 5\n");
      const rows = await auditRows(project);
      const exit = rows.find((r) => r.event === "session.exit" && r.session === outcome.alias)!;
      assert.deepEqual([exit.outcome, exit.reason], ["finished", "done"]);
      assert.equal(exit.spend_usd, 0, "a script CPU records its (zero) spend");
      // The daemon started for the run is gone, and it said so in the log.
      assert.equal(rows.filter((r) => r.event === "daemon.stop").length, 1);
      const status = await ostk(project, ["status"]);
      assert.equal(status.code, 1, "no daemon is left running");
    });
  },
);

Deno.test(
  "ostk run: LIMIT turns 2 stops a six-turn script after two turns; exit 1 names the limit",
  async () => {
    await withProject(async (project) => {
      let daemon: DaemonProcess | undefined;
      let client: DaemonClient | undefined;
      try {
        daemon = await startDaemonProcess(project);
        const file = await setUp(project, "limit");
        const run = await ostk(project, ["run", file]);
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.match(run.stderr, /stopped: LIMIT turns reached \(2 of 2\) after 2 turn\(s\)/);
        assert.equal(
          await Deno.readTextFile(`${project.root}/writer_1.txt`),
          "writer 1\nstep 0\nstep 1\n",
          "the third turn's write never happened",
        );
        const rows = await auditRows(project);
        const limit = rows.find((r) => r.event === "session.limit");
        assert.ok(limit, "session.limit is audited");
        assert.deepEqual(
          { limit: limit.limit, value: limit.value, max: limit.max },
          { limit: "turns", value: 2, max: 2 },
        );
        const alias = String(limit.session);
        const exit = rows.find((r) => r.event === "session.exit" && r.session === alias)!;
        assert.deepEqual([exit.outcome, exit.limit, exit.reason], [
          "limited",
          "turns",
          "LIMIT turns reached (2 of 2)",
        ]);
        client = await connect(project);
        const row = rowOf(await ps(client), alias);
        assert.equal(row.state, "limited");
        assert.equal(row.turns, 2);
        assert.equal(row.reason, "LIMIT turns reached (2 of 2)");
        const psJson = await ostk(project, ["ps", "--json"]);
        assert.match(psJson.stdout, /"state":"limited"/);
        assert.match(psJson.stdout, /"reason":"LIMIT turns reached \(2 of 2\)"/);
      } finally {
        await closeClient(client);
        await killDaemonProcess(daemon);
      }
    });
  },
);

Deno.test(
  "ostk run: a command worker under ISOLATION landlock writes inside the project only",
  async () => {
    await withProject(async (project) => {
      const file = await setUp(project, "landlock");
      // The default policy grants write on existing top-level entries, not on the root itself.
      await Deno.mkdir(`${project.root}/work`);
      const outside = `${project.root}/../outside.txt`;
      const run = await ostk(project, ["run", file]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal(await Deno.readTextFile(`${project.root}/work/inside.txt`), "inside\n");
      await assert.rejects(Deno.stat(outside), Deno.errors.NotFound, "the write outside failed");
      assert.match(run.stdout, /stderr: .*outside\.txt: Permission denied/);
    });
  },
);

/** A governed Agentfile whose transcript writes w1.txt, w2.txt, w3.txt: three FileWrite asks. */
async function governedThree(project: Project): Promise<string> {
  const turns = [1, 2, 3].map((n) =>
    JSON.stringify({
      calls: [{ tool: "file:write", args: { path: `w${n}.txt`, content: `${n}\n` } }],
    })
  );
  await Deno.writeTextFile(`${project.root}/three.jsonl`, turns.join("\n") + "\n");
  await Deno.writeTextFile(
    `${project.root}/three.Agentfile`,
    "FROM script:three.jsonl\nTASK Write three files.\nLIMIT permissions governed\nISOLATION none\n",
  );
  return "three.Agentfile";
}

async function written(project: Project): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(project.root)) {
    if (/^w\d\.txt$/.test(e.name)) names.push(e.name);
  }
  return names.sort();
}

Deno.test(
  "ostk run without a terminal: an approval nobody can answer ends the run at once (exit 1)",
  async () => {
    await withProject(async (project) => {
      const file = await governedThree(project);
      // No daemon, no terminal, no wait: the daemon's 60 s would otherwise pass three times.
      const run = await ostk(project, ["run", file]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const last = run.stderr.trimEnd().split("\n").at(-1)!;
      assert.match(
        last,
        /^ostk run: three-1 was killed: it needs approval and nobody can answer \(stdin is not a terminal\)\. Asked: file:write w1\.txt \[FileWrite\]: .* To go on: allow it in the Agentfile \(TOOL FileWrite, .*--approval-timeout-ms N.*'ostk approve three-1 --yes'$/,
      );
      assert.deepEqual(await written(project), [], "nothing was written");
      const rows = await auditRows(project);
      const exit = rows.find((r) => r.event === "session.exit")!;
      assert.equal(exit.outcome, "killed");
      // The log says why the operator's run killed it, not only that it was killed.
      assert.match(
        String(exit.reason),
        /^killed by the operator: ostk run: needs approval for FileWrite and nobody can answer \(stdin is not a terminal\)$/,
      );
      const asks = rows.filter((r) => r.event === "approval.decide" && r.decision === "ask");
      assert.equal(asks.length, 1, "only the first question was asked");

      const json = await ostk(project, ["run", file, "--json"]);
      assert.equal(json.code, 1, json.stderr);
      const outcome = outcomeOf(json.stdout);
      assert.deepEqual([outcome.outcome, outcome.class], ["needs_approval", "FileWrite"]);
      assert.match(String(outcome.reason), /--json turns the terminal prompt off/);
    });
  },
);

Deno.test(
  "ostk run --approval-timeout-ms waits that long per question, and denied work exits 1",
  async () => {
    await withProject(async (project) => {
      let daemon: DaemonProcess | undefined;
      try {
        // The daemon's own wait is a minute; the run's wait is the session's.
        daemon = await startDaemonProcess(project);
        const file = await governedThree(project);
        const run = await ostk(project, ["run", file, "--approval-timeout-ms", "300"]);
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.match(
          run.stderr,
          /ostk run: three-1 finished after 3 turn\(s\), but 3 of its call\(s\) were denied; the first: file:write \[FileWrite\] at step 7: no operator answered within 300 ms; denied\n$/,
        );
        assert.match(run.stderr, /three-1 waits for approval \w+: file:write w1\.txt/);
        assert.deepEqual(await written(project), []);

        const json = await ostk(project, ["run", file, "--approval-timeout-ms", "300", "--json"]);
        assert.equal(json.code, 1, json.stderr);
        const outcome = outcomeOf(json.stdout);
        assert.deepEqual(
          [outcome.outcome, outcome.reason, outcome.denied, outcome.turns],
          ["denied", "done", 3, 3],
        );
        const rows = await auditRows(project);
        const spawn = rows.find((r) => r.event === "session.spawn" && r.session === "three-1")!;
        assert.equal(spawn.approval_timeout_ms, 300, "the wait is kept with the session");
      } finally {
        await killDaemonProcess(daemon);
      }
    });
  },
);

Deno.test("ostk run --help names every flag and says model CPUs run", async () => {
  await withProject(async (project) => {
    const help = await ostk(project, ["run", "--help"]);
    assert.equal(help.code, 0, help.stderr);
    const usage = help.stdout.split("\n").find((l) => l.includes("run <Agentfile>"))!;
    for (
      const flag of [
        "--dry-run",
        "--allow-unsandboxed",
        "--json",
        "--approval-timeout-ms",
        "--profiles",
      ]
    ) {
      assert.ok(usage.includes(flag), `usage names ${flag}: ${usage}`);
      assert.match(help.stdout, new RegExp(`^  ${flag}\\b`, "m"), `help explains ${flag}`);
    }
    assert.doesNotMatch(help.stdout, /cannot run yet|refused until|not yet/i);
    assert.match(help.stdout, /runs the agent loop of actors\/llm\//);
  });
});

/** Whether util-linux `script` (a pseudo-terminal for a command) is here; Linux only. */
const hasScript = Deno.build.os === "linux" &&
  (await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
    .output().then((o) => o.success, () => false));

/** `ostk run <args>` in a pseudo-terminal, with keys to type and what it showed. */
interface Terminal {
  /** Everything the terminal showed so far (ostk's output, then `rc=N` and `stty -a`). */
  screen(): string;
  type(keys: string): Promise<void>;
  /** Wait for `rc=N` and the terminal modes after ostk ended; the part from `rc=` on. */
  after(): Promise<string>;
}

/**
 * Run `ostk run <args>` under `script` (a real pseudo-terminal on stdin and stdout); after it
 * ends, the same terminal prints `rc=<exit code>` and `stty -a`, the modes ostk left behind.
 */
async function inTerminal(
  project: Project,
  args: string[],
  fn: (t: Terminal) => Promise<void>,
): Promise<void> {
  const main = decodeURIComponent(new URL("../../main.ts", import.meta.url).pathname);
  const quote = (w: string) => `'${w.replaceAll("'", `'\\''`)}'`;
  const line = [Deno.execPath(), "run", ...OSTK_PERMISSIONS, main, "run", ...args]
    .map(quote).join(" ");
  // The runner's environment (its Deno cache) without any OSTK_ setting, plus the project's.
  const env = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !k.startsWith("OSTK_")),
  );
  const child = new Deno.Command("script", {
    args: ["-qfec", `${line}; echo "rc=$?"; stty -a`, "/dev/null"],
    cwd: project.root,
    clearEnv: true,
    env: { ...env, ...project.env, XDG_CONFIG_HOME: project.scratch.config, NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const keys = child.stdin.getWriter();
  let screen = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) screen += chunk;
  })();
  try {
    await fn({
      screen: () => screen,
      type: (k) => keys.write(new TextEncoder().encode(k)),
      async after() {
        await waitFor("ostk run to end", () => /rc=\d+/.test(screen), 60_000);
        await waitFor("stty's report", () => /\bmin = /.test(screen));
        return screen.slice(screen.lastIndexOf("rc="));
      },
    });
  } finally {
    // Closing stdin ends `script`; a test that failed early must not leave it running.
    await keys.close().catch(() => undefined);
    killIfRunning(child);
    await child.status;
    await reading;
  }
}

function killIfRunning(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // Deno's word for "it had already exited"
  }
}

/** Canonical input and echo are on: the terminal is as ostk found it. */
function assertCooked(modes: string): void {
  assert.match(modes, /(^|\s)icanon(\s|$)/m, `canonical input is back:\n${modes}`);
  assert.match(modes, /(^|\s)echo(\s|$)/m, `echo is back:\n${modes}`);
}

const PROMPT = "approve? [y/n/a]";

Deno.test({
  name: "ostk run in a terminal: one key answers, 'a' covers the class, the terminal is restored",
  ignore: !hasScript,
  async fn() {
    await withProject(async (project) => {
      const file = await governedThree(project);
      let screen = "";
      let modes = "";
      await inTerminal(project, [file], async (t) => {
        await waitFor("the approval prompt", () => t.screen().includes(PROMPT), 60_000);
        assert.match(
          t.screen(),
          /three-1 asks: file:write w1\.txt \[FileWrite\].*\r?\n {2}y = yes, this call {3}n = no {3}a = yes to this and every FileWrite call of this session, the waiting ones included/,
        );
        // A key that is not an answer asks again; then one key, no Enter.
        await t.type("x");
        await waitFor("the hint after a wrong key", () => t.screen().includes("press y (yes)"));
        await t.type("a");
        modes = await t.after();
        screen = t.screen();
      });
      assert.match(modes, /^rc=0\b/, screen);
      assert.match(screen, /three-1 finished after 3 turn\(s\)/);
      assert.equal(screen.split(PROMPT).length - 1, 1, "asked once, for the whole class");
      assertCooked(modes);
      assert.deepEqual(await written(project), ["w1.txt", "w2.txt", "w3.txt"]);
      const rows = await auditRows(project);
      const steps = rows.filter((r) => r.event === "approval.decide").map((r) =>
        `${r.decision}@${r.step}${r.answer ? `/${r.answer}` : ""}`
      );
      assert.deepEqual(steps, ["ask@7", "allow@7/a", "allow@5", "allow@5"]);
    });
  },
});

Deno.test({
  name: "ostk run in a terminal: a SIGTERM while the prompt waits still restores the terminal",
  ignore: !hasScript,
  async fn() {
    await withProject(async (project) => {
      const file = await governedThree(project);
      let modes = "";
      await inTerminal(project, [file], async (t) => {
        await waitFor("the approval prompt", () => t.screen().includes(PROMPT), 60_000);
        // With no daemon running, `ostk run` serves one itself: its pid is the run's.
        const pid = (await tryStatus(project))?.pid;
        assert.ok(pid, "the run's own daemon answers");
        Deno.kill(pid, "SIGTERM");
        modes = await t.after();
      });
      assert.match(modes, /^rc=143\b/);
      assertCooked(modes);
    });
  },
});
