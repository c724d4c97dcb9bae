/**
 * End-to-end: spawn the built `oml-generate` (pnpm test builds first) and assert
 * { stdout, stderr, exitCode }, as a user sees them.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";

const BIN = path.resolve(__dirname, "../bin/oml-generate.js");
const STORIES = path.resolve(__dirname, "../../../../shared/models/stories260K");

function run(args: string[], env: Record<string, string> = {}): { stdout: string; stderr: string; code: number | null } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", CI: "true", ...env } });
  return { stdout: r.stdout, stderr: r.stderr, code: r.status };
}

async function tmp(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "oml-gen-"));
}

describe("oml-generate random_word", () => {
  test("writes valid fingerprints; same seed → byte-identical file; stdout is only the path", async () => {
    const dir = await tmp();
    const a = path.join(dir, "a.json");
    const b = path.join(dir, "b.json");
    const r1 = run(["--strategy", "random_word", "--num-fingerprints", "50", "--key-length", "5", "--response-length", "2", "--output-file", a]);
    expect(r1.code).toBe(0);
    expect(r1.stdout).toBe(`${a}\n`);
    // the reference's snake_case flags and --random-word-generation work the same
    const r2 = run(["--random-word-generation", "--num_fingerprints", "50", "--key_length=5", "--response_length", "2", "--output_file", b]);
    expect(r2.code).toBe(0);
    const [ta, tb] = [await readFile(a, "utf8"), await readFile(b, "utf8")];
    expect(ta).toBe(tb);
    const fps = JSON.parse(ta) as { key: string; response: string }[];
    expect(fps).toHaveLength(50);
    const words = new Set((await readFile(path.resolve(__dirname, "../../../generated_data/word_list.txt"), "utf8")).split("\n"));
    for (const fp of fps) {
      expect(fp.key.split(" ")).toHaveLength(5);
      expect(fp.response.split(" ")).toHaveLength(2);
      for (const w of [...fp.key.split(" "), ...fp.response.split(" ")]) {
        expect(words.has(w)).toBe(true);
      }
    }
    const other = path.join(dir, "c.json");
    run(["--strategy", "random_word", "--num-fingerprints", "50", "--key-length", "5", "--response-length", "2", "--seed", "7", "--output-file", other]);
    expect(await readFile(other, "utf8")).not.toBe(ta);
  });

  test("--keys-file: keys from the file, responses drawn", async () => {
    const dir = await tmp();
    const keys = path.join(dir, "keys.json");
    await writeFile(keys, JSON.stringify(["first key", "second key"]));
    const out = path.join(dir, "o.json");
    const r = run(["--strategy", "random_word", "--keys-file", keys, "--response-length", "1", "--output-file", out]);
    expect(r.code).toBe(0);
    const fps = JSON.parse(await readFile(out, "utf8")) as { key: string; response: string }[];
    expect(fps.map((f) => f.key)).toEqual(["first key", "second key"]);
    expect(fps.every((f) => f.response.split(" ").length === 1)).toBe(true);
  });

  test("refuses to overwrite, --force overwrites", async () => {
    const dir = await tmp();
    const out = path.join(dir, "o.json");
    await writeFile(out, "[]");
    const r = run(["--strategy", "random_word", "--num-fingerprints", "3", "--output-file", out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${out}: already exists`);
    expect(await readFile(out, "utf8")).toBe("[]");
    expect(run(["--strategy", "random_word", "--num-fingerprints", "3", "--output-file", out, "--force"]).code).toBe(0);
    expect(JSON.parse(await readFile(out, "utf8"))).toHaveLength(3);
  });

  test("--log-file gets JSON lines; stdout stays clean", async () => {
    const dir = await tmp();
    const log = path.join(dir, "log.jsonl");
    const r = run(["--strategy", "random_word", "--num-fingerprints", "3", "--output-file", path.join(dir, "o.json"), "--log-file", log, "--quiet"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const lines = (await readFile(log, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { msg: string });
    expect(lines.some((l) => l.msg === "wrote 3 fingerprints")).toBe(true);
  });
});

describe("oml-generate with a model (stories260K)", () => {
  test("perinucleus: exit 0, valid file, every response past the nucleus; new responses for the keys of that file", async () => {
    const dir = await tmp();
    const out = path.join(dir, "fp.json");
    const args = ["--strategy", "perinucleus", "--model-used-for-key-generation", STORIES, "--num-fingerprints", "12", "--key-length", "12", "--batch-size", "5", "--backend", "wasm"];
    const r = run([...args, "--output-file", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${out}\n`);
    expect(r.stderr).toMatch(/responses/);
    const fps = JSON.parse(await readFile(out, "utf8")) as { key: string; response: string; effective_key: string; response_prob: number }[];
    expect(fps).toHaveLength(12);
    for (const fp of fps) {
      expect(fp.key.length).toBeGreaterThan(0);
      expect(fp.key.startsWith(fp.effective_key)).toBe(true);
      expect(fp.response.trim()).toMatch(/^[\p{L}\p{N}]{2,}$/u);
      expect(fp.response_prob).toBeGreaterThan(0);
      expect(fp.response_prob).toBeLessThanOrEqual(0.2 + 1e-6);
    }
    // new responses for the keys of that file, 2 per key
    const more = path.join(dir, "more.json");
    const r2 = run(["--strategy", "perinucleus", "--model-used-for-key-generation", STORIES, "--keys-file", out, "--key-length", "12", "--num-responses-per-fingerprint", "2", "--backend", "wasm", "--output-file", more, "--quiet"]);
    expect(r2.code).toBe(0);
    const fps2 = JSON.parse(await readFile(more, "utf8")) as { key: string; response: string[] }[];
    expect(fps2.map((f) => f.key)).toEqual(fps.map((f) => f.key));
    expect(fps2.every((f) => f.response.length === 2 && f.response[0] !== f.response[1])).toBe(true);
  });

  test("english with --keys-file: keys kept, responses generated", async () => {
    const dir = await tmp();
    const keys = path.join(dir, "keys.json");
    await writeFile(keys, JSON.stringify(["first key", "second key"]));
    const out = path.join(dir, "o.json");
    const r = run(["--model-used-for-key-generation", STORIES, "--keys-file", keys, "--response-length", "6", "--backend", "wasm", "--output-file", out]);
    expect(r.code).toBe(0);
    const fps = JSON.parse(await readFile(out, "utf8")) as { key: string; response: string }[];
    expect(fps.map((f) => f.key)).toEqual(["first key", "second key"]);
    expect(fps.every((f) => f.response.length > 0)).toBe(true);
  });

  test("the default hub model, offline and not cached: exit 2 naming it", async () => {
    const dir = await tmp();
    const r = run(["--strategy", "perinucleus", "--output-file", path.join(dir, "o.json")], { HF_HUB_OFFLINE: "1", HF_HUB_CACHE: path.join(dir, "cache") });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: meta-llama\/Meta-Llama-3\.1-8B-Instruct: not in the local cache/m);
  });
});

describe("bad inputs: one line, exit 2", () => {
  const cases: [string, string[], RegExp][] = [
    ["negative key length", ["--key-length", "-3"], /^error: --key-length: expected a positive whole number$/m],
    ["zero fingerprints", ["--num-fingerprints", "0"], /^error: --num-fingerprints: expected a positive whole number$/m],
    ["unknown strategy", ["--strategy", "magic"], /^error: option '--strategy <name>' argument 'magic' is invalid\. Allowed choices are english, random_word, perinucleus\.$/m],
    ["nucleus-t outside (0,1)", ["--nucleus-t", "1"], /^error: --nucleus-t: expected a number strictly between 0 and 1$/m],
    ["nucleus-p alias", ["--nucleus-p", "0"], /^error: --nucleus-t: expected a number strictly between 0 and 1$/m],
    ["not a number", ["--seed", "abc"], /^error: option '--seed <n>' argument 'abc' is invalid\. not a number\.$/m],
    ["unknown flag", ["--bogus"], /^error: unknown option '--bogus'$/m],
    ["conflicting strategies", ["--strategy", "english", "--random-word-generation"], /^error: conflicting strategies: --strategy english vs --random-word-generation$/m],
    ["model directory missing", ["--strategy", "perinucleus", "--model-used-for-key-generation", "./no-such-model"], /^error: .*no-such-model: no such directory$/m],
    ["several responses need perinucleus", ["--strategy", "english", "--num-responses-per-fingerprint", "2"], /^error: --num-responses-per-fingerprint 2: only --strategy perinucleus/m],
    ["unknown engine", ["--engine", "torch"], /^error: option '--engine <name>' argument 'torch' is invalid\. Allowed choices are tfjs, onnx\.$/m],
    ["onnx engine without an ONNX file", ["--engine", "onnx", "--model-used-for-key-generation", STORIES], /^error: .*stories260K: no ONNX decoder found/m],
    ["key length beyond the context", ["--model-used-for-key-generation", STORIES, "--key-length", "600", "--backend", "cpu"], /^error: --key-length 600: a prompt of \d+ tokens \+ 600 new tokens exceed the context .*\(512 positions\)$/m],
    ["response length beyond the context (perinucleus)", ["--strategy", "perinucleus", "--model-used-for-key-generation", STORIES, "--response-length", "600", "--backend", "cpu"], /^error: --key-length 32 \+ --response-length 600 \+ BOS exceed the context/m],
  ];
  for (const [name, args, re] of cases) {
    test(name, async () => {
      const dir = await tmp();
      const r = run([...args, "--output-file", path.join(dir, "o.json")]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe("");
    });
  }

  test("bad keys file names file and JSON path", async () => {
    const dir = await tmp();
    const keys = path.join(dir, "keys.json");
    await writeFile(keys, JSON.stringify(["ok", ""]));
    const r = run(["--strategy", "random_word", "--keys-file", keys, "--output-file", path.join(dir, "o.json")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${keys}: [1]: expected a non-empty string`);
  });

  test("--help and --version exit 0", () => {
    const h = run(["--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("--key-length <n>");
    expect(h.stdout).toContain("(default: 32)");
    for (const flag of ["--engine <name>", "--backend <name>", "--instruct", "--no-instruct", "--num-responses-per-fingerprint <n>"]) {
      expect(h.stdout).toContain(flag);
    }
    expect(run(["--version"]).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
