#!/usr/bin/env node
// Issue 8 bench: do fingerprints survive a downstream fine-tune? Fingerprint stories260K, then
// fine-tune the result for 2 epochs on 1,000 stories the base model wrote itself (ordinary SFT,
// `oml-finetune --sft-data`), check again, and report the fraction of fingerprints retained.
//
//   pnpm build && node bench/persistence.mjs [--n 64] [--kind perinucleus|random] [--sft-lr 5e-5]
//     [--finetune-args "--forgetting-regularizer-strength 0.75 ..."]
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fingerprint, fingerprintsFile, referenceTextsFile, retention, sft, storiesFile } from "./quality-lib.mjs";

const { values: a } = parseArgs({
  options: {
    n: { type: "string", default: "64" },
    kind: { type: "string", default: "perinucleus" },
    "sft-lr": { type: "string", default: "5e-5" },
    "sft-epochs": { type: "string", default: "2" },
    "finetune-args": { type: "string", default: "" },
    dir: { type: "string" },
  },
});
const tmp = a.dir ?? mkdtempSync(path.join(os.tmpdir(), "oml-bench-persist-"));
const n = Number(a.n);
const fp = fingerprintsFile(tmp, n, a.kind);
const stories = await storiesFile(tmp);
const run = fingerprint(path.join(tmp, "results"), fp, a.kind, n, ["--eval-text", referenceTextsFile(tmp), ...a["finetune-args"].split(" ").filter(Boolean)]);
const tuned = sft(path.join(tmp, "results-sft"), path.join(run.dir, "final_model"), stories, { epochs: Number(a["sft-epochs"]), lr: Number(a["sft-lr"]) });
const r = await retention(run.dir, path.join(tuned.dir, "final_model"));
const pct = (x) => `${x.toFixed(1)}%`;
console.log(`| fingerprints | fingerprinting | success | SFT (1,000 self-written stories) | success after SFT | retained | fingerprint s | SFT s |`);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
console.log(
  `| ${n} ${a.kind} | ${a["finetune-args"] || "defaults"}, lr 1e-2 | ${pct(r.before)} (${run.summary.epochs_run} epochs) | ${a["sft-epochs"]} epochs, lr ${a["sft-lr"]}, batch 8 | ${pct(r.after)} | ${pct(100 * r.retained)} | ${run.seconds.toFixed(0)} | ${tuned.seconds.toFixed(0)} |`,
);
console.log(`\n(work dir: ${tmp})`);
