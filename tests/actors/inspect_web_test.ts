/**
 * `ostk inspect --web` (actors/inspect_web.ts): the diagram layout, the self-contained page,
 * loopback-only binding, and end to end in headless Chromium (npm:playwright-core driving the
 * system `chromium`): a live script session highlighted as it runs, then as killed once killed.
 */
import assert from "node:assert/strict";
import { machineGraph } from "../../actors/inspect_export.ts";
import { inspectPage, layoutMachine, serveInspectWeb } from "../../actors/inspect_web.ts";
import { sessionMachine } from "../../actors/session_machine.ts";
import { ostkPaths } from "../../kernel/layout.ts";
import {
  AGENT_FIXTURES,
  call,
  closeClient,
  connect,
  type DaemonProcess,
  killDaemonProcess,
  ostk,
  pacedTranscript,
  startDaemonProcess,
  waitFor,
  withProject,
} from "../helpers/daemon_fixture.ts";
import { ostkCommand } from "../helpers/run_ostk.ts";

function findChromium(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return undefined;
}
const CHROMIUM = findChromium();
/**
 * playwright-core reads the home directory at import time unless PLAYWRIGHT_BROWSERS_PATH is
 * set, and the test permissions allow no `homedir`: set it (no browser is downloaded; the system
 * Chromium is launched by path), then import.
 */
async function loadChromium() {
  if (!Deno.env.get("PLAYWRIGHT_BROWSERS_PATH")) Deno.env.set("PLAYWRIGHT_BROWSERS_PATH", "0");
  return (await import("playwright-core")).chromium;
}
const ARTIFACTS = Deno.env.get("OSTK_TEST_ARTIFACTS") ?? "/tmp/ostk_test_artifacts";

Deno.test("inspect web: nested states are laid out inside their parents, siblings never overlap", () => {
  const graph = machineGraph(sessionMachine);
  const { boxes, w, h } = layoutMachine(graph);
  assert.equal(boxes.length, graph.states.length);
  const byId = new Map(boxes.map((b) => [b.id, b]));
  for (const s of graph.states) {
    const b = byId.get(s.id)!;
    assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.w <= w && b.y + b.h <= h, s.id);
    if (s.parent === null) continue;
    const p = byId.get(s.parent)!;
    assert.ok(
      b.x > p.x && b.y > p.y && b.x + b.w < p.x + p.w && b.y + b.h < p.y + p.h,
      `${s.id} inside ${s.parent}`,
    );
    for (const t of graph.states) {
      if (t.parent !== s.parent || t.id === s.id) continue;
      const o = byId.get(t.id)!;
      const apart = b.x + b.w <= o.x || o.x + o.w <= b.x || b.y + b.h <= o.y || o.y + o.h <= b.y;
      assert.ok(apart, `${s.id} and ${t.id} overlap`);
    }
  }
});

Deno.test("inspect web: the page loads nothing from elsewhere and has a box per state", () => {
  const page = inspectPage();
  assert.doesNotMatch(page, /\b(src|href)=["']?(https?:)?\/\//);
  assert.doesNotMatch(page, /<link\b|@import/);
  for (const s of machineGraph(sessionMachine).states) {
    assert.ok(page.includes(`data-state="${s.id}"`), s.id);
  }
});

Deno.test("inspect web: only loopback hosts are served", async () => {
  const paths = ostkPaths("/nonexistent");
  for (const host of ["0.0.0.0", "192.168.1.2", "::"]) {
    assert.throws(() => serveInspectWeb({ paths, hostname: host }), /loopback only/);
  }
  const server = serveInspectWeb({ paths, port: 0 });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(server.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    assert.match(await res.text(), /<svg id="diagram"/);
    const missing = await fetch(server.url + "nope");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test({
  name:
    "inspect web: in headless Chromium the live session's state is highlighted, then 'killed' after a kill",
  ignore: CHROMIUM === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withProject(async (project) => {
      let daemon: DaemonProcess | undefined;
      let web: Deno.ChildProcess | undefined;
      const chromium = await loadChromium();
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--headless"],
      });
      try {
        daemon = await startDaemonProcess(project);
        // The real CLI, as a process: `ostk inspect --web --port 0` prints its URL.
        web = (await ostkCommand(project.scratch, ["inspect", "--web", "--port", "0"], {
          cwd: project.root,
          env: project.env,
        })).spawn();
        const reader = web.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let printed = "";
        const url = await waitFor("the web URL", async () => {
          const { value, done } = await reader.read();
          if (done) throw new Error(`inspect --web exited: ${printed}`);
          printed += value;
          return printed.match(/serving (http:\/\/127\.0\.0\.1:\d+\/)/)?.[1];
        });
        console.log(`inspect --web at ${url}`);

        await Deno.copyFile(`${AGENT_FIXTURES}shared.txt`, `${project.root}/shared.txt`);
        const script = await pacedTranscript(
          "editor_a",
          `${project.scratch.dir}/slow.jsonl`,
          1500,
        );
        const spawn = await ostk(project, [
          "spawn",
          "ed",
          "--cpu",
          "script",
          "--script",
          script,
          "--json",
        ]);
        assert.equal(spawn.code, 0, spawn.stderr);
        const alias = (JSON.parse(spawn.stdout) as { alias: string }).alias;

        const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
        const external: string[] = [];
        page.on("request", (r) => {
          if (!r.url().startsWith(url)) external.push(r.url());
        });
        await page.goto(`${url}?alias=${alias}`);
        const active = () => page.getAttribute("#diagram", "data-active");
        await waitFor(
          "a live state highlighted",
          async () => (await active())?.startsWith("session.live.") ?? false,
          20_000,
          100,
        );
        const live = await active();
        assert.equal(
          await page.locator(`g.state.active`).getAttribute("data-state"),
          live,
          "exactly the active leaf is highlighted",
        );
        assert.equal(
          await page.locator(`g.state.active-parent[data-state="session.live"]`).count(),
          1,
        );
        assert.equal(await page.locator(`#fleet a[data-alias="${alias}"]`).count(), 1);
        await waitFor(
          "recent events listed",
          async () => (await page.locator("#events div").count()) > 0,
          10_000,
          100,
        );

        const client = await connect(project);
        try {
          await call(client, "session/kill", { alias });
        } finally {
          await closeClient(client);
        }
        await waitFor(
          "'killed' highlighted",
          async () => (await active()) === "session.killed",
          20_000,
          100,
        );
        assert.equal(await page.locator("g.state.active").count(), 1);
        assert.equal(await page.getAttribute("#status", "data-state"), "killed");
        assert.deepEqual(external, [], "the page fetched nothing from elsewhere");

        await Deno.mkdir(ARTIFACTS, { recursive: true });
        const shot = `${ARTIFACTS}/inspect_web_dead.png`;
        await page.screenshot({ path: shot, fullPage: true });
        console.log(`screenshot: ${shot}`);
        await reader.cancel();
      } finally {
        await browser.close();
        if (web) {
          try {
            web.kill("SIGKILL");
          } catch { /* already gone */ }
          await web.status;
        }
        await killDaemonProcess(daemon);
      }
    });
  },
});
