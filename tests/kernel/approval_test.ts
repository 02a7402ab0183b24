/**
 * The approval chain: how calls are classified, one case per step that reaches it while the
 * same call would have matched a later step (so the order is what decides), and asking the
 * operator.
 */
import assert from "node:assert/strict";
import {
  type ApprovalContext,
  type ApprovalRequest,
  type ApprovalSource,
  askOperator,
  classify,
  classifyCommand,
  type DangerDetector,
  decide,
  type OperatorAnswer,
  type ToolClass,
} from "../../kernel/approval.ts";
import { parsePinCaps, type Policy } from "../../kernel/pin_caps.ts";

const policyOf = (caps: string): Policy => ({
  pins: ["default"],
  rules: parsePinCaps(caps, ".ostk/pins/default/pin.caps").rules,
});
const OPEN = policyOf("");
const rmDanger: DangerDetector = (cmd) =>
  /\brm\s+-rf\b/.test(cmd) ? { pattern: "rm -rf", reason: "deletes a tree" } : undefined;

const ctx = (over: Partial<ApprovalContext> = {}): ApprovalContext => ({
  policy: OPEN,
  permissions: "governed",
  ...over,
});

Deno.test("classify: tools by name", () => {
  const cases: [string, unknown, ToolClass][] = [
    ["file:read", { path: "a" }, "FileRead"],
    ["file:list", {}, "FileRead"],
    ["file:edit", { path: "a" }, "FileEdit"],
    ["file:write", { path: "a" }, "FileWrite"],
    ["file:create", { path: "a" }, "FileWrite"],
    ["file:delete", { path: "a" }, "FileWrite"],
    ["kernel:status", {}, "KernelRead"],
    ["kernel/ps", {}, "KernelRead"],
    ["session:list", {}, "KernelRead"],
    ["ps", {}, "KernelRead"],
    ["session:spawn", { alias: "a" }, "KernelSpawn"],
    ["kernel:spawn", {}, "KernelSpawn"],
    ["kernel:secret", {}, "KernelSecret"],
    ["kernel:identity", {}, "KernelSecret"],
    ["session:kill", {}, "KernelWrite"],
    ["kernel:pin", {}, "KernelWrite"],
    ["shell", { command: "ls" }, "ShellRead"],
    ["shell:run", { command: ["rm", "a b"] }, "ShellWrite"],
    ["bash", { command: "make" }, "ShellExec"],
    ["mystery:tool", {}, "ShellExec"],
  ];
  for (const [tool, args, want] of cases) assert.equal(classify(tool, args), want, tool);
});

Deno.test("classifyCommand: read, write, exec, secret", () => {
  const cases: [string, ToolClass][] = [
    ["ls -la", "ShellRead"],
    ["cat README.md | grep -n ostk | head -3", "ShellRead"],
    ["git status && git diff HEAD~1", "ShellRead"],
    ["git log --oneline 2>&1", "ShellRead"],
    ["git branch -a", "ShellRead"],
    ["sed -n 1,5p a.txt", "ShellRead"],
    ["grep x a > /dev/null", "ShellRead"],
    ["find . -name '*.ts'", "ShellRead"],
    ["echo hi > notes.txt", "ShellWrite"],
    ["cat a >> b", "ShellWrite"],
    ["echo hi>out", "ShellWrite"],
    ["mv a b", "ShellWrite"],
    ["/bin/rm -f x", "ShellWrite"],
    ["sed -i s/a/b/ f", "ShellWrite"],
    ["git commit -m 'msg'", "ShellWrite"],
    ["git branch new-feature", "ShellWrite"],
    ["find . -delete", "ShellWrite"],
    ["ls; touch x", "ShellWrite"],
    ["npm test", "ShellExec"],
    ["deno task test > log.txt", "ShellExec"],
    ["find . -exec rm {} ;", "ShellExec"],
    ["ls $(make)", "ShellExec"],
    ["", "ShellExec"],
    ["env", "ShellSecret"],
    ["env | grep KEY", "ShellSecret"],
    ["printenv HOME", "ShellSecret"],
    ["cat ~/.ssh/id_ed25519.pub", "ShellSecret"],
    ["cat .env", "ShellSecret"],
    ["cp ~/.aws/credentials /tmp/c", "ShellSecret"],
    ['curl -H "Authorization: $GITHUB_TOKEN" x', "ShellSecret"],
    ["openssl x509 -in cert.pem", "ShellSecret"],
    ["FOO=1 env BAR=2 node app.js", "ShellExec"],
    ["export", "ShellSecret"],
    ["export PATH=/x", "ShellExec"],
  ];
  for (const [cmd, want] of cases) assert.equal(classifyCommand(cmd), want, cmd);
});

/** Assert the audit fields of a decision, and nothing else. */
function expect(
  got: ReturnType<typeof decide>,
  want: { class: ToolClass; decision: string; step: number },
  reason: RegExp,
) {
  assert.deepEqual(Object.keys(got).sort(), ["class", "decision", "reason", "step"]);
  assert.deepEqual({ class: got.class, decision: got.decision, step: got.step }, want);
  assert.match(got.reason, reason);
}

// Each step's case uses a context in which every later step would allow the call.

Deno.test("step 1: pin caps deny a write, before autonomous, approve-all and TOOL", () => {
  const everything = ctx({
    policy: policyOf("deny: write-kernel\ndeny-path: secrets/"),
    permissions: "autonomous",
    approveAll: new Set(["FileEdit", "FileWrite"]),
    tools: [{ class: "FileEdit" }],
  });
  expect(
    decide({ tool: "file:edit", args: { path: ".ostk/HUMANFILE" } }, everything),
    { class: "FileEdit", decision: "deny", step: 1 },
    /deny: write-kernel.*pin\.caps:1/,
  );
  expect(
    decide({ tool: "file:create", args: { path: "secrets/k" } }, everything),
    { class: "FileWrite", decision: "deny", step: 1 },
    /deny-path: secrets/,
  );
  expect(
    decide({ tool: "file:write", args: { path: "/etc/passwd" } }, everything),
    { class: "FileWrite", decision: "deny", step: 1 },
    /not a root-relative path/,
  );
  expect(
    decide({ tool: "file:write", args: {} }, everything),
    { class: "FileWrite", decision: "deny", step: 1 },
    /without a path/,
  );
  // The same write elsewhere passes step 1 and is allowed by autonomous at step 4.
  assert.equal(decide({ tool: "file:edit", args: { path: "src/a.ts" } }, everything).step, 4);
});

Deno.test("step 1: pin caps deny a verb, even one detectDanger would flag", () => {
  const c = ctx({
    policy: policyOf("deny-verb: rm -rf"),
    permissions: "autonomous",
    detectDanger: rmDanger,
  });
  expect(
    decide({ tool: "shell", args: { command: "cd x && rm -rf build" } }, c),
    { class: "ShellWrite", decision: "deny", step: 1 },
    /deny-verb: rm -rf/,
  );
});

Deno.test("step 1: a pin that failed to load denies every write and command", () => {
  const broken: Policy = {
    pins: ["default"],
    rules: [],
    error: { message: "bad", source: { file: "p", line: 2 } },
  };
  const c = ctx({ policy: broken, permissions: "autonomous" });
  assert.equal(decide({ tool: "file:edit", args: { path: "a" } }, c).decision, "deny");
  assert.equal(decide({ tool: "shell", args: { command: "ls" } }, c).step, 1);
  // Reads do not consult the pin: step 3 allows kernel reads, step 4 file reads.
  assert.equal(decide({ tool: "kernel:status" }, c).step, 3);
  assert.equal(decide({ tool: "file:read", args: { path: "a" } }, c).step, 4);
});

Deno.test("step 2: a dangerous command asks, even autonomous, approved-all or allowed by TOOL", () => {
  const c = ctx({
    permissions: "autonomous",
    approveAll: new Set(["ShellWrite"]),
    tools: [{ class: "ShellWrite" }],
    detectDanger: rmDanger,
  });
  expect(
    decide({ tool: "shell", args: { command: "rm -rf node_modules" } }, c),
    { class: "ShellWrite", decision: "ask", step: 2 },
    /dangerous command \(rm -rf\): deletes a tree/,
  );
  // A detector that finds nothing lets the same call through to autonomous at step 4.
  assert.equal(
    decide({ tool: "shell", args: { command: "rm -rf node_modules" } }, {
      ...c,
      detectDanger: () => undefined,
    }).step,
    4,
  );
});

Deno.test("step 2: kernel/dangerous.ts is the detector unless one is given", () => {
  const c = ctx({ permissions: "autonomous", approveAll: new Set(["ShellWrite"]) });
  expect(
    decide({ tool: "shell", args: { command: "cd src && rm -rf /" } }, c),
    { class: "ShellWrite", decision: "ask", step: 2 },
    /dangerous command \(rm-root\)/,
  );
  assert.equal(decide({ tool: "shell", args: { command: "rm -rf ./build" } }, c).step, 4);
});

Deno.test("step 3: KernelRead is allowed even in plan mode", () => {
  const c = ctx({
    permissions: "plan",
    policy: policyOf("deny: write-all"),
    detectDanger: rmDanger,
  });
  expect(
    decide({ tool: "kernel:ps" }, c),
    { class: "KernelRead", decision: "allow", step: 3 },
    /kernel reads/,
  );
});

Deno.test("step 4: the permission mode allows by class", () => {
  const auto = ctx({ permissions: "auto", approveAll: new Set(["FileEdit"]) });
  expect(
    decide({ tool: "file:edit", args: { path: "src/a.ts" } }, auto),
    { class: "FileEdit", decision: "allow", step: 4 },
    /permissions auto allows FileEdit/,
  );
  assert.equal(decide({ tool: "shell", args: { command: "git diff" } }, auto).step, 4);
  // auto does not cover ShellExec nor kernel writes: they fall through to step 7.
  assert.equal(decide({ tool: "shell", args: { command: "make" } }, auto).step, 7);
  assert.equal(decide({ tool: "session:spawn" }, auto).step, 7);
  const autonomous = ctx({ permissions: "autonomous" });
  expect(
    decide({ tool: "kernel:secret" }, autonomous),
    { class: "KernelSecret", decision: "allow", step: 4 },
    /permissions autonomous/,
  );
  for (const mode of ["plan", "governed"] as const) {
    const d = decide({ tool: "file:read", args: { path: "a" } }, ctx({ permissions: mode }));
    assert.equal(d.step, 7, mode);
  }
});

Deno.test("step 5: the session's approve-all list, before TOOL lines", () => {
  const c = ctx({
    permissions: "governed",
    approveAll: new Set(["ShellExec"]),
    tools: [{ class: "ShellExec" }],
  });
  expect(
    decide({ tool: "shell", args: { command: "npm test" } }, c),
    { class: "ShellExec", decision: "allow", step: 5 },
    /operator approved every ShellExec/,
  );
});

Deno.test("step 6: TOOL patterns by class and path or command substring", () => {
  const c = ctx({
    permissions: "governed",
    approveAll: new Set(["FileRead"]),
    tools: [{ class: "FileEdit", substring: "src/" }, {
      class: "ShellExec",
      substring: "deno test",
    }],
  });
  expect(
    decide({ tool: "file:edit", args: { path: "src/a.ts" } }, c),
    { class: "FileEdit", decision: "allow", step: 6 },
    /TOOL FileEdit\(src\/\)/,
  );
  assert.equal(decide({ tool: "shell", args: { command: "deno test -A" } }, c).step, 6);
  assert.equal(decide({ tool: "file:edit", args: { path: "docs/a.md" } }, c).step, 7);
  assert.equal(decide({ tool: "file:write", args: { path: "src/a.ts" } }, c).step, 7);
  assert.equal(decide({ tool: "shell", args: { command: "deno run x" } }, c).step, 7);
});

Deno.test("step 6: a privileged TOOL line grants nothing without autonomous", () => {
  const c = ctx({
    permissions: "auto",
    tools: [{ class: "KernelSpawn" }, { class: "ShellSecret" }],
  });
  expect(
    decide({ tool: "session:spawn" }, c),
    { class: "KernelSpawn", decision: "ask", step: 7 },
    /TOOL KernelSpawn needs permissions autonomous/,
  );
  assert.equal(decide({ tool: "shell", args: { command: "printenv" } }, c).step, 7);
});

Deno.test("step 7: nothing allowed the call, so ask", () => {
  expect(
    decide({ tool: "shell", args: { command: "make" } }, ctx({ tools: [{ class: "FileRead" }] })),
    { class: "ShellExec", decision: "ask", step: 7 },
    /no rule allows ShellExec under permissions governed/,
  );
});

// ---- the operator ----

const REQUEST: ApprovalRequest = {
  tool: "shell",
  args: { command: "make" },
  class: "ShellExec",
  reason: "no rule allows ShellExec",
};
const answering = (answer: OperatorAnswer | undefined): ApprovalSource => ({
  ask: () => Promise.resolve(answer),
});
const silent: ApprovalSource = { ask: () => new Promise(() => {}) };

Deno.test("askOperator: y allows once, a allows and remembers the class, n denies", async () => {
  const approveAll = new Set<ToolClass>();
  const yes = await askOperator([answering("y")], REQUEST, 5000, approveAll);
  assert.deepEqual(
    { decision: yes.decision, step: yes.step, class: yes.class, answer: yes.answer },
    { decision: "allow", step: 7, class: "ShellExec", answer: "y" },
  );
  assert.equal(approveAll.size, 0);
  const no = await askOperator([answering("n")], REQUEST, 5000, approveAll);
  assert.equal(no.decision, "deny");
  assert.match(no.reason, /operator denied/);
  const all = await askOperator([answering("a")], REQUEST, 5000, approveAll);
  assert.equal(all.decision, "allow");
  assert.deepEqual([...approveAll], ["ShellExec"]);
  // The remembered class now passes at step 5.
  const next = decide({ tool: "shell", args: { command: "make all" } }, ctx({ approveAll }));
  assert.equal(next.step, 5);
});

Deno.test("askOperator: no source, or no answer from any, denies", async () => {
  const none = await askOperator([], REQUEST, 5000);
  assert.equal(none.decision, "deny");
  assert.match(none.reason, /no operator can be asked/);
  const failing: ApprovalSource = { ask: () => Promise.reject(new Error("client gone")) };
  const bogus: ApprovalSource = { ask: () => Promise.resolve("maybe" as OperatorAnswer) };
  const unanswered = await askOperator([answering(undefined), failing, bogus], REQUEST, 5000);
  assert.equal(unanswered.decision, "deny");
  assert.equal(unanswered.answer, undefined);
  // Every source gave up before the timeout: the reason says so, not "nobody answered in time".
  assert.match(unanswered.reason, /withdrawn before anyone answered/);
  assert.doesNotMatch(unanswered.reason, /within/);
});

Deno.test("askOperator: no answer within the timeout denies and withdraws the question", async () => {
  let signal: AbortSignal | undefined;
  const waiting: ApprovalSource = {
    ask: (_req, s) => {
      signal = s;
      return new Promise(() => {});
    },
  };
  const d = await askOperator([waiting, silent], REQUEST, 10);
  assert.equal(d.decision, "deny");
  assert.match(d.reason, /within 10 ms/);
  assert.equal(signal?.aborted, true);
});

Deno.test("askOperator: the first real answer wins over silent and failing sources", async () => {
  const failing: ApprovalSource = { ask: () => Promise.reject(new Error("x")) };
  const d = await askOperator(
    [silent, failing, answering(undefined), answering("n")],
    REQUEST,
    5000,
  );
  assert.equal(d.decision, "deny");
  assert.equal(d.answer, "n");
  const y = await askOperator([silent, answering("y")], REQUEST, 5000);
  assert.equal(y.decision, "allow");
});
