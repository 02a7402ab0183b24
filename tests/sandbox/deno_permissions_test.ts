import assert from "node:assert/strict";
import { denoPermissions, parsePolicy } from "../../sandbox/mod.ts";

Deno.test("deno permissions: read covers write paths; net none/all/ports; nothing else", () => {
  const policy = parsePolicy({ read: ["/usr", "/p"], write: ["/p/src"] });
  assert.deepEqual(denoPermissions(policy, { tmpdir: "/tmp/t" }), {
    read: ["/usr", "/p", "/p/src", "/tmp/t"],
    write: ["/p/src", "/tmp/t"],
    net: false,
    run: false,
    ffi: false,
    env: false,
    sys: false,
  });
  assert.equal(denoPermissions(parsePolicy({ net: "all" })).net, true);
  assert.deepEqual(
    denoPermissions(parsePolicy({ net: { connect: [8080, 8080], bind: [3000] } })).net,
    ["localhost:8080", "0.0.0.0:3000"],
  );
});

Deno.test("deno permissions: a Worker under the policy cannot write outside it", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostk_worker_" }));
  try {
    await Deno.mkdir(`${dir}/in`);
    await Deno.mkdir(`${dir}/out`);
    const permissions = denoPermissions(parsePolicy({ read: [dir], write: [`${dir}/in`] }));
    const code = `
      const results = [];
      for (const path of ${JSON.stringify([`${dir}/in/ok`, `${dir}/out/no`])}) {
        try { Deno.writeTextFileSync(path, "x"); results.push("wrote"); }
        catch (e) { results.push(e.name); }
      }
      try { new Deno.Command("true").outputSync(); results.push("ran"); }
      catch (e) { results.push(e.name); }
      try { Deno.env.get("HOME"); results.push("read env"); }
      catch (e) { results.push(e.name); }
      self.postMessage(results);
    `;
    const url = `data:application/javascript,${encodeURIComponent(code)}`;
    const worker = new Worker(url, { type: "module", deno: { permissions } });
    try {
      const results = await new Promise<string[]>((resolve, reject) => {
        worker.onmessage = (e) => resolve(e.data);
        worker.onerror = (e) => reject(e);
      });
      assert.equal(results[0], "wrote");
      assert.match(results[1], /NotCapable|PermissionDenied/);
      assert.match(results[2], /NotCapable|PermissionDenied/);
      assert.match(results[3], /NotCapable|PermissionDenied/);
    } finally {
      worker.terminate();
    }
    assert.equal(await Deno.readTextFile(`${dir}/in/ok`), "x");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
