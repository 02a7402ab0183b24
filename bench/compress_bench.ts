/**
 * Shell output compression over the real corpus in fixtures/compress/: bytes before and after
 * per fixture and in total (target: at least 60% saved), time per call, and a check that every
 * error line survived. Prints figures; asserts nothing (a lost error line sets exit code 1).
 *
 *   deno run --allow-read bench/compress_bench.ts
 */

import { compressOutput, isErrorLine, splitLines, stripAnsi } from "../kernel/compress.ts";

const FIXTURES = new URL("../fixtures/compress/", import.meta.url);
const TARGET_SAVED = 0.6;
const RUNS = 20;

interface Row {
  name: string;
  kind: string;
  before: number;
  after: number;
  ms: number;
  errors: number;
  lost: string[];
}

async function main(): Promise<void> {
  const names: string[] = [];
  for await (const e of Deno.readDir(FIXTURES)) if (e.name.endsWith(".out")) names.push(e.name);
  names.sort();
  const rows: Row[] = [];
  for (const file of names) {
    const name = file.slice(0, -4);
    const text = new TextDecoder().decode(await Deno.readFile(new URL(file, FIXTURES)));
    const meta = JSON.parse(await Deno.readTextFile(new URL(`${name}.meta.json`, FIXTURES)));
    const opts = { exitCode: meta.exit_code as number };
    const out = compressOutput(text, opts);
    const t0 = performance.now();
    for (let i = 0; i < RUNS; i++) compressOutput(text, opts);
    const ms = (performance.now() - t0) / RUNS;
    const wanted = splitLines(stripAnsi(text)).map((l) => l.trim()).filter((l) =>
      l !== "" && (isErrorLine(l) || /error|fail/i.test(l))
    );
    const lost = wanted.filter((l) => !out.text.includes(l));
    rows.push({
      name,
      kind: out.kind,
      before: out.before,
      after: out.after,
      ms,
      errors: wanted.length,
      lost,
    });
  }

  const pct = (before: number, after: number) => `${(100 * (1 - after / before)).toFixed(1)}%`;
  console.log(
    "fixture".padEnd(22),
    "kind".padEnd(12),
    "before".padStart(8),
    "after".padStart(8),
    "saved".padStart(7),
    "ms/call".padStart(8),
    "error lines kept",
  );
  for (const r of rows) {
    console.log(
      r.name.padEnd(22),
      r.kind.padEnd(12),
      String(r.before).padStart(8),
      String(r.after).padStart(8),
      pct(r.before, r.after).padStart(7),
      r.ms.toFixed(2).padStart(8),
      `${r.errors - r.lost.length}/${r.errors}`,
    );
  }
  const before = rows.reduce((n, r) => n + r.before, 0);
  const after = rows.reduce((n, r) => n + r.after, 0);
  const errors = rows.reduce((n, r) => n + r.errors, 0);
  const lost = rows.flatMap((r) => r.lost.map((l) => `${r.name}: ${l}`));
  const saved = 1 - after / before;
  console.log(
    "TOTAL".padEnd(35),
    String(before).padStart(8),
    String(after).padStart(8),
    pct(before, after).padStart(7),
    "".padStart(8),
    `${errors - lost.length}/${errors}`,
  );
  console.log(
    `\nsaved ${pct(before, after)} of ${rows.length} fixtures (target ≥ ${TARGET_SAVED * 100}%): ` +
      (saved >= TARGET_SAVED ? "met" : "MISSED"),
  );
  if (lost.length === 0) console.log(`every error line kept (${errors} lines)`);
  else {
    console.log(`LOST ${lost.length} error lines:`);
    for (const l of lost) console.log(`  ${l}`);
    Deno.exitCode = 1;
  }
}

if (import.meta.main) await main();
