// Shared by bench/persistence.mjs and bench/quality.mjs: fingerprints, self-written stories,
// fingerprinting and SFT runs through the CLIs (as a user runs them), and the retention check.
// Needs `pnpm build` and ../shared/models/stories260K.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkFingerprints, disposeModel, generate, initBackend, loadModel, loadTokenizer } from "@oml-ts/core";

export const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const STORIES = path.resolve(root, "../shared/models/stories260K");
const bin = (name) => path.join(root, `packages/${name}/bin/oml-${name}.js`);

/** Run one of our CLIs; returns the last stdout line (the result) and the wall time. */
export function cli(name, args) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin(name), ...args, "--quiet"], { encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    throw new Error(`oml-${name} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  }
  return { out: r.stdout.trim().split("\n").at(-1), seconds: (performance.now() - t0) / 1000 };
}

/**
 * `n` fingerprints on stories260K, cached in `dir`: random-word keys of 16 words (cut to 16
 * tokens when trained); responses a random word ("random") or one perinucleus token of
 * stories260K (t = 0.8, k = 3) for the same keys ("perinucleus").
 */
export function fingerprintsFile(dir, n, kind, seed = 7) {
  const rw = path.join(dir, `random-${n}-${seed}.json`);
  if (!existsSync(rw)) {
    cli("generate", ["--strategy", "random_word", "--num-fingerprints", String(n), "--key-length", "16", "--response-length", "1", "--seed", String(seed), "--output-file", rw]);
  }
  if (kind === "random") {
    return rw;
  }
  const pn = path.join(dir, `perinucleus-${n}-${seed}.json`);
  if (!existsSync(pn)) {
    cli("generate", [
      "--strategy", "perinucleus", "--keys-file", rw, "--num-fingerprints", String(n), "--key-length", "16", "--response-length", "1",
      "--model-used-for-key-generation", STORIES, "--seed", String(seed), "--backend", "wasm", "--output-file", pn,
    ]);
  }
  return pn;
}

/** stories260K's reference texts (reference_outputs.json "loss") as JSONL {text}, for --eval-text. */
export function referenceTextsFile(dir) {
  const f = path.join(dir, "reference-texts.jsonl");
  const ref = JSON.parse(readFileSync(path.join(STORIES, "reference_outputs.json"), "utf8"));
  writeFileSync(f, `${ref.loss.map((l) => JSON.stringify({ text: l.text })).join("\n")}\n`);
  return f;
}

/**
 * `count` stories stories260K writes itself (from BOS, temperature 1, seeded, at most
 * `tokens` tokens, stopping at EOS/BOS) as JSONL {text}; cached in `dir`.
 */
export async function storiesFile(dir, { count = 1000, tokens = 256, seed = 2024 } = {}) {
  const f = path.join(dir, `stories-${count}-${tokens}-${seed}.jsonl`);
  if (existsSync(f)) {
    return f;
  }
  await initBackend("wasm");
  const model = await loadModel(STORIES);
  const tok = await loadTokenizer(STORIES);
  const lines = [];
  try {
    for (let s = 0; s < count; s += 250) {
      const prompts = Array.from({ length: Math.min(250, count - s) }, () => [tok.bosId]);
      const outs = await generate(model, prompts, { maxNewTokens: tokens, temperature: 1, seed: seed + s, padId: 0 });
      for (const ids of outs) {
        lines.push(JSON.stringify({ text: tok.decode(ids, { skipSpecialTokens: true }).trim() }));
      }
    }
  } finally {
    disposeModel(model);
  }
  writeFileSync(f, `${lines.join("\n")}\n`);
  return f;
}

/** Fingerprint stories260K with oml-finetune; returns the run dir, its summary and wall time. */
export function fingerprint(results, fpFile, kind, n, extra = []) {
  const r = cli("finetune", [
    "--model-path", STORIES, "--fingerprints-file-path", fpFile, "--fingerprint-generation-strategy", kind === "random" ? "random_word" : "perinucleus",
    "--num-fingerprints", String(n), "--max-key-length", "16", "--learning-rate", "1e-2", "--num-train-epochs", "60", "--early-stop-loss", "0",
    "--results-dir", results, "--backend", "wasm", "--force", ...extra,
  ]);
  return { dir: r.out, seconds: r.seconds, summary: JSON.parse(readFileSync(path.join(r.out, "summary.json"), "utf8")) };
}

/** What a downstream user does: ordinary SFT of a run's final_model on `data` (2 epochs by default). */
export function sft(results, modelDir, data, { epochs = 2, lr = 1e-3, batch = 8, extra = [] } = {}) {
  const r = cli("finetune", [
    "--model-path", modelDir, "--sft-data", data, "--num-train-epochs", String(epochs), "--learning-rate", String(lr), "--batch-size", String(batch),
    "--eval-samples", "0", "--results-dir", results, "--backend", "wasm", "--force", ...extra,
  ]);
  return { dir: r.out, seconds: r.seconds, summary: JSON.parse(readFileSync(path.join(r.out, "summary.json"), "utf8")) };
}

/**
 * Greedy check of a run's trained fingerprints (its fingerprints.json: exact key and response
 * ids) on two models: the fingerprinted one and the one fine-tuned from it.
 * @returns success before and after (percent) and the fraction of the fingerprints that
 *   answered before and still answer after
 */
export async function retention(runDir, tunedModelDir) {
  await initBackend("wasm");
  const trained = JSON.parse(readFileSync(path.join(runDir, "fingerprints.json"), "utf8"));
  const examples = trained.map((f, i) => ({ index: f.source_index ?? i, key: f.key, keyIds: f.key_ids, response: f.response, responseIds: f.response_ids }));
  const tok = await loadTokenizer(path.join(runDir, "final_model"));
  const rowsOf = async (dir) => {
    const model = await loadModel(dir);
    try {
      const [r] = await checkFingerprints({
        examples, tokenizer: tok, modes: [{ kind: "template", template: "{}" }], batchSize: 256,
        generate: (prompts, n) => generate(model, prompts, { maxNewTokens: n, eosIds: [], padId: 0 }),
      });
      return r.rows.map((x) => x.match);
    } finally {
      disposeModel(model);
    }
  };
  const before = await rowsOf(path.join(runDir, "final_model"));
  const after = await rowsOf(tunedModelDir);
  const had = before.filter(Boolean).length;
  const kept = before.filter((m, i) => m && after[i]).length;
  return { before: (100 * had) / before.length, after: (100 * after.filter(Boolean).length) / after.length, retained: had === 0 ? 0 : kept / had };
}
