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

function run(args: string[]): { stdout: string; stderr: string; code: number | null } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", CI: "true" } });
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
    ["model strategy not yet available", ["--strategy", "perinucleus"], /^error: strategy perinucleus needs a language model/m],
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
    expect(run(["--version"]).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
