import { describe, expect, test } from "vitest";
import { BackendError } from "../errors.js";
import { normalizeLlamaConfig } from "../model/config.js";
import { backendForPlan, countParameters, formatBytes, planMemory } from "./memory-plan.js";

const stories = normalizeLlamaConfig(
  { model_type: "llama", vocab_size: 512, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, tie_word_embeddings: true, max_position_embeddings: 512 },
  "config.json",
);

describe("memory plan", () => {
  test("stories260K has 260,032 parameters (its safetensors file holds 47 tensors of that total)", () => {
    expect(countParameters(stories)).toBe(260_032);
  });

  test("training bytes: 4 B weights + 4 B gradients (8 with accumulation: the sums beside a micro-batch's) in the heap + 8 B AdamW outside it; w0 and the best weights are not in memory", () => {
    const p = planMemory(stories, { mode: "train", batchSize: 1, seqLen: 1 });
    expect(p.bytes.weights).toBe(4 * 260_032);
    expect(p.bytes.gradients).toBe(4 * 260_032);
    expect(p.bytes.optimizer).toBe(8 * 260_032);
    expect(p.bytes.tfjsHeap).toBe(8 * 260_032 + p.bytes.activations);
    expect(p.bytes.total).toBe(16 * 260_032 + p.bytes.activations);
    const acc = planMemory(stories, { mode: "train", batchSize: 1, seqLen: 1, accumulation: 8 });
    expect(acc.bytes.gradients).toBe(8 * 260_032);
    expect(acc.bytes.tfjsHeap).toBe(12 * 260_032 + acc.bytes.activations);
    expect(acc.bytes.total).toBe(20 * 260_032 + acc.bytes.activations);
    expect(Object.keys(acc.bytes).sort()).toEqual(["activations", "gradients", "klTargets", "optimizer", "tfjsHeap", "total", "weights"]);
    expect(p.fitsWasm).toBe(true);
  });

  test("a second forward in the step adds its activations; KL targets count outside the heap", () => {
    const one = planMemory(stories, { mode: "train", batchSize: 8, seqLen: 18 });
    const other = planMemory(stories, { mode: "train", batchSize: 3, seqLen: 51 });
    const both = planMemory(stories, { mode: "train", batchSize: 8, seqLen: 18, second: { batchSize: 3, seqLen: 51 }, klTargetBytes: 1000 });
    expect(both.bytes.activations).toBe(one.bytes.activations + other.bytes.activations);
    expect(both.bytes.klTargets).toBe(1000);
    expect(both.bytes.total - both.bytes.tfjsHeap).toBe(one.bytes.total - one.bytes.tfjsHeap + 1000);
  });

  test("an 8B-class model does not fit wasm: explicit wasm is an error, auto avoids wasm", () => {
    const big = normalizeLlamaConfig(
      { model_type: "llama", vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 8192 },
      "config.json",
    );
    const p = planMemory(big, { mode: "infer", batchSize: 1, seqLen: 32 });
    expect(p.parameters).toBe(8_030_261_248); // Llama-3.1-8B
    expect(p.fitsWasm).toBe(false);
    expect(() => backendForPlan("wasm", p)).toThrow(BackendError);
    expect(() => backendForPlan("wasm", p)).toThrow(/more than the wasm backend's 4 GiB/);
    expect(backendForPlan("auto", p)).toEqual({ backend: "auto", allowWasm: false });
  });

  test("formatBytes", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(4 * 1024 ** 3)).toBe("4.0 GiB");
  });
});
