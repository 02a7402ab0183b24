/** A read-only look at each part of `.ostk/`, for `ostk boot`. */
import { readHead } from "./audit_head.ts";
import { OstkError } from "./errors.ts";
import { parseHumanfile } from "./humanfile.ts";
import { fingerprint, readIdentityPub } from "./identity.ts";
import type { OstkPaths } from "./layout.ts";
import { parsePinCaps } from "./pin_caps.ts";

/** One part's state. */
export interface PartStatus {
  part: string;
  state: "ok" | "missing" | "bad";
  detail: string;
}

/** What the scan found, with the facts boot prints beside the parts. */
export interface ProjectStatus {
  parts: PartStatus[];
  drivers: { name: string; command: string[]; line: number }[];
  auditRows: number;
  projectKey?: string;
}

/**
 * Look at every part without changing any file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadOrCreateOperatorKey } from "./identity.ts";
 * import { initProject } from "./project_init.ts";
 * import { scanProject } from "./project_status.ts";
 * const dir = await Deno.makeTempDir();
 * const key = await loadOrCreateOperatorKey(`${dir}/key/identity.key`);
 * const { paths } = await initProject(dir, key);
 * await Deno.remove(paths.defaultPin);
 * const status = await scanProject(paths);
 * assert.equal(status.auditRows, 1); // the os.init row
 * assert.equal(status.projectKey, key.fingerprint);
 * const notOk = status.parts.filter((p) => p.state !== "ok");
 * assert.deepEqual(notOk.map((p) => [p.part, p.state]), [["pins/default/pin.caps", "missing"]]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function scanProject(paths: OstkPaths): Promise<ProjectStatus> {
  const parts: PartStatus[] = [];
  const out: ProjectStatus = { parts, drivers: [], auditRows: 0 };
  const probe = async (part: string, fn: () => Promise<string>) => {
    try {
      parts.push({ part, state: "ok", detail: await fn() });
    } catch (err) {
      if (
        err instanceof Deno.errors.NotFound ||
        (err instanceof OstkError && err.code === "not_found")
      ) {
        parts.push({ part, state: "missing", detail: "run 'ostk init' to restore it" });
      } else {
        parts.push({
          part,
          state: "bad",
          detail: err instanceof OstkError ? err.toLine() : (err as Error).message,
        });
      }
    }
  };
  await probe("HUMANFILE", async () => {
    const human = parseHumanfile(await Deno.readTextFile(paths.humanfile));
    out.drivers = human.drivers;
    return `${human.drivers.length} driver(s) declared`;
  });
  await probe("identity.pub", async () => {
    out.projectKey = await fingerprint(await readIdentityPub(paths.identityPub));
    return out.projectKey;
  });
  await probe("pins/default/pin.caps", async () => {
    const caps = parsePinCaps(await Deno.readTextFile(paths.defaultPin), paths.defaultPin);
    return `${caps.rules.length} rule(s)`;
  });
  for (const [part, dir] of [["agents/", paths.agents], ["drain/", paths.drain]]) {
    await probe(part, async () => {
      let n = 0;
      for await (const _ of Deno.readDir(dir)) n++;
      return `${n} entr${n === 1 ? "y" : "ies"}`;
    });
  }
  await probe("audit.jsonl", async () => {
    const { whole, torn } = countLines(await Deno.readFile(paths.audit));
    out.auditRows = whole;
    return `${whole} row(s)${torn ? `, torn final line (${torn} bytes)` : ""}`;
  });
  await probe("audit.head", async () => {
    const head = await readHead(paths.head);
    if (!head) throw new Deno.errors.NotFound("no head");
    return `seq ${head.seq}`;
  });
  await probe("gen_table.jsonl", async () => {
    const { whole } = countLines(await Deno.readFile(paths.genTable));
    return `${whole} row(s)`;
  });
  await probe(".gitignore", async () => {
    await Deno.stat(paths.gitignore);
    return "present";
  });
  return out;
}

function countLines(bytes: Uint8Array): { whole: number; torn: number } {
  let whole = 0;
  let last = -1;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      whole++;
      last = i;
    }
  }
  return { whole, torn: bytes.length - last - 1 };
}
