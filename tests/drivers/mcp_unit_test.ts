/** Pure parts of the MCP layer: alias names, listen addresses, drift, globs, HUMANFILE drivers. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { validateAliasName } from "../../kernel/alias.ts";
import { ostkPaths } from "../../kernel/layout.ts";
import { loadDrivers } from "../../drivers/driver_registry.ts";
import { checkExposure, isLoopback, parseListenAddress } from "../../drivers/mcp_http.ts";
import { aliasBaseFor, compareTools } from "../../drivers/mcp_server.ts";
import { DOCUMENTED_TOOLS, globRegExp, kernelResult } from "../../drivers/mcp_tools.ts";
import { renderResult } from "../../drivers/outbound.ts";

Deno.test("aliasBaseFor: client names become valid alias bases", () => {
  const cases: [string | undefined, string][] = [
    ["claude-code", "claude-code"],
    ["Claude Code", "claude-code"],
    ["test-client", "test-client"],
    ["cursor-vscode 1.2.3", "cursor-vscode"],
    ["gpt-4o", "gpt4o"],
    ["  Zed  ", "zed"],
    ["123abc", "abc"],
    ["client_v2", "client-v2"],
    ["", "mcp"],
    [undefined, "mcp"],
    ["!!!", "mcp"],
    ["x".repeat(80), "x".repeat(40)],
  ];
  for (const [input, expected] of cases) assert.equal(aliasBaseFor(input), expected, String(input));
});

Deno.test("aliasBaseFor: any string gives a name validateAliasName accepts (property)", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 120 }), (name) => {
      const base = aliasBaseFor(name);
      assert.match(base, /^[a-z][a-z0-9-]*$/);
      validateAliasName(base);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("parseListenAddress and checkExposure: loopback by default, remote only when asked", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:8808"), { hostname: "127.0.0.1", port: 8808 });
  assert.deepEqual(parseListenAddress("[::1]:0"), { hostname: "::1", port: 0 });
  assert.deepEqual(parseListenAddress("9000"), { hostname: "127.0.0.1", port: 9000 });
  assert.deepEqual(parseListenAddress("localhost:1"), { hostname: "localhost", port: 1 });
  for (const bad of ["", "host", "1.2.3.4:99999", "a:b", "[::1]"]) {
    assert.throws(() => parseListenAddress(bad), /bad --http address/, bad);
  }
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) assert.ok(isLoopback(host));
  for (const host of ["0.0.0.0", "10.0.0.1", "example.com", "::"]) assert.ok(!isLoopback(host));
  assert.throws(() => checkExposure("0.0.0.0"), /non-loopback/);
  assert.throws(() => checkExposure("0.0.0.0", true), /non-loopback/);
  assert.throws(() => checkExposure("0.0.0.0", false, "t"), /non-loopback/);
  checkExposure("0.0.0.0", true, "t");
  checkExposure("127.0.0.1");
});

Deno.test("compareTools: names missing, extra and changed parameters are drift", () => {
  const live = Object.entries(DOCUMENTED_TOOLS).map(([name, params]) => ({ name, params }));
  assert.deepEqual(compareTools(live), []);
  const drifted = live.filter((t) => t.name !== "ps").map((t) =>
    t.name === "read" ? { ...t, params: ["path", "offset"] } : t
  );
  drifted.push({ name: "extra", params: [] });
  const drift = compareTools(drifted);
  assert.equal(drift.length, 3);
  assert.ok(drift.some((d) => d.includes("missing tool 'ps'")));
  assert.ok(drift.some((d) => d.startsWith("read:")));
  assert.ok(drift.some((d) => d.includes("undocumented tool 'extra'")));
});

Deno.test("globRegExp: ** crosses directories, * and ? stay within one", () => {
  const cases: [string, string, boolean][] = [
    ["*.ts", "a.ts", true],
    ["*.ts", "a/b.ts", false],
    ["src/**/*.ts", "src/a.ts", true],
    ["src/**/*.ts", "src/x/y/a.ts", true],
    ["src/**", "src/x/y", true],
    ["a?c", "abc", true],
    ["a?c", "a/c", false],
    ["a.b", "axb", false],
  ];
  for (const [glob, path, expected] of cases) {
    assert.equal(globRegExp(glob).test(path), expected, `${glob} vs ${path}`);
  }
});

Deno.test("kernelResult: text, digest envelope and isError follow the kernel's answer", () => {
  const ok = kernelResult({
    ok: true,
    tool: "file:edit",
    result: {
      path: "a.txt",
      gen: 3,
      merged: "merged",
      merge_note: "merged with a concurrent edit (tier 1)",
    },
    digest: "[procs] 0 alive",
  });
  assert.equal(ok.isError, undefined);
  assert.match(
    ok.content[0].text,
    /^\[file:edit\] a\.txt gen=3, merged with a concurrent edit \(tier 1\)\n\n\[procs\]/,
  );
  const refused = kernelResult({
    ok: false,
    tool: "file:edit",
    error: { code: "conflict", message: "a.txt: stale", file: "a.txt", hint: "re-read" },
    digest: "[procs] 0 alive",
  });
  assert.equal(refused.isError, true);
  assert.match(refused.content[0].text, /^a\.txt: stale \(re-read\)\n\n\[procs\]/);
});

Deno.test("loadDrivers: mcp: and DRIVER lines, env words, last declaration wins", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const paths = ostkPaths(dir);
    await Deno.mkdir(paths.dir);
    await Deno.writeTextFile(
      paths.humanfile,
      [
        "OPERATOR Ada <ada@example.org>",
        "DRIVER files",
        "mcp: fs node server.js /tmp # a comment",
        "mcp: gh TOKEN=abc X_Y=1 npx -y gh-server",
        "mcp: fs node other.js",
        "# mcp: off node x.js",
      ].join("\n"),
    );
    const drivers = await loadDrivers(paths);
    assert.deepEqual(drivers.map((d) => d.name), ["files", "gh", "fs"]);
    assert.deepEqual(drivers[0].command, []);
    assert.equal(drivers[0].kind, "driver");
    assert.deepEqual(drivers[1].env, { TOKEN: "abc", X_Y: "1" });
    assert.deepEqual(drivers[1].command, ["npx", "-y", "gh-server"]);
    assert.deepEqual(drivers[2].command, ["node", "other.js"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renderResult: text passes (compressed), other content is summarised", () => {
  const text = renderResult({
    content: [
      { type: "text", text: "hello" },
      { type: "image", mimeType: "image/png", data: "AAAA" },
      { type: "resource_link", uri: "file:///x" },
    ],
  });
  assert.equal(text, "hello\n[image image/png, 3 bytes]\n[resource file:///x]");
  assert.equal(renderResult({ content: [], structuredContent: { a: 1 } }), '{\n  "a": 1\n}');
});
