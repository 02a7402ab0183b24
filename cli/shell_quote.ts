/**
 * A word quoted for a POSIX shell (and bash, zsh): single quotes, each `'` closed, escaped and
 * reopened, so no character inside is special.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shellQuote } from "./shell_quote.ts";
 * assert.equal(shellQuote("it's"), `'it'\\''s'`);
 * const out = new Deno.Command("sh", { args: ["-c", `printf %s ${shellQuote("$HOME 'x' *")}`] })
 *   .outputSync();
 * assert.equal(new TextDecoder().decode(out.stdout), "$HOME 'x' *");
 * ```
 */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
