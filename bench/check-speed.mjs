#!/usr/bin/env node
// Issue "oml-check" bench: fingerprints checked per second on stories260K, batched with the KV
// cache against the one-key-at-a-time loop the reference runs (batch size 1), side by side in
// one process, both templates. Usage: node bench/check-speed.mjs [N=1024] [backend=wasm]
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRng, loadWordList, randomWordFingerprints, runCheck, writeFingerprints } from "@oml-ts/core";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stories = path.resolve(root, "../shared/models/stories260K");
const n = Number(process.argv[2] ?? 1024);
const backend = process.argv[3] ?? "wasm";
const tmp = mkdtempSync(path.join(os.tmpdir(), "oml-bench-check-"));
const fps = path.join(tmp, "fp.json");
await writeFingerprints(fps, randomWordFingerprints({ words: await loadWordList(), numFingerprints: n, keyLength: 16, responseLength: 1, rng: createRng(1) }));

const rows = [];
for (const [label, batchSize] of [["batched (KV cache, batch 256)", 256], ["one at a time (the reference's loop)", 1]]) {
  const opts = { modelPath: stories, fingerprintsFilePath: fps, fingerprintGenerationStrategy: "random_word", numFingerprints: n, batchSize, backend, explicit: new Set(["numFingerprints"]) };
  await runCheck({ ...opts, numFingerprints: Math.min(n, 32) }); // warm-up: backend start, first kernels
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runCheck(opts);
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  rows.push({ label, s, cpu: (c.user + c.system) / 1e6, perSec: (n * r.templates.length) / s, success: r.success_rate });
}
// CPU seconds beside wall seconds: other jobs on the machine stretch the wall clock.
console.log(`| stories260K, ${n} fingerprints × 2 templates, ${backend} (load ${os.loadavg()[0].toFixed(1)}) | wall s | CPU s | checks/s (wall) |`);
console.log("| --- | ---: | ---: | ---: |");
for (const r of rows) {
  console.log(`| ${r.label} | ${r.s.toFixed(2)} | ${r.cpu.toFixed(2)} | ${r.perSec.toFixed(0)} |`);
}
console.log(`| speed-up | ${(rows[1].s / rows[0].s).toFixed(1)}× | ${(rows[1].cpu / rows[0].cpu).toFixed(1)}× | |`);
if (rows[0].success !== rows[1].success) {
  throw new Error(`batched and one-at-a-time results differ: ${rows[0].success}% vs ${rows[1].success}%`);
}
rmSync(tmp, { recursive: true, force: true });
