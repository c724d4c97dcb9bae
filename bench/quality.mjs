#!/usr/bin/env node
// Issue 8 bench (long-running, not CI): what fingerprinting costs stories260K, and whether the
// fingerprints survive a downstream fine-tune, with averaging, benign mixing and the KL
// regularizer each on and off. Prints one markdown table:
//   success (greedy, plain template) · epochs · CE change on 32 self-written samples and on the
//   model's reference texts · KL(base ‖ fingerprinted) per token · fingerprints retained after
//   2 epochs of SFT on 1,000 self-written stories · wall time of the fingerprinting run.
//
//   pnpm build && node bench/quality.mjs [--n 64,256,1024] [--kinds perinucleus,random]
//     [--configs plain,avg,benign,kl,avg+benign,avg+kl,benign+kl,avg+benign+kl] [--no-persistence]
//     [--alpha 4] [--beta 0.25] [--lambda 0.75] [--sft-lr 5e-5] [--extra "--learning-rate 5e-3"] [--dir DIR]
//
// Every fingerprinting run: lr 1e-2 (unless --extra), full batch (one AdamW step per epoch),
// batch 8, up to 60 epochs, stop at 100%, best weights kept.
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fingerprint, fingerprintsFile, referenceTextsFile, retention, sft, storiesFile } from "./quality-lib.mjs";

const { values: a } = parseArgs({
  options: {
    n: { type: "string", default: "64,256,1024" },
    kinds: { type: "string", default: "perinucleus,random" },
    configs: { type: "string", default: "plain,avg,benign,kl,avg+benign,avg+kl,benign+kl,avg+benign+kl" },
    "no-persistence": { type: "boolean", default: false },
    alpha: { type: "string", default: "4" },
    beta: { type: "string", default: "0.25" },
    lambda: { type: "string", default: "0.75" },
    "sft-lr": { type: "string", default: "5e-5" },
    extra: { type: "string", default: "" },
    dir: { type: "string" },
  },
});
const tmp = a.dir ?? mkdtempSync(path.join(os.tmpdir(), "oml-bench-quality-"));
const refTexts = referenceTextsFile(tmp);
const stories = a["no-persistence"] ? null : await storiesFile(tmp);

/** Flags of a config name: avg = averaging λ, benign = β, kl = α (absent parts are off). */
function flags(name) {
  const parts = new Set(name.split("+"));
  return [
    "--forgetting-regularizer-strength", parts.has("avg") ? a.lambda : "0",
    ...(parts.has("benign") ? ["--benign-proportion", a.beta] : []),
    ...(parts.has("kl") ? ["--kl-regularizer", a.alpha] : []),
    ...a.extra.split(" ").filter(Boolean),
  ];
}

const pct = (x, digits = 1) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(digits)}%`;
console.log(`| fingerprints | responses | averaging λ | benign β | KL α | success | epochs | CE self-written | CE reference texts | KL | retained after SFT | wall s |`);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const n of a.n.split(",").map(Number)) {
  for (const kind of a.kinds.split(",")) {
    const fp = fingerprintsFile(tmp, n, kind);
    for (const config of a.configs.split(",")) {
      const parts = new Set(config.split("+"));
      const run = fingerprint(path.join(tmp, "results"), fp, kind, n, ["--eval-text", refTexts, ...flags(config)]);
      const s = run.summary;
      let kept = "–";
      if (stories) {
        const tuned = sft(path.join(tmp, "results-sft"), path.join(run.dir, "final_model"), stories, { lr: Number(a["sft-lr"]) });
        const r = await retention(run.dir, path.join(tuned.dir, "final_model"));
        kept = `${(100 * r.retained).toFixed(0)}%`;
      }
      console.log(
        `| ${n} | ${kind} | ${parts.has("avg") ? a.lambda : "–"} | ${parts.has("benign") ? a.beta : "–"} | ${parts.has("kl") ? a.alpha : "–"} | ${s.success_rate.toFixed(1)}% | ${s.epochs_run} | ` +
          `${pct(s.heldout.self_generated.ce_relative_change)} | ${pct(s.heldout.eval_text.ce_relative_change)} | ${s.heldout.self_generated.kl.toFixed(3)} | ${kept} | ${run.seconds.toFixed(0)} |`,
      );
    }
  }
}
console.log(`\n(work dir: ${tmp}; SFT: 2 epochs, lr ${a["sft-lr"]}, batch 8, linear decay${a.extra ? `; fingerprinting extra flags: ${a.extra}` : ""})`);
