#!/usr/bin/env node
// Issue 8 bench: are fingerprints robust to system prompts? Fingerprint stories260K with and
// without `--use-augmentation-prompts` (each training draw wraps the key in one of the 50
// train templates), then check the result three ways with oml-check: the plain template "{}",
// the reference's second template ("You are a helpful AI assistant. Answer the following. {}"),
// and the 20 held-out templates of augmentation_prompts_test.json (mean and lowest).
//
//   pnpm build && node bench/robustness.mjs [--n 64] [--kind perinucleus|random]
//     [--configs "avg;avg+benign+kl"] [--dir DIR]
// avg = λ 0.75, benign = β 0.25, kl = α 4; lr 1e-2, full batch, up to 60 epochs (quality-lib.mjs).
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { cli, fingerprint, fingerprintsFile } from "./quality-lib.mjs";

const { values: a } = parseArgs({
  options: {
    n: { type: "string", default: "64" },
    kind: { type: "string", default: "perinucleus" },
    configs: { type: "string", default: "avg;avg+benign+kl" },
    dir: { type: "string" },
  },
});
const tmp = a.dir ?? mkdtempSync(path.join(os.tmpdir(), "oml-bench-robust-"));
const n = Number(a.n);
const fp = fingerprintsFile(tmp, n, a.kind);
const flags = (config) => {
  const parts = new Set(config.split("+"));
  return [
    "--forgetting-regularizer-strength", parts.has("avg") ? "0.75" : "0",
    ...(parts.has("benign") ? ["--benign-proportion", "0.25"] : []),
    ...(parts.has("kl") ? ["--kl-regularizer", "4"] : []),
  ];
};
const check = (model, extra) => JSON.parse(cli("check", ["--model-path", model, "--json", "--backend", "wasm", ...extra]).out);
const pct = (x) => `${x.toFixed(1)}%`;
console.log("| fingerprints | recipe | trained with templates | epochs | plain \"{}\" | reference system prompt | 20 held-out templates: mean | lowest |");
console.log("| --- | --- | --- | --- | ---: | ---: | ---: | ---: |");
for (const config of a.configs.split(";")) {
  for (const aug of [false, true]) {
    const run = fingerprint(path.join(tmp, "results"), fp, a.kind, n, ["--eval-samples", "0", ...flags(config), ...(aug ? ["--use-augmentation-prompts"] : [])]);
    const model = path.join(run.dir, "final_model");
    const plain = check(model, []);
    const held = check(model, ["--use-augmentation-prompts"]);
    const rates = held.templates.map((t) => t.success_rate);
    console.log(
      `| ${n} ${a.kind} | ${config} | ${aug ? "yes (50 train templates)" : "no"} | ${run.summary.epochs_run} | ${pct(plain.templates[0].success_rate)} | ${pct(plain.templates[1].success_rate)} | ` +
        `${pct(rates.reduce((s, r) => s + r, 0) / rates.length)} | ${pct(Math.min(...rates))} |`,
    );
  }
}
console.log(`\n(work dir: ${tmp})`);
