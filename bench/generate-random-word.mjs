#!/usr/bin/env node
// Wall time of `oml-generate --strategy random_word --num-fingerprints 8192` as a user runs it
// (a fresh node process each time, output to a temp dir). Prints a table; asserts nothing.
// Usage: node bench/generate-random-word.mjs [runs=5]   (after `pnpm build`)
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = path.join(root, "packages/generate/bin/oml-generate.js");
const runs = Number(process.argv[2] ?? 5);
const times = [];
for (let i = 0; i < runs; i++) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "oml-bench-"));
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, "--strategy", "random_word", "--num-fingerprints", "8192", "--output-file", path.join(dir, "fp.json"), "--quiet"]);
  times.push((performance.now() - t0) / 1000);
  rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) {
    throw new Error(`oml-generate failed: ${r.stderr}`);
  }
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log("| what | runs | median s | min s | max s |");
console.log("| --- | --- | --- | --- | --- |");
console.log(`| oml-generate random_word, 8192 fingerprints (whole process) | ${runs} | ${median.toFixed(2)} | ${times[0].toFixed(2)} | ${times.at(-1).toFixed(2)} |`);
