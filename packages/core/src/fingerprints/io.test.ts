import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { InputError } from "../errors.js";
import { readFingerprints, readKeysFile, writeFingerprints } from "./io.js";

const REF = path.resolve(__dirname, "../../../../../shared/fixtures/reference-fingerprints");

async function tmpFile(name: string, content?: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "oml-fp-"));
  const f = path.join(dir, name);
  if (content !== undefined) {
    await writeFile(f, content);
  }
  return f;
}

async function errorOf(p: Promise<unknown>): Promise<InputError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error("expected an error");
}

describe("reference files load unchanged", () => {
  test("output_fingerprints.json (english)", async () => {
    const fps = await readFingerprints(path.join(REF, "output_fingerprints.json"));
    const raw = JSON.parse(await readFile(path.join(REF, "output_fingerprints.json"), "utf8")) as unknown[];
    expect(fps.length).toBe(raw.length);
    expect(fps).toEqual(raw);
    expect(fps[0]?.key.startsWith("Companies are responsible")).toBe(true);
  });

  test("custom_fingerprints-inverse_nucleus.json keeps leading spaces", async () => {
    const fps = await readFingerprints(path.join(REF, "custom_fingerprints-inverse_nucleus.json"));
    expect(fps[0]?.response).toBe(" and");
  });

  test("custom_fingerprints.json is a keys file", async () => {
    const keys = await readKeysFile(path.join(REF, "custom_fingerprints.json"));
    expect(keys[0]?.startsWith("The sun was setting")).toBe(true);
  });

  test("a written file reads back equal, unknown fields preserved, mode 0600", async () => {
    const f = await tmpFile("fp.json");
    const fps = [
      { key: "k1", response: "r1", effective_key: "k1", response_prob: 0.01, extra: { note: "kept" } },
      { key: "k2", response: ["a", "b"], response_prob: [0.1, 0.2] },
    ];
    await writeFingerprints(f, fps);
    expect(await readFingerprints(f)).toEqual(fps);
    expect((await stat(f)).mode & 0o777).toBe(0o600);
    // Python's json.load reads what we write: plain JSON, 4-space indent like the reference
    expect((await readFile(f, "utf8")).startsWith('[\n    {\n        "key": "k1"')).toBe(true);
  });
});

describe("bad files: one line naming file, JSON path and problem", () => {
  test("empty response", async () => {
    const f = await tmpFile("fp.json", JSON.stringify([{ key: "a", response: "b" }, { key: "a", response: "b" }, { key: "c", response: "d" }, { key: "x", response: "" }]));
    const e = await errorOf(readFingerprints(f));
    expect(e.message).toBe(`${f}: [3].response: expected a non-empty string`);
    expect(e.exitCode).toBe(2);
  });

  test("missing key", async () => {
    const f = await tmpFile("fp.json", JSON.stringify([{ response: "b" }]));
    expect((await errorOf(readFingerprints(f))).message).toBe(`${f}: [0].key: expected a string`);
  });

  test("not an array", async () => {
    const f = await tmpFile("fp.json", JSON.stringify({ key: "a" }));
    expect((await errorOf(readFingerprints(f))).message).toBe(`${f}: (root): expected a JSON array of {key, response} objects`);
  });

  test("unreadable JSON names line and column", async () => {
    const f = await tmpFile("fp.json", '[\n  {"key": "a",\n   "response": "b",,}\n]');
    const e = await errorOf(readFingerprints(f));
    expect(e.message).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3:20: not valid JSON`));
    expect(e.exitCode).toBe(2);
  });

  test("missing file", async () => {
    const f = await tmpFile("nope.json");
    expect((await errorOf(readFingerprints(f))).message).toBe(`${f}: no such file`);
  });

  test("keys file with a number", async () => {
    const f = await tmpFile("keys.json", JSON.stringify(["a", 3]));
    expect((await errorOf(readKeysFile(f))).message).toBe(`${f}: [1]: expected a string`);
  });

  test("refuses to overwrite without force", async () => {
    const f = await tmpFile("fp.json", "[]");
    const e = await errorOf(writeFingerprints(f, [{ key: "a", response: "b" }]));
    expect(e.message).toBe(`${f}: already exists`);
    await writeFingerprints(f, [{ key: "a", response: "b" }], { force: true });
    expect(await readFingerprints(f)).toEqual([{ key: "a", response: "b" }]);
  });
});
