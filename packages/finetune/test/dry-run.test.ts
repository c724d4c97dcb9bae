/**
 * `oml-finetune --dry-run` end to end (the built CLI): model directories holding config.json
 * alone (the plan needs nothing else), nothing from ../shared.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";

const BIN = path.resolve(__dirname, "../bin/oml-finetune.js");

function finetune(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", CI: "true" } });
}

let root: string;
let small: string;
let big: string;

async function configDir(name: string, config: Record<string, unknown>): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir);
  await writeFile(path.join(dir, "config.json"), JSON.stringify({ model_type: "llama", max_position_embeddings: 4096, ...config }));
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "oml-dry-"));
  // stories260K's shape: 512·64 + 5·(64·64 + 2·64·32 + 64·64 + 3·64·172 + 2·64) + 64 = 260,032 parameters.
  small = await configDir("small", { vocab_size: 512, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, tie_word_embeddings: true });
  // Llama-2-7B's shape.
  big = await configDir("big", { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, tie_word_embeddings: false });
});

describe("oml-finetune --dry-run", () => {
  test("prints the plan from config.json alone, exits 0 and writes no results directory", () => {
    const results = path.join(root, "results");
    const r = finetune(["--dry-run", "--model-path", small, "--results-dir", results, "--backend", "wasm", "--num-fingerprints", "64"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("260,032 parameters");
    expect(r.stdout).toMatch(/^training: +fingerprints, 8 rows × 18 tokens a micro-batch \(BOS \+ --max-key-length 16 \+ --max-response-length 1\), 8 micro-batches an epoch$/m);
    for (const part of ["weights", "gradients", "activations", "AdamW moments", "tfjs heap", "total"]) {
      expect(r.stdout).toMatch(new RegExp(`^${part} +[\\d.]+ (B|KiB|MiB|GiB)`, "m"));
    }
    expect(r.stdout).toMatch(/^weights +1015\.8 KiB +4 +tfjs heap$/m);
    expect(r.stdout).toMatch(/^gradients +2\.0 MiB +8 +tfjs heap \(a micro-batch's \+ the accumulator's sums\)$/m);
    expect(r.stdout).toMatch(/^not in memory: the anchor w0 \(read from the model's files at each averaging\), the best weights/m);
    expect(r.stdout).toMatch(/^wasm +yes /m);
    expect(r.stdout).toMatch(/^backend: +--backend wasm → wasm: --backend wasm$/m);
    expect(r.stdout).toMatch(/^verdict: +fits wasm: tfjs heap [\d.]+ MiB of 3\.6 GiB, RAM [\d.]+ MiB of [\d.]+ GiB$/m);
    expect(existsSync(results)).toBe(false);
  });

  test("--json prints one JSON object", () => {
    const r = finetune(["--dry-run", "--json", "--model-path", small, "--backend", "cpu", "--results-dir", path.join(root, "results")]);
    expect(r.status, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { parameters: number; fits: boolean; backend: { chosen: string }; bytes: { weights: number; total: number } };
    expect(plan.parameters).toBe(260_032);
    expect(plan.bytes.weights).toBe(4 * 260_032);
    expect(plan.backend.chosen).toBe("cpu");
    expect(plan.fits).toBe(true);
  });

  test("a model that does not fit: the dry run says so and exits 0; the run itself still stops with the error", async () => {
    const dry = finetune(["--dry-run", "--model-path", big, "--backend", "wasm", "--results-dir", path.join(root, "results")]);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("6,738,415,616 parameters");
    expect(dry.stdout).toMatch(/^verdict: +does not fit: this model needs about [\d.]+ GiB in the tfjs heap to train, more than the wasm backend's 4 GiB/m);
    expect(dry.stdout).toMatch(/^cpu +no /m);

    const fps = path.join(root, "fp.json");
    await writeFile(fps, JSON.stringify([{ key: "alpha beta gamma", response: "delta" }]));
    const real = finetune(["--model-path", big, "--fingerprints-file-path", fps, "--num-fingerprints", "1", "--backend", "wasm", "--results-dir", path.join(root, "results")]);
    expect(real.status).toBe(3);
    expect(real.stderr).toMatch(/^error: this model needs about [\d.]+ GiB in the tfjs heap to train, more than the wasm backend's 4 GiB$/m);
    expect(existsSync(path.join(root, "results"))).toBe(false);
  });

  test("--json without --dry-run is refused in one line, exit 2", () => {
    const r = finetune(["--json", "--model-path", small]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: --json goes with --dry-run \(a run prints its result directory\)$/m);
  });
});
