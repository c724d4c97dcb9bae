#!/usr/bin/env node
// Issue "oml-check" bench: fingerprints checked per second on stories260K, batched with the KV
// cache against the one-key-at-a-time loop the reference runs (batch size 1), side by side in
// one process, both templates; the batched check on one thread and with a generation worker
// (oml-check's default on a multi-core machine). Usage: node bench/check-speed.mjs [N=1024] [backend=wasm]
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

const reps = Number(process.argv[4] ?? 3);
const loops = [
  ["one at a time (the reference's loop)", 1, 0],
  ["batched (KV cache, batch 256), no worker (GEMM pool on)", 256, 0],
  ["batched (KV cache, batch 64), no worker (GEMM pool on)", 64, 0],
  ["batched (KV cache, batch 256), main thread + 1 worker", 256, 1],
  ["batched (KV cache, batch 64), main thread + 1 worker", 64, 1],
  ["oml-check's defaults (--batch-size and --workers chosen by the check)", undefined, "auto"],
];
const optsOf = (batchSize, workers) => ({ modelPath: stories, fingerprintsFilePath: fps, fingerprintGenerationStrategy: "random_word", numFingerprints: n, batchSize, workers, backend, explicit: new Set(["numFingerprints"]) });
for (const [, batchSize, workers] of loops) {
  await runCheck({ ...optsOf(batchSize, workers), numFingerprints: Math.min(n, 256) }); // warm-up: backend start, first kernels at full batch
}
// Interleaved rounds (each loop once per round), medians: the machine's speed drifts.
const runs = loops.map(() => []);
for (let rep = 0; rep < reps; rep++) {
  for (const [i, [, batchSize, workers]] of loops.entries()) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await runCheck(optsOf(batchSize, workers));
    const s = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    runs[i].push({ s, cpu: (c.user + c.system) / 1e6, success: r.success_rate, workers: r.workers });
  }
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const rows = loops.map(([label], i) => {
  const s = median(runs[i].map((r) => r.s));
  return { label, s, cpu: median(runs[i].map((r) => r.cpu)), perSec: (n * 2) / s, success: runs[i][0].success, workers: runs[i][0].workers };
});
// CPU seconds beside wall seconds: other jobs on the machine stretch the wall clock.
// CPU seconds of the whole process (workers included) beside wall seconds.
console.log(`| stories260K, ${n} fingerprints × 2 templates, ${backend} (load ${os.loadavg()[0].toFixed(1)}) | wall s | CPU s | checks/s (wall) | speed-up (wall) |`);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  console.log(`| ${r.label} [${r.workers} worker${r.workers === 1 ? "" : "s"}] | ${r.s.toFixed(2)} | ${r.cpu.toFixed(2)} | ${r.perSec.toFixed(0)} | ${(rows[0].s / r.s).toFixed(1)}× |`);
}
for (const r of rows.slice(1)) {
  if (r.success !== rows[0].success) {
    throw new Error(`${r.label} and one-at-a-time results differ: ${r.success}% vs ${rows[0].success}%`);
  }
}
rmSync(tmp, { recursive: true, force: true });
