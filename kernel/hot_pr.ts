/**
 * Hot PR: the mechanical three-tier merge the write path runs when a compare-and-swap loses.
 * No model is involved; every decision is a line diff and three thresholds.
 *
 * Texts are handled as `text.split("\n")`. The piece after the last newline stays its own
 * (often empty) element, so lines join back to the exact bytes and adding or removing the
 * trailing newline is an ordinary change to the last element, never lost or invented. A `\r`
 * stays on its line, so CRLF files round-trip too.
 */

import { diff3Merge, diffIndices } from "node-diff3";
import { createTwoFilesPatch } from "diff";

/** Changes with this many unchanged lines (or fewer) between them are too close to auto-merge. */
export const PROXIMITY_LINES = 3;
/** A clash is small enough for a suggested rebase only below this many changed lines. */
export const SMALL_CHANGE_LINES = 30;
/** At most this many changed regions (both sides together) may meet in a suggested rebase. */
export const MAX_REGIONS = 2;
/** Context lines the suggestion may add on each side while looking for a unique `old`. */
const MAX_CONTEXT_LINES = 8;

/** What the caller read, what is on disk now, and what the caller wants the file to be. */
export interface HotPrInput {
  /** The text the caller read (the shadow of the generation it saw). */
  base: string;
  /** The text on disk now, after someone else's intervening change. */
  current: string;
  /** `base` with the caller's edit applied: the full text the caller intended. */
  mine: string;
  /** Path shown in a tier-3 diff's headers. */
  path?: string;
}

/** A `file:edit` the caller can send as-is: `old` occurs exactly once in the current text. */
export interface EditSuggestion {
  old: string;
  new: string;
}

/**
 * The outcome. Both tier-1 kinds carry the `text` to write; tiers 2 and 3 wrote nothing and
 * have no `text`, so a caller cannot write a half-merge by accident.
 *
 * - `clean`: no merge was needed. `no_intervening_change`: disk still equals what the caller
 *   read, so `text` is `mine`. `already_applied`: disk already holds the caller's change, so
 *   `text` is `current` and writing it is a no-op the caller may skip.
 * - `merged`: both changes were applied; they were more than {@linkcode PROXIMITY_LINES} apart.
 * - `suggest`: the changes meet; `suggestion` is the caller's edit rebased onto `current`.
 * - `conflict`: too much changed to guess; `diff` is base → current, and the caller re-reads.
 */
export type HotPrResult =
  | {
    tier: 1;
    kind: "clean";
    text: string;
    reason: "no_intervening_change" | "already_applied";
  }
  | { tier: 1; kind: "merged"; text: string }
  | { tier: 2; kind: "suggest"; suggestion: EditSuggestion; reason: string }
  | { tier: 3; kind: "conflict"; diff: string; reason: string };

/** One changed region: base lines `[start, end)` replaced by `lines`, by one side. */
interface Hunk {
  side: "mine" | "theirs";
  start: number;
  end: number;
  lines: string[];
}

/**
 * Merge the caller's edit with whatever changed on disk since the caller read the file.
 *
 * Tier 1 when every change of the caller's is more than {@linkcode PROXIMITY_LINES} unchanged
 * lines away from every intervening change. Tier 2 when they meet but the meeting is small
 * (fewer than {@linkcode SMALL_CHANGE_LINES} changed lines in at most
 * {@linkcode MAX_REGIONS} regions) and a unique anchor exists. Tier 3 otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hotPr } from "./hot_pr.ts";
 * const base = "a\nb\nc\nd\ne\nf\ng\nh\n";
 * const current = base.replace("a\n", "A\n"); // someone else's change
 * const mine = base.replace("h\n", "H\n"); // the caller's edit, seven lines away
 * const r = hotPr({ base, current, mine });
 * assert.equal(r.tier, 1);
 * assert.equal(r.text, "A\nb\nc\nd\ne\nf\ng\nH\n");
 * // One unchanged line between the two changes is too close to merge unseen: tier 2 suggests.
 * const near = hotPr({ base, current, mine: base.replace("c\n", "C\n") });
 * assert.equal(near.tier, 2);
 * ```
 */
export function hotPr(input: HotPrInput): HotPrResult {
  const { base, current, mine } = input;
  if (mine === current) {
    return { tier: 1, kind: "clean", text: current, reason: "already_applied" };
  }
  if (current === base) {
    return { tier: 1, kind: "clean", text: mine, reason: "no_intervening_change" };
  }
  const baseLines = base.split("\n");
  const mineLines = mine.split("\n");
  const currentLines = current.split("\n");
  const ours = hunksOf("mine", baseLines, mineLines);
  const theirs = hunksOf("theirs", baseLines, currentLines);

  const clashes = ours.some((m) => theirs.some((t) => gap(m, t) <= PROXIMITY_LINES));
  if (!clashes) {
    // diff3Merge finds the same hunks (it calls diffIndices on the same arrays) and only
    // reports a conflict for hunks that touch, so with this much room it merges cleanly. The
    // check stays because writing a text with a conflict silently dropped would lose work.
    const regions = diff3Merge(mineLines, baseLines, currentLines);
    if (regions.every((r) => r.conflict === undefined)) {
      return {
        tier: 1,
        kind: "merged",
        text: regions.flatMap((r) => r.ok ?? []).join("\n"),
      };
    }
  }
  return suggestOrConflict(input, baseLines, currentLines, ours, theirs);
}

/**
 * What a tier-1 outcome did, in words a person reads after a write: the tier and what it did,
 * never the bare `kind` (`merged: merged` said nothing). Tiers 2 and 3 wrote nothing; their
 * words are in the refusal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hotPr, tierOneWords } from "./hot_pr.ts";
 * const base = "a\nb\nc\nd\ne\nf\ng\nh\n";
 * const r = hotPr({ base, current: base.replace("a", "A"), mine: base.replace("h", "H") });
 * assert.ok(r.tier === 1);
 * assert.equal(tierOneWords(r), "merged with a concurrent edit (tier 1)");
 * ```
 */
export function tierOneWords(result: Extract<HotPrResult, { tier: 1 }>): string {
  if (result.kind === "merged") return "merged with a concurrent edit (tier 1)";
  return result.reason === "already_applied"
    ? "the same change was already on disk (tier 1)"
    : "rebased: the writes since your read left the text as you read it (tier 1)";
}

/** Tier 2 if the clash is small and anchorable, tier 3 otherwise. */
function suggestOrConflict(
  input: HotPrInput,
  baseLines: string[],
  currentLines: string[],
  ours: Hunk[],
  theirs: Hunk[],
): HotPrResult {
  const conflict = (why: string): HotPrResult => ({
    tier: 3,
    kind: "conflict",
    diff: createTwoFilesPatch(
      input.path ?? "file",
      input.path ?? "file",
      input.base,
      input.current,
      "as read",
      "on disk now",
    ),
    reason: `${why}; nothing was written: re-read ${input.path ?? "the file"} and edit again`,
  });

  const window = clashWindow(ours, theirs);
  const met = window.theirs;
  // Where both sides truly overlap there is no mechanical answer; the suggestion carries the
  // caller's version there (that is what the caller asked for) and the reason says so.
  const overridden = met.filter((t) => ours.some((m) => collide(m, t)));
  const kept = met.filter((t) => !overridden.includes(t));
  const oldWindow = applyHunks(baseLines, window.start, window.end, met);
  const newWindow = applyHunks(baseLines, window.start, window.end, [...ours, ...kept]);
  if (sameLines(oldWindow, newWindow)) {
    // Laying the caller's hunks over the current text changes nothing: it is already there,
    // whatever else changed around it.
    return { tier: 1, kind: "clean", text: input.current, reason: "already_applied" };
  }

  const regions = ours.length + met.length;
  if (regions > MAX_REGIONS) {
    return conflict(
      `your edit meets the change made since your read in ${regions} regions ` +
        `(a suggestion covers at most ${MAX_REGIONS})`,
    );
  }
  const changed = [...ours, ...met].reduce((n, h) => n + changedLines(h), 0);
  if (changed >= SMALL_CHANGE_LINES) {
    return conflict(
      `${changed} changed lines where your edit meets the change made since your read ` +
        `(a suggestion needs fewer than ${SMALL_CHANGE_LINES})`,
    );
  }

  // The window's first line in current coordinates: shift by what theirs inserted or deleted
  // above it. Hunks outside the window lie wholly before or after it.
  const shift = theirs
    .filter((t) => !met.includes(t) && t.start < window.start)
    .reduce((n, t) => n + t.lines.length - (t.end - t.start), 0);
  const from = window.start + shift;
  const suggestion = anchor(input.current, currentLines, from, from + oldWindow.length, newWindow);
  if (suggestion === undefined) {
    return conflict(
      `no unique anchor for a suggested edit within ${MAX_CONTEXT_LINES} lines of context`,
    );
  }

  const where = ours.map(describe).join(" and ");
  const theirWhere = met.map(describe).join(" and ");
  const reason = overridden.length > 0
    ? `your edit (${where} as read) overlaps a change made since your read (${theirWhere}); ` +
      `nothing was written. The suggestion puts your version of those lines over theirs, ` +
      `so check it before sending it as a file:edit`
    : `your edit (${where} as read) is within ${PROXIMITY_LINES} lines of a change made ` +
      `since your read (${theirWhere}); nothing was written. The suggestion applies your ` +
      `edit on top of theirs; send it as a file:edit`;
  return { tier: 2, kind: "suggest", suggestion, reason };
}

/** The side's hunks against base, from node-diff3's LCS diff. */
function hunksOf(side: Hunk["side"], from: string[], to: string[]): Hunk[] {
  return diffIndices(from, to).map((h) => ({
    side,
    start: h.buffer1[0],
    end: h.buffer1[0] + h.buffer1[1],
    lines: h.buffer2Content,
  }));
}

/**
 * Unchanged base lines between two regions: 0 when they touch, negative when they overlap.
 */
function gap(a: { start: number; end: number }, b: { start: number; end: number }): number {
  return Math.max(b.start - a.end, a.start - b.end);
}

/**
 * True when two hunks cannot both be applied: they overlap, or they make the same change
 * (applying both would duplicate it). Touching hunks combine: an insertion at a boundary
 * goes before the lines the other side replaced there, theirs before mine at one point.
 */
function collide(m: Hunk, t: Hunk): boolean {
  const same = m.start === t.start && m.end === t.end && sameLines(m.lines, t.lines);
  return same || gap(m, t) < 0;
}

/** "Changed lines" of a hunk: a one-line replacement counts once, not twice. */
function changedLines(h: Hunk): number {
  return Math.max(h.end - h.start, h.lines.length);
}

/**
 * The base range a suggestion must cover: all of the caller's hunks, grown to take in every
 * intervening hunk within {@linkcode PROXIMITY_LINES} of it (until nothing more joins), so
 * their hunks lie wholly inside or wholly outside it.
 */
function clashWindow(ours: Hunk[], theirs: Hunk[]): { start: number; end: number; theirs: Hunk[] } {
  const w = {
    start: Math.min(...ours.map((h) => h.start)),
    end: Math.max(...ours.map((h) => h.end)),
    theirs: [] as Hunk[],
  };
  let grew = true;
  while (grew) {
    grew = false;
    for (const t of theirs) {
      if (!w.theirs.includes(t) && gap(w, t) <= PROXIMITY_LINES) {
        w.theirs.push(t);
        w.start = Math.min(w.start, t.start);
        w.end = Math.max(w.end, t.end);
        grew = true;
      }
    }
  }
  w.theirs.sort((a, b) => a.start - b.start);
  return w;
}

/** Base lines `[from, to)` with non-overlapping hunks inside that range applied. */
function applyHunks(base: string[], from: number, to: number, hunks: Hunk[]): string[] {
  // Sorting by end after start puts an insertion before a replacement at the same line, so
  // the cursor never moves backwards; at one point, theirs (already on disk) comes first.
  const ordered = [...hunks].sort((a, b) =>
    a.start - b.start || a.end - b.end || (a.side === b.side ? 0 : a.side === "theirs" ? -1 : 1)
  );
  const out: string[] = [];
  let at = from;
  for (const h of ordered) {
    out.push(...base.slice(at, h.start), ...h.lines);
    at = h.end;
  }
  out.push(...base.slice(at, to));
  return out;
}

/**
 * Build `{old, new}` around current lines `[from, to)`, adding context until `old` occurs
 * exactly once in `current`. At least one context line on each side (where the file has one)
 * keeps both sides non-empty, so replacing `old` by `new` re-joins the lines exactly.
 */
function anchor(
  current: string,
  lines: string[],
  from: number,
  to: number,
  replacement: string[],
): EditSuggestion | undefined {
  for (let k = 1; k <= MAX_CONTEXT_LINES; k++) {
    const lo = Math.max(0, from - k);
    const hi = Math.min(lines.length, to + k);
    const old = lines.slice(lo, hi).join("\n");
    if (old !== "" && occursOnce(current, old)) {
      const next = [...lines.slice(lo, from), ...replacement, ...lines.slice(to, hi)];
      return { old, new: next.join("\n") };
    }
    if (lo === 0 && hi === lines.length) return undefined;
  }
  return undefined;
}

/** Exactly one match, counting overlapping ones, as the `file:edit` tool will demand. */
function occursOnce(haystack: string, needle: string): boolean {
  const first = haystack.indexOf(needle);
  return first !== -1 && haystack.indexOf(needle, first + 1) === -1;
}

function sameLines(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

/** A hunk's place in the text as read, 1-based, for reasons a person acts on. */
function describe(h: Hunk): string {
  if (h.end === h.start) return `insertion before line ${h.start + 1}`;
  return h.end - h.start === 1 ? `line ${h.start + 1}` : `lines ${h.start + 1}-${h.end}`;
}
