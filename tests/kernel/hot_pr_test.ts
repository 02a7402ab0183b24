import assert from "node:assert/strict";
import fc from "fast-check";
import {
  hotPr,
  type HotPrResult,
  MAX_REGIONS,
  PROXIMITY_LINES,
  SMALL_CHANGE_LINES,
} from "../../kernel/hot_pr.ts";

/** `n` numbered lines with a trailing newline: "l1\nl2\n…". */
function file(n: number): string {
  return Array.from({ length: n }, (_, i) => `l${i + 1}`).join("\n") + "\n";
}

/** Replace 1-based line `at` (and `count - 1` more) with `lines`. */
function setLines(text: string, at: number, lines: string[], count = 1): string {
  const all = text.split("\n");
  all.splice(at - 1, count, ...lines);
  return all.join("\n");
}

/** What the file:edit tool does: `old` must occur exactly once; no `$` patterns. */
function applyEdit(text: string, edit: { old: string; new: string }): string {
  const parts = text.split(edit.old);
  assert.equal(parts.length, 2, `old must occur exactly once, got ${parts.length - 1}`);
  return parts[0] + edit.new + parts[1];
}

function expectTier<T extends HotPrResult["tier"]>(
  r: HotPrResult,
  tier: T,
): Extract<HotPrResult, { tier: T }> {
  assert.equal(r.tier, tier, `expected tier ${tier}, got ${JSON.stringify(r)}`);
  return r as Extract<HotPrResult, { tier: T }>;
}

Deno.test("hot_pr: thresholds are the documented ones", () => {
  assert.deepEqual([PROXIMITY_LINES, SMALL_CHANGE_LINES, MAX_REGIONS], [3, 30, 2]);
});

Deno.test("hot_pr: nothing changed on disk → clean, the caller's text", () => {
  const base = file(10);
  const mine = setLines(base, 3, ["mine"]);
  assert.deepEqual(hotPr({ base, current: base, mine }), {
    tier: 1,
    kind: "clean",
    text: mine,
    reason: "no_intervening_change",
  });
});

Deno.test("hot_pr: disk already holds the caller's text → clean, already applied", () => {
  const base = file(10);
  const mine = setLines(base, 3, ["mine"]);
  assert.deepEqual(hotPr({ base, current: mine, mine }), {
    tier: 1,
    kind: "clean",
    text: mine,
    reason: "already_applied",
  });
});

Deno.test("hot_pr: both sides made the caller's change, plus one nearby → already applied", () => {
  const base = file(20);
  const mine = setLines(base, 5, ["same"]);
  const current = setLines(mine, 7, ["theirs"]); // 1 unchanged line from the shared change
  const r = hotPr({ base, current, mine });
  assert.deepEqual(r, { tier: 1, kind: "clean", text: current, reason: "already_applied" });
});

// The boundary: "N lines apart" counts the unchanged lines between the two changed regions.
const boundary: { name: string; mineAt: number; theirsAt: number; tier: 1 | 2 }[] = [
  { name: "same line", mineAt: 5, theirsAt: 5, tier: 2 },
  { name: "adjacent (0 between)", mineAt: 5, theirsAt: 6, tier: 2 },
  { name: "1 between", mineAt: 5, theirsAt: 7, tier: 2 },
  { name: "exactly 3 between", mineAt: 5, theirsAt: 9, tier: 2 },
  { name: "exactly 3 between, theirs above", mineAt: 9, theirsAt: 5, tier: 2 },
  { name: "exactly 4 between", mineAt: 5, theirsAt: 10, tier: 1 },
  { name: "exactly 4 between, theirs above", mineAt: 10, theirsAt: 5, tier: 1 },
  { name: "far apart", mineAt: 2, theirsAt: 18, tier: 1 },
];

for (const c of boundary) {
  Deno.test(`hot_pr: one-line edits, ${c.name} → tier ${c.tier}`, () => {
    const base = file(20);
    const mine = setLines(base, c.mineAt, ["MINE"]);
    const current = setLines(base, c.theirsAt, ["THEIRS"]);
    const r = hotPr({ base, current, mine, path: "src/a.ts" });
    expectTier(r, c.tier);
    if (r.tier === 1) {
      assert.equal(r.kind, "merged");
      assert.equal(r.text, setLines(setLines(base, c.mineAt, ["MINE"]), c.theirsAt, ["THEIRS"]));
    }
    assert.ok(!(r.tier !== 1 && "text" in r), "tier 2/3 must not carry a text to write");
  });
}

Deno.test("hot_pr: tier 1 keeps insertions, deletions and a missing trailing newline", () => {
  const base = file(20).slice(0, -1); // no trailing newline
  const mine = setLines(base, 2, ["new a", "new b"], 0); // insert before l2
  const current = setLines(base, 15, [], 3); // delete l15..l17
  const r = expectTier(hotPr({ base, current, mine }), 1);
  assert.equal(r.text, setLines(setLines(base, 15, [], 3), 2, ["new a", "new b"], 0));
  assert.ok(!r.text.endsWith("\n"));
});

Deno.test("hot_pr: tier 1 keeps the other side's trailing-newline change", () => {
  const base = file(20);
  const mine = setLines(base, 1, ["first"]);
  const current = base.slice(0, -1); // they dropped the final newline
  const r = expectTier(hotPr({ base, current, mine }), 1);
  assert.equal(r.text, setLines(base, 1, ["first"]).slice(0, -1));
});

Deno.test("hot_pr: tier 1 keeps CRLF line endings byte for byte", () => {
  const base = Array.from({ length: 12 }, (_, i) => `r${i}`).join("\r\n") + "\r\n";
  const mine = base.replace("r1\r\n", "R1\r\n");
  const current = base.replace("r10\r\n", "R10\r\n");
  const r = expectTier(hotPr({ base, current, mine }), 1);
  assert.equal(r.text, base.replace("r1\r\n", "R1\r\n").replace("r10\r\n", "R10\r\n"));
});

Deno.test("hot_pr: tier 2 suggestion for nearby edits applies to current with both changes", () => {
  const base = file(20);
  const mine = setLines(base, 8, ["mine 8"]);
  const current = setLines(base, 10, ["theirs 10"]);
  const r = expectTier(hotPr({ base, current, mine }), 2);
  assert.equal(r.kind, "suggest");
  assert.match(r.reason, /line 8/);
  const applied = applyEdit(current, r.suggestion);
  assert.equal(applied, setLines(setLines(base, 8, ["mine 8"]), 10, ["theirs 10"]));
  assert.ok(applied.includes("mine 8") && applied.includes("theirs 10"));
});

Deno.test("hot_pr: tier 2 with an insertion right after their replaced line", () => {
  const base = file(20);
  const mine = setLines(base, 11, ["inserted"], 0); // new line between l10 and l11
  const current = setLines(base, 10, ["theirs 10"]);
  const r = expectTier(hotPr({ base, current, mine }), 2);
  const applied = applyEdit(current, r.suggestion);
  assert.equal(applied, setLines(setLines(base, 11, ["inserted"], 0), 10, ["theirs 10"]));
});

Deno.test("hot_pr: tier 2 for overlapping edits carries the caller's version and says so", () => {
  const base = file(20);
  const mine = setLines(base, 5, ["mine 5", "mine 6"], 2);
  const current = setLines(base, 6, ["theirs 6"]);
  const r = expectTier(hotPr({ base, current, mine }), 2);
  assert.match(r.reason, /overlaps/);
  assert.ok(r.suggestion.old.includes("theirs 6"), "old is anchored in the current text");
  assert.equal(applyEdit(current, r.suggestion), mine);
});

Deno.test("hot_pr: tier 2 text with `$` patterns survives a literal replace", () => {
  const base = "a\nb\nc\nd\ne\nf\n";
  const mine = "a\nb\n$& $1 $$\nd\ne\nf\n";
  const current = "a\nb\nc\nD\ne\nf\n";
  const r = expectTier(hotPr({ base, current, mine }), 2);
  assert.equal(applyEdit(current, r.suggestion), "a\nb\n$& $1 $$\nD\ne\nf\n");
});

Deno.test("hot_pr: large conflicting rewrite → tier 3 with a unified diff of base → current", () => {
  const base = file(60);
  const rewritten = Array.from({ length: 40 }, (_, i) => `rewritten ${i}`);
  const current = setLines(base, 10, rewritten, 40);
  const mine = setLines(base, 20, ["mine 20"]);
  const r = expectTier(hotPr({ base, current, mine, path: "src/big.ts" }), 3);
  assert.equal(r.kind, "conflict");
  assert.match(r.diff, /^@@ -\d+,\d+ \+\d+,\d+ @@$/m);
  assert.match(r.diff, /^--- src\/big\.ts/m);
  assert.match(r.diff, /^\+rewritten 0$/m);
  assert.match(r.diff, /^-l10$/m);
  assert.ok(!r.diff.includes("mine 20"), "the diff shows their change, not the caller's");
  assert.match(r.reason, /changed lines/);
  assert.match(r.reason, /re-read src\/big\.ts/);
});

Deno.test("hot_pr: just at the size limit → tier 3, just under → tier 2", () => {
  const base = file(80);
  const mine = setLines(base, 20, ["mine"]);
  for (const [theirLines, tier] of [[28, 2], [29, 3]] as const) {
    // mine counts 1 changed line; theirs replaces `theirLines` lines starting 2 below it.
    const block = Array.from({ length: theirLines }, (_, i) => `t${i}`);
    const current = setLines(base, 22, block, theirLines);
    expectTier(hotPr({ base, current, mine }), tier);
  }
});

Deno.test("hot_pr: three regions meeting → tier 3, even when small", () => {
  const base = file(30);
  const mine = setLines(base, 10, ["mine"]);
  const current = setLines(setLines(base, 8, ["t8"]), 12, ["t12"]);
  const r = expectTier(hotPr({ base, current, mine }), 3);
  assert.match(r.reason, /3 regions/);
});

Deno.test("hot_pr: a far-away change does not count against the suggestion", () => {
  const base = file(40);
  const mine = setLines(base, 10, ["mine"]);
  const current = setLines(setLines(base, 11, ["t11"]), 35, ["t35"]);
  const r = expectTier(hotPr({ base, current, mine }), 2);
  assert.equal(applyEdit(current, r.suggestion), setLines(current, 10, ["mine"]));
});

Deno.test("hot_pr: no unique anchor within the context limit → tier 3", () => {
  // Two copies of a 20-line block, the second without its line 12. Deleting line 12 from the
  // first copy makes both copies identical, so no window of context around it is unique.
  const block = Array.from({ length: 20 }, (_, i) => `<${i + 1}>`);
  const base = [...block, ...block.filter((l) => l !== "<12>")].join("\n") + "\n";
  const mine = setLines(base, 10, ["M"]);
  const current = setLines(base, 12, [], 1);
  const r = expectTier(hotPr({ base, current, mine }), 3);
  assert.match(r.reason, /unique anchor/);
});

// ---- properties -------------------------------------------------------------------------

interface LineEdit {
  start: number; // 0-based line index
  remove: number;
  insert: string[];
}

function applyLineEdit(lines: string[], e: LineEdit): string[] {
  return [...lines.slice(0, e.start), ...e.insert, ...lines.slice(e.start + e.remove)];
}

function toText(lines: string[], trailingNewline: boolean): string {
  return lines.join("\n") + (trailingNewline ? "\n" : "");
}

function counts(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) m.set(line, (m.get(line) ?? 0) + 1);
  return m;
}

/** Lines a side added on net: more copies in its text than in base. */
function netAdded(side: string, base: string): string[] {
  const b = counts(base);
  return [...counts(side)].filter(([line, n]) => n > (b.get(line) ?? 0)).map(([line]) => line);
}

// Base lines are unique and inserted lines carry a marker no base line has, so the LCS diff
// is unambiguous and each edit is seen as exactly one hunk where it was made.
const disjointCase = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 10 }), {
  minLength: 10,
  maxLength: 200,
}).chain((lines) => {
  const n = lines.length;
  const inserted = (mark: string) =>
    fc.array(fc.string({ maxLength: 8 }).map((s) => `${mark}${s}`), { maxLength: 3 });
  return fc.record({
    lines: fc.constant(lines),
    trailingNewline: fc.boolean(),
    s1: fc.integer({ min: 0, max: n - 4 }),
    d1: fc.integer({ min: 0, max: 3 }),
    pick2: fc.nat(),
    d2: fc.integer({ min: 0, max: 3 }),
    ins1: inserted("«1»"),
    ins2: inserted("«2»"),
    firstIsMine: fc.boolean(),
  }).map((c) => {
    const d1 = Math.min(c.d1, n - 4 - c.s1);
    const lowest = c.s1 + d1 + PROXIMITY_LINES + 1; // > 3 unchanged lines between
    const s2 = lowest + (c.pick2 % (n - lowest + 1));
    const d2 = Math.min(c.d2, n - s2);
    // An edit that neither removes nor inserts is no edit; make each one do something.
    const e1 = { start: c.s1, remove: d1, insert: d1 + c.ins1.length ? c.ins1 : ["«1»"] };
    const e2 = { start: s2, remove: d2, insert: d2 + c.ins2.length ? c.ins2 : ["«2»"] };
    return { ...c, e1, e2 };
  });
});

Deno.test("hot_pr property: edits more than 3 lines apart merge to both edits, either order", () => {
  fc.assert(
    fc.property(disjointCase, ({ lines, trailingNewline, e1, e2, firstIsMine }) => {
      const base = toText(lines, trailingNewline);
      const one = toText(applyLineEdit(lines, e1), trailingNewline);
      const two = toText(applyLineEdit(lines, e2), trailingNewline);
      const [mine, current] = firstIsMine ? [one, two] : [two, one];
      // e2 lies below e1: applied first it leaves e1's indices alone; applied second, its
      // start moves by what e1 added or removed.
      const twoThenOne = applyLineEdit(applyLineEdit(lines, e2), e1);
      const shifted = { ...e2, start: e2.start + e1.insert.length - e1.remove };
      const oneThenTwo = applyLineEdit(applyLineEdit(lines, e1), shifted);
      assert.deepEqual(oneThenTwo, twoThenOne);

      const r = hotPr({ base, current, mine });
      assert.equal(r.tier, 1, JSON.stringify(r));
      assert.equal(r.tier === 1 && r.kind, "merged");
      assert.equal(r.tier === 1 && r.text, toText(twoThenOne, trailingNewline));
    }),
    { numRuns: 300 },
  );
});

// A small alphabet makes repeated lines common, which is where line diffs go wrong.
const anyLine = fc.oneof(
  fc.constantFrom("", "a", "b", "}", "  return x;", "x"),
  fc.string({ maxLength: 6 }),
);
const anyEdit = (n: number) =>
  fc.record({
    start: fc.integer({ min: 0, max: n }),
    remove: fc.integer({ min: 0, max: 6 }),
    insert: fc.array(anyLine, { maxLength: 5 }),
  });
const anyCase = fc.array(anyLine, { minLength: 10, maxLength: 200 }).chain((lines) =>
  fc.record({
    lines: fc.constant(lines),
    trailingNewline: fc.boolean(),
    mineEdit: anyEdit(lines.length),
    theirEdit: anyEdit(lines.length),
  })
);

Deno.test("hot_pr property: any two edits — nothing is silently lost or half-merged", () => {
  fc.assert(
    fc.property(anyCase, ({ lines, trailingNewline, mineEdit, theirEdit }) => {
      const base = toText(lines, trailingNewline);
      const mine = toText(applyLineEdit(lines, mineEdit), trailingNewline);
      const current = toText(applyLineEdit(lines, theirEdit), trailingNewline);
      const r = hotPr({ base, current, mine });

      if (r.tier === 1) {
        const out = r.text.split("\n");
        for (const line of [...netAdded(mine, base), ...netAdded(current, base)]) {
          assert.ok(out.includes(line), `tier 1 lost ${JSON.stringify(line)}`);
        }
        if (r.kind === "merged") {
          // Both sides' changes applied once each: every line's count moves by both deltas.
          const [b, m, c, o] = [counts(base), counts(mine), counts(current), counts(r.text)];
          for (const line of new Set([...b.keys(), ...m.keys(), ...c.keys(), ...o.keys()])) {
            const expected = (m.get(line) ?? 0) + (c.get(line) ?? 0) - (b.get(line) ?? 0);
            assert.equal(o.get(line) ?? 0, expected, `count of ${JSON.stringify(line)}`);
          }
        } else {
          assert.equal(r.text, r.reason === "already_applied" ? current : mine);
        }
        return;
      }
      assert.ok(!("text" in r), "tier 2/3 writes nothing");
      if (r.tier === 2) {
        // The suggestion is sendable as-is and carries everything the caller added.
        const applied = applyEdit(current, r.suggestion).split("\n");
        for (const line of netAdded(mine, base)) {
          assert.ok(applied.includes(line), `suggestion lost ${JSON.stringify(line)}`);
        }
        assert.notEqual(r.suggestion.old, r.suggestion.new);
      } else {
        assert.match(r.diff, /^@@ /m);
      }
    }),
    { numRuns: 500 },
  );
});
