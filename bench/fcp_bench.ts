/**
 * FCP throughput: parsing ops, and fcp-jsonc batches (edit + undo) on the deno.json fixture.
 * Prints figures; asserts nothing.
 *
 *   deno run --allow-read bench/fcp_bench.ts [--n 20000]
 */
import { parseArgs } from "node:util";
import { FcpSession, memoryStorage, parseOp } from "../drivers/fcp/mod.ts";
import { jsoncDriver } from "../drivers/fcp_jsonc/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: "20000" } },
});
const n = Number(values.n);
if (!Number.isInteger(n) || n < 1) {
  console.error("usage: fcp_bench.ts [--n N]  (a positive integer)");
  Deno.exit(2);
}

function report(what: string, count: number, ms: number): void {
  console.log(
    `${what.padEnd(40)} ${(count / (ms / 1000)).toFixed(0).padStart(9)} /s  (${ms.toFixed(1)} ms)`,
  );
}

const ops = [
  `add box label:"Auth Service" @type:svc`,
  "link api -> db kind:sql @not:env:dev",
  "fill Sheet2!A1:B10 value:0",
  `set tasks["my task"] "deno run -A main.ts"`,
];
let start = performance.now();
for (let i = 0; i < n; i++) parseOp(ops[i % ops.length]);
report("parseOp", n, performance.now() - start);

const text = await Deno.readTextFile(new URL("../fixtures/fcp/deno.jsonc", import.meta.url));
const session = new FcpSession(jsoncDriver(memoryStorage({ "deno.json": text })));
await session.session("open deno.json");
const rounds = Math.max(1, Math.floor(n / 20));
start = performance.now();
for (let i = 0; i < rounds; i++) {
  await session.batch([`set compilerOptions.strict ${i % 2 === 0}`, "push fmt.exclude build/"]);
  await session.session("undo");
  await session.session("undo");
}
report("jsonc batch of 2 + 2 undos (rounds)", rounds, performance.now() - start);
