/**
 * The model CPU's Worker is narrowed: it may reach its provider's host:port and nothing else,
 * and it gets no env, run or ffi access.
 */
import assert from "node:assert/strict";
import { hostPort, probeModelWorker } from "../../actors/llm/cpu_model_worker.ts";

function localServer(): { url: string; close(): Promise<void> } {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const { port } = server.addr as Deno.NetAddr;
  return { url: `http://127.0.0.1:${port}/`, close: () => server.shutdown() };
}

Deno.test("model worker: fetch reaches the provider's host:port only", async () => {
  const provider = localServer();
  const other = localServer();
  const root = await Deno.makeTempDir();
  try {
    const spec = { kind: "model" as const, model: `openai-compatible:${provider.url}v1#m` };
    assert.equal(hostPort(provider.url), provider.url.slice(7, -1));

    const allowed = await probeModelWorker(spec, root, provider.url);
    assert.equal(allowed.fetch_error, null);
    for (const name of ["env", "run", "ffi", "sys"]) {
      assert.notEqual(allowed.permissions[name], "granted", name);
    }

    const denied = await probeModelWorker(spec, root, other.url);
    assert.ok(denied.fetch_error, "a fetch to another port must fail");
    assert.match(denied.fetch_error, /NotCapable|PermissionDenied|net access/);
  } finally {
    await provider.close();
    await other.close();
    await Deno.remove(root, { recursive: true });
  }
});
