/**
 * Shell output compression over the real corpus in fixtures/compress/: bytes before and after
 * per fixture, time per call, and a check that every error line survived. Two summaries, both
 * labelled, because the fixtures differ in size by two orders of magnitude: the median of the
 * per-fixture savings (each fixture counts once) and the byte-weighted saving (all bytes
 * pooled, so the largest fixture dominates). Then each fixture's provenance from
 * fixtures/compress/manifest.json. Prints figures; asserts nothing (a lost error line sets exit
 * code 1).
 *
 *   deno run --allow-read bench/compress_bench.ts
 */

import { compressOutput, isErrorLine, splitLines, stripAnsi } from "../kernel/compress.ts";

const FIXTURES = new URL("../fixtures/compress/", import.meta.url);
const TARGET_SAVED = 0.6;
const RUNS = 20;

interface Provenance {
  command: string;
  exit_code: number;
  ran_in: string;
  shows: string;
  provenance: string;
}

interface Row {
  name: string;
  kind: string;
  before: number;
  after: number;
  ms: number;
  errors: number;
  lost: string[];
  meta: Provenance;
}

/** 1 - after/before. */
function saving(before: number, after: number): number {
  return before === 0 ? 0 : 1 - after / before;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

async function measure(): Promise<Row[]> {
  const manifest: Record<string, Provenance> = JSON.parse(
    await Deno.readTextFile(new URL("manifest.json", FIXTURES)),
  ).fixtures;
  const names: string[] = [];
  for await (const e of Deno.readDir(FIXTURES)) if (e.name.endsWith(".out")) names.push(e.name);
  names.sort();
  const rows: Row[] = [];
  for (const file of names) {
    const name = file.slice(0, -4);
    const meta = manifest[name];
    if (!meta) {
      throw new Error(
        `fixtures/compress/${file} has no entry in manifest.json; add its provenance`,
      );
    }
    const text = new TextDecoder().decode(await Deno.readFile(new URL(file, FIXTURES)));
    const opts = { exitCode: meta.exit_code };
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
      meta,
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const rows = await measure();
  const before = rows.reduce((n, r) => n + r.before, 0);
  const after = rows.reduce((n, r) => n + r.after, 0);
  console.log(
    "fixture".padEnd(22),
    "kind".padEnd(12),
    "before".padStart(8),
    "after".padStart(8),
    "saved".padStart(7),
    "of input".padStart(9),
    "ms/call".padStart(8),
    " error lines kept",
  );
  for (const r of rows) {
    console.log(
      r.name.padEnd(22),
      r.kind.padEnd(12),
      String(r.before).padStart(8),
      String(r.after).padStart(8),
      pct(saving(r.before, r.after)).padStart(7),
      pct(r.before / before).padStart(9),
      r.ms.toFixed(2).padStart(8),
      ` ${r.errors - r.lost.length}/${r.errors}`,
    );
  }

  const perFixture = median(rows.map((r) => saving(r.before, r.after)));
  const weighted = saving(before, after);
  const largest = rows.reduce((a, b) => (b.before > a.before ? b : a));
  const verdict = (x: number) => (x >= TARGET_SAVED ? "met" : "MISSED");
  console.log(
    `\nmedian per-fixture saving: ${pct(perFixture)} ` +
      `(${rows.length} fixtures, each counts once; target ≥ ${TARGET_SAVED * 100}%: ` +
      `${verdict(perFixture)})`,
  );
  console.log(
    `byte-weighted saving:      ${pct(weighted)} (${before} → ${after} bytes pooled; ` +
      `${largest.name} alone is ${pct(largest.before / before)} of the input; ` +
      `target ≥ ${TARGET_SAVED * 100}%: ${verdict(weighted)})`,
  );

  const errors = rows.reduce((n, r) => n + r.errors, 0);
  const lost = rows.flatMap((r) => r.lost.map((l) => `${r.name}: ${l}`));
  if (lost.length === 0) console.log(`every error line kept (${errors} lines)`);
  else {
    console.log(`LOST ${lost.length} error lines:`);
    for (const l of lost) console.log(`  ${l}`);
    Deno.exitCode = 1;
  }

  console.log("\nprovenance (fixtures/compress/manifest.json):");
  for (const r of rows) {
    console.log(`  ${r.name}: \`${r.meta.command}\` (exit ${r.meta.exit_code})`);
    console.log(`      ran in: ${r.meta.ran_in}`);
    console.log(`      how: ${r.meta.provenance}`);
  }
}

if (import.meta.main) await main();
