import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError } from "../errors.js";
import { readSafetensors, readSafetensorsFile, readSafetensorsHeader, writeSafetensors, type TensorToWrite } from "./safetensors.js";

const STORIES = path.resolve(__dirname, "../../../../../shared/models/stories260K/model.safetensors");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "oml-st-write-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const f32 = (...xs: number[]): Float32Array => new Float32Array(xs);

describe("byte layout of the Rust safetensors library (safetensors/src/tensor.rs tests)", () => {
  it("test_serialization: attn.0 F32 [1, 2, 3]", async () => {
    const file = path.join(dir, "ser.safetensors");
    await writeSafetensors(file, { "attn.0": { shape: [1, 2, 3], data: f32(0, 1, 2, 3, 4, 5) } });
    expect([...(await readFile(file))]).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104,
      97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93,
      125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });

  it("test_serialization_forced_alignement: the header is padded with spaces to 8 bytes", async () => {
    const file = path.join(dir, "align.safetensors");
    await writeSafetensors(file, { attn0: { shape: [1, 1, 2, 3], data: f32(0, 1, 2, 3, 4, 5) } });
    expect([...(await readFile(file))]).toEqual([
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97,
      112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52,
      93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });

  it("test_empty: no tensors, with and without metadata", async () => {
    const file = path.join(dir, "empty.safetensors");
    await writeSafetensors(file, {});
    expect([...(await readFile(file))]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    await writeSafetensors(file, new Map(), { metadata: { framework: "pt" } });
    expect([...(await readFile(file))]).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107,
      34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
  });

  it("sorts by dtype alignment (Rust Dtype enum order) descending, then by name", async () => {
    const file = path.join(dir, "sorted.safetensors");
    const tensors = new Map<string, TensorToWrite>([
      ["a_bool", { shape: [2], dtype: "BOOL", ints: new Uint8Array([1, 0]) }],
      ["b_f32", { shape: [1], data: f32(1) }],
      ["c_i64", { shape: [1], dtype: "I64", ints: new BigInt64Array([5n]) }],
      ["a_f32", { shape: [1], data: f32(2) }],
      ["d_i32", { shape: [1], dtype: "I32", ints: new Int32Array([-3]) }],
      ["10", { shape: [1], data: f32(3) }], // an integer-like name must not jump ahead
    ]);
    await writeSafetensors(file, tensors);
    const h = await readSafetensorsHeader(file);
    expect(h.entries.map((e) => e.name)).toEqual(["c_i64", "10", "a_f32", "b_f32", "d_i32", "a_bool"]);
    const raw = (await readFile(file)).subarray(8, h.dataStart).toString("utf8");
    expect(raw.indexOf('"c_i64"')).toBeLessThan(raw.indexOf('"10"'));
    expect(raw.indexOf('"10"')).toBeLessThan(raw.indexOf('"a_f32"'));
    const back = await readSafetensors(file);
    expect(back.get("c_i64")?.ints).toEqual(new BigInt64Array([5n]));
    expect(back.get("a_bool")?.ints).toEqual(new Uint8Array([1, 0]));
    expect(back.get("d_i32")?.dtype).toBe("I32");
  });
});

describe("round trips", () => {
  it("F32 is bit-identical, including -0, subnormals, inf and NaN payloads", async () => {
    const bits = new Uint32Array([0x00000000, 0x80000000, 0x00000001, 0x007fffff, 0x7f800000, 0xff800000, 0x7fc00001, 0xffbfffff, 0x3f800000, 0xdeadbeef]);
    const random = new Float32Array(1000).map((_, i) => Math.sin(i * 12.9898) * 43758.5453);
    const file = path.join(dir, "f32.safetensors");
    await writeSafetensors(file, { special: { shape: [2, 5], data: new Float32Array(bits.buffer) }, random: { shape: [10, 10, 10], data: random } }, { metadata: { format: "pt", k: "v" } });
    const { tensors, metadata } = await readSafetensorsFile(file);
    expect(metadata).toEqual({ format: "pt", k: "v" });
    const special = tensors.get("special");
    expect(special?.shape).toEqual([2, 5]);
    expect(new Uint32Array((special?.data ?? f32()).buffer)).toEqual(bits);
    expect(tensors.get("random")?.data).toEqual(random);
  });

  // Hand-computed roundings, as in safetensors-dtypes.test.ts.
  const values = f32(1.0, 0.1, 65504, 1e-8, -0, Infinity, NaN);
  it("F16 stores the hand-rounded halves", async () => {
    const file = path.join(dir, "f16.safetensors");
    await writeSafetensors(file, { w: { shape: [7], data: values } }, { dtype: "F16" });
    const h = await readSafetensorsHeader(file);
    expect(h.entries[0]).toMatchObject({ dtype: "F16", begin: 0, end: 14 });
    const raw = await readFile(file);
    const halves = [...new Uint16Array(raw.buffer.slice(raw.byteOffset + h.dataStart, raw.byteOffset + raw.length))];
    expect(halves).toEqual([0x3c00, 0x2e66, 0x7bff, 0x0000, 0x8000, 0x7c00, 0x7e00]);
    const back = [...((await readSafetensors(file)).get("w")?.data ?? [])];
    expect(back.slice(0, 6)).toEqual([1, 0.0999755859375, 65504, 0, -0, Infinity]);
    expect(Object.is(back[4], -0)).toBe(true);
    expect(Number.isNaN(back[6])).toBe(true);
  });

  it("BF16 stores the hand-rounded bfloat16s", async () => {
    const file = path.join(dir, "bf16.safetensors");
    await writeSafetensors(file, { w: { shape: [7], data: values } }, { dtype: "BF16" });
    const back = [...((await readSafetensors(file)).get("w")?.data ?? [])];
    expect(back.slice(0, 6)).toEqual([1, 0.10009765625, 65536, 1.0011717677116394e-8, -0, Infinity]);
    expect(Object.is(back[4], -0)).toBe(true);
    expect(Number.isNaN(back[6])).toBe(true);
  });

  it("F16 over more than one conversion chunk", async () => {
    const n = 1024 * 1024 + 3;
    const data = new Float32Array(n).map((_, i) => (i % 2048) - 1024); // integers |x| <= 1024 are exact halves
    const file = path.join(dir, "big16.safetensors");
    await writeSafetensors(file, { w: { shape: [n], data } }, { dtype: "F16" });
    const back = (await readSafetensors(file)).get("w")?.data ?? f32();
    // Compare bytes: toEqual on a million-element typed array takes seconds.
    expect(Buffer.from(back.buffer).equals(Buffer.from(data.buffer))).toBe(true);
  });

  it("data given as a function is read once, right before its tensor is written (F32 and BF16)", async () => {
    const calls: string[] = [];
    const lazy = (name: string, xs: Float32Array) => (): Float32Array => (calls.push(name), xs);
    const file = path.join(dir, "lazy.safetensors");
    await writeSafetensors(file, new Map<string, TensorToWrite>([["b", { shape: [2], data: lazy("b", f32(3, 4)) }], ["a", { shape: [1, 2], data: lazy("a", f32(1, 2)) }]]));
    expect(calls).toEqual(["a", "b"]); // in data order
    const back = await readSafetensors(file);
    expect([...(back.get("a")?.data ?? [])]).toEqual([1, 2]);
    expect([...(back.get("b")?.data ?? [])]).toEqual([3, 4]);
    await writeSafetensors(file, { w: { shape: [7], data: () => values } }, { dtype: "BF16" });
    expect([...((await readSafetensors(file)).get("w")?.data ?? [])].slice(0, 2)).toEqual([1, 0.10009765625]);
  });
});

describe("compatibility with a real file", () => {
  it("re-writing stories260K as F32 reproduces its size, header fields and tensor bytes", async () => {
    const { tensors, metadata } = await readSafetensorsFile(STORIES);
    const file = path.join(dir, "stories.safetensors");
    await writeSafetensors(file, tensors, { dtype: "F32", metadata });
    const [orig, ours] = [await readFile(STORIES), await readFile(file)];
    expect(ours.length).toBe(orig.length);
    const [ho, hw] = [await readSafetensorsHeader(STORIES), await readSafetensorsHeader(file)];
    expect(hw.dataStart).toBe(ho.dataStart); // same header length N
    expect(hw.entries).toEqual(ho.entries); // same names, dtypes, shapes, offsets, order
    expect(hw.metadata).toEqual(ho.metadata);
    expect(ours.subarray(ho.dataStart).equals(orig.subarray(ho.dataStart))).toBe(true);
    // The reference writer puts __metadata__ last, the Rust library first: the JSON is the same set of fields.
    const parse = (b: Buffer, h: { dataStart: number }): unknown => JSON.parse(b.subarray(8, h.dataStart).toString("utf8"));
    expect(parse(ours, hw)).toEqual(parse(orig, ho));
  });
});

describe("atomic writes and input checks", () => {
  it("overwrites in place and leaves no temporary file", async () => {
    const sub = await mkdtemp(path.join(dir, "atomic-"));
    const file = path.join(sub, "x.safetensors");
    await writeSafetensors(file, { a: { shape: [1], data: f32(1) } });
    await writeSafetensors(file, { b: { shape: [2], data: f32(2, 3) } });
    expect([...(await readSafetensors(file)).keys()]).toEqual(["b"]);
    expect(await readdir(sub)).toEqual(["x.safetensors"]);
  });

  it("rejects bad tensors with an InputError naming the tensor, keeping the old file", async () => {
    const sub = await mkdtemp(path.join(dir, "bad-"));
    const file = path.join(sub, "x.safetensors");
    await writeSafetensors(file, { a: { shape: [1], data: f32(1) } });
    await expect(writeSafetensors(file, { "w.q": { shape: [2, 2], data: f32(1, 2, 3) } })).rejects.toThrow(/tensor "w\.q": data has 3 values but shape \[2, 2\] needs 4/);
    await expect(writeSafetensors(file, { w: { shape: [-1], data: f32() } })).rejects.toThrow(InputError);
    await expect(writeSafetensors(file, { w: { shape: [1], dtype: "I32", ints: new Uint8Array(1) } })).rejects.toThrow(/ints is a Uint8Array but dtype is I32/);
    await expect(writeSafetensors(file, { __metadata__: { shape: [1], data: f32(1) } })).rejects.toThrow(/reserved/);
    await expect(writeSafetensors(file, { "w.k": { shape: [2], data: () => f32(1) } })).rejects.toThrow(/tensor "w\.k": data has 1 values but shape \[2\] needs 2/);
    expect([...(await readSafetensors(file)).keys()]).toEqual(["a"]);
    expect(await readdir(sub)).toEqual(["x.safetensors"]);
  });

  it("a missing directory is a RuntimeFailure, with no temp file left behind", async () => {
    await expect(writeSafetensors(path.join(dir, "no/such/dir/x.safetensors"), {})).rejects.toThrow(/cannot write \(ENOENT\)/);
  });
});
