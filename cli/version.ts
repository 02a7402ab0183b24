/** The version, read from deno.json so it is written in exactly one place. */
import manifest from "../deno.json" with { type: "json" };

export const VERSION: string = manifest.version;
