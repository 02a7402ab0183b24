/**
 * Test helper run as a real process by tests/kernel/gen_table_test.ts: `count` rounds of two
 * casWrites each, one to a file only this process writes (with expectedGen, which must always
 * hold) and one blind write to a shared file. Prints one JSON line with the gens it was given.
 *
 * Usage: deno run --allow-read --allow-write gen_writer.ts <projectDir> <id> <count>
 */
import { casWrite } from "../../kernel/gen_table.ts";

if (import.meta.main) {
  const [projectDir, id, countText] = Deno.args;
  const count = Number(countText);
  const ostkDir = `${projectDir}/.ostk`;
  const encoder = new TextEncoder();
  const ownGens: Record<string, number> = {};
  const sharedGens: number[] = [];
  for (let k = 0; k < count; k++) {
    const own = `own/w${id}_${k % 10}.txt`;
    const expectedGen = ownGens[own] ?? 0;
    const mine = await casWrite({
      ostkDir,
      absPath: `${projectDir}/${own}`,
      relPath: own,
      bytes: encoder.encode(`writer ${id} round ${k}\n`),
      writer: `w${id}`,
      expectedGen,
    });
    // Only this process writes `own`, so its CAS can never lose; a loss means a lost update.
    if (mine.gen !== expectedGen + 1) {
      throw new Error(`${own}: gen ${mine.gen} after ${expectedGen}`);
    }
    ownGens[own] = mine.gen;
    const shared = await casWrite({
      ostkDir,
      absPath: `${projectDir}/shared.txt`,
      relPath: "shared.txt",
      bytes: encoder.encode(`writer ${id} round ${k}\n`),
      writer: `w${id}`,
    });
    sharedGens.push(shared.gen);
  }
  console.log(JSON.stringify({ id, ownGens, sharedGens }));
}
