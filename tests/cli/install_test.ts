/**
 * The installer's parts that need no network: the flags it takes from deno.json, the modules it
 * caches, the launcher it writes, and its usage errors. The install itself, from an empty cache,
 * is tests/cli/install_e2e_test.ts.
 */
import assert from "node:assert/strict";
import manifest from "../../deno.json" with { type: "json" };
import {
  CACHE_ENTRIES,
  install,
  launcherScript,
  readLauncherInfo,
  taskFlags,
} from "../../cli/install.ts";
import { OSTK_PERMISSIONS } from "../helpers/run_ostk.ts";

const REPO = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const INSTALL = `${REPO}/cli/install.ts`;

Deno.test("install: the launcher grants exactly the permissions of the ostk task", () => {
  const flags = taskFlags(manifest.tasks.ostk);
  assert.deepEqual([...flags].sort(), [...OSTK_PERMISSIONS].sort());
  assert.ok(flags.includes("--unstable-worker-options"));
});

Deno.test("install: a task of another shape is refused, not half-read", () => {
  for (
    const task of [
      "deno run --allow-read cli/other.ts",
      "deno run --allow-read main.ts extra",
      "deno test --allow-read main.ts",
    ]
  ) {
    assert.throws(() => taskFlags(task), /not of the form 'deno run <flags> main.ts'/, task);
  }
});

/** Every `new Worker(new URL("<rel>", import.meta.url))` in the source, as repo paths. */
async function workerEntries(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (
        entry.isDirectory &&
        !["tests", "fixtures", "bench", "dist", "."].some((x) => entry.name.startsWith(x))
      ) {
        await walk(path);
      } else if (entry.isFile && entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(path);
        for (
          const m of text.matchAll(/new Worker\(\s*new URL\(\s*"([^"]+)",\s*import\.meta\.url/g)
        ) {
          const url = new URL(m[1], `file://${path}`);
          found.push(decodeURIComponent(url.pathname).slice(REPO.length + 1));
        }
      }
    }
  };
  await walk(REPO);
  return found.sort();
}

Deno.test("install: every Worker entry in the source is cached at install time", async () => {
  const entries = await workerEntries();
  assert.ok(entries.length >= 2, `found only ${entries.join(", ")}`);
  for (const entry of entries) {
    assert.ok(
      (CACHE_ENTRIES as readonly string[]).includes(entry),
      `${entry} is started as a Worker but not in CACHE_ENTRIES: the launcher (--cached-only) ` +
        "would fail its first spawn",
    );
  }
  for (const entry of CACHE_ENTRIES) await Deno.stat(`${REPO}/${entry}`);
});

Deno.test("install: the launcher runs the pinned deno on main.ts, locked, quiet, from any cwd", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_launcher_" }));
  try {
    // A stand-in for deno that prints what it was asked to run and where.
    const fake = `${dir}/it's deno`;
    await Deno.writeTextFile(
      fake,
      '#!/bin/sh\nprintf "%s\\n" "cwd=$PWD" "OSTK_CWD=${OSTK_CWD-unset}" "DENO_DIR=$DENO_DIR" "$@"\n',
      { mode: 0o755 },
    );
    const info = { version: "9.9.9", source: "/src/o'stk", deno: fake, denoDir: `${dir}/cache` };
    const launcher = `${dir}/ostk`;
    await Deno.writeTextFile(launcher, launcherScript(info, ["--allow-read", "--allow-sys=a,b"]), {
      mode: 0o755,
    });
    assert.deepEqual(readLauncherInfo(await Deno.readTextFile(launcher)), info);
    const work = `${dir}/work dir`;
    await Deno.mkdir(work);
    const { code, stdout } = await new Deno.Command(launcher, {
      args: ["-C", "x y", "status"],
      cwd: work,
      env: { OSTK_CWD: "/elsewhere", NPM_CONFIG_REGISTRY: "http://mirror.invalid/" },
      stdout: "piped",
    }).output();
    assert.equal(code, 0);
    const lines = new TextDecoder().decode(stdout).trimEnd().split("\n");
    assert.deepEqual(lines, [
      `cwd=${work}`,
      "OSTK_CWD=unset", // the directory it is run from wins over an inherited OSTK_CWD
      `DENO_DIR=${dir}/cache`,
      "run",
      "--quiet",
      "--cached-only",
      "--lock=/src/o'stk/deno.lock",
      "--frozen",
      "--config=/src/o'stk/deno.json",
      "--allow-read",
      "--allow-sys=a,b",
      "/src/o'stk/main.ts",
      "-C",
      "x y",
      "status",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install: the npm registry in use at install time is the launcher's", () => {
  const base = { version: "1", source: "/s", deno: "/d", denoDir: "/c" };
  const pinned = launcherScript({ ...base, npmRegistry: "https://npm.example/" }, []);
  assert.match(pinned, /^NPM_CONFIG_REGISTRY='https:\/\/npm.example\/'$/m);
  assert.equal(readLauncherInfo(pinned)?.npmRegistry, "https://npm.example/");
  assert.match(launcherScript(base, []), /^unset NPM_CONFIG_REGISTRY$/m);
});

async function runInstall(args: string[], cwd = REPO) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-run", INSTALL, ...args],
    cwd,
    env: { OSTK_CWD: cwd }, // what the install task sets: relative paths start there
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code, stdout: d.decode(stdout), stderr: d.decode(stderr) };
}

Deno.test("install: --help exits 0; bad flags and arguments are usage errors (exit 2)", async () => {
  const help = await runInstall(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: deno task install \[--root DIR\]/);
  for (const args of [["--bogus"], ["extra"], ["--root"], ["--root", ""]]) {
    const r = await runInstall(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /^ostk install: /);
  }
});

Deno.test("install: a root that cannot hold bin/ fails with exit 1 and says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostk_install_root_" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "");
    const r = await runInstall(["--root", "file"], dir);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^ostk install: cannot create .*${dir}/file/bin`));
    assert.doesNotMatch(r.stderr, /Uncaught|^\s+at /m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install: a new launcher that cannot start never replaces the one that could", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk-install-keep-" }));
  try {
    // A stand-in Deno that copies, "caches" and reports its version, but runs nothing.
    const fake = `${root}/fake-deno`;
    await Deno.writeTextFile(
      fake,
      '#!/bin/sh\ncase "$1" in --version) echo "deno 9.9.9";; cache) exit 0;; *) echo broken;; esac\n',
      { mode: 0o755 },
    );
    await Deno.mkdir(`${root}/bin`);
    const working = "#!/bin/sh\necho 'ostk from before'\n";
    await Deno.writeTextFile(`${root}/bin/ostk`, working, { mode: 0o755 });
    await assert.rejects(
      install({ root, deno: fake }),
      /the new launcher printed 'broken', expected 'ostk /,
    );
    assert.equal(await Deno.readTextFile(`${root}/bin/ostk`), working);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
