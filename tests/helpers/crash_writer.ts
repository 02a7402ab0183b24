/**
 * Test helper for tests/kernel/atomic_write_crash_test.ts: atomically rewrites `target` with
 * `size` bytes of 'A', then of 'B', and so on forever, until the test kills it with SIGKILL.
 * Prints `ready` once its buffers are built, so the kill lands in the write loop, not startup.
 *
 * Usage: deno run --allow-read --allow-write crash_writer.ts <target> <size>
 */
import { atomicWrite } from "../../kernel/atomic_write.ts";

if (import.meta.main) {
  const [target, sizeText] = Deno.args;
  const size = Number(sizeText);
  const versions = [new Uint8Array(size).fill(0x41), new Uint8Array(size).fill(0x42)];
  await Deno.stdout.write(new TextEncoder().encode("ready\n"));
  for (let i = 0;; i++) await atomicWrite(target, versions[i % 2]);
}
