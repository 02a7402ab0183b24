/**
 * Every command in the registry, run through the real `ostk` with bad input: a mistyped flag, a
 * missing argument, arguments that name nothing (an unknown alias, a file that does not exist,
 * JSON that is not), no project, a mistyped command name, and a stdout whose reader is gone.
 * Each must end (a hang guard kills it otherwise), with exit 1 or 2 and one line on stderr — no
 * `Uncaught`, no stack — or, for a closed stdout, quietly with exit 0.
 *
 * The cases are derived from each command's registry entry (its name, usage and flags), so a
 * command added to cli/registry.ts is covered without touching this file.
 */
import assert from "node:assert/strict";
import { commandFlags, completionScript, usageForms } from "../../cli/completions.ts";
import type { Command } from "../../cli/command.ts";
import { COMMANDS } from "../../cli/registry.ts";
import {
  killDaemonProcess,
  type Project,
  startDaemonProcess,
  waitFor,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { type OstkResult, type RunOptions, runOstk } from "../helpers/run_ostk.ts";

/** A hang guard, generous for a loaded machine: it only decides "it never ended". */
const HANG_MS = 90_000;
/** Children run at once: the machine is shared, and each child is a whole Deno. */
const PARALLEL = 3;

/** Commands typed by people (a leading `_` marks one ostk starts itself). */
const VISIBLE = COMMANDS.filter((c) => !c.name.startsWith("_"));

/**
 * Bare runs outside any project that are not bad input, with the reason. Anything else run with
 * no arguments outside a project must fail with one line (or need no project and succeed).
 */
const NOT_BAD_BARE: Record<string, string> = {
  demo: "builds its own throwaway project and runs the whole daemon (tests/cli/cli_test.ts)",
};

/** One run to make and what it must show. */
interface Case {
  what: string;
  args: string[];
  /** Where it runs: the project's scratch directory, cwd and env. */
  options: RunOptions & { scratch: Project["scratch"] };
  expect: (r: OstkResult) => string | undefined;
}

/** The words after `ostk` that select `command`. */
function words(command: Command): string[] {
  return command.name.split(" ");
}

/** A usage form with its optional `[…]` parts and `…` repeat marks removed. */
function required(form: string): string[] {
  let depth = 0;
  let kept = "";
  for (const ch of form) {
    if (ch === "[") depth++;
    else if (ch === "]") depth--;
    else if (depth === 0) kept += ch;
  }
  return kept.replaceAll("…", " ").split(/\s+/).filter((w) => w !== "");
}

/** True when every usage form needs at least one word: then a bare run is a usage error. */
function needsArguments(command: Command): boolean {
  return usageForms(command).every((form) => required(form).length > 0);
}

/**
 * A usage form with each placeholder replaced by a value that names nothing, or undefined when
 * the form has no placeholder (its words alone would be a valid call).
 */
function badFill(form: string): string[] | undefined {
  let placeholders = 0;
  // `<Agentfile | -- CMD…>`, a choice inside one placeholder: its first alternative.
  const text = required(form.replace(/<([^<>|]+?) \| [^<>]*>/g, "<$1>")).join(" ");
  const out = text.split(" ").map((word) => {
    const bare = word.replace(/^['"]|['"]$/g, "");
    if (/^<.*>$/.test(bare) || /^[A-Z][A-Z_:]*(\.\.\.)?$/.test(bare)) placeholders++;
    // A well-formed name or alias that names nothing; where either goes, a name that is fine.
    if (bare === "<name|alias>") return "nosuch";
    if (/alias/.test(bare)) return "nosuch-1";
    if (/^<name>$/.test(bare)) return "Bad Name!";
    if (/json/i.test(bare)) return "{not json";
    if (/^<tool>$/.test(bare)) return "file:nosuch";
    if (/text/i.test(bare)) return "hello";
    if (/^(CMD|<command>|ARGS)/.test(bare)) return "nosuch-program-ostk";
    if (/PROVIDER:MODEL/.test(bare)) return "nosuch:model";
    if (/^<|^[A-Z]+$/.test(bare)) return "missing-dir/nosuch.Agentfile";
    // `--yes|--no|--all`: one of them.
    return bare.split("|")[0];
  });
  return placeholders > 0 ? out : undefined;
}

/** What is wrong with a refusal, or undefined when it is one clean line (or a report). */
function refusalProblem(r: OstkResult, codes = [1, 2]): string | undefined {
  const both = r.stdout + r.stderr;
  if (/Uncaught/.test(both)) return "printed 'Uncaught'";
  if (/^\s+at /m.test(both)) return "printed a stack";
  if (!codes.includes(r.code)) return `exit ${r.code}, expected ${codes.join(" or ")}`;
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  // A command whose verdict is its output (agentfile validate, doctor) may say why on stdout.
  if (lines.length === 0 && r.stdout.trim() === "") return "failed without a word";
  if (lines.length > 1) return `${lines.length} lines on stderr`;
  // The one line says who is speaking, so it reads apart from a child program's own output.
  if (lines.length === 1 && !/^ostk[: ]/.test(lines[0])) return "stderr does not start 'ostk:'";
  return undefined;
}

function quietProblem(r: OstkResult): string | undefined {
  if (r.code !== 0) return `exit ${r.code}, expected 0`;
  if (r.stderr !== "") return "printed on stderr";
  return undefined;
}

/** Run the cases a few at a time; every failure is listed, so one run shows them all. */
async function runCases(cases: Case[]): Promise<void> {
  const failures = await failuresOf(cases);
  assert.deepEqual(failures, [], `\n${failures.join("\n")}`);
}

/** What went wrong in `cases`, one entry per failed case. */
async function failuresOf(cases: Case[]): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      let result: OstkResult;
      try {
        result = await runOstk(c.options.scratch, c.args, { ...c.options, timeoutMs: HANG_MS });
      } catch (err) {
        failures.push(`${c.what}: ostk ${c.args.join(" ")}: ${(err as Error).message}`);
        continue;
      }
      const problem = c.expect(result);
      if (problem) {
        failures.push(
          `${c.what}: ostk ${c.args.join(" ")}: ${problem}\n    exit ${result.code}` +
            `\n    stdout: ${result.stdout.slice(0, 400)}\n    stderr: ${
              result.stderr.slice(0, 800)
            }`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return failures;
}

function inProject(project: Project): Case["options"] {
  return { scratch: project.scratch, cwd: project.root, env: project.env };
}

/** A misspelt flag (`--jsonx`) and the flag it should suggest, or a flag nothing is near. */
function flagTypo(command: Command): { flag: string; near?: string } {
  const known = commandFlags(command).filter((f) => f.name !== "help" && f.name.length >= 3);
  return known.length > 0
    ? { flag: `--${known[0].name}x`, near: `--${known[0].name}` }
    : { flag: "--no-such-flag-anywhere" };
}

/** A misspelt command: `x` appended to its last word (`os auditx`). */
function commandTypo(command: Command): string[] {
  const w = words(command);
  return [...w.slice(0, -1), `${w[w.length - 1]}x`];
}

Deno.test("every command refuses a mistyped flag, a missing argument and a mistyped name on one line", async () => {
  await withProject(async (project) => {
    const cases: Case[] = [];
    for (const command of COMMANDS) {
      const { flag, near } = flagTypo(command);
      cases.push({
        what: "unknown flag",
        args: [...words(command), flag],
        options: inProject(project),
        expect: (r) => {
          const problem = refusalProblem(r, [2]);
          if (problem) return problem;
          // Internal commands parse their own arguments; only typed ones owe a suggestion.
          if (near && !command.name.startsWith("_") && !r.stderr.includes(`did you mean ${near}`)) {
            return `no 'did you mean ${near}'`;
          }
        },
      });
    }
    const missing = (daemon: string): Case[] =>
      COMMANDS.filter(needsArguments).map((command) => ({
        what: `missing argument, ${daemon}`,
        args: words(command),
        options: inProject(project),
        expect: (r) => refusalProblem(r, [2]),
      }));
    cases.push(...missing("no daemon"));
    for (const command of VISIBLE) {
      cases.push({
        what: "mistyped command",
        args: commandTypo(command),
        options: inProject(project),
        expect: (r) =>
          refusalProblem(r, [2]) ??
            (r.stderr.includes(`'ostk ${command.name}'`)
              ? undefined
              : `no suggestion of 'ostk ${command.name}'`),
      });
    }
    const failures = await failuresOf(cases);
    // With a daemon a command that waits for it (attach) would wait forever instead of failing.
    const daemon = await startDaemonProcess(project);
    try {
      failures.push(...await failuresOf(missing("daemon running")));
    } finally {
      await killDaemonProcess(daemon);
    }
    assert.deepEqual(failures, [], `\n${failures.join("\n")}`);
  });
});

Deno.test("every command given arguments that name nothing fails on one line, with and without a daemon", async () => {
  await withProject(async (project) => {
    const cases = (daemon: string): Case[] =>
      COMMANDS.flatMap((command) =>
        usageForms(command).flatMap((form) => {
          const args = badFill(form);
          if (!args) return [];
          // A wrapper that runs a program reports one it cannot find as 127, the shells'
          // and env(1)'s convention; its usage says so.
          const runsProgram = args.includes("nosuch-program-ostk");
          return [{
            what: `bad arguments, ${daemon}`,
            args: [...words(command), ...args],
            options: inProject(project),
            expect: (r: OstkResult) => refusalProblem(r, runsProgram ? [1, 2, 127] : [1, 2]),
          }];
        })
      );
    await runCases(cases("no daemon"));
    const daemon = await startDaemonProcess(project);
    try {
      await runCases(cases("daemon running"));
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("every command run bare outside a project fails on one line or needs no project", async () => {
  await withProject(async (project) => {
    const cases: Case[] = [];
    for (const command of COMMANDS) {
      if (command.name in NOT_BAD_BARE) continue;
      // A directory of its own: 'ostk init' makes a project where it runs.
      const dir = `${project.scratch.dir}/nowhere/${command.name.replaceAll(" ", "_")}`;
      await Deno.mkdir(dir, { recursive: true });
      cases.push({
        what: "no project",
        args: words(command),
        options: { scratch: project.scratch, cwd: dir, env: project.env },
        expect: (r) => r.code === 0 ? quietProblem({ ...r, stderr: "" }) : refusalProblem(r),
      });
    }
    await runCases(cases);
  });
});

Deno.test("a stdout closed by its reader ends every command quietly with exit 0", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(`${project.root}/notes.txt`, "one\ntwo\n");
    const closed = { ...inProject(project), stdout: "closed" as const };
    const help: Case[] = COMMANDS.map((command) => ({
      what: "closed stdout, --help",
      args: [...words(command), "--help"],
      options: closed,
      expect: quietProblem,
    }));
    const data = (argv: string[][]): Case[] =>
      argv.map((args) => ({ what: "closed stdout", args, options: closed, expect: quietProblem }));
    await runCases([
      ...help,
      {
        what: "closed stdout, global help",
        args: ["--help"],
        options: closed,
        expect: quietProblem,
      },
      ...data([
        ["log"],
        ["log", "--json"],
        ["os", "audit"],
        ["inspect", "machines"],
        ["alias", "list"],
        ["call", "file:read", '{"path":"notes.txt"}'],
        ["completions", "bash"],
        ["agentfile", "new", "x.Agentfile"],
      ]),
    ]);
    const daemon = await startDaemonProcess(project);
    try {
      await runCases(data([["ps"], ["status"], ["pstree"], ["top", "--once"], ["driver", "list"]]));
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("a daemon's refusal is one line with the right exit code: kill, inspect, driver call", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(
      project.paths.humanfile,
      "mcp: broken /nonexistent/ostk-mcp-server\n",
      { append: true },
    );
    const daemon = await startDaemonProcess(project);
    try {
      const run = (args: string[], timeoutMs = HANG_MS) =>
        runOstk(project.scratch, args, { ...inProject(project), timeoutMs });
      const [kill, malformed, inspect, driver] = await Promise.all([
        run(["kill", "nosuch-9"]),
        run(["kill", "NOT_AN_ALIAS"]),
        run(["inspect", "nosuch-1"]),
        // The daemon starts a driver through the sandbox helper, with its own start-up timeout
        // (60 s) whatever --timeout says: the guard leaves room for that.
        run(["driver", "call", "broken", "anything", "--timeout", "20000"], 3 * HANG_MS),
      ]);
      assert.equal(refusalProblem(kill, [1]), undefined, kill.stderr);
      assert.match(kill.stderr, /^ostk: no session 'nosuch-9' \(see 'ostk ps'\)\n$/);
      // Arguments the daemon cannot parse are the caller's to fix: a usage error.
      assert.equal(refusalProblem(malformed, [2]), undefined, malformed.stderr);
      assert.match(malformed.stderr, /see 'ostk kill --help'/);
      assert.equal(refusalProblem(inspect, [1]), undefined, inspect.stderr);
      assert.equal(refusalProblem(driver, [1]), undefined, driver.stderr);
      assert.match(driver.stderr, /^ostk: .*broken/);
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

Deno.test("attach ends by itself once its session has ended", async () => {
  await withProject(async (project) => {
    await Deno.writeTextFile(
      `${project.root}/one_turn.jsonl`,
      JSON.stringify({
        calls: [{ tool: "file:create", args: { path: "out.txt", content: "x\n" } }],
      }) +
        "\n",
    );
    const daemon = await startDaemonProcess(project);
    try {
      const run = (args: string[]) =>
        runOstk(project.scratch, args, {
          ...inProject(project),
          timeoutMs: HANG_MS,
        });
      const spawned = await run(["spawn", "once", "--cpu", "script", "--script", "one_turn.jsonl"]);
      assert.equal(spawned.code, 0, spawned.stderr);
      const alias = spawned.stdout.split(" ")[0];
      // Attached while it runs or after it ended, attach must come back either way.
      const live = await run(["attach", alias]);
      assert.equal(live.code, 0, live.stderr);
      assert.match(live.stderr, new RegExp(`${alias} has ended`));
      await waitFor("the session to end", async () => {
        const ps = await run(["ps", "--json"]);
        const row = (JSON.parse(ps.stdout) as { alias: string; state: string }[])
          .find((r) => r.alias === alias);
        return row && !["queued", "spawning", "running", "saving", "stopping", "draining"]
          .includes(row.state);
      });
      const after = await run(["attach", alias]);
      assert.equal(after.code, 0, after.stderr);
      assert.match(after.stderr, new RegExp(`^ostk attach: ${alias} has ended \\(\\w+\\)\\n$`));
    } finally {
      await killDaemonProcess(daemon);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// completions, checked by the shells themselves

const SCRIPT_COMMANDS = COMMANDS;

async function hasShell(shell: string): Promise<boolean> {
  try {
    return (await new Deno.Command(shell, { args: ["-c", "exit 0"] }).output()).success;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function shellOutput(shell: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(shell, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `${shell} ${args.join(" ")} failed:\n${new TextDecoder().decode(stderr)}`);
  return text;
}

/** What every shell must offer: [words typed so far, the partial word, what must be offered]. */
const EXPECTED: [string[], string, string[]][] = [
  [[], "", ["init", "os", "driver", "completions", "help"]],
  [[], "lo", ["log"]],
  [["os"], "", ["audit", "recover"]],
  [["-C", "/tmp", "driver"], "", ["list", "tools", "call", "serve"]],
  [["log"], "--f", ["--follow"]],
  [["driver", "call"], "--", ["--json", "--timeout", "--help"]],
  [["completions"], "", ["bash", "zsh", "fish"]],
  [["help"], "dr", ["driver"]],
];

/** Each shell's answer to the i-th probe of EXPECTED offers every word EXPECTED wants. */
function assertOffered(answers: string[]): void {
  EXPECTED.forEach(([typed, cur, want], i) => {
    const got = (answers[i] ?? "").split(" ");
    for (const w of want) {
      assert.ok(
        got.includes(w),
        `ostk ${typed.join(" ")} ${cur}<TAB>: ${w} missing from ${answers[i]}`,
      );
    }
  });
}

Deno.test("bash completion offers commands, sub-commands, flags and choices from the registry", async () => {
  const script = completionScript("bash", SCRIPT_COMMANDS);
  const probes = EXPECTED.map(([typed, cur]) => {
    const line = ["ostk", ...typed, cur].map((w) => `'${w}'`).join(" ");
    return `COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _ostk; echo "\${COMPREPLY[*]}"`;
  });
  const output = await shellOutput("bash", ["-s"], `${script}\n${probes.join("\n")}\n`);
  const answers = output.trimEnd().split("\n");
  assertOffered(answers);
  // Every flag a command declares is offered for it.
  for (const command of VISIBLE.filter((c) => c.flags)) {
    const line = ["ostk", ...words(command), "--"].map((w) => `'${w}'`).join(" ");
    const got = (await shellOutput(
      "bash",
      ["-s"],
      `${script}\nCOMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _ostk; echo "\${COMPREPLY[*]}"\n`,
    )).trim().split(" ");
    for (const name of Object.keys(command.flags!)) {
      assert.ok(got.includes(`--${name}`), `ostk ${command.name} --<TAB>: --${name} missing`);
    }
  }
});

Deno.test({
  name: "zsh completion script parses and offers the same words (needs zsh; .ci/run installs it)",
  ignore: !(await hasShell("zsh")),
  fn: async () => {
    const script = completionScript("zsh", SCRIPT_COMMANDS);
    // The completion system's builtins, stubbed to print what _ostk hands them.
    const stubs = `_describe() { local a=\${@[-1]}; print -r -- "\${(j: :)\${(@)\${(P)a}%%:*}}"; }
compadd() { local a=\${@[-1]}; print -r -- "\${(j: :)\${(P)a}}"; }
_files() { print -r -- files; }
compdef() { :; }`;
    const probes = EXPECTED.map(([typed, cur]) => {
      const line = ["ostk", ...typed, cur].map((w) => `'${w}'`).join(" ");
      return `words=(${line}); CURRENT=\${#words}; PREFIX=\${words[-1]}; _ostk`;
    });
    const output = await shellOutput(
      "zsh",
      ["-f", "-s"],
      `${stubs}\n${script}\n${probes.join("\n")}\n`,
    );
    const answers = output.trimEnd().split("\n");
    // zsh escapes the ':' of a described completion.
    assertOffered(answers.map((a) => a.replaceAll("\\:", ":")));
  },
});

Deno.test({
  name: "fish completion script offers the same words (needs fish; .ci/run installs it)",
  ignore: !(await hasShell("fish")),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ostk_fish_" });
    try {
      await Deno.writeTextFile(`${dir}/ostk.fish`, completionScript("fish", SCRIPT_COMMANDS));
      // `echo (…)` prints one line per probe, even when nothing is offered.
      const probes = EXPECTED.map(([typed, cur]) =>
        `echo (complete -C '${["ostk", ...typed, cur].join(" ")}' | string split -f1 \\t)`
      );
      const output = await shellOutput("fish", [
        "--no-config",
        "-c",
        `source ${dir}/ostk.fish\n${probes.join("\n")}`,
      ]);
      const answers = output.trimEnd().split("\n");
      assertOffered(answers);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
