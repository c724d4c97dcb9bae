import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelLoadError, SafetensorsFormatError } from "../errors.js";
import { isIgnoredBuffer, readModelWeights, writeModelWeights } from "./model-files.js";
import { readSafetensors, readSafetensorsFile, writeSafetensors, type TensorToWrite } from "./safetensors.js";

const MODELS = path.resolve(__dirname, "../../../../../shared/models");
const STORIES = path.join(MODELS, "stories260K");
const BASARAN = path.join(MODELS, "tiny-random-llama-basaran");

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "oml-model-files-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const fresh = (name: string): Promise<string> => mkdtemp(path.join(root, `${name}-`));
const f32 = (n: number, start = 0): Float32Array => new Float32Array(n).map((_, i) => start + i);
const sameBytes = (a: Float32Array | undefined, b: Float32Array | undefined): boolean =>
  a !== undefined && b !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe("readModelWeights", () => {
  it("loads stories260K's model.safetensors", async () => {
    const w = await readModelWeights(STORIES);
    expect(w.size).toBe(47);
    expect(w.get("model.embed_tokens.weight")?.shape).toEqual([512, 64]);
  });

  it("skips the rotary inv_freq buffers of tiny-random-llama-basaran unless told otherwise", async () => {
    const w = await readModelWeights(BASARAN);
    expect(w.size).toBe(21);
    expect([...w.keys()].some((k) => k.includes("inv_freq"))).toBe(false);
    expect(w.has("lm_head.weight")).toBe(true);
    expect((await readModelWeights(BASARAN, { ignore: () => false })).size).toBe(23);
  });

  it("isIgnoredBuffer: mask and rotary buffers, not real biases", () => {
    expect(isIgnoredBuffer("model.layers.0.self_attn.rotary_emb.inv_freq")).toBe(true);
    expect(isIgnoredBuffer("gpt_neox.layers.3.attention.bias")).toBe(true);
    expect(isIgnoredBuffer("gpt_neox.layers.3.attention.masked_bias")).toBe(true);
    expect(isIgnoredBuffer("transformer.h.0.attn.bias")).toBe(true);
    expect(isIgnoredBuffer("gpt_neox.layers.3.attention.dense.bias")).toBe(false);
    expect(isIgnoredBuffer("gpt_neox.layers.3.attention.query_key_value.bias")).toBe(false);
    expect(isIgnoredBuffer("transformer.h.0.attn.c_attn.bias")).toBe(false);
    expect(isIgnoredBuffer("model.layers.0.self_attn.q_proj.bias")).toBe(false);
  });

  it("an empty directory, or one with only pytorch_model.bin, is a ModelLoadError that says what to do", async () => {
    const empty = await fresh("empty");
    await expect(readModelWeights(empty)).rejects.toThrow(/no model\.safetensors or model\.safetensors\.index\.json/);
    const pt = await fresh("pt");
    await writeFile(path.join(pt, "pytorch_model.bin"), "not really");
    const err = await readModelWeights(pt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).message).toMatch(/only pytorch_model\.bin.*convert it to safetensors/);
  });

  it("a malformed model.safetensors surfaces as SafetensorsFormatError", async () => {
    const d = await fresh("bad");
    await writeFile(path.join(d, "model.safetensors"), Buffer.alloc(5));
    await expect(readModelWeights(d)).rejects.toThrow(SafetensorsFormatError);
  });
});

describe("writeModelWeights", () => {
  it("one model.safetensors with {format: pt} under the threshold, equal on re-read", async () => {
    const d = await fresh("single");
    const src = await readSafetensors(path.join(STORIES, "model.safetensors"));
    const out = await writeModelWeights(d, src);
    expect(out).toEqual({ files: ["model.safetensors"], totalSize: 260_032 * 4 });
    expect(await readdir(d)).toEqual(["model.safetensors"]);
    const { metadata, tensors } = await readSafetensorsFile(path.join(d, "model.safetensors"));
    expect(metadata).toEqual({ format: "pt" });
    for (const [name, t] of src) {
      expect(sameBytes(tensors.get(name)?.data, t.data), name).toBe(true);
    }
  });

  it("shards exactly like huggingface_hub's split_state_dict_into_shards (hand-worked example)", async () => {
    // max 64 bytes: a (40) opens shard 1; b (40) would overflow it -> shard 1 closes, b opens the next;
    // c (100 > max) gets a shard of its own, pushed at once; d (8) joins b. Shards: [a], [c], [b, d].
    const d = await fresh("shards");
    const tensors = new Map<string, TensorToWrite>([
      ["a", { shape: [10], data: f32(10) }],
      ["b", { shape: [2, 5], data: f32(10, 100) }],
      ["c", { shape: [25], data: f32(25, 200) }],
      ["d", { shape: [2], data: f32(2, 300) }],
    ]);
    const out = await writeModelWeights(d, tensors, { maxShardBytes: 64, metadata: { note: "x" } });
    expect(out.files).toEqual(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json"]);
    expect(out.totalSize).toBe(188);
    // transformers: json.dumps(index, indent=2, sort_keys=True) + "\n"
    expect(await readFile(path.join(d, "model.safetensors.index.json"), "utf8")).toBe(
      `{
  "metadata": {
    "total_size": 188
  },
  "weight_map": {
    "a": "model-00001-of-00003.safetensors",
    "b": "model-00003-of-00003.safetensors",
    "c": "model-00002-of-00003.safetensors",
    "d": "model-00003-of-00003.safetensors"
  }
}
`,
    );
    const third = await readSafetensorsFile(path.join(d, "model-00003-of-00003.safetensors"));
    expect([...third.tensors.keys()]).toEqual(["b", "d"]);
    expect(third.metadata).toEqual({ note: "x", format: "pt" });
    const back = await readModelWeights(d);
    expect([...back.keys()].sort()).toEqual(["a", "b", "c", "d"]);
    for (const [name, t] of tensors) {
      expect(sameBytes(back.get(name)?.data, t.data), name).toBe(true);
      expect(back.get(name)?.shape).toEqual(t.shape);
    }
  });

  it("sharded stories260K (BF16) reads back equal to a single-file BF16 save", async () => {
    const src = await readSafetensors(path.join(STORIES, "model.safetensors"));
    const [sharded, single] = [await fresh("sh16"), await fresh("one16")];
    const out = await writeModelWeights(sharded, src, { dtype: "BF16", maxShardBytes: 100_000 });
    expect(out.totalSize).toBe(260_032 * 2);
    expect(out.files.length).toBeGreaterThan(3);
    const index = JSON.parse(await readFile(path.join(sharded, "model.safetensors.index.json"), "utf8")) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(index.metadata.total_size).toBe(260_032 * 2);
    expect(Object.keys(index.weight_map).length).toBe(47);
    await writeModelWeights(single, src, { dtype: "BF16" });
    const [a, b] = [await readModelWeights(sharded), await readModelWeights(single)];
    expect(a.size).toBe(47);
    for (const [name, t] of b) {
      expect(sameBytes(a.get(name)?.data, t.data), name).toBe(true);
      expect(a.get(name)?.dtype).toBe("BF16");
    }
  });

  it("removes the weight files of an earlier save that the new layout does not use", async () => {
    const d = await fresh("stale");
    const tensors = new Map<string, TensorToWrite>([
      ["a", { shape: [10], data: f32(10) }],
      ["b", { shape: [10], data: f32(10, 50) }],
    ]);
    await writeModelWeights(d, tensors);
    await writeModelWeights(d, tensors, { maxShardBytes: 40 });
    expect((await readdir(d)).sort()).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
    await writeFile(path.join(d, "config.json"), "{}");
    await writeModelWeights(d, tensors);
    expect((await readdir(d)).sort()).toEqual(["config.json", "model.safetensors"]);
  });
});

describe("hostile or broken index files", () => {
  async function indexed(name: string, index: string, shards: Record<string, Record<string, TensorToWrite>> = {}): Promise<string> {
    const d = await fresh(name);
    await writeFile(path.join(d, "model.safetensors.index.json"), index);
    for (const [file, tensors] of Object.entries(shards)) {
      await writeSafetensors(path.join(d, file), tensors);
    }
    return d;
  }
  const one = { w: { shape: [1], data: f32(1) } };

  it("a shard path outside the directory", async () => {
    const d = await indexed("traversal", JSON.stringify({ weight_map: { w: "../model.safetensors" } }));
    await expect(readModelWeights(d)).rejects.toThrow(/weight_map\["w"\] must be a \.safetensors file name in the same directory/);
  });

  it("a missing shard, a tensor missing from its shard, bad JSON, no weight_map", async () => {
    await expect(readModelWeights(await indexed("missing", JSON.stringify({ weight_map: { w: "model-00001-of-00001.safetensors" } })))).rejects.toThrow(
      /model-00001-of-00001\.safetensors: listed in model\.safetensors\.index\.json but missing/,
    );
    const lacking = await indexed("lacking", JSON.stringify({ weight_map: { w: "s.safetensors", v: "s.safetensors" } }), { "s.safetensors": one });
    await expect(readModelWeights(lacking)).rejects.toThrow(/s\.safetensors: has no tensor "v"/);
    await expect(readModelWeights(await indexed("json", "{not json"))).rejects.toThrow(/not valid JSON/);
    await expect(readModelWeights(await indexed("nomap", "{}"))).rejects.toThrow(ModelLoadError);
  });

  it("loads only what weight_map places in each shard, skipping ignored buffers", async () => {
    const d = await indexed("extra", JSON.stringify({ weight_map: { w: "s.safetensors", "x.rotary_emb.inv_freq": "s.safetensors" } }), {
      "s.safetensors": { ...one, extra: { shape: [1], data: f32(1) } },
    });
    expect([...(await readModelWeights(d)).keys()]).toEqual(["w"]);
  });
});
