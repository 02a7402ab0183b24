import assert from "node:assert/strict";
import { modelInfo, parsePriceLines, readPriceOverrides } from "../../actors/llm/prices.ts";

Deno.test("prices: HUMANFILE PRICE lines override the built-in table by prefix", () => {
  const overrides = parsePriceLines(
    "# comment\nPRICE claude-sonnet-4 1 2 100000\nPRICE my-local 0 0\n",
    "HUMANFILE",
  );
  const sonnet = modelInfo(
    { provider: "anthropic", model: "claude-sonnet-4-20250514" },
    undefined,
    overrides,
  );
  assert.deepEqual([sonnet.inPerMTok, sonnet.outPerMTok, sonnet.contextWindow], [1, 2, 100000]);
  const builtIn = modelInfo({ provider: "anthropic", model: "claude-sonnet-4-20250514" });
  assert.equal(builtIn.inPerMTok, 3);
  assert.equal(
    modelInfo({ provider: "openai", model: "my-local-7b" }, undefined, overrides).priced,
    true,
  );
});

Deno.test("prices: a malformed PRICE line names its file and line", () => {
  assert.throws(() => parsePriceLines("OPERATOR me\nPRICE x abc 2\n", "HUMANFILE"), /HUMANFILE:2:/);
  assert.throws(() => parsePriceLines("PRICE x 1 -2\n", "HUMANFILE"), /HUMANFILE:1:/);
});

Deno.test("prices: readPriceOverrides reads .ostk/HUMANFILE and tolerates its absence", async () => {
  const root = await Deno.makeTempDir();
  try {
    assert.deepEqual(readPriceOverrides(root), {});
    await Deno.mkdir(`${root}/.ostk`);
    await Deno.writeTextFile(`${root}/.ostk/HUMANFILE`, "PRICE gpt-5 9 9\n");
    assert.equal(readPriceOverrides(root)["gpt-5"].inPerMTok, 9);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
