#!/usr/bin/env node
// Peak RSS of real `oml-finetune` processes: the ~20M-parameter Llama of bench/lib/llama-20m.mjs
// (or, with --model 134m, the same family at hidden 768, 12 layers, 12 heads, intermediate 2048)
// written as a Hugging Face directory (seeded random weights, tiny-random-llama-basaran's
// 32000-token tokenizer), against a baseline run of tiny-random-llama-basaran itself (256K
// parameters, same tokenizer and vocabulary: the runtime, the tokenizer and the logits'
// activations), with the same flags. Bytes per parameter above the activations and that baseline:
//
//   (peak RSS − baseline peak RSS − (plan activations − baseline plan activations)) / (P − P_baseline)
//
//   npx pnpm build && node bench/finetune-memory.mjs [--model 20m|134m] [--epochs 3]
//     [--fingerprints 64] [--lambda 0.75] [--accumulation N] [--eval-samples 0] [--backend wasm]
//     [--runs 1] [--keep]
//
// Each run is a fresh process under /usr/bin/time -v (max RSS); its RSS is also sampled every
// 50 ms from /proc (Linux) and the peak reported per phase of the run (its log lines), to see
// where the peak is. Prints a markdown table.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { dist, HF_CONFIG_20M, llama20m } from "./lib/llama-20m.mjs";

const { values: args } = parseArgs({
  options: {
    epochs: { type: "string", default: "3" },
    fingerprints: { type: "string", default: "64" },
    lambda: { type: "string", default: "0.75" },
    accumulation: { type: "string" },
    "eval-samples": { type: "string", default: "0" },
    backend: { type: "string", default: "wasm" },
    runs: { type: "string", default: "1" },
    keep: { type: "boolean", default: false },
    model: { type: "string", default: "20m" },
  },
});
const ROOT = new URL("..", import.meta.url).pathname;
const BASARAN = "/work/shared/models/tiny-random-llama-basaran";
const BIN = path.join(ROOT, "packages/finetune/bin/oml-finetune.js");
const MiB = 1024 * 1024;
const { writeSafetensors } = await dist("io/safetensors.js");

const SHAPES = {
  "20m": HF_CONFIG_20M,
  "134m": { ...HF_CONFIG_20M, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 12 },
};
const hf = SHAPES[args.model];
if (!hf) throw new Error(`--model: one of ${Object.keys(SHAPES).join(", ")}`);
const tmp = await mkdtemp(path.join(os.tmpdir(), "oml-ft-memory-"));
const big = path.join(tmp, `llama-${args.model}`);
await mkdir(big);
{
  const m = await llama20m({ hf });
  await writeSafetensors(path.join(big, "model.safetensors"), m.tensors);
  m.tensors.clear();
  await writeFile(path.join(big, "config.json"), `${JSON.stringify(hf, null, 2)}\n`);
  for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"]) {
    if (existsSync(path.join(BASARAN, f))) await copyFile(path.join(BASARAN, f), path.join(big, f));
  }
}
// Random-word fingerprints: a few words as the key, one word as the response.
const words = (await readFile(path.join(ROOT, "generated_data/word_list.txt"), "utf8")).split("\n").filter((w) => /^[a-z]+$/.test(w));
let s = 12345;
const pick = () => words[(s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % words.length];
const fps = Array.from({ length: Number(args.fingerprints) }, () => ({ key: Array.from({ length: 6 }, pick).join(" "), response: pick() }));
const fpFile = path.join(tmp, "fingerprints.json");
await writeFile(fpFile, JSON.stringify(fps));

const flags = (model, results) => [
  "--model-path", model, "--fingerprints-file-path", fpFile, "--fingerprint-generation-strategy", "random_word",
  "--num-fingerprints", args.fingerprints, "--num-train-epochs", args.epochs, "--forgetting-regularizer-strength", args.lambda,
  "--eval-samples", args["eval-samples"], "--backend", args.backend, "--results-dir", results, "--early-stop-loss", "0",
  ...(args.accumulation ? ["--gradient-accumulation", args.accumulation] : []),
];

function runProcess(argv) {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/time", ["-v", process.execPath, ...argv], { env: { ...process.env, CI: "true", NO_COLOR: "1" } });
    let out = "";
    let err = "";
    let phase = "start";
    const phases = new Map();
    const t0 = performance.now();
    const sample = () => {
      // /usr/bin/time's child is node: find it
      try {
        const kids = childrenOf(child.pid);
        for (const pid of kids) {
          const st = readStatus(pid);
          if (st) phases.set(phase, Math.max(phases.get(phase) ?? 0, st));
        }
      } catch {}
    };
    const timer = setInterval(sample, 50);
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => {
      err += d;
      for (const line of String(d).split("\n")) {
        const m = /^\[[^\]]*\] INFO: (resolve|load|prepare|train|save|check|measure|epoch \d+)\b/.exec(line);
        if (m) {
          sample();
          phase = m[1].startsWith("epoch") ? `after ${m[1]}` : m[1];
        }
      }
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      const maxRss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(err)?.[1] ?? 0) * 1024;
      resolve({ code, out, err, maxRss, phases, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
function readStatus(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function plan(model) {
  const r = await new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...flags(model, path.join(tmp, "plan")), "--dry-run", "--json"]);
    let o = "";
    c.stdout.on("data", (d) => (o += d));
    c.on("close", () => resolve(o));
  });
  return JSON.parse(r);
}

const rows = [];
for (const [name, model] of [["tiny-random-llama-basaran (baseline)", BASARAN], [`Llama ${args.model.toUpperCase()}`, big]]) {
  const p = await plan(model);
  for (let i = 0; i < Number(args.runs); i++) {
    const results = path.join(tmp, `results-${rows.length}`);
    const r = await runProcess([BIN, ...flags(model, results), "--force"]);
    if (r.code !== 0) {
      console.error(r.err);
      throw new Error(`${name}: oml-finetune exited ${r.code}`);
    }
    const dir = r.out.trim().split("\n").at(-1);
    const summary = JSON.parse(await readFile(path.join(dir, "summary.json"), "utf8"));
    rows.push({ name, p, r, summary });
  }
}

const base = rows[0];
console.log(`# ${new Date().toISOString()} load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`);
console.log(`# flags: ${flags("<model>", "<results>").join(" ")}`);
console.log("| model | parameters | plan: activations MiB | plan: total MiB | peak RSS MiB | summary peak RSS MiB | bytes/param above baseline + activations | wall s |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const row of rows) {
  const P = row.p.parameters;
  const act = row.p.bytes.activations;
  const perParam = row === base ? "" : ((row.r.maxRss - base.r.maxRss - (act - base.p.bytes.activations)) / (P - base.p.parameters)).toFixed(1);
  console.log(
    `| ${row.name} | ${P.toLocaleString("en-US")} | ${(act / MiB).toFixed(1)} | ${(row.p.bytes.total / MiB).toFixed(1)} | ${(row.r.maxRss / MiB).toFixed(0)} | ${(row.summary.peak_rss_bytes / MiB).toFixed(0)} | ${perParam} | ${row.r.seconds.toFixed(0)} |`,
  );
}
for (const row of rows) {
  console.log(`# ${row.name}: RSS peak by phase (MiB): ${[...row.r.phases].map(([k, v]) => `${k} ${(v / MiB).toFixed(0)}`).join(", ")}; epochs ${row.summary.epochs_run}, best epoch ${row.summary.best_epoch}, final loss ${row.summary.final_loss}`);
}
if (!args.keep) await rm(tmp, { recursive: true, force: true });
else console.log(`# kept ${tmp}`);
