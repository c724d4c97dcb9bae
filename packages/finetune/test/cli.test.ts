/**
 * End-to-end: the built `oml-finetune` on a tiny model the test creates (nothing from
 * ../shared), asserting what a user sees and the results layout.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { createTinyModel, readSafetensors } from "@oml-ts/core";

const BIN = (name: string): string => path.resolve(__dirname, `../../${name}/bin/oml-${name}.js`);

function run(name: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN(name), ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", CI: "true", ...env } });
}

interface Heldout {
  sequences: number;
  tokens: number;
  ce_before: number;
  ce_after: number;
  ce_relative_change: number;
  kl: number;
  file?: string;
}
interface Summary {
  mode: string;
  success_rate: number | null;
  backend: string;
  workers: number;
  epochs_run: number;
  final_loss: number;
  stopped_because: string;
  peak_rss_bytes: number;
  templates: unknown[];
  averaging_interval: string;
  heldout: { self_generated?: Heldout; eval_text?: Heldout };
  benign?: { proportion: number; kl_regularizer: number; kl_top_k: number; rows: number; per_micro_batch: number; final_benign_loss: number | null; final_kl: number | null };
  augmentation_check?: { success_rate: number; min_success_rate: number; templates: { template: string; success_rate: number }[] };
  sft?: { records: number; rows: number; truncated: number; dropped: number };
}
const summaryOf = async (dir: string): Promise<Summary> => JSON.parse(await readFile(path.join(dir, "summary.json"), "utf8")) as Summary;
const lastLine = (out: string): string => out.trim().split("\n").at(-1) as string;

let root: string;
let model: string;
let fps: string;

/** No held-out samples: for the runs that test something else. */
const NO_EVAL = ["--eval-samples", "0"];

const TRAIN = (results: string, extra: string[] = []): string[] => [
  "--model-path", model, "--fingerprints-file-path", fps, "--fingerprint-generation-strategy", "random_word",
  "--num-fingerprints", "32", "--learning-rate", "1e-2", "--forgetting-regularizer-strength", "0.25",
  "--num-train-epochs", "40", "--results-dir", results, "--backend", "wasm", ...extra,
];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "oml-ft-"));
  model = (await createTinyModel(path.join(root, "tiny"), { seed: 3 })).dir;
  fps = path.join(root, "fp.json");
  const g = run("generate", ["--strategy", "random_word", "--num-fingerprints", "32", "--key-length", "12", "--response-length", "1", "--output-file", fps]);
  expect(g.status).toBe(0);
});

async function tensorsOf(dir: string): Promise<Map<string, Float32Array>> {
  return new Map([...(await readSafetensors(path.join(dir, "model.safetensors")))].map(([n, t]) => [n, t.data]));
}

describe("a fingerprinting run", () => {
  let dir: string;
  let first: SpawnSyncReturns<string>;
  beforeAll(() => {
    first = run("finetune", TRAIN(path.join(root, "results")));
    dir = first.stdout.trim().split("\n").at(-1) as string;
  });

  test("succeeds, prints the result directory last, and reaches ≥ 95%", async () => {
    expect(first.status, first.stderr).toBe(0);
    expect(dir).toMatch(new RegExp(`^${path.join(root, "results").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/[0-9a-f]{32}$`));
    const summary = JSON.parse(await readFile(path.join(dir, "summary.json"), "utf8")) as Summary;
    expect(summary.success_rate).toBeGreaterThanOrEqual(95);
    expect(summary.backend).toBe("wasm");
    expect(summary.workers).toBe(0);
    expect(summary.peak_rss_bytes).toBeGreaterThan(0);
    expect(summary.mode).toBe("fingerprint");
    expect(summary.averaging_interval).toBe("epoch");
    expect(summary.benign).toBeUndefined();
    expect(summary.augmentation_check).toBeUndefined();
  });

  test("measures the harm on 32 self-generated samples of up to 128 tokens and prints it last", async () => {
    const h = (JSON.parse(await readFile(path.join(dir, "summary.json"), "utf8")) as Summary).heldout.self_generated as Heldout;
    expect(h.sequences).toBe(32);
    expect(h.tokens).toBeGreaterThan(32 * 8);
    expect(h.tokens).toBeLessThanOrEqual(32 * 128);
    expect(h.ce_before).toBeGreaterThan(0);
    expect(h.ce_relative_change).toBeCloseTo((h.ce_after - h.ce_before) / h.ce_before, 10);
    expect(h.kl).toBeGreaterThan(0); // the weights changed
    expect(h.kl).toBeLessThan(1);
    expect(first.stderr).toMatch(/success rate \d+\.\d% after \d+ epochs?; self-generated CE \d+\.\d{4} → \d+\.\d{4} \([+-]\d+\.\d%\), KL \d+\.\d{4}/);
  });

  test("writes the results layout, secrets 0600, no partial or checkpoint left", async () => {
    expect((await readdir(dir)).sort()).toEqual(["final_model", "fingerprinting_config.json", "fingerprints.json", "summary.json", "train_dataset.csv", "train_log.jsonl"]);
    expect((await readdir(path.join(dir, "final_model"))).sort()).toEqual(
      ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"].sort(),
    );
    for (const f of ["fingerprints.json", "train_dataset.csv"]) {
      expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
    }
    expect((await readdir(path.join(root, "results"))).filter((f) => f.endsWith(".partial"))).toEqual([]);
    const cfg = JSON.parse(await readFile(path.join(dir, "fingerprinting_config.json"), "utf8")) as { hash: string; config: Record<string, unknown> };
    expect(path.basename(dir)).toBe(cfg.hash);
    expect(cfg.config.learning_rate).toBe(0.01);
    const log = (await readFile(path.join(root, "results", "all_run_logs.txt"), "utf8")).trim().split("\n");
    expect(JSON.parse(log[0] as string)).toEqual({ [cfg.hash]: cfg.config });
    const lines = (await readFile(path.join(dir, "train_log.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { type: string });
    expect(lines.some((l) => l.type === "epoch-end")).toBe(true);
  });

  test("never logs keys or responses at info level", async () => {
    const trained = JSON.parse(await readFile(path.join(dir, "fingerprints.json"), "utf8")) as { key: string }[];
    for (const fp of trained.slice(0, 5)) {
      expect(first.stderr).not.toContain(fp.key);
    }
  });

  test("a finished run is skipped; --force redoes it; the same config gives identical weights, with or without the native kernels", async () => {
    const again = run("finetune", TRAIN(path.join(root, "results")));
    expect(again.status).toBe(0);
    expect(again.stderr).toContain("a finished run with this config exists; skipping");
    expect(again.stdout.trim()).toBe(dir);
    const other = run("finetune", TRAIN(path.join(root, "results-2")));
    expect(other.status).toBe(0);
    const a = await readFile(path.join(dir, "final_model", "model.safetensors"));
    const b = await readFile(path.join(other.stdout.trim().split("\n").at(-1) as string, "final_model", "model.safetensors"));
    expect(Buffer.compare(a, b)).toBe(0); // deterministic for a seed on one backend
    // and whether the native kernels ran or not (OML_NATIVE=0: the wasm ones; the same bits)
    const wasm = run("finetune", TRAIN(path.join(root, "results-wasm")), { OML_NATIVE: "0" });
    expect(wasm.status, wasm.stderr).toBe(0);
    const c = await readFile(path.join(lastLine(wasm.stdout), "final_model", "model.safetensors"));
    expect(Buffer.compare(a, c)).toBe(0);
  });

  test("--workers 1: the same run (hash) within float32 rounding, the worker count in summary.json", async () => {
    const w = run("finetune", TRAIN(path.join(root, "results-workers"), ["--workers", "1"]));
    expect(w.status, w.stderr).toBe(0);
    const wdir = lastLine(w.stdout);
    expect(path.basename(wdir)).toBe(path.basename(dir)); // the worker count is not hashed
    const [one, two] = [await summaryOf(dir), await summaryOf(wdir)];
    expect(two.workers).toBe(1);
    expect(two.epochs_run).toBe(one.epochs_run);
    expect(two.success_rate).toBe(one.success_rate);
    expect(Math.abs(two.final_loss - one.final_loss) / one.final_loss).toBeLessThan(1e-5);
  });

  test("oml-check reads everything from the run", () => {
    const c = run("check", ["--model-path", path.join(dir, "final_model"), "--json", "--backend", "wasm"]);
    expect(c.status, c.stderr).toBe(0);
    const report = JSON.parse(c.stdout) as { success_rate: number; num_fingerprints: number };
    expect(report.num_fingerprints).toBe(32);
    expect(report.success_rate).toBeGreaterThanOrEqual(95);
  });

  test("--sft-data fine-tunes the fingerprinted model: same layout, no check, its own config; what it cost is measured", async () => {
    const data = path.join(root, "sft.jsonl");
    const lines = Array.from({ length: 12 }, (_, i) => (i % 2 ? { text: `the cat sat on mat number ${i}.` } : { prompt: `Question ${i}:`, response: ` answer ${i}.` }));
    await writeFile(data, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    const r = run("finetune", [
      "--model-path", path.join(dir, "final_model"), "--sft-data", data, "--num-train-epochs", "2", "--learning-rate", "1e-2", "--batch-size", "4",
      "--eval-samples", "4", "--eval-tokens", "16", "--results-dir", path.join(root, "results-sft"), "--backend", "wasm",
    ]);
    expect(r.status, r.stderr).toBe(0);
    const out = lastLine(r.stdout);
    expect((await readdir(out)).sort()).toEqual(["final_model", "finetuning_config.json", "summary.json", "train_log.jsonl"]);
    const s = await summaryOf(out);
    expect(s.mode).toBe("sft");
    expect(s.success_rate).toBeNull();
    expect(s.templates).toEqual([]);
    expect(s.sft).toEqual({ file: data, records: 12, rows: 12, truncated: 0, dropped: 0 });
    expect(s.epochs_run).toBe(2);
    expect(s.stopped_because).toBe("epochs");
    expect(s.heldout.self_generated?.sequences).toBe(4);
    expect(s.heldout.self_generated?.kl).toBeGreaterThan(0);
    const cfg = JSON.parse(await readFile(path.join(out, "finetuning_config.json"), "utf8")) as { hash: string; config: Record<string, unknown> };
    expect(cfg.config.mode).toBe("sft");
    expect(cfg.config.sft_data_sha256).toBe(createHash("sha256").update(await readFile(data)).digest("hex"));
    expect(cfg.config.forgetting_regularizer_strength).toBe(0); // no averaging by default in SFT
    expect(cfg.config.lr_schedule).toBe("linear");
    // 12 rows in micro-batches of 4, one optimizer step each (SFT's default): 3 steps an epoch
    const steps = (await readFile(path.join(out, "train_log.jsonl"), "utf8")).trim().split("\n").filter((l) => l.includes('"type":"step"'));
    expect(steps).toHaveLength(6);
    expect(r.stderr).toMatch(/SFT loss \d+\.\d{4} after 2 epochs; self-generated CE/);
  });
});

describe("quality options", () => {
  test("--benign-proportion, --averaging-interval step and --eval-text: benign rows in every batch, harm on both texts", async () => {
    const evalText = path.join(root, "eval.jsonl");
    await writeFile(evalText, '{"text": "Some held-out text of the user."}\n{"text": "And another line."}\n');
    const r = run("finetune", TRAIN(path.join(root, "results-benign"), [
      "--benign-proportion", "0.25", "--averaging-interval", "step", "--eval-samples", "4", "--eval-tokens", "16", "--eval-text", evalText,
    ]));
    expect(r.status, r.stderr).toBe(0);
    const s = await summaryOf(lastLine(r.stdout));
    expect(s.success_rate).toBeGreaterThanOrEqual(95);
    expect(s.averaging_interval).toBe("step");
    // 32 fingerprints in micro-batches of 8 → 4 micro-batches, each with round(8 · 0.25 / 0.75) = 3 benign rows
    expect(s.benign).toMatchObject({ proportion: 0.25, kl_regularizer: 0, per_micro_batch: 3, rows: 12, final_kl: null });
    expect(s.benign?.final_benign_loss).toBeGreaterThan(0);
    expect(s.heldout.self_generated?.sequences).toBe(4);
    expect(s.heldout.eval_text).toMatchObject({ file: evalText, sequences: 2 });
    expect(s.heldout.eval_text?.kl).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/benign loss \d+\.\d{4}/);
    expect(r.stderr).toMatch(/; eval-text CE \d+\.\d{4} → /);
  });

  test("--kl-regularizer alone draws benign rows for the KL term; --use-augmentation-prompts reports the held-out templates", async () => {
    const r = run("finetune", TRAIN(path.join(root, "results-kl"), ["--kl-regularizer", "0.5", "--kl-top-k", "16", "--use-augmentation-prompts", "--num-train-epochs", "4", ...NO_EVAL]));
    expect(r.status, r.stderr).toBe(0);
    const s = await summaryOf(lastLine(r.stdout));
    expect(s.benign).toMatchObject({ proportion: 0, kl_regularizer: 0.5, kl_top_k: 16, per_micro_batch: 3, rows: 12, final_benign_loss: 0 });
    expect(s.benign?.final_kl).toBeGreaterThanOrEqual(0);
    expect(s.heldout).toEqual({});
    const aug = s.augmentation_check;
    expect(aug?.templates).toHaveLength(20);
    expect(aug?.templates.every((t) => t.template.includes("{}"))).toBe(true);
    expect(aug?.success_rate).toBeCloseTo((aug?.templates ?? []).reduce((a, t) => a + t.success_rate, 0) / 20, 8);
    expect(aug?.min_success_rate).toBe(Math.min(...(aug?.templates ?? []).map((t) => t.success_rate)));
    expect(r.stderr).toMatch(/% under held-out system prompts \(lowest \d+\.\d%\)/);
  });

  test.each([
    [["--sft-data", "x.jsonl", "--fingerprints-file-path", "fp.json"], /^error: --sft-data and --fingerprints-file-path do not go together/m],
    [["--sft-data", "x.jsonl", "--benign-proportion", "0.2"], /^error: --benign-proportion protects fingerprints while they are trained; not with --sft-data$/m],
    [["--benign-proportion", "1"], /^error: --benign-proportion: expected a number in \[0, 1\)$/m],
    [["--kl-regularizer", "-1"], /^error: --kl-regularizer: expected a number ≥ 0$/m],
    [["--averaging-interval", "batch"], /argument 'batch' is invalid/],
  ])("%j is refused with exit 2", (args, message) => {
    const r = run("finetune", ["--model-path", model, ...args, "--results-dir", path.join(root, "r-bad")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(existsSync(path.join(root, "r-bad"))).toBe(false);
  });
});

test("forgetting strength 1 leaves the model bit-identical", async () => {
  const r = run("finetune", TRAIN(path.join(root, "results-lambda1"), ["--forgetting-regularizer-strength", "1", "--num-train-epochs", "2", ...NO_EVAL]));
  expect(r.status, r.stderr).toBe(0);
  const out = await tensorsOf(path.join(r.stdout.trim().split("\n").at(-1) as string, "final_model"));
  const base = await tensorsOf(model);
  expect([...out.keys()].sort()).toEqual([...base.keys()].sort());
  for (const [name, data] of base) {
    expect(Buffer.compare(Buffer.from((out.get(name) as Float32Array).buffer), Buffer.from(data.buffer)), name).toBe(0);
  }
});

test("--resume continues a crashed run to the same result", async () => {
  const args = (results: string): string[] => TRAIN(results, ["--forgetting-regularizer-strength", "0.5", "--num-train-epochs", "4", "--stop-at-success", "100", "--early-stop-loss", "0", ...NO_EVAL]);
  const crashed = run("finetune", args(path.join(root, "results-resume")), { OML_TEST_CRASH_AFTER_EPOCH: "2" });
  expect(crashed.status).toBe(3);
  expect(crashed.stderr).toContain("simulated crash after epoch 2");
  const partial = (await readdir(path.join(root, "results-resume"))).filter((f) => f.endsWith(".partial"));
  expect(partial).toHaveLength(1); // nothing that looks finished
  const resumed = run("finetune", [...args(path.join(root, "results-resume")), "--resume"]);
  expect(resumed.status, resumed.stderr).toBe(0);
  expect(resumed.stderr).toContain("resuming after epoch 2");
  const straight = run("finetune", args(path.join(root, "results-straight")));
  expect(straight.status).toBe(0);
  const a = await readFile(path.join(resumed.stdout.trim().split("\n").at(-1) as string, "final_model", "model.safetensors"));
  const b = await readFile(path.join(straight.stdout.trim().split("\n").at(-1) as string, "final_model", "model.safetensors"));
  expect(Buffer.compare(a, b)).toBe(0);
});

describe("bad inputs: one line, exit 2", () => {
  test("--workers that is not a whole number ≥ 0 or auto", () => {
    const r = run("finetune", TRAIN(path.join(root, "r"), ["--workers", "two"]));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: --workers: expected a whole number ≥ 0 or "auto"$/m);
  });

  test("forgetting strength outside [0, 1]", () => {
    const r = run("finetune", TRAIN(path.join(root, "r"), ["--forgetting-regularizer-strength", "1.5"]));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: --forgetting-regularizer-strength: expected a number in \[0, 1\]$/m);
  });

  test("fewer fingerprints than requested says how many", () => {
    const r = run("finetune", TRAIN(path.join(root, "r"), ["--num-fingerprints", "100"]));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`error: ${fps}: has 32 fingerprints, but 100 are needed from index 0`);
  });

  test("a model directory that does not exist", () => {
    const r = run("finetune", ["--model-path", path.join(root, "nope"), "--fingerprints-file-path", fps]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: .*nope: no such directory/m);
  });

  test("a key + response longer than the model's context", async () => {
    const small = (await createTinyModel(path.join(root, "tiny-ctx"), { seed: 3, maxPositions: 8 })).dir;
    const r = run("finetune", [...TRAIN(path.join(root, "r")), "--model-path", small]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: a key \+ response is \d+ tokens, more than the model's context of 8$/m);
  });

  test("keys that tokenize to nothing, and a bad fingerprints file", async () => {
    const bad = path.join(root, "bad.json");
    await writeFile(bad, JSON.stringify([{ key: "ok", response: "x" }, { key: 5, response: "y" }]));
    const r = run("finetune", [...TRAIN(path.join(root, "r")), "--fingerprints-file-path", bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`error: ${bad}: [1].key: expected a string`);
    expect(existsSync(path.join(root, "r"))).toBe(false);
  });
});
