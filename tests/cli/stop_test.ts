/**
 * `ostk stop` says "stopped" only when the daemon has gone. A listener that answers every request
 * and never goes away stands in for a daemon stuck draining: stop must fail, not report success.
 */
import assert from "node:assert/strict";
import { chooseSocketPath, recordSocketPath } from "../../actors/socket_path.ts";
import { ostk, withProject } from "../helpers/daemon_fixture.ts";

/** Answer each NDJSON JSON-RPC request with a status-shaped result, forever. */
async function serveForever(listener: Deno.Listener): Promise<void> {
  for await (const conn of listener) {
    (async () => {
      const lines = conn.readable.pipeThrough(new TextDecoderStream());
      const writer = conn.writable.getWriter();
      let buffered = "";
      for await (const chunk of lines) {
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const request = JSON.parse(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          const result = { pid: 4242, uptime_ms: 1, sessions: {} };
          await writer.write(
            new TextEncoder().encode(
              JSON.stringify({ jsonrpc: "2.0", id: request.id, result }) + "\n",
            ),
          );
        }
      }
    })().catch(() => {/* the client hung up: nothing to answer */});
  }
}

Deno.test("stop: a daemon that still answers after the wait is a failure, not 'stopped'", async () => {
  await withProject(async (project) => {
    const socket = await chooseSocketPath(project.paths);
    recordSocketPath(project.paths, socket);
    const listener = Deno.listen({ transport: "unix", path: socket });
    const serving = serveForever(listener).catch(() => {/* closed below */});
    try {
      const res = await ostk(project, ["stop", "--timeout-ms", "200"]);
      assert.equal(res.code, 1, res.stderr);
      assert.equal(res.stdout, "");
      const lines = res.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, res.stderr);
      assert.match(lines[0], /^ostk: daemon pid 4242 still answers 200 ms after it was asked/);
      assert.match(lines[0], /ostk status/);
    } finally {
      listener.close();
      await serving;
    }
  });
});

Deno.test("stop: with no daemon it says how to start one and exits 1", async () => {
  await withProject(async (project) => {
    const res = await ostk(project, ["stop"]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /no daemon is running.*ostk listen --background/);
  });
});

Deno.test("stop: --timeout-ms must be a whole number", async () => {
  await withProject(async (project) => {
    const res = await ostk(project, ["stop", "--timeout-ms", "soon"]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--timeout-ms needs an integer/);
  });
});
