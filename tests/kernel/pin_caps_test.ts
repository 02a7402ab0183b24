import assert from "node:assert/strict";
import { OstkError } from "../../kernel/errors.ts";
import {
  checkVerb,
  checkWrite,
  DEFAULT_PIN_CAPS,
  isGovernancePath,
  loadPolicy,
  parsePinCaps,
  type Policy,
} from "../../kernel/pin_caps.ts";

const FILE = ".ostk/pins/test/pin.caps";

function policyOf(text: string): Policy {
  return { pins: ["test"], rules: parsePinCaps(text, FILE).rules };
}

/** A scratch `.ostk/` with the given pins written; removed after `fn`. */
async function withPins(
  pins: Record<string, string>,
  fn: (ostkDir: string) => Promise<void>,
): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "ostk_pins_" });
  try {
    for (const [name, text] of Object.entries(pins)) {
      await Deno.mkdir(`${base}/.ostk/pins/${name}`, { recursive: true });
      await Deno.writeTextFile(`${base}/.ostk/pins/${name}/pin.caps`, text);
    }
    await fn(`${base}/.ostk`);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

// --- parser -------------------------------------------------------------------------------

const goodCases: { name: string; text: string; rules: string[] }[] = [
  { name: "empty file", text: "", rules: [] },
  { name: "only comments and blanks", text: "# hi\n\n   # indented\n\t\n", rules: [] },
  { name: "one token", text: "deny: write-kernel\n", rules: ["deny write-kernel @1"] },
  {
    name: "tokens split by spaces and commas",
    text: "# c\ndeny: write-src, modify-governance write-all\n",
    rules: ["deny write-src @2", "deny modify-governance @2", "deny write-all @2"],
  },
  {
    name: "deny-path entries, ./ and trailing / stripped",
    text: "deny-path:  ./secrets/  **/*.pem\n",
    rules: ["deny-path secrets @1", "deny-path **/*.pem @1"],
  },
  {
    name: "deny-verb keeps the whole line, whitespace normalised",
    text: "deny-verb: git   push\n\ndeny-verb: rm -rf\n",
    rules: ["deny-verb git push @1", "deny-verb rm -rf @3"],
  },
  { name: "CRLF line ends", text: "# x\r\ndeny: write-all\r\n", rules: ["deny write-all @2"] },
  { name: "space before colon", text: "deny : write-src", rules: ["deny write-src @1"] },
  {
    name: "the default template",
    text: DEFAULT_PIN_CAPS,
    rules: [`deny write-kernel @${DEFAULT_PIN_CAPS.split("\n").indexOf("deny: write-kernel") + 1}`],
  },
];

for (const c of goodCases) {
  Deno.test(`parsePinCaps accepts: ${c.name}`, () => {
    const caps = parsePinCaps(c.text, FILE);
    const shown = caps.rules.map((r) => {
      const what = r.kind === "deny"
        ? r.token
        : r.kind === "deny-path"
        ? r.entry
        : r.words.join(" ");
      assert.equal(r.source.file, FILE);
      return `${r.kind} ${what} @${r.source.line}`;
    });
    assert.deepEqual(shown, c.rules);
  });
}

const badCases: { name: string; text: string; line: number; expect: string }[] = [
  {
    name: "unknown directive",
    text: "allow: write-src",
    line: 1,
    expect: "unknown directive 'allow:'",
  },
  {
    name: "no colon",
    text: "# ok\n\ndeny write-src",
    line: 3,
    expect: "expected '<directive>: <value>'",
  },
  {
    name: "unknown token",
    text: "deny: write-kernel\ndeny: write-docs",
    line: 2,
    expect: "unknown deny token 'write-docs'; expected one of write-kernel",
  },
  {
    name: "trailing comment",
    text: "deny: write-src # src",
    line: 1,
    expect: "comments go on their own line",
  },
  { name: "empty deny", text: "deny:", line: 1, expect: "'deny:' needs a token" },
  {
    name: "empty deny-path",
    text: "deny-path:   ",
    line: 1,
    expect: "needs at least one path prefix or glob",
  },
  {
    name: "absolute deny-path",
    text: "deny-path: /etc",
    line: 1,
    expect: "expected a path relative to the project root",
  },
  {
    name: "deny-path with ..",
    text: "\ndeny-path: a/../b",
    line: 2,
    expect: "'..' is not allowed",
  },
  {
    name: "deny-path of the whole project",
    text: "deny-path: ./",
    line: 1,
    expect: "use 'deny: write-all'",
  },
  {
    name: "unsupported glob syntax",
    text: "deny-path: src/{a,b}",
    line: 1,
    expect: "only *, ** and ? are supported",
  },
  {
    name: "empty deny-verb",
    text: "deny-verb:",
    line: 1,
    expect: "'deny-verb:' needs a command prefix",
  },
  {
    name: "case matters for directives",
    text: "Deny: write-src",
    line: 1,
    expect: "unknown directive 'Deny:'",
  },
];

for (const c of badCases) {
  Deno.test(`parsePinCaps rejects: ${c.name}`, () => {
    assert.throws(() => parsePinCaps(c.text, FILE), (err: unknown) => {
      assert.ok(err instanceof OstkError);
      assert.equal(err.code, "bad_input");
      assert.deepEqual({ file: err.site.file, line: err.site.line }, { file: FILE, line: c.line });
      assert.ok(err.message.includes(c.expect), err.message);
      assert.ok(err.toLine().startsWith(`${FILE}:${c.line}: `), err.toLine());
      return true;
    });
  });
}

// --- checkWrite ---------------------------------------------------------------------------

const writeCases: { caps: string; path: string; denied?: string }[] = [
  { caps: "deny: write-kernel", path: ".ostk/audit.jsonl", denied: "deny: write-kernel" },
  { caps: "deny: write-kernel", path: ".ostk", denied: "deny: write-kernel" },
  { caps: "deny: write-kernel", path: "src/main.ts" },
  { caps: "deny: write-kernel", path: "HUMANFILE" },
  { caps: "deny: modify-governance", path: "HUMANFILE", denied: "deny: modify-governance" },
  { caps: "deny: modify-governance", path: "ENTITYFILE", denied: "deny: modify-governance" },
  { caps: "deny: modify-governance", path: ".ostk/HUMANFILE", denied: "deny: modify-governance" },
  { caps: "deny: modify-governance", path: ".ostk/ENTITYFILE", denied: "deny: modify-governance" },
  {
    caps: "deny: modify-governance",
    path: ".ostk/agents/coder.Agentfile",
    denied: "deny: modify-governance",
  },
  {
    caps: "deny: modify-governance",
    path: ".ostk/pins/ci/pin.caps",
    denied: "deny: modify-governance",
  },
  { caps: "deny: modify-governance", path: ".ostk/agents/notes.md" },
  { caps: "deny: modify-governance", path: "docs/HUMANFILE" },
  { caps: "deny: modify-governance", path: ".ostk/audit.jsonl" },
  { caps: "deny: write-src", path: "src/main.ts", denied: "deny: write-src" },
  { caps: "deny: write-src", path: "README.md", denied: "deny: write-src" },
  { caps: "deny: write-src", path: "HUMANFILE" },
  { caps: "deny: write-src", path: ".ostk/gen_table.jsonl" },
  { caps: "deny: write-all", path: "src/main.ts", denied: "deny: write-all" },
  { caps: "deny: write-all", path: ".ostk/pins/default/pin.caps", denied: "deny: write-all" },
  { caps: "deny-path: src/secret", path: "src/secret", denied: "deny-path: src/secret" },
  { caps: "deny-path: src/secret", path: "src/secret/key.txt", denied: "deny-path: src/secret" },
  { caps: "deny-path: src/secret", path: "src/secrets/key.txt" },
  { caps: "deny-path: src/secret", path: "lib/src/secret" },
  { caps: "deny-path: src/*.env", path: "src/prod.env", denied: "deny-path: src/*.env" },
  { caps: "deny-path: src/*.env", path: "src/deep/prod.env" },
  { caps: "deny-path: **/*.pem", path: "key.pem", denied: "deny-path: **/*.pem" },
  { caps: "deny-path: **/*.pem", path: "a/b/c/key.pem", denied: "deny-path: **/*.pem" },
  { caps: "deny-path: **/*.pem", path: "a/key.pem.txt" },
  { caps: "deny-path: a/**/b", path: "a/b", denied: "deny-path: a/**/b" },
  { caps: "deny-path: a/**/b", path: "a/x/y/b/file", denied: "deny-path: a/**/b" },
  { caps: "deny-path: secret?", path: "secret1/x", denied: "deny-path: secret?" },
  { caps: "deny-path: secret?", path: "secret12" },
  { caps: "deny-path: a.b", path: "axb" },
  { caps: "deny-path: docs/ build", path: "build/out.js", denied: "deny-path: build" },
  { caps: "deny: write-kernel", path: "./.ostk/x", denied: "deny: write-kernel" },
  { caps: "", path: "../outside", denied: "path" },
  { caps: "", path: "/etc/passwd", denied: "path" },
  { caps: "", path: "anything/at/all" },
];

for (const c of writeCases) {
  const verdict = c.denied ? `denied by ${c.denied}` : "allowed";
  Deno.test(`checkWrite ${JSON.stringify(c.caps)} ${c.path}: ${verdict}`, () => {
    const decision = checkWrite(policyOf(c.caps), c.path);
    if (!c.denied) return assert.deepEqual(decision, { allowed: true });
    assert.equal(decision.allowed, false);
    if (decision.allowed) return;
    assert.equal(decision.rule, c.denied);
    if (c.denied !== "path") {
      assert.deepEqual(decision.source, { file: FILE, line: 1 });
      assert.ok(decision.reason.includes(`${FILE}:1`), decision.reason);
    }
  });
}

Deno.test("checkWrite reports the first matching rule with its line", () => {
  const policy = policyOf("# header\ndeny-path: src/gen\n\ndeny: write-src\n");
  const a = checkWrite(policy, "src/gen/x.ts");
  assert.ok(!a.allowed && a.rule === "deny-path: src/gen" && a.source.line === 2);
  const b = checkWrite(policy, "src/app.ts");
  assert.ok(!b.allowed && b.rule === "deny: write-src" && b.source.line === 4);
});

// --- checkVerb ----------------------------------------------------------------------------

const verbCases: { command: string; denied: boolean }[] = [
  { command: "git push", denied: true },
  { command: "git push origin main", denied: true },
  { command: "git  push", denied: true },
  { command: "  git\tpush  --force", denied: true },
  { command: "git pushx", denied: false },
  { command: "git pus", denied: false },
  { command: "git", denied: false },
  { command: "git status", denied: false },
  { command: "echo git push", denied: false },
  { command: "make && git push", denied: true },
  { command: "make; git push", denied: true },
  { command: "true || git push", denied: true },
  { command: "FOO=1 git push", denied: true },
  { command: "echo $(git push)", denied: true },
  { command: "rm -rf /", denied: true },
  { command: "rm -r -f /", denied: false },
  { command: "rm -rfv x", denied: false },
];

for (const c of verbCases) {
  Deno.test(`checkVerb ${JSON.stringify(c.command)}: ${c.denied ? "denied" : "allowed"}`, () => {
    const policy = policyOf("deny: write-kernel\ndeny-verb: git push\ndeny-verb: rm -rf\n");
    const decision = checkVerb(policy, c.command);
    assert.equal(decision.allowed, !c.denied);
    if (decision.allowed) return;
    const line = c.command.includes("rm") ? 3 : 2;
    assert.deepEqual(decision.source, { file: FILE, line });
    assert.ok(decision.reason.includes(`${FILE}:${line}`), decision.reason);
  });
}

// --- loadPolicy ---------------------------------------------------------------------------

Deno.test("loadPolicy unions the default and the active pin", async () => {
  await withPins({
    default: "deny: write-kernel\n",
    review: "# read-only reviewer\ndeny: write-src\ndeny-verb: git push\n",
  }, async (ostkDir) => {
    const policy = await loadPolicy(ostkDir, "review");
    assert.equal(policy.error, undefined);
    assert.deepEqual(policy.pins, ["default", "review"]);
    const kernel = checkWrite(policy, ".ostk/gen_table.jsonl");
    assert.ok(!kernel.allowed);
    assert.deepEqual(kernel.source, { file: ".ostk/pins/default/pin.caps", line: 1 });
    const src = checkWrite(policy, "src/a.ts");
    assert.ok(!src.allowed);
    assert.deepEqual(src.source, { file: ".ostk/pins/review/pin.caps", line: 2 });
    assert.equal(checkWrite(policy, "HUMANFILE").allowed, true);
    assert.equal(checkVerb(policy, "git push").allowed, false);

    // The default alone does not carry the active pin's denies.
    const base = await loadPolicy(ostkDir, "default");
    assert.equal(checkWrite(base, "src/a.ts").allowed, true);
    assert.equal(checkWrite(base, ".ostk/x").allowed, false);
  });
});

Deno.test("loadPolicy reads OSTK_PIN when no pin is named", async () => {
  await withPins({ default: "", ci: "deny: write-all\n" }, async (ostkDir) => {
    const before = Deno.env.get("OSTK_PIN");
    Deno.env.set("OSTK_PIN", "ci");
    try {
      const policy = await loadPolicy(ostkDir);
      assert.deepEqual(policy.pins, ["default", "ci"]);
      assert.equal(checkWrite(policy, "README.md").allowed, false);
    } finally {
      if (before === undefined) Deno.env.delete("OSTK_PIN");
      else Deno.env.set("OSTK_PIN", before);
    }
  });
});

Deno.test("loadPolicy treats an empty pin name as default", async () => {
  await withPins({ default: "deny: write-kernel\n" }, async (ostkDir) => {
    const policy = await loadPolicy(ostkDir, "");
    assert.equal(policy.error, undefined);
    assert.deepEqual(policy.pins, ["default"]);
  });
});

/** Assert that a policy denies every write and command and names `where` in its reason. */
function assertFailClosed(policy: Policy, where: string): void {
  assert.ok(policy.error, "expected a load error");
  for (const path of ["src/a.ts", "README.md", "HUMANFILE", ".ostk/x", "."]) {
    const d = checkWrite(policy, path);
    assert.ok(!d.allowed, `${path} should be denied`);
    assert.equal(d.rule, "fail-closed");
    assert.ok(d.reason.includes(where), d.reason);
  }
  const v = checkVerb(policy, "ls");
  assert.ok(!v.allowed && v.reason.includes(where), "commands are denied too");
}

Deno.test("loadPolicy fails closed when the active pin does not exist", async () => {
  await withPins({ default: "deny: write-kernel\n" }, async (ostkDir) => {
    const policy = await loadPolicy(ostkDir, "ghost");
    assertFailClosed(policy, ".ostk/pins/ghost/pin.caps");
    assert.ok(policy.error!.message.includes("pin 'ghost' does not exist"));
  });
});

Deno.test("loadPolicy fails closed when the default pin is missing", async () => {
  await withPins({}, async (ostkDir) => {
    const policy = await loadPolicy(ostkDir, "default");
    assertFailClosed(policy, ".ostk/pins/default/pin.caps");
    assert.ok(policy.error!.message.includes("run 'ostk init'"));
  });
});

Deno.test("loadPolicy fails closed on a broken active pin, naming file:line", async () => {
  await withPins({
    default: "deny: write-kernel\n",
    broken: "# ok\ndeny: write-src\ndeny: write-everything\n",
  }, async (ostkDir) => {
    const policy = await loadPolicy(ostkDir, "broken");
    assertFailClosed(policy, ".ostk/pins/broken/pin.caps:3");
    assert.ok(policy.error!.message.includes("unknown deny token 'write-everything'"));
  });
});

Deno.test("loadPolicy fails closed on a broken default pin", async () => {
  await withPins({ default: "deny-verb:\n", ok: "deny: write-src\n" }, async (ostkDir) => {
    assertFailClosed(await loadPolicy(ostkDir, "ok"), ".ostk/pins/default/pin.caps:1");
  });
});

Deno.test("loadPolicy fails closed on a pin name that is a path", async () => {
  await withPins({ default: "" }, async (ostkDir) => {
    for (const name of ["../default", "a/b", ".."]) {
      const policy = await loadPolicy(ostkDir, name);
      assertFailClosed(policy, "is not a plain name");
    }
  });
});

Deno.test("loadPolicy fails closed on a pin file that is not UTF-8", async () => {
  await withPins({ default: "" }, async (ostkDir) => {
    await Deno.writeFile(`${ostkDir}/pins/default/pin.caps`, new Uint8Array([0x64, 0xff, 0x0a]));
    assertFailClosed(await loadPolicy(ostkDir, "default"), "not valid UTF-8");
  });
});

Deno.test("isGovernancePath covers the governance files only", () => {
  for (const p of ["HUMANFILE", ".ostk/ENTITYFILE", ".ostk/agents/a.Agentfile", ".ostk/pins"]) {
    assert.equal(isGovernancePath(p), true, p);
  }
  for (const p of ["src/HUMANFILE", ".ostk/agents/a/b.Agentfile", ".ostk/pinsx", "HUMANFILE.md"]) {
    assert.equal(isGovernancePath(p), false, p);
  }
});
