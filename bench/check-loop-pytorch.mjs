#!/usr/bin/env node
// Issue 9 against the reference itself: OML 1.0's check loop (transformers' generate per key,
// batch 1, greedy, KV cache) run in plain PyTorch (bench/pytorch_check_loop.py, Debian
// python3-torch under /usr/bin/python3; transformers is not installable here), beside our
// one-at-a-time loop and our batched check, on the same 1024 random-word fingerprints as
// bench/check-speed.mjs, both templates, stories260K. Not part of CI.
//
//   npx pnpm build && node bench/check-loop-pytorch.mjs [N=1024] [reps=3]
//
// The PyTorch loop gets the prompt ids (tokenization excluded) and skips generate()'s per-call
// bookkeeping: its time is a LOWER bound of the reference's. Ours are whole runCheck calls
// (tokenizing, model load, generation): an upper bound of ours. Medians of `reps` interleaved
// rounds, each side warmed up once first. Also checks that PyTorch generates what our check
// generates. Linux only (/proc/stat: other jobs' CPU during each run).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildFingerprintExamples, checkFingerprints, createRng, DEFAULT_CHECK_TEMPLATES, disposeModel, generate, initBackend,
  loadModel, loadTokenizer, loadWordList, randomWordFingerprints, readFingerprints, runCheck, writeFingerprints,
} from "@oml-ts/core";

const here = path.dirname(fileURLToPath(import.meta.url));
const stories = path.resolve(here, "../../shared/models/stories260K");
const n = Number(process.argv[2] ?? 1024);
const reps = Number(process.argv[3] ?? 3);
const PYTHON = "/usr/bin/python3"; // Debian's python, where python3-torch installs (not pyenv's)
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
const tmp = mkdtempSync(path.join(os.tmpdir(), "oml-bench-check-pt-"));

try {
  if (spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status !== 0) {
    throw new Error(`${PYTHON} cannot import torch: apt-get install -y python3-torch libopenblas0-pthread`);
  }
  // The fingerprints of check-speed.mjs.
  const fpFile = path.join(tmp, "fp.json");
  await writeFingerprints(fpFile, randomWordFingerprints({ words: await loadWordList(), numFingerprints: n, keyLength: 16, responseLength: 1, rng: createRng(1) }));

  // The prompts exactly as runCheck builds them (same defaults: key ≤ 16 tokens, response 1
  // token, seed 42), checked by the same checkFingerprints + generate at batch 256, so we
  // get per-row prompt ids and our generated ids (runCheck's report has only the counts).
  await initBackend("wasm");
  const tok = await loadTokenizer(stories);
  const examples = buildFingerprintExamples(await readFingerprints(fpFile), tok, {
    numFingerprints: n, maxKeyLength: 16, maxResponseLength: 1, strategy: "random_word", keepEos: false, rng: createRng(42), file: fpFile,
  });
  const modes = DEFAULT_CHECK_TEMPLATES.map((template) => ({ kind: "template", template }));
  const model = await loadModel(stories);
  const padId = tok.padId ?? tok.eosId ?? 0;
  const ours = await checkFingerprints({
    examples, tokenizer: tok, modes, batchSize: 256,
    generate: (prompts, k) => generate(model, prompts, { maxNewTokens: k, eosIds: [], padId, temperature: 0 }),
  });
  const rows = ours.flatMap((t) => t.rows);
  const job = { model: stories, prompts: rows.map((r) => r.promptIds), max_new: rows.map((r) => r.expected.length), reps: 1, warmup: 64 };

  // Sides run in interleaved rounds (one timed run of each per round), so jobs of other users
  // on the machine stretch all of them alike; each run also records how much CPU the rest of
  // the machine took meanwhile (/proc/stat busy minus our own CPU).
  const machineBusy = () => { const t = readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1).map(Number); return (t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) / 100; };
  let file = 0;
  const torchSide = (threads) => ({
    label: `PyTorch loop, batch 1 + KV cache, ${threads} thread${threads > 1 ? "s" : ""} (ids given: lower bound)`,
    // One process per timed run (warm-up of 64 prompts first): the thread pool is set once per process.
    run() {
      const [inFile, outFile] = [`in-${++file}.json`, `out-${file}.json`].map((f) => path.join(tmp, f));
      writeFileSync(inFile, JSON.stringify({ ...job, threads }));
      const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
      const r = spawnSync(PYTHON, [path.join(here, "pytorch_check_loop.py"), inFile, outFile], { stdio: "inherit", env });
      if (r.status !== 0) throw new Error(`pytorch_check_loop.py exited ${r.status}`);
      const out = JSON.parse(readFileSync(outFile, "utf8"));
      // Agreement with our generated ids, row by row, and matches against the expected ids.
      this.differ = rows.map((row, i) => ({ ...row, torch: out.generated[i] })).filter((d) => d.generated.join() !== d.torch.join());
      this.matches = ours.map((t, m) => t.rows.filter((row, i) => out.generated[m * examples.length + i].join() === row.expected.join()).length);
      this.torch = out.torch;
      return { s: out.seconds[0], cpu: out.cpu_seconds[0], other: out.machine_busy_seconds[0] - out.cpu_seconds[0] };
    },
  });
  // Ours: whole runCheck calls as oml-check makes them (wasm), warmed up once on 32 keys.
  const oursSide = (label, batchSize, workers) => {
    const opts = { modelPath: stories, fingerprintsFilePath: fpFile, fingerprintGenerationStrategy: "random_word", numFingerprints: n, batchSize, workers, backend: "wasm", explicit: new Set(["numFingerprints"]) };
    return {
      label,
      warmUp: () => runCheck({ ...opts, numFingerprints: Math.min(n, 256) }), // full batches: the first big batch runs cold
      async run() {
        const [b0, c0, t0] = [machineBusy(), process.cpuUsage(), performance.now()];
        const report = await runCheck(opts);
        const s = (performance.now() - t0) / 1000;
        const c = process.cpuUsage(c0);
        const cpu = (c.user + c.system) / 1e6;
        // runCheck must count what our replica above counted (same prompts, same generator).
        const counts = report.templates.map((t) => t.matches).join("/");
        if (counts !== ours.map((t) => t.matches).join("/")) throw new Error(`${label}: runCheck matches ${counts} ≠ ${ours.map((t) => t.matches).join("/")}`);
        this.label = `${label} [${report.workers} worker${report.workers === 1 ? "" : "s"}], wasm, whole runCheck`;
        return { s, cpu, other: machineBusy() - b0 - cpu };
      },
    };
  };
  // Ours on the same footing as the PyTorch loop: generate() alone on the given prompt ids
  // (model loaded, no tokenizing), one prompt at a time or in batches of 256 longest first.
  const genSide = (batchSize) => ({
    label: `ours, generate() only on the given ids, batch ${batchSize}, wasm`,
    async run() {
      const order = job.prompts.map((_, i) => i).sort((a, b) => job.prompts[b].length - job.prompts[a].length);
      const out = [];
      const [b0, c0, t0] = [machineBusy(), process.cpuUsage(), performance.now()];
      for (let s = 0; s < order.length; s += batchSize) {
        const idx = order.slice(s, s + batchSize);
        const gen = await generate(model, idx.map((i) => job.prompts[i]), { maxNewTokens: Math.max(...idx.map((i) => job.max_new[i])), eosIds: [], padId, temperature: 0 });
        idx.forEach((i, b) => (out[i] = gen[b].slice(0, job.max_new[i])));
      }
      const s = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      if (rows.some((row, i) => row.generated.join() !== out[i].join())) throw new Error(`${this.label}: differs from checkFingerprints`);
      return { s, cpu: (c.user + c.system) / 1e6, other: machineBusy() - b0 - (c.user + c.system) / 1e6 };
    },
  });
  const sides = [torchSide(2), torchSide(1), genSide(1), genSide(256), oursSide("ours, one at a time (batch 1, workers 0)", 1, 0), oursSide("ours, batched (batch 256, workers 0)", 256, 0), oursSide("ours, oml-check's defaults (batch size and workers chosen by the check)", undefined, "auto")];
  for (const side of sides) {
    await (side.warmUp ?? side.run).call(side);
    side.runs = [];
  }
  for (let round = 0; round < reps; round++) {
    for (const side of sides) {
      side.runs.push(await side.run());
      process.stderr.write(`round ${round + 1}/${reps}: ${side.label}: ${side.runs.at(-1).s.toFixed(2)} s (others' CPU ${side.runs.at(-1).other.toFixed(1)} s), load ${os.loadavg()[0].toFixed(2)}\n`);
    }
  }
  for (const side of sides) {
    for (const k of ["s", "cpu", "other"]) side[k] = median(side.runs.map((r) => r[k]));
  }
  disposeModel(model);
  const torchRuns = sides.slice(0, 2);
  const base = torchRuns[0].s;
  const prompts = rows.length;
  const cpus = os.cpus();
  console.log(`Machine: ${cpus.length} × ${cpus[0]?.model ?? "?"}, Node ${process.version}, PyTorch ${torchRuns[0].torch}, load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  console.log(`\n| stories260K, ${n} fingerprints × ${modes.length} templates = ${prompts} prompts, medians of ${reps} | wall s | CPU s | prompts/s (wall) | others' CPU s meanwhile | speed-up vs PyTorch 2 threads (wall) | vs PyTorch 1 thread (wall) |`);
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of sides) {
    console.log(`| ${r.label} | ${r.s.toFixed(2)} | ${r.cpu.toFixed(2)} | ${(prompts / r.s).toFixed(0)} | ${r.other.toFixed(1)} | ${(base / r.s).toFixed(2)}× | ${(torchRuns[1].s / r.s).toFixed(2)}× |`);
  }
  console.log(`\nOur matches per template: ${ours.map((t) => t.matches).join(" / ")} of ${examples.length}`);
  for (const r of torchRuns) {
    console.log(`${r.label}: matches ${r.matches.join(" / ")}; generated ids differ from ours on ${r.differ.length} of ${prompts} rows`);
    for (const d of r.differ.slice(0, 10)) console.log(`  fingerprint ${d.index} "${d.prompt.slice(0, 40)}…": ours ${d.generated}, PyTorch ${d.torch}, expected ${d.expected}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
