/**
 * Test helper for tests/actors/cpu_test.ts: a tiny agent program for the command CPU. Prints
 * its environment's OSTK_AGENT and OSTK_SOCKET, some numbered lines, one stderr line, then
 * `ready` once its signal handling is in place, sleeps, and exits.
 *
 * Usage: deno run --allow-env --allow-run=sleep fake_agent.ts
 *          [--lines N] [--sleep-ms MS] [--exit CODE] [--ignore-term] [--spawn-child]
 *
 * --ignore-term  print `ignoring SIGTERM` on SIGTERM and keep running (only SIGKILL ends it)
 * --spawn-child  start `sleep 60` in the background and print `child <pid>`
 */
import { parseArgs } from "node:util";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      lines: { type: "string", default: "3" },
      "sleep-ms": { type: "string", default: "0" },
      exit: { type: "string", default: "0" },
      "ignore-term": { type: "boolean", default: false },
      "spawn-child": { type: "boolean", default: false },
    },
  });
  console.log(`agent=${Deno.env.get("OSTK_AGENT") ?? ""}`);
  console.log(`socket=${Deno.env.get("OSTK_SOCKET") ?? ""}`);
  for (let i = 1; i <= Number(values.lines); i++) console.log(`line ${i}`);
  console.error("stderr line");
  if (values["ignore-term"]) {
    Deno.addSignalListener("SIGTERM", () => console.log("ignoring SIGTERM"));
  }
  if (values["spawn-child"]) {
    const child = new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" })
      .spawn();
    console.log(`child ${child.pid}`);
  }
  console.log("ready");
  const ms = Number(values["sleep-ms"]);
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  Deno.exit(Number(values.exit));
}
