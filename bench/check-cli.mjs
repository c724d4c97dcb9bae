#!/usr/bin/env node
// Issue 9 as a user sees it: the whole `oml-check` command (a fresh Node process: start-up,
// backend, model and tokenizer load, tokenizing, generation) on 1024 random-word fingerprints
// of stories260K, beside a fresh Python process running the reference's check loop in plain
// PyTorch (bench/pytorch_check_loop.py with no warm-up: interpreter start, `import torch`,
// weights read, the loop). PyTorch gets the prompt ids, so tokenizer and transformers imports
// and generate()'s bookkeeping are left out: a LOWER bound of the reference's command.
// Wall seconds of whole processes, medians of interleaved rounds. Not part of CI.
//
//   npx pnpm build && node bench/check-cli.mjs [N=1024] [rounds=5]
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildFingerprintExamples, createRng, DEFAULT_CHECK_TEMPLATES, loadTokenizer, loadWordList, promptIds, randomWordFingerprints, writeFingerprints } from "@oml-ts/core";

const here = path.dirname(fileURLToPath(import.meta.url));
const stories = path.resolve(here, "../../shared/models/stories260K");
const n = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 5);
const PYTHON = "/usr/bin/python3"; // Debian's python, where python3-torch installs
const tmp = mkdtempSync(path.join(os.tmpdir(), "oml-bench-check-cli-"));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

try {
  if (spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status !== 0) {
    throw new Error(`${PYTHON} cannot import torch: apt-get install -y python3-torch libopenblas0-pthread`);
  }
  // The fingerprints of check-speed.mjs and check-loop-pytorch.mjs, and their prompt ids as oml-check builds them.
  const fps = randomWordFingerprints({ words: await loadWordList(), numFingerprints: n, keyLength: 16, responseLength: 1, rng: createRng(1) });
  const fpFile = path.join(tmp, "fp.json");
  await writeFingerprints(fpFile, fps);
  const tok = await loadTokenizer(stories);
  const examples = buildFingerprintExamples(fps, tok, { numFingerprints: n, maxKeyLength: 16, maxResponseLength: 1, strategy: "random_word" });
  const prompts = DEFAULT_CHECK_TEMPLATES.flatMap((template) => examples.map((e) => promptIds(tok, e, { kind: "template", template })));
  const job = { model: stories, prompts, max_new: prompts.map(() => 1), reps: 1, warmup: 0 };

  const timed = (cmd, args, env = {}) => {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } });
    const s = (performance.now() - t0) / 1000;
    if (r.status !== 0) {
      throw new Error(`${path.basename(args[0] ?? cmd)} exited ${r.status}: ${r.stderr}`);
    }
    return { s, stdout: r.stdout };
  };
  const bin = path.resolve(here, "../packages/check/bin/oml-check.js");
  const oursArgs = [bin, "--model-path", stories, "--fingerprints-file-path", fpFile, "--num-fingerprints", String(n), "--fingerprint-generation-strategy", "random_word", "--json"];
  const ours = (label, env) => ({
    label,
    run() {
      const r = timed(process.execPath, oursArgs, env);
      return { s: r.s, inner: JSON.parse(r.stdout).seconds };
    },
  });
  const torch = (threads) => ({
    label: `python3 + PyTorch loop, ${threads} thread${threads > 1 ? "s" : ""} (ids given, no transformers: lower bound)`,
    run() {
      const [inFile, outFile] = [path.join(tmp, `in-${threads}.json`), path.join(tmp, `out-${threads}.json`)];
      writeFileSync(inFile, JSON.stringify({ ...job, threads }));
      const r = timed(PYTHON, [path.join(here, "pytorch_check_loop.py"), inFile, outFile], { OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) });
      return { s: r.s };
    },
  });
  const sides = [torch(2), torch(1), ours("oml-check (defaults)", {}), ours("oml-check, OML_GEMM_THREADS=0 (one thread)", { OML_GEMM_THREADS: "0" })];
  for (const side of sides) {
    side.run(); // warm the file cache
    side.runs = [];
  }
  for (let r = 0; r < rounds; r++) {
    for (const side of sides) {
      side.runs.push(side.run());
      process.stderr.write(`round ${r + 1}/${rounds}: ${side.label}: ${side.runs.at(-1).s.toFixed(2)} s\n`);
    }
  }
  const [torch2, torch1] = sides.map((side) => median(side.runs.map((x) => x.s)));
  console.log(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node ${process.version}, load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}\n`);
  console.log(`| stories260K, ${n} fingerprints × 2 templates, whole processes, medians of ${rounds} | wall s | check's own s | vs PyTorch 2 threads | vs PyTorch 1 thread |`);
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const side of sides) {
    const s = median(side.runs.map((x) => x.s));
    const inner = side.runs[0].inner === undefined ? "" : median(side.runs.map((x) => x.inner)).toFixed(2);
    console.log(`| ${side.label} | ${s.toFixed(2)} | ${inner} | ${(torch2 / s).toFixed(1)}× | ${(torch1 / s).toFixed(1)}× |`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
