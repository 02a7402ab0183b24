/** "Did you mean": edit distance and the closest known names. */

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbours each cost 1 (so `stet` → `sett` is one step, as a typist would count it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { editDistance } from "./suggest.ts";
 * assert.equal(editDistance("unsett", "unset"), 1);
 * assert.equal(editDistance("ste", "set"), 1);
 * ```
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The known names closest to `word` (case-insensitive), best first, at most `limit`. A name
 * counts when it is within `max(2, ⌈len/3⌉)` edits or starts with a word of 2+ letters;
 * nothing close gives an empty list, and the caller lists every name instead.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closest } from "./suggest.ts";
 * assert.equal(closest("unsett", ["set", "unset", "push"])[0], "unset");
 * ```
 */
export function closest(word: string, names: Iterable<string>, limit = 3): string[] {
  const w = word.toLowerCase();
  const threshold = Math.max(2, Math.ceil(w.length / 3));
  const scored: { name: string; score: number }[] = [];
  for (const name of new Set(names)) {
    const n = name.toLowerCase();
    const distance = editDistance(w, n);
    const prefix = w.length >= 2 && n.startsWith(w);
    if (distance <= threshold || prefix) {
      scored.push({ name, score: prefix ? Math.min(distance, 1) : distance });
    }
  }
  scored.sort((x, y) => x.score - y.score || x.name.localeCompare(y.name));
  return scored.slice(0, limit).map((s) => s.name);
}

/** "did you mean: a, b?" or "known: a, b, c" — the hint for an unknown name. */
export function suggestionHint(word: string, names: string[], what = "known"): string {
  const near = closest(word, names);
  return near.length > 0
    ? `did you mean: ${near.join(", ")}?`
    : `${what}: ${[...names].sort().join(", ")}`;
}
