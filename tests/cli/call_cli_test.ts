/** `ostk call` as a person reads it: what a write that Hot PR merged prints. */
import assert from "node:assert/strict";
import { ostk, withProject } from "../helpers/daemon_fixture.ts";

const TEXT = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join("\n") + "\n";

Deno.test("ostk call: a stale edit merged by Hot PR says which tier, in words", async () => {
  await withProject(async (project) => {
    const call = (tool: string, args: Record<string, unknown>) =>
      ostk(project, ["call", tool, JSON.stringify(args)]);
    const created = await call("file:create", { path: "notes.txt", content: TEXT });
    assert.equal(created.code, 0, created.stderr);
    const first = await call("file:edit", { path: "notes.txt", old: "line 2\n", new: "LINE 2\n" });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^ok file:edit notes\.txt gen=2$/m, "no merge, no merge words");
    // Still based on gen 1: the other change is 15 lines away, so tier 1 merges both.
    const stale = await call("file:edit", {
      path: "notes.txt",
      old: "line 18\n",
      new: "LINE 18\n",
      expected_gen: 1,
    });
    assert.equal(stale.code, 0, stale.stderr);
    assert.match(
      stale.stdout,
      /^ok file:edit notes\.txt gen=3, merged with a concurrent edit \(tier 1\)$/m,
    );
    assert.doesNotMatch(stale.stdout, /merged: merged/);
    const text = await Deno.readTextFile(`${project.root}/notes.txt`);
    assert.match(text, /^LINE 2$/m);
    assert.match(text, /^LINE 18$/m);
  });
});
