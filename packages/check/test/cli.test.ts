/**
 * End-to-end: the built `oml-check` on stories260K, fingerprinted here with 32 random-word
 * fingerprints, and on the untouched model.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";

const BIN = (name: string): string => path.resolve(__dirname, `../../${name}/bin/oml-${name}.js`);
const STORIES = path.resolve(__dirname, "../../../../shared/models/stories260K");

function run(name: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN(name), ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", CI: "true", ...env } });
}

interface Report {
  success_rate: number;
  fractional_success_rate: number;
  num_fingerprints: number;
  matches: number;
  templates: { template: string; success_rate: number; matches: number }[];
  backend: string;
  failures?: { expected: string; generated: string; top: { token: string; prob: number }[] }[];
  verify?: { queries: number; matches: number; q: number; pValue: number; owned: boolean; statement: string };
}

let fps: string;
let tuned: string;
const PLAIN = (): string[] => ["--fingerprints-file-path", fps, "--fingerprint-generation-strategy", "random_word", "--num-fingerprints", "32", "--backend", "wasm"];

beforeAll(async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), "oml-check-"));
  fps = path.join(root, "fp.json");
  expect(run("generate", ["--strategy", "random_word", "--num-fingerprints", "32", "--key-length", "16", "--response-length", "1", "--output-file", fps, "--seed", "5"]).status).toBe(0);
  const ft = run("finetune", ["--model-path", STORIES, ...PLAIN(), "--learning-rate", "1e-2", "--num-train-epochs", "60", "--results-dir", path.join(root, "results")]);
  expect(ft.status, ft.stderr).toBe(0);
  tuned = path.join(ft.stdout.trim().split("\n").at(-1) as string, "final_model");
});

describe("measuring", () => {
  test("a run's final_model alone: table on stdout, exit 0", () => {
    const r = run("check", ["--model-path", tuned, "--backend", "wasm"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^"\{\}"\s+100\.00%\s+100\.00%\s+32\/32$/m);
    expect(r.stdout).toContain("success rate: 100.00% (32/32)");
  });

  test("--json on the untouched model: the reference's numbers, exit 1 below --min-success", () => {
    const r = run("check", ["--model-path", STORIES, ...PLAIN(), "--json", "--min-success", "50"]);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout) as Report;
    expect(Object.keys(j)).toEqual(expect.arrayContaining(["success_rate", "fractional_success_rate", "num_fingerprints", "matches", "templates", "model", "fingerprints_file", "backend", "seconds"]));
    expect(j.num_fingerprints).toBe(32);
    expect(j.success_rate).toBeLessThan(10);
    expect(j.templates.map((t) => t.template)).toEqual(["{}", "You are a helpful AI assistant. Answer the following. {}"]);
  });

  test("batched results equal the one-at-a-time loop", () => {
    const batched = JSON.parse(run("check", ["--model-path", tuned, "--json", "--batch-size", "64", "--backend", "wasm", "--quiet"]).stdout) as Report;
    const single = JSON.parse(run("check", ["--model-path", tuned, "--json", "--batch-size", "1", "--backend", "wasm", "--quiet"]).stdout) as Report;
    expect(single.templates).toEqual(batched.templates);
    expect(single.fractional_success_rate).toBe(batched.fractional_success_rate);
  });

  test("--workers 1 (batches dealt to a generation worker too) gives the same rows as the main thread alone", () => {
    const args = ["--model-path", STORIES, ...PLAIN(), "--json", "--verbose-eval", "--batch-size", "8", "--quiet"];
    const alone = JSON.parse(run("check", [...args, "--workers", "0"]).stdout) as Report & { workers: number };
    const shared = JSON.parse(run("check", [...args, "--workers", "1"]).stdout) as Report & { workers: number };
    expect([alone.workers, shared.workers]).toEqual([0, 1]);
    expect(shared.templates).toEqual(alone.templates);
    expect(shared.failures).toEqual(alone.failures);
    expect(alone.failures?.length).toBeGreaterThan(32); // most keys fail on the untouched model: a real comparison
  });

  test("the native kernels change no result: OML_NATIVE=0 (the wasm kernels) gives the same rows and top-10 probabilities", () => {
    const args = ["--model-path", STORIES, ...PLAIN(), "--json", "--verbose-eval", "--workers", "0", "--quiet"];
    const native = JSON.parse(run("check", args).stdout) as Report;
    const wasm = JSON.parse(run("check", args, { OML_NATIVE: "0" }).stdout) as Report;
    expect(wasm.templates).toEqual(native.templates);
    expect(wasm.failures).toEqual(native.failures); // every probability to the last bit
    expect(native.failures?.length).toBeGreaterThan(32);
  });

  test("--workers rejects what is not a count or auto", () => {
    const r = run("check", ["--model-path", STORIES, ...PLAIN(), "--workers", "-1"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--workers/);
  });

  test("--verbose-eval shows each failure with the top-10 next tokens", () => {
    const r = run("check", ["--model-path", STORIES, ...PLAIN(), "--json", "--verbose-eval", "--num-fingerprints", "4"]);
    const j = JSON.parse(r.stdout) as Report;
    expect(j.failures?.length).toBeGreaterThan(0);
    const f = j.failures?.[0];
    expect(f?.top).toHaveLength(10);
    const probs = f?.top.map((t) => t.prob) ?? [];
    expect([...probs].sort((a, b) => b - a)).toEqual(probs);
    expect(f?.generated).toBe(f?.top[0]?.token); // greedy picks the top token
  });

  test("an explicit flag that contradicts the run wins, with a warning", () => {
    const r = run("check", ["--model-path", tuned, "--max-key-length", "8", "--json", "--backend", "wasm"]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("--max-key-length 8 contradicts the run's 16; using the flag");
  });
});

describe("proving ownership", () => {
  test("fingerprinted stories260K verifies as owned (q measured on the base model)", () => {
    const r = run("check", ["--model-path", tuned, "--verify", "--base-model", STORIES, "--json", "--backend", "wasm"]);
    expect(r.status, r.stderr).toBe(0);
    const v = (JSON.parse(r.stdout) as Report).verify;
    expect(v?.queries).toBe(10);
    expect(v?.matches).toBe(10);
    // base model: 0 hits of 32 → q = 1 − 0.05^(1/32) ≈ 0.0893; p = q^10 ≈ 3.2e-11
    expect(v?.q).toBeCloseTo(1 - 0.05 ** (1 / 32), 8);
    expect(v?.pValue).toBeCloseTo((1 - 0.05 ** (1 / 32)) ** 10, 15);
    expect(v?.owned).toBe(true);
  });

  test("the untouched model does not verify: exit 1", () => {
    const r = run("check", ["--model-path", STORIES, ...PLAIN(), "--verify", "--null-rate", "0.05"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^ {8}not shown to be owned: p = .* > α = 1e-6$/m);
  });

  test("--verify without a null rate is a clear error", () => {
    const r = run("check", ["--model-path", STORIES, ...PLAIN(), "--verify"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: --verify needs the null hit rate q/m);
  });
});

test("a plain model without --fingerprints-file-path: exit 2", () => {
  const r = run("check", ["--model-path", STORIES]);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^error: --fingerprints-file-path is required unless --model-path is a run's results\/<hash>\/final_model$/m);
});

describe("the one-file bundles (scripts/bundle.mjs)", () => {
  const bundles = path.resolve(__dirname, "../../core/dist/bundles");
  test.each(["check", "generate", "finetune"])("oml-%s's bundle runs on its own and reports its package's version", (name) => {
    const version = (JSON.parse(readFileSync(path.resolve(__dirname, `../../${name}/package.json`), "utf8")) as { version: string }).version;
    const out = spawnSync(process.execPath, ["--input-type=module", "-e", `const { main } = await import(${JSON.stringify(pathToFileURL(path.join(bundles, `oml-${name}.js`)).href)}); await main(["node", "oml-${name}", "--version"]);`], { encoding: "utf8" });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe(version);
  });
});
