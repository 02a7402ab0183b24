import assert from "node:assert/strict";
import { METHODS } from "../../actors/protocol.ts";

Deno.test("protocol: session/spawn accepts a model CPU with LIMIT successor auto", () => {
  const spawn = METHODS["session/spawn"];
  const ok = spawn.safeParse({
    name: "writer",
    cpu: { kind: "model", model: "anthropic:x", task: "t", successor: "auto" },
  });
  assert.equal(ok.success, true, JSON.stringify(ok.error?.issues));
  const bad = spawn.safeParse({
    name: "writer",
    cpu: { kind: "model", model: "anthropic:x", successor: "always" },
  });
  assert.equal(bad.success, false);
});
