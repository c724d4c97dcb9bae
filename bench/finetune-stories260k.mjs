#!/usr/bin/env node
// Issue "oml-finetune" bench: fingerprint stories260K with N random-word fingerprints (default
// 1024) until ≥ 99% answer (greedy check after each epoch), as a user runs it, and report wall
// time, epochs and peak RSS. Usage:
//   node bench/finetune-stories260k.mjs [N=1024] [backend=wasm] [extra oml-finetune flags…]
// (after `pnpm build`; needs ../shared/models/stories260K). Default recipe: lr 1e-2, λ 0.75,
// batch 32 with an optimizer step per micro-batch (full-batch steps, one per epoch, need
// far more epochs at 1024 fingerprints: 26% after 20 epochs, 16 s each, in a first run).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stories = path.resolve(root, "../shared/models/stories260K");
const n = Number(process.argv[2] ?? 1024);
const backend = process.argv[3] ?? "wasm";
const extra = process.argv.slice(4);
const recipe = extra.length > 0 ? extra : ["--batch-size", "32", "--gradient-accumulation", "1"];
const bin = (name) => path.join(root, `packages/${name}/bin/oml-${name}.js`);
const tmp = mkdtempSync(path.join(os.tmpdir(), "oml-bench-ft-"));
const fps = path.join(tmp, "fp.json");

function run(name, args) {
  const r = spawnSync(process.execPath, [bin(name), ...args], { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`oml-${name} failed: ${r.stderr}`);
  }
  return r.stdout.trim().split("\n").at(-1);
}

run("generate", ["--strategy", "random_word", "--num-fingerprints", String(n), "--key-length", "16", "--response-length", "1", "--output-file", fps, "--quiet"]);
const t0 = performance.now();
const dir = run("finetune", [
  "--model-path", stories, "--fingerprints-file-path", fps, "--fingerprint-generation-strategy", "random_word",
  "--num-fingerprints", String(n), "--learning-rate", "1e-2", "--num-train-epochs", "200", "--stop-at-success", "99",
  "--early-stop-loss", "0", "--results-dir", path.join(tmp, "results"), "--backend", backend, "--quiet", ...recipe,
]);
const wall = (performance.now() - t0) / 1000;
const s = JSON.parse(readFileSync(path.join(dir, "summary.json"), "utf8"));
console.log("| model | fingerprints | backend | recipe (lr 1e-2; default λ 0.75) | epochs | success % | wall s (whole process) | peak RSS MiB |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
console.log(`| stories260K | ${n} | ${s.backend} | ${recipe.join(" ")} | ${s.epochs_run} | ${s.success_rate.toFixed(1)} | ${wall.toFixed(1)} | ${(s.peak_rss_bytes / 2 ** 20).toFixed(0)} |`);
rmSync(tmp, { recursive: true, force: true });
