/**
 * Session limits (actors/limits.ts): the rule that decides when a limit is hit, the sandbox
 * policy built from LIMIT grants, and tokens and wall-clock limits stopping real sessions.
 */
import assert from "node:assert/strict";
import type { DaemonClient } from "../../actors/client.ts";
import { limitHit, sessionPolicy } from "../../actors/limits.ts";
import {
  auditRows,
  call,
  closeClient,
  connect,
  type DaemonProcess,
  killDaemonProcess,
  type Project,
  rowOf,
  startDaemonProcess,
  waitFor,
  waitForRows,
  withProject,
} from "../helpers/daemon_fixture.ts";

Deno.test("limitHit: 'over' after a turn, 'reached' before a call", () => {
  const startedAt = 1_000_000;
  const usage = (turns: number, tokens: number) => ({ turns, tokens: { in: tokens, out: 0 } });
  const cases: [string, object, ReturnType<typeof usage>, number, string, string | undefined][] = [
    ["turns met, after a turn", { turns: 2 }, usage(2, 0), startedAt, "over", undefined],
    ["turns met, before a call", { turns: 2 }, usage(2, 0), startedAt, "reached", "turns"],
    ["turns passed", { turns: 2 }, usage(3, 0), startedAt, "over", "turns"],
    ["tokens met, after a turn", { tokens: 100 }, usage(1, 100), startedAt, "over", undefined],
    ["tokens passed", { tokens: 100 }, usage(1, 101), startedAt, "over", "tokens"],
    ["wall clock met", { wall_clock_ms: 50 }, usage(0, 0), startedAt + 50, "over", "wall_clock"],
    [
      "wall clock not yet",
      { wall_clock_ms: 50 },
      usage(0, 0),
      startedAt + 49,
      "reached",
      undefined,
    ],
    [
      "a budget is never spent by scripts",
      { budget_usd: 0.01 },
      usage(99, 9),
      startedAt,
      "reached",
      undefined,
    ],
    ["no limits", {}, usage(1e6, 1e9), startedAt + 1e9, "reached", undefined],
  ];
  for (const [name, limits, used, now, mode, want] of cases) {
    const hit = limitHit({ limits, startedAt }, used, mode as "over" | "reached", now);
    assert.equal(hit?.limit, want, name);
  }
  assert.deepEqual(
    limitHit({ limits: { turns: 2 }, startedAt }, usage(3, 0), "over"),
    { limit: "turns", value: 3, max: 2 },
  );
});

Deno.test("sessionPolicy: the default policy plus LIMIT read-path, write-path and net", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${root}/.ostk`);
    await Deno.mkdir(`${root}/src`);
    assert.equal(await sessionPolicy(root, { isolation: "none", write: ["src/"] }), undefined);
    assert.equal(await sessionPolicy(root, undefined), undefined);
    const p = (await sessionPolicy(root, {
      isolation: "landlock",
      read: ["/opt/tools"],
      write: ["./build/", "src/gen"],
      net: ["registry.npmjs.org:443", "none"],
    }))!;
    assert.ok(p.read.includes(root) && p.read.includes("/opt/tools"));
    assert.ok(p.write.includes(`${root}/src`), "the default write grants stay");
    assert.ok(p.write.includes(`${root}/build`) && p.write.includes(`${root}/src/gen`));
    assert.ok(!p.write.some((w) => w.startsWith(`${root}/.ostk`)), "never the kernel dir");
    assert.deepEqual(p.net, { connect: [443], bind: [] });
    assert.equal(p.allow_unsandboxed, false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** Spawn a script session with `limits` and wait for its exit row. */
async function limited(
  project: Project,
  client: DaemonClient,
  alias: string,
  turns: { think_ms: number; tokens: { in: number; out: number } }[],
  limits: Record<string, number>,
) {
  const script = `${project.root}/${alias}.jsonl`;
  const lines = turns.map((t, i) =>
    JSON.stringify({
      ...t,
      calls: [{ tool: "file:write", args: { path: `${alias}.txt`, content: `turn ${i}\n` } }],
    })
  );
  await Deno.writeTextFile(script, lines.join("\n") + "\n");
  await call(client, "session/spawn", {
    alias,
    cpu: { kind: "script", script },
    permissions: "auto",
    limits,
  });
  const rows = await waitFor(`${alias} to exit`, async () => {
    const rows = await auditRows(project);
    return rows.some((r) => r.event === "session.exit" && r.session === alias) ? rows : undefined;
  });
  return {
    limit: rows.find((r) => r.event === "session.limit" && r.session === alias),
    exit: rows.find((r) => r.event === "session.exit" && r.session === alias)!,
    text: await Deno.readTextFile(`${project.root}/${alias}.txt`),
  };
}

Deno.test("limits: tokens and wall_clock stop a session; ps shows the reason", async () => {
  await withProject(async (project) => {
    let daemon: DaemonProcess | undefined;
    let client: DaemonClient | undefined;
    try {
      daemon = await startDaemonProcess(project);
      client = await connect(project);
      // 400 tokens a turn, 1000 allowed: the third turn passes the limit and is the last.
      const tokens = await limited(
        project,
        client,
        "tok",
        Array.from({ length: 6 }, () => ({ think_ms: 0, tokens: { in: 300, out: 100 } })),
        { tokens: 1000 },
      );
      assert.deepEqual([tokens.exit.outcome, tokens.exit.limit], ["limited", "tokens"]);
      assert.equal(tokens.exit.turns, 3);
      assert.deepEqual([tokens.limit?.value, tokens.limit?.max], [1200, 1000]);
      assert.equal(tokens.text, "turn 2\n", "nothing ran after the limit");

      // Six turns that think 400 ms each cannot fit in one second, however fast the machine.
      const clock = await limited(
        project,
        client,
        "clock",
        Array.from({ length: 6 }, () => ({ think_ms: 400, tokens: { in: 0, out: 0 } })),
        { wall_clock_ms: 1000 },
      );
      assert.deepEqual([clock.exit.outcome, clock.exit.limit], ["limited", "wall_clock"]);
      assert.ok(Number(clock.exit.turns) < 6, JSON.stringify(clock.exit));
      assert.equal(clock.limit?.limit, "wall_clock");

      const rows = await waitForRows(
        client,
        "both limited",
        (rows) => rows.filter((r) => r.state === "limited").length === 2,
      );
      assert.equal(rowOf(rows, "tok").reason, "LIMIT tokens reached (1200 of 1000)");
      assert.match(rowOf(rows, "clock").reason ?? "", /^LIMIT wall_clock reached \(\d+ of 1000\)$/);
      assert.equal(rowOf(rows, "tok").turns, 3);
    } finally {
      await closeClient(client);
      await killDaemonProcess(daemon);
    }
  });
});
