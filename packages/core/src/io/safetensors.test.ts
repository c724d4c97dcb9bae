import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelLoadError, SafetensorsFormatError } from "../errors.js";
import { MAX_HEADER_BYTES, readSafetensors, readSafetensorsFile, readSafetensorsHeader } from "./safetensors.js";

const MODELS = path.resolve(__dirname, "../../../../../shared/models");
const STORIES = path.join(MODELS, "stories260K/model.safetensors");
const BASARAN = path.join(MODELS, "tiny-random-llama-basaran/model.safetensors");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "oml-st-read-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file from a header string (padded to 8 with spaces) and raw data bytes. */
async function craft(name: string, header: string, data: Uint8Array | number[] = []): Promise<string> {
  const json = Buffer.from(header, "utf8");
  const n = Math.ceil(json.length / 8) * 8;
  const buf = Buffer.alloc(8 + n + data.length, 0x20);
  buf.writeBigUInt64LE(BigInt(n), 0);
  json.copy(buf, 8);
  Buffer.from(data).copy(buf, 8 + n);
  const file = path.join(dir, name);
  await writeFile(file, buf);
  return file;
}

const bytesOf = (arr: ArrayBufferView): number[] => [...new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength)];

describe("real fixtures", () => {
  it("stories260K: 47 F32 tensors, 260,032 parameters, known shapes", async () => {
    const { tensors, metadata } = await readSafetensorsFile(STORIES);
    expect(tensors.size).toBe(47);
    let params = 0;
    for (const t of tensors.values()) {
      expect(t.dtype).toBe("F32");
      expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
      params += t.data.length;
    }
    expect(params).toBe(260_032);
    expect(metadata).toEqual({ format: "pt" });
    expect(tensors.get("model.embed_tokens.weight")?.shape).toEqual([512, 64]);
    expect(tensors.get("model.norm.weight")?.shape).toEqual([64]);
    expect(tensors.get("model.layers.0.mlp.down_proj.weight")?.shape).toEqual([64, 172]);
    expect(tensors.get("model.layers.4.self_attn.k_proj.weight")?.shape).toEqual([32, 64]); // 4 kv heads x 8
    expect(tensors.has("lm_head.weight")).toBe(false); // tied
    // Trained RMSNorm gains: finite and not all equal to the init value 1.
    const norm = tensors.get("model.norm.weight")?.data ?? new Float32Array();
    expect(norm.every(Number.isFinite)).toBe(true);
    expect(norm.some((v) => v !== 1)).toBe(true);
  });

  it("stories260K: values equal the raw little-endian floats at the header's offsets", async () => {
    const { readFile } = await import("node:fs/promises");
    const raw = await readFile(STORIES);
    const h = await readSafetensorsHeader(STORIES);
    const e = h.entries.find((x) => x.name === "model.layers.0.input_layernorm.weight");
    const t = (await readSafetensors(STORIES)).get("model.layers.0.input_layernorm.weight");
    expect(e && t).toBeTruthy();
    if (e && t) {
      for (let i = 0; i < t.data.length; i++) {
        expect(t.data[i]).toBe(raw.readFloatLE(h.dataStart + e.begin + 4 * i));
      }
    }
  });

  it("tiny-random-llama-basaran: 23 tensors including the rotary buffers", async () => {
    const tensors = await readSafetensors(BASARAN);
    expect(tensors.size).toBe(23);
    expect(tensors.get("lm_head.weight")?.shape).toEqual([32000, 4]);
    expect(tensors.get("model.embed_tokens.weight")?.shape).toEqual([32000, 4]);
    expect(tensors.has("model.layers.0.self_attn.rotary_emb.inv_freq")).toBe(true);
  });

  it("filter: skipped tensors are not returned", async () => {
    const tensors = await readSafetensors(BASARAN, { filter: (name) => !name.endsWith("inv_freq") });
    expect(tensors.size).toBe(21);
  });
});

describe("hand-made files", () => {
  it("reads the Rust library's serialisation example (attn.0, F32 [1,2,3])", async () => {
    // Bytes from safetensors/src/tensor.rs `test_serialization`.
    const bytes = [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104,
      97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93,
      125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    const file = path.join(dir, "rust.safetensors");
    await writeFile(file, Buffer.from(bytes));
    const t = (await readSafetensors(file)).get("attn.0");
    expect(t?.shape).toEqual([1, 2, 3]);
    expect([...(t?.data ?? [])]).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("widens F16 and BF16 (hand-encoded bits) and narrows F64", async () => {
    // F16: 1.0 = 0x3c00, -2 = 0xc000, 2^-24 = 0x0001, inf = 0x7c00. BF16: 1.0 = 0x3f80, 0.1 ~ 0x3dcd.
    const f16 = [0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c];
    const bf16 = [0x80, 0x3f, 0xcd, 0x3d];
    const f64 = bytesOf(new Float64Array([0.1, -3]));
    const header = JSON.stringify({
      a: { dtype: "F64", shape: [2], data_offsets: [0, 16] },
      b: { dtype: "F16", shape: [2, 2], data_offsets: [16, 24] },
      c: { dtype: "BF16", shape: [2], data_offsets: [24, 28] },
    });
    const file = await craft("floats.safetensors", header, [...f64, ...f16, ...bf16]);
    const t = await readSafetensors(file);
    expect([...(t.get("b")?.data ?? [])]).toEqual([1, -2, 2 ** -24, Infinity]);
    expect([...(t.get("c")?.data ?? [])]).toEqual([1, 0.10009765625]);
    expect([...(t.get("a")?.data ?? [])]).toEqual([Math.fround(0.1), -3]);
    expect(t.get("b")?.dtype).toBe("F16");
  });

  it("integer and bool tensors: exact `ints` plus a float32 copy, or skipped", async () => {
    const i64 = bytesOf(new BigInt64Array([-1n, 2n ** 40n]));
    const i32 = bytesOf(new Int32Array([7, -8]));
    const header = JSON.stringify({
      __metadata__: { note: "ints" },
      ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] },
      pos: { dtype: "I32", shape: [2], data_offsets: [16, 24] },
      mask: { dtype: "BOOL", shape: [3], data_offsets: [24, 27] },
      bytes: { dtype: "U8", shape: [1], data_offsets: [27, 28] },
      w: { dtype: "F32", shape: [], data_offsets: [28, 32] },
    });
    const file = await craft("ints.safetensors", header, [...i64, ...i32, 1, 0, 1, 255, ...bytesOf(new Float32Array([0.5]))]);
    const { tensors, metadata } = await readSafetensorsFile(file);
    expect(metadata).toEqual({ note: "ints" });
    expect([...((tensors.get("ids")?.ints as BigInt64Array) ?? [])]).toEqual([-1n, 2n ** 40n]);
    expect([...(tensors.get("ids")?.data ?? [])]).toEqual([-1, 2 ** 40]);
    expect(tensors.get("pos")?.ints).toEqual(new Int32Array([7, -8]));
    expect(tensors.get("mask")?.ints).toEqual(new Uint8Array([1, 0, 1]));
    expect([...(tensors.get("bytes")?.data ?? [])]).toEqual([255]);
    expect(tensors.get("w")?.shape).toEqual([]); // scalar
    expect([...(tensors.get("w")?.data ?? [])]).toEqual([0.5]);
    expect(tensors.get("w")?.ints).toBeUndefined();
    const floatsOnly = await readSafetensors(file, { integers: "skip" });
    expect([...floatsOnly.keys()]).toEqual(["w"]);
  });

  it("accepts an empty file ({} plus padding) and zero-size tensors", async () => {
    expect((await readSafetensors(await craft("empty.safetensors", "{}"))).size).toBe(0);
    const header = JSON.stringify({ z: { dtype: "F32", shape: [0, 4], data_offsets: [0, 0] }, o: { dtype: "F32", shape: [1], data_offsets: [0, 4] } });
    const t = await readSafetensors(await craft("zero.safetensors", header, [0, 0, 128, 63]));
    expect(t.get("z")?.data.length).toBe(0);
    expect([...(t.get("o")?.data ?? [])]).toEqual([1]);
  });
});

describe("malformed files throw SafetensorsFormatError naming the file and the tensor", () => {
  const f32 = (n: number): number[] => new Array<number>(4 * n).fill(0);
  const cases: { name: string; header: string; data?: number[]; message: RegExp }[] = [
    {
      name: "size mismatch",
      header: '{"model.norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[0,12]}}',
      data: f32(3),
      message: /mismatch\.safetensors: tensor "model\.norm\.weight": data_offsets \[0, 12\] hold 12 bytes but shape \[64\] × F32 needs 256/,
    },
    { name: "unknown dtype", header: '{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', data: [0], message: /tensor "w": unsupported dtype "F8_E4M3"/ },
    { name: "negative dim", header: '{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', data: f32(1), message: /tensor "w": shape must be an array of non-negative integers/ },
    { name: "fractional dim", header: '{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', data: f32(1), message: /tensor "w": shape/ },
    { name: "string offsets", header: '{"w":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}', data: f32(1), message: /tensor "w": data_offsets must be two/ },
    { name: "three offsets", header: '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', data: f32(1), message: /tensor "w": data_offsets must be two/ },
    { name: "reversed offsets", header: '{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', data: f32(1), message: /tensor "w": data_offsets \[4, 0\] end before they begin/ },
    { name: "past the end", header: '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', data: f32(2), message: /tensor "w": data_offsets \[0, 16\] run past the end of the 8-byte data section/ },
    {
      name: "overlap",
      header: '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
      data: f32(3),
      message: /tensor "b": data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]/,
    },
    {
      name: "gap",
      header: '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
      data: f32(3),
      message: /tensor "b": data_offsets \[8, 12\] leave a gap of 4 bytes/,
    },
    { name: "trailing bytes", header: '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', data: f32(2), message: /cover 4 bytes but the data section holds 8/ },
    {
      name: "shape overflow",
      header: '{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}',
      data: f32(1),
      message: /tensor "w": shape \[4294967296, 4294967296\] has more than 2\^53 elements/,
    },
    { name: "not an object", header: "[1,2,3]", message: /header must be a JSON object, got an array/ },
    { name: "bad json", header: '{"w":', message: /header is not valid JSON/ },
    { name: "bad metadata", header: '{"__metadata__":{"n":1}}', message: /"__metadata__" field "n" must be a string/ },
    { name: "entry not object", header: '{"w":3}', message: /tensor "w": entry must be an object/ },
  ];

  it.each(cases)("$name", async ({ name, header, data, message }) => {
    const file = await craft(`${name.replace(/ /g, "-")}.safetensors`, header, data);
    const err = await readSafetensors(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SafetensorsFormatError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(file);
  });

  it("header length over the limit, past the file, or a file under 8 bytes", async () => {
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES + 1), 0);
    await writeFile(path.join(dir, "huge.safetensors"), huge);
    await expect(readSafetensors(path.join(dir, "huge.safetensors"))).rejects.toThrow(/exceeds the 100000000-byte limit/);
    const long = Buffer.alloc(16);
    long.writeBigUInt64LE(2n ** 64n - 1n, 0);
    await writeFile(path.join(dir, "long.safetensors"), long);
    await expect(readSafetensors(path.join(dir, "long.safetensors"))).rejects.toThrow(SafetensorsFormatError);
    const past = Buffer.alloc(16);
    past.writeBigUInt64LE(100n, 0);
    await writeFile(path.join(dir, "past.safetensors"), past);
    await expect(readSafetensors(path.join(dir, "past.safetensors"))).rejects.toThrow(/header length 100 runs past the end of the 16-byte file/);
    await writeFile(path.join(dir, "tiny.safetensors"), Buffer.from([1, 2, 3]));
    await expect(readSafetensors(path.join(dir, "tiny.safetensors"))).rejects.toThrow(/3 bytes is too small/);
  });

  it("a missing file is a ModelLoadError", async () => {
    await expect(readSafetensors(path.join(dir, "nope.safetensors"))).rejects.toThrow(ModelLoadError);
    await expect(readSafetensors(dir)).rejects.toThrow(/not a regular file/);
  });
});
