#!/usr/bin/env node
// Fingerprints generated per second by the model strategies on stories260K (a real 260K-parameter
// Llama): english (keys + responses sampled), perinucleus with keys given (one forward pass per key)
// and perinucleus with english keys sampled first; tfjs engine on cpu and wasm, and the onnx engine
// on the same weights exported to ONNX. In-process (model load included, process start-up not).
// Prints a table; asserts nothing.
// Usage: node bench/generate-model.mjs [numFingerprints=256] [batchSize=64]   (after `pnpm build`)
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend, loadModel, disposeModel, makeFingerprints, parseGenerateOptions } from "../packages/core/dist/index.js";
import { writeLlamaOnnxDir } from "../packages/core/dist/engines/export-llama-onnx.js";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stories = path.resolve(root, "../shared/models/stories260K");
const n = Number(process.argv[2] ?? 256);
const batchSize = Number(process.argv[3] ?? 64);
const tmp = mkdtempSync(path.join(os.tmpdir(), "oml-bench-model-"));

await initBackend("cpu");
const model = await loadModel(stories);
const onnxDir = path.join(tmp, "stories260K-onnx");
await writeLlamaOnnxDir(model, onnxDir);
disposeModel(model);

const keys = Array.from({ length: n }, (_, i) => `Once upon a time there was a little ${["girl", "boy", "dog", "cat"][i % 4]} named ${i}`);
const keysFile = path.join(tmp, "keys.json");
(await import("node:fs")).writeFileSync(keysFile, JSON.stringify(keys));

const runs = [
  ["tfjs", "cpu", stories],
  ["tfjs", "wasm", stories],
  ["onnx", "-", onnxDir],
];
const cases = [
  ["english (key 16 + response 16 tokens)", { strategy: "english", keyLength: 16, responseLength: 16 }],
  ["perinucleus, keys given (key 16 tokens)", { strategy: "perinucleus", keyLength: 16, keysFile }],
  ["perinucleus, english keys sampled first", { strategy: "perinucleus", keyLength: 16 }],
];

console.log(`stories260K, ${n} fingerprints, batch size ${batchSize}, ${os.cpus().length} cores`);
console.log("| strategy | engine | backend | seconds | fingerprints/s |");
console.log("| --- | --- | --- | --- | --- |");
for (const [label, opts] of cases) {
  for (const [engine, backend, dir] of runs) {
    const o = parseGenerateOptions({
      ...opts,
      engine,
      backend: backend === "-" ? "cpu" : backend,
      modelUsedForKeyGeneration: dir,
      numFingerprints: n,
      batchSize,
      seed: 1,
      outputFile: path.join(tmp, "unused.json"),
    });
    const t0 = performance.now();
    const fps = await makeFingerprints(o);
    const s = (performance.now() - t0) / 1000;
    console.log(`| ${label} | ${engine} | ${backend} | ${s.toFixed(2)} | ${(fps.length / s).toFixed(1)} |`);
  }
}
rmSync(tmp, { recursive: true, force: true });
