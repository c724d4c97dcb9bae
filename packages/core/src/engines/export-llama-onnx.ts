/**
 * Export a loaded Llama (our engine's weights) to an ONNX decoder with a KV cache, in the
 * layout transformers.js and optimum use (`text-generation-with-past`):
 *   inputs  input_ids (B, T) int64, attention_mask (B, S) int64, position_ids (B, T) int64,
 *           past_key_values.{i}.key / .value (B, nkv, P, hs) float32
 *   outputs logits (B, T, V), present.{i}.key / .value (B, nkv, S, hs)      S = P + T
 * The graph is the same math as model/llama.ts (RMSNorm, rotate_half RoPE with the same
 * frequency tables, GQA by repeating kv heads, additive causal + padding mask, SwiGLU).
 * Opset 17. Static RoPE only (default, linear, llama3 scaling), full rotary dims.
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { NotImplementedError } from "../errors.js";
import { pathExists } from "../util/json-file.js";
import type { Model } from "../model/load-model.js";
import { LLAMA_EMBED, LLAMA_FINAL_NORM, LLAMA_LM_HEAD, llamaLayerNames } from "../model/llama.js";
import { ropeInvFreq, ropeParams } from "../model/rope.js";
import { encodeOnnxModel, ONNX_DTYPE, type OnnxAttribute, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from "./onnx-proto.js";

/** Large negative bias of masked attention scores (transformers uses the float32 minimum). */
const MASKED = -3.4028234663852886e38;

/** Accumulates nodes and initializers with unique names. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private n = 0;

  op(op: string, inputs: string[], attributes?: Record<string, OnnxAttribute>, output?: string): string {
    const out = output ?? `${op.toLowerCase()}_${this.n}`;
    this.nodes.push({ op, inputs, outputs: [out], name: `${op}_${this.n++}`, attributes });
    return out;
  }

  float(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push({ name, dims, data, dtype: ONNX_DTYPE.FLOAT });
    return name;
  }

  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    this.initializers.push({ name, dims, data: BigInt64Array.from(values, (v) => BigInt(v)), dtype: ONNX_DTYPE.INT64 });
    return name;
  }
}

/**
 * The ONNX bytes of a loaded llama model.
 * @throws NotImplementedError for partial rotary or dynamic RoPE scaling
 */
export interface ExportOnnxOptions {
  /**
   * Add the scalar int64 input `num_logits_to_keep` of newer exports: logits of the last n
   * positions only (0 = all), as transformers.js feeds it while generating.
   */
  logitsToKeep?: boolean;
}

export function exportLlamaOnnx(model: Model, opts: ExportOnnxOptions = {}): Uint8Array {
  const c = model.config;
  if (c.modelType !== "llama") {
    throw new NotImplementedError(`ONNX export: model_type ${c.modelType} is not supported (llama only)`);
  }
  if (c.rotaryDim !== c.headDim || c.ropeScaling?.type === "dynamic") {
    throw new NotImplementedError("ONNX export: partial rotary and dynamic RoPE scaling are not supported");
  }
  const g = new GraphBuilder();
  const w = (name: string): string => {
    if (!g.initializers.some((t) => t.name === name)) {
      const t = model.weights.get(name);
      if (!t) {
        throw new NotImplementedError(`ONNX export: the model has no tensor ${name}`);
      }
      g.float(name, t.shape, Float32Array.from(t.dataSync() as Float32Array));
    }
    return name;
  };
  /** x @ W^T (+ b) for an HF (out, in) weight; ORT folds the constant transpose. */
  const linear = (x: string, name: string, bias: boolean): string => {
    const y = g.op("MatMul", [x, g.op("Transpose", [w(`${name}.weight`)], { perm: { ints: [1, 0] } })]);
    return bias ? g.op("Add", [y, w(`${name}.bias`)]) : y;
  };
  const eps = g.float("norm_eps", [], Float32Array.of(c.normEps));
  const rmsNorm = (x: string, weight: string): string => {
    const variance = g.op("ReduceMean", [g.op("Mul", [x, x])], { axes: { ints: [-1] }, keepdims: { i: 1 } });
    const inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [variance, eps])])]);
    return g.op("Mul", [g.op("Mul", [x, inv]), w(weight)]);
  };

  const { nHeads: nh, nKvHeads: nkv, headDim: hs, vocabSize: V } = c;
  // ---- mask: allowed[b, t, s] = attention_mask[b, s] && s ≤ P + t   → additive bias (B, 1, T, S)
  const one = g.int64("one", [1], []);
  const zero = g.int64("zero", [0], []);
  const S = g.op("Gather", [g.op("Shape", ["attention_mask"]), one], { axis: { i: 0 } });
  const T = g.op("Gather", [g.op("Shape", ["input_ids"]), one], { axis: { i: 0 } });
  const keyPos = g.op("Range", [zero, S, one]); // (S)
  const queryPos = g.op("Unsqueeze", [g.op("Range", [g.op("Sub", [S, T]), S, one]), g.int64("axes_1", [1])]); // (T, 1)
  const causal = g.op("LessOrEqual", [keyPos, queryPos]); // (T, S)
  const padding = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], { to: { i: ONNX_DTYPE.BOOL } }), g.int64("axes_12", [1, 2])]); // (B, 1, 1, S)
  const allowed = g.op("And", [causal, padding]); // (B, 1, T, S)
  const bias = g.op("Where", [allowed, g.float("zero_f", [], Float32Array.of(0)), g.float("masked_f", [], Float32Array.of(MASKED))]);

  // ---- RoPE tables (maxPositions, hs) = cat(freqs, freqs), freqs = float32(pos · θ_i)
  const invFreq = ropeInvFreq(ropeParams(c), 0);
  const half = hs / 2;
  const cosT = new Float32Array(c.maxPositions * hs);
  const sinT = new Float32Array(c.maxPositions * hs);
  for (let p = 0; p < c.maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const f = Math.fround(p * (invFreq[i] as number));
      for (const j of [i, i + half]) {
        cosT[p * hs + j] = Math.cos(f);
        sinT[p * hs + j] = Math.sin(f);
      }
    }
  }
  const axes1 = g.int64("axes_head", [1]);
  const cos = g.op("Unsqueeze", [g.op("Gather", [g.float("rope_cos", [c.maxPositions, hs], cosT), "position_ids"], { axis: { i: 0 } }), axes1]); // (B, 1, T, hs)
  const sin = g.op("Unsqueeze", [g.op("Gather", [g.float("rope_sin", [c.maxPositions, hs], sinT), "position_ids"], { axis: { i: 0 } }), axes1]);
  const lastAxis = g.int64("axis_last", [3]);
  const rope = (x: string): string => {
    const x1 = g.op("Slice", [x, g.int64(`s0_${g.nodes.length}`, [0]), g.int64(`e0_${g.nodes.length}`, [half]), lastAxis]);
    const x2 = g.op("Slice", [x, g.int64(`s1_${g.nodes.length}`, [half]), g.int64(`e1_${g.nodes.length}`, [hs]), lastAxis]);
    const rotated = g.op("Concat", [g.op("Neg", [x2]), x1], { axis: { i: -1 } });
    return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rotated, sin])]);
  };
  const heads = (x: string, n: number): string =>
    g.op("Transpose", [g.op("Reshape", [x, g.int64(`shape_${g.nodes.length}`, [0, 0, n, hs])])], { perm: { ints: [0, 2, 1, 3] } }); // (B, n, T, hs)
  const repeatKv = (x: string): string =>
    nkv === nh
      ? x
      : g.op("Reshape", [
          g.op("Expand", [g.op("Unsqueeze", [x, g.int64(`axes_rep_${g.nodes.length}`, [2])]), g.int64(`rep_${g.nodes.length}`, [1, 1, nh / nkv, 1, 1])]),
          g.int64(`shape_rep_${g.nodes.length}`, [0, nh, -1, hs]),
        ]); // (B, nkv, S, hs) → (B, nkv, rep, S, hs) → (B, nh, S, hs)
  const scale = g.float("attn_scale", [], Float32Array.of(1 / Math.sqrt(hs)));

  const inputs: OnnxValueInfo[] = [
    { name: "input_ids", dtype: ONNX_DTYPE.INT64, dims: ["batch_size", "sequence_length"] },
    { name: "attention_mask", dtype: ONNX_DTYPE.INT64, dims: ["batch_size", "total_sequence_length"] },
    { name: "position_ids", dtype: ONNX_DTYPE.INT64, dims: ["batch_size", "sequence_length"] },
  ];
  const outputs: OnnxValueInfo[] = [{ name: "logits", dtype: ONNX_DTYPE.FLOAT, dims: ["batch_size", "sequence_length", V] }];

  let x = g.op("Gather", [w(LLAMA_EMBED), "input_ids"], { axis: { i: 0 } }); // (B, T, C)
  for (let i = 0; i < c.nLayers; i++) {
    const n = llamaLayerNames(i);
    const h = rmsNorm(x, n.inputNorm);
    const q = rope(heads(linear(h, n.q, c.attentionBias), nh)); // (B, nh, T, hs)
    const k = rope(heads(linear(h, n.k, c.attentionBias), nkv)); // (B, nkv, T, hs)
    const v = heads(linear(h, n.v, c.attentionBias), nkv);
    for (const kind of ["key", "value"] as const) {
      inputs.push({ name: `past_key_values.${i}.${kind}`, dtype: ONNX_DTYPE.FLOAT, dims: ["batch_size", nkv, "past_sequence_length", hs] });
      outputs.push({ name: `present.${i}.${kind}`, dtype: ONNX_DTYPE.FLOAT, dims: ["batch_size", nkv, "total_sequence_length", hs] });
    }
    const kAll = g.op("Concat", [`past_key_values.${i}.key`, k], { axis: { i: 2 } }, `present.${i}.key`); // (B, nkv, S, hs)
    const vAll = g.op("Concat", [`past_key_values.${i}.value`, v], { axis: { i: 2 } }, `present.${i}.value`);
    const scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [repeatKv(kAll)], { perm: { ints: [0, 1, 3, 2] } })]), scale]), bias]); // (B, nh, T, S)
    const att = g.op("MatMul", [g.op("Softmax", [scores], { axis: { i: -1 } }), repeatKv(vAll)]); // (B, nh, T, hs)
    const merged = g.op("Reshape", [g.op("Transpose", [att], { perm: { ints: [0, 2, 1, 3] } }), g.int64(`shape_o_${i}`, [0, 0, nh * hs])]); // (B, T, nh·hs)
    x = g.op("Add", [x, linear(merged, n.o, c.attentionBias)]);
    const h2 = rmsNorm(x, n.postNorm);
    const gate = linear(h2, n.gate, c.mlpBias);
    const act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), linear(h2, n.up, c.mlpBias)]); // silu(gate) · up
    x = g.op("Add", [x, linear(act, n.down, c.mlpBias)]);
  }
  x = rmsNorm(x, LLAMA_FINAL_NORM);
  if (opts.logitsToKeep) {
    // x[:, -n:] (n = 0 → from 0: every position)
    inputs.push({ name: "num_logits_to_keep", dtype: ONNX_DTYPE.INT64, dims: [] });
    const start = g.op("Neg", [g.op("Unsqueeze", ["num_logits_to_keep", g.int64("axes_0", [0])])]);
    x = g.op("Slice", [x, start, g.int64("slice_end", [Number.MAX_SAFE_INTEGER]), g.int64("axes_seq", [1])]); // (B, n, C)
  }
  const head = c.tieEmbeddings ? LLAMA_EMBED : LLAMA_LM_HEAD;
  g.op("MatMul", [x, g.op("Transpose", [w(head)], { perm: { ints: [1, 0] } })], undefined, "logits"); // (B, T, V)
  return encodeOnnxModel({ name: "llama", nodes: g.nodes, initializers: g.initializers, inputs, outputs }, { opset: 17, irVersion: 8, producer: "oml-ts" });
}

/** Files of a model directory an ONNX directory needs beside onnx/model.onnx. */
const SIDE_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"];

/**
 * Write an ONNX model directory transformers.js loads (`--engine onnx`): config, generation
 * config and tokenizer files copied from `model.dir`, and `onnx/model.onnx` (fp32).
 * @param outDir created if missing
 * @param opts export options (e.g. the `num_logits_to_keep` input)
 * @returns the ONNX file written
 */
export async function writeLlamaOnnxDir(model: Model, outDir: string, opts: ExportOnnxOptions = {}): Promise<string> {
  const dir = path.resolve(outDir);
  await mkdir(path.join(dir, "onnx"), { recursive: true });
  for (const name of SIDE_FILES) {
    const from = path.join(model.dir, name);
    if (await pathExists(from)) {
      await copyFile(from, path.join(dir, name));
    }
  }
  const file = path.join(dir, "onnx", "model.onnx");
  await writeFile(file, exportLlamaOnnx(model, opts));
  return file;
}
