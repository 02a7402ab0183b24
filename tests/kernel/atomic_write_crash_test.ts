/**
 * Crash test for atomicWrite: a real writer process is killed with SIGKILL at a random moment,
 * over and over, and the target must always hold one whole version. The random delay only
 * spreads the kills over the write loop; whatever the timing, the assertions are the same.
 */
import assert from "node:assert/strict";

const ROUNDS = 200;
const SIZE = 64 * 1024;
const A = 0x41;
const B = 0x42;
const helper = new URL("../helpers/crash_writer.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Why `bytes` is not one whole version, or undefined when it is. */
function damage(bytes: Uint8Array): string | undefined {
  if (bytes.length !== SIZE) return `length ${bytes.length}, expected ${SIZE}`;
  const first = bytes[0];
  if (first !== A && first !== B) return `byte 0 is ${first}, expected 'A' or 'B'`;
  const mixed = bytes.findIndex((b) => b !== first);
  return mixed === -1 ? undefined : `mixed content: byte ${mixed} is ${bytes[mixed]}`;
}

/** Read the child's stdout up to its `ready` line; the reader stays open until the child dies. */
async function waitForReady(child: Deno.ChildProcess) {
  const reader = child.stdout.getReader();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) {
      const stderr = await new Response(child.stderr).text();
      throw new Error(`writer exited before ready (${(await child.status).code}): ${stderr}`);
    }
    seen += decoder.decode(value);
  }
  return reader;
}

Deno.test("atomicWrite: a writer killed at a random moment leaves one whole version", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostk_crash_" });
  const target = `${dir}/target.bin`;
  const tmpName = /^\.target\.bin\.\d+\.\d+\.tmp$/;
  const counts = { A: 0, B: 0, roundsWithTmp: 0 };
  const started = performance.now();
  try {
    await Deno.writeFile(target, new Uint8Array(SIZE).fill(A));
    for (let round = 0; round < ROUNDS; round++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", helper, target, `${SIZE}`],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = await waitForReady(child);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
      try {
        child.kill("SIGKILL");
      } catch (err) {
        // Deno throws TypeError when the child is already gone; the status check says why.
        if (!(err instanceof TypeError)) throw err;
      }
      const status = await child.status;
      await reader.cancel();
      const stderr = await new Response(child.stderr).text();
      // The writer loops forever; anything but our SIGKILL means it failed on its own.
      assert.equal(status.signal, "SIGKILL", `round ${round}: writer stopped early: ${stderr}`);

      const bytes = await Deno.readFile(target);
      assert.equal(damage(bytes), undefined, `round ${round}: target is torn`);
      counts[bytes[0] === A ? "A" : "B"]++;

      // A kill between open and rename leaves the temp file behind; it must be only that,
      // never a file in the target's place. Remove it so each round starts the same way.
      let leftovers = 0;
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name === "target.bin") continue;
        assert.match(entry.name, tmpName, `round ${round}: unexpected file`);
        await Deno.remove(`${dir}/${entry.name}`);
        leftovers++;
      }
      if (leftovers > 0) counts.roundsWithTmp++;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // Figures only: how the kills spread over the loop. Never asserted (timing decides them).
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${ROUNDS} kills in ${seconds}s: ended on A ${counts.A}, on B ${counts.B}, ` +
      `killed mid-write (temp file left) ${counts.roundsWithTmp}`,
  );
});
