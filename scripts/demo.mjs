#!/usr/bin/env node
// The README's first command runs this after installing: the whole job on an embedded
// default, with nothing downloaded. It creates a tiny random Llama with the project's own
// byte-level tokenizer, generates 64 random-word fingerprints, fine-tunes them in, and
// checks the result with the reference's two prompt templates.
//
// Settings fit a 2-layer, 64-wide model (the reference's defaults are for 7B models):
// lr 1e-2, full-batch AdamW, forgetting strength 0.25, at most 60 epochs.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createTinyModel } from "@oml-ts/core";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const demo = path.join(root, "results/demo");
const bin = (name) => path.join(root, `packages/${name}/bin/oml-${name}.js`);

function run(name, args) {
  const r = spawnSync(process.execPath, [bin(name), ...args], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  if (r.status !== 0) {
    process.stderr.write(r.stdout ?? "");
    throw Object.assign(new Error(`oml-${name} failed (exit ${r.status})`), { exitCode: r.status ?? 1 });
  }
  return r.stdout;
}

try {
  const t0 = performance.now();
  const modelDir = path.join(demo, "tiny-llama");
  await createTinyModel(modelDir, { seed: 1, overwrite: true });
  process.stderr.write(`demo: created a tiny random Llama in ${modelDir}\n`);
  const fps = path.join(demo, "fingerprints.json");
  run("generate", ["--strategy", "random_word", "--num-fingerprints", "64", "--key-length", "16", "--response-length", "1", "--output-file", fps, "--force", "--quiet"]);
  process.stderr.write(`demo: wrote 64 random-word fingerprints to ${fps}\n`);
  const dir = run("finetune", [
    "--model-path", modelDir,
    "--fingerprints-file-path", fps,
    "--fingerprint-generation-strategy", "random_word",
    "--num-fingerprints", "64",
    "--learning-rate", "1e-2",
    "--forgetting-regularizer-strength", "0.25",
    "--num-train-epochs", "60",
    "--results-dir", path.join(demo, "results"),
    "--force",
  ]).trim().split("\n").at(-1);
  const report = JSON.parse(run("check", ["--model-path", path.join(dir, "final_model"), "--json", "--quiet"]));
  process.stdout.write(
    `\nfingerprint success rate: ${report.success_rate.toFixed(1)}% (${report.matches}/${report.num_fingerprints}), ` +
      `under the system-prompt template: ${report.templates[1].success_rate.toFixed(1)}%\n` +
      `result: ${dir}\n` +
      `check it again: npx pnpm exec oml-check --model-path ${path.relative(process.cwd(), path.join(dir, "final_model"))}\n` +
      `(${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
  );
} catch (err) {
  process.stderr.write(`demo failed: ${err.message}\n`);
  process.exitCode = err.exitCode ?? 1;
}
