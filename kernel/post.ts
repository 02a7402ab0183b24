/**
 * Power-on self-test: each of the seven primitives proves itself on a scratch directory. A
 * primitive that is not built yet reports `not ready`; nothing here passes without running.
 */
import { atomicWrite } from "./atomic_write.ts";
import { AuditLog } from "./audit.ts";
import { verifyAuditLog } from "./audit_verify.ts";
import { casWrite } from "./gen_table.ts";
import { OstkError } from "./errors.ts";
import { hotPr } from "./hot_pr.ts";
import { ostkPaths } from "./layout.ts";
import { Kernel } from "./tools.ts";
import { ephemeralSigner, type Signer, verifierFor } from "./identity.ts";

/** One primitive's self-test outcome. */
export interface PostCheck {
  name: string;
  state: "pass" | "fail" | "not ready";
  detail: string;
}

/** All seven outcomes and the `POST n/7` tally. */
export interface PostReport {
  passed: number;
  total: number;
  checks: PostCheck[];
}

type Probe = (scratch: string) => Promise<string>;

/** Inputs the self-test may use; without `signer` the identity check signs with a fresh key. */
export interface PostOptions {
  /** The operator's signer and the project's public key, for the identity round-trip. */
  signer?: Signer;
  projectKey?: Uint8Array<ArrayBuffer>;
}

/**
 * Run every self-test in its own scratch directory, removed afterwards.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { powerOnSelfTest } from "./post.ts";
 * const report = await powerOnSelfTest();
 * const failed = report.checks.filter((c) => c.state !== "pass");
 * assert.deepEqual(failed, []); // each failure names its primitive and why
 * assert.equal(report.passed, 7);
 * assert.deepEqual(report.checks.map((c) => c.name), [
 *   "atomic-write", "gen-cas", "hot-pr", "audit", "identity", "digest", "304",
 * ]);
 * ```
 */
export async function powerOnSelfTest(options: PostOptions = {}): Promise<PostReport> {
  const probes: [string, Probe | undefined][] = [
    ["atomic-write", atomicWriteProbe],
    ["gen-cas", genCasProbe],
    ["hot-pr", hotPrProbe],
    ["audit", auditProbe],
    ["identity", (scratch) => identityProbe(scratch, options)],
    ["digest", digestProbe],
    ["304", elisionProbe],
  ];
  const checks: PostCheck[] = [];
  for (const [name, probe] of probes) {
    if (!probe) {
      checks.push({ name, state: "not ready", detail: "primitive not built yet" });
      continue;
    }
    const scratch = await Deno.makeTempDir({ prefix: `ostk-post-${name}-` });
    try {
      checks.push({ name, state: "pass", detail: await probe(scratch) });
    } catch (err) {
      checks.push({ name, state: "fail", detail: (err as Error).message });
    } finally {
      await Deno.remove(scratch, { recursive: true });
    }
  }
  return { passed: checks.filter((c) => c.state === "pass").length, total: 7, checks };
}

function expect(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

async function atomicWriteProbe(scratch: string): Promise<string> {
  const path = `${scratch}/probe.txt`;
  await atomicWrite(path, "old\n");
  await atomicWrite(path, "new\n");
  expect((await Deno.readTextFile(path)) === "new\n", "read back differs from what was written");
  const leftovers = [];
  for await (const entry of Deno.readDir(scratch)) leftovers.push(entry.name);
  expect(leftovers.length === 1, `temporary files left behind: ${leftovers.join(", ")}`);
  return "write, rename and read back agree";
}

async function genCasProbe(scratch: string): Promise<string> {
  const ostkDir = `${scratch}/.ostk`;
  await Deno.mkdir(ostkDir);
  const target = { ostkDir, absPath: `${scratch}/probe.txt`, relPath: "probe.txt", writer: "post" };
  const enc = new TextEncoder();
  const first = await casWrite({ ...target, bytes: enc.encode("one\n") });
  const second = await casWrite({ ...target, bytes: enc.encode("two\n"), expectedGen: first.gen });
  let refused = false;
  try {
    await casWrite({ ...target, bytes: enc.encode("stale\n"), expectedGen: first.gen });
  } catch (err) {
    if (!(err instanceof OstkError && err.code === "conflict")) throw err;
    refused = true;
  }
  expect(refused, "a write with a stale expected gen was accepted");
  expect((await Deno.readTextFile(target.absPath)) === "two\n", "the stale write changed the file");
  return `gen ${first.gen} → ${second.gen}; a write expecting gen ${first.gen} was refused`;
}

function hotPrProbe(_scratch: string): Promise<string> {
  const lines = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);
  const base = lines.join("\n") + "\n";
  const mine = base.replace("line 2\n", "line 2 (mine)\n");
  const current = base.replace("line 15\n", "line 15 (theirs)\n");
  const result = hotPr({ base, current, mine });
  expect(result.kind === "merged", `expected a tier-1 merge, got ${result.kind}`);
  const text = result.kind === "merged" ? result.text : "";
  expect(text.includes("line 2 (mine)") && text.includes("line 15 (theirs)"), "merge lost a side");
  return Promise.resolve("two edits 13 lines apart merged at tier 1 with both sides kept");
}

async function scratchKernel(scratch: string): Promise<Kernel> {
  const signer = await ephemeralSigner();
  const paths = ostkPaths(await Deno.realPath(scratch));
  await Deno.mkdir(`${paths.pins}/default`, { recursive: true });
  await Deno.writeTextFile(paths.defaultPin, "deny: write-kernel\n");
  await Deno.writeTextFile(`${scratch}/probe.txt`, "hello\n");
  return new Kernel(paths, { signer });
}

async function digestProbe(scratch: string): Promise<string> {
  const kernel = await scratchKernel(scratch);
  try {
    await kernel.call("file:read", { path: "probe.txt" }, { alias: "post-a" });
    await kernel.call("file:write", { path: "probe.txt", content: "changed\n" }, {
      alias: "post-b",
    });
    const a = await kernel.call("file:read", { path: "probe.txt", offset: 0, limit: 1 }, {
      alias: "post-a",
    });
    const lines = a.digest.split("\n");
    expect(lines.length <= 5, `digest has ${lines.length} lines, more than 5`);
    expect(lines[0].startsWith("[procs]"), "digest does not start with [procs]");
    expect(
      a.digest.includes("[files] probe.txt gen=1 by=post-b"),
      "digest did not report the file another agent changed",
    );
    return `${lines.length} lines; reports probe.txt changed by another agent`;
  } finally {
    kernel.close();
  }
}

async function elisionProbe(scratch: string): Promise<string> {
  const kernel = await scratchKernel(scratch);
  try {
    const first = await kernel.call("file:read", { path: "probe.txt" }, { alias: "post-a" });
    const second = await kernel.call("file:read", { path: "probe.txt" }, { alias: "post-a" });
    expect(first.ok && first.result.content === "hello\n", "first read did not return the bytes");
    expect(
      second.ok && second.result.elided === true && String(second.result.text).startsWith("[304]"),
      "an unchanged re-read was not elided",
    );
    return `re-read answered "${second.ok ? second.result.text : ""}"`;
  } finally {
    kernel.close();
  }
}

async function auditProbe(scratch: string): Promise<string> {
  const signer = await ephemeralSigner();
  const log = new AuditLog(`${scratch}/audit.jsonl`, { signer });
  try {
    await log.appendBatch([
      { event: "post.one", actor: "kernel" },
      { event: "post.two", actor: "kernel", fields: { n: 2 } },
    ]);
  } finally {
    log.close();
  }
  const good = await verifyAuditLog({
    logPath: `${scratch}/audit.jsonl`,
    headPath: `${scratch}/audit.head`,
    publicRaw: signer.publicRaw,
  });
  expect(good.ok && good.rows === 2, `fresh chain did not verify: ${good.failure?.reason}`);
  const text = await Deno.readTextFile(`${scratch}/audit.jsonl`);
  await Deno.writeTextFile(`${scratch}/audit.jsonl`, text.replace('"n":2', '"n":3'));
  const bad = await verifyAuditLog({
    logPath: `${scratch}/audit.jsonl`,
    headPath: `${scratch}/audit.head`,
    publicRaw: signer.publicRaw,
  });
  expect(!bad.ok && bad.failure?.seq === 1, "a tampered row went unnoticed");
  return "2 rows chained and verified; a tampered row was caught at seq 1";
}

async function identityProbe(_scratch: string, options: PostOptions): Promise<string> {
  const signer = options.signer ?? await ephemeralSigner();
  const publicRaw = options.projectKey ?? signer.publicRaw;
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const sig = await signer.sign(nonce);
  const verifier = await verifierFor(publicRaw);
  expect(await verifier.verify(sig, nonce), "signature does not verify under the public key");
  nonce[0] ^= 1;
  expect(!await verifier.verify(sig, nonce), "signature verified over different bytes");
  return options.signer
    ? "operator key signs; identity.pub verifies"
    : "throwaway key signs and verifies";
}
