/** The ostk command line. All logic lives in cli/; this file only runs it. */
import { runCli } from "./cli/run.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
