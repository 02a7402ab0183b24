/** Literal text edits: the match counting and replacement behind file:edit. */

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Strict UTF-8 decode, or undefined for bytes that are not text. */
export function safeDecode(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Non-overlapping occurrences of `needle` in `hay`. */
export function countMatches(hay: string, needle: string): number {
  let count = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) count++;
  return count;
}

/** Replace the first (or every) occurrence literally: no `$` patterns, unlike String.replace. */
export function replaceText(text: string, old: string, next: string, all: boolean): string {
  if (all) return text.split(old).join(next);
  const at = text.indexOf(old);
  return text.slice(0, at) + next + text.slice(at + old.length);
}
