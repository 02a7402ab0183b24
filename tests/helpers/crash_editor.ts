/**
 * Test helper run as a real process by tests/kernel/tools_crash_test.ts: rewrites one file
 * through the kernel's `file:write` over and over, each time with the next whole version, until
 * the test kills it with SIGKILL.
 *
 * Protocol: loads its modules and key, then waits for one line on stdin (so the test can start
 * the next round's process while it checks this one), reads the file to learn its version `k`,
 * prints `ready`, and writes versions k+1, k+2, … forever. A refused write is a failure: it is
 * printed on stderr and the process exits 1, which the test reports.
 *
 * Usage: deno run --allow-read --allow-write --allow-env crash_editor.ts <projectRoot> <keyPath>
 *          <path>
 */
import { Kernel } from "../../kernel/tools.ts";
import { loadOperatorKey } from "../../kernel/identity.ts";
import { ostkPaths } from "../../kernel/layout.ts";

/** Bytes of the letter in each version: 4 KiB, so a write spans more than one page. */
export const VERSION_BYTES = 4096;

/**
 * Version `k` of the file: the header line `v<k>`, then 4 KiB of one letter that cycles with
 * `k`, then a newline. Any mix of two versions or a truncation differs from every version.
 */
export function version(k: number): string {
  const letter = String.fromCharCode(0x61 + (k % 26));
  return `v${k}\n${letter.repeat(VERSION_BYTES)}\n`;
}

/** The `k` of a file's text when it is exactly one whole version, else undefined. */
export function versionOf(text: string): number | undefined {
  const match = text.match(/^v(\d+)\n/);
  if (!match) return undefined;
  const k = Number(match[1]);
  return text === version(k) ? k : undefined;
}

/** One line from stdin (the start signal); resolves at end of input too. */
async function readLine(): Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || value.includes(0x0a)) return;
    }
  } finally {
    reader.releaseLock();
  }
}

if (import.meta.main) {
  const [root, keyPath, path] = Deno.args;
  const alias = "crash-editor";
  const key = await loadOperatorKey(keyPath);
  const kernel = new Kernel(ostkPaths(root), { signer: key.signer });
  await readLine();
  const read = await kernel.call("file:read", { path, force: true }, { alias });
  const k = read.ok ? versionOf(String(read.result.content)) : undefined;
  if (k === undefined) {
    console.error(`cannot start: ${JSON.stringify(read.ok ? read.result : read.error)}`);
    Deno.exit(1);
  }
  console.log("ready");
  for (let next = k + 1;; next++) {
    const res = await kernel.call("file:write", { path, content: version(next) }, { alias });
    if (!res.ok) {
      console.error(`file:write v${next} refused: ${JSON.stringify(res.error)}`);
      Deno.exit(1);
    }
  }
}
