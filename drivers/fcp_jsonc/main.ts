/**
 * `fcp-jsonc` over stdio. Inside an ostk project every load and save goes through the kernel
 * (`file:read` / `file:write` as alias `fcp-jsonc`: gen-checked, policy-checked, audited);
 * outside one it edits plain files under the working directory and says so on stderr.
 *
 *     deno run --allow-read --allow-write --allow-env drivers/fcp_jsonc/main.ts
 */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import process from "node:process";
import { OstkError } from "../../kernel/errors.ts";
import { locateProject, projectSigner } from "../../kernel/project.ts";
import { Kernel } from "../../kernel/tools.ts";
import { type FcpStorage, fileStorage, kernelStorage } from "../fcp/mod.ts";
import { createJsoncServer } from "./mod.ts";

/** The alias the kernel records for this driver's reads and writes. */
export const ALIAS = "fcp-jsonc";

/** Kernel storage for the project around `cwd`, or plain files when there is none. */
export async function openStorage(
  cwd: string,
): Promise<{ storage: FcpStorage; close(): void; where: string }> {
  let paths;
  try {
    paths = await locateProject(cwd);
  } catch (err) {
    if (!(err instanceof OstkError && err.code === "not_found")) throw err;
    return { storage: fileStorage(cwd), close: () => {}, where: `plain files under ${cwd}` };
  }
  // Inside a project a missing or foreign key is an error, never a quiet fall back to raw files.
  const key = await projectSigner(paths);
  const kernel = new Kernel(paths, { signer: key.signer });
  return {
    storage: kernelStorage({ call: (tool, args) => kernel.call(tool, args, { alias: ALIAS }) }),
    close: () => kernel.close(),
    where: `the ostk kernel of ${paths.root}`,
  };
}

/** Serve until the client hangs up (end of stdin closes the server; the SDK does not). */
export async function main(cwd = Deno.cwd()): Promise<void> {
  const { storage, close, where } = await openStorage(cwd);
  console.error(`fcp-jsonc: saving through ${where}`);
  const server = createJsoncServer(storage);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
  const onEnd = () => void server.close();
  process.stdin.once("end", onEnd);
  await server.connect(transport);
  await closed;
  process.stdin.off("end", onEnd);
  close();
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`fcp-jsonc: ${err instanceof OstkError ? err.toLine() : String(err)}`);
    Deno.exit(1);
  }
}
