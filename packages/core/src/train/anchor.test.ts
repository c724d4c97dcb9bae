/**
 * The averaging anchor read back from a model's files gives the same weights, bit for bit, as
 * the anchor kept in memory (bf16 and sharded files included), and refuses a changed file.
 */
import { mkdtemp, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { initBackend } from "../backend.js";
import { InputError, RuntimeFailure } from "../errors.js";
import { readModelWeights, writeModelWeights } from "../io/model-files.js";
import type { TensorToWrite } from "../io/safetensors.js";
import { anchorFromFiles, anchorWeights, averageToward } from "./anchor.js";
import { averageInto, snapshotWeights } from "./averaging.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "oml-anchor-"));
});
expectNoLeakedTensors("wasm");

/** A model directory with three tensors (and an ignored rotary buffer), as `dtype`, sharded when `shardBytes` is small. */
async function modelDir(name: string, dtype: "F32" | "BF16", shardBytes?: number): Promise<string> {
  const dir = path.join(root, name);
  let s = 7;
  const rnd = (n: number): Float32Array => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.3);
  const tensors = new Map<string, TensorToWrite>([
    ["model.embed_tokens.weight", { shape: [16, 8], data: rnd(128) }],
    ["model.layers.0.self_attn.rotary_emb.inv_freq", { shape: [4], data: rnd(4) }],
    ["model.layers.0.mlp.up_proj.weight", { shape: [12, 8], data: rnd(96) }],
    ["model.norm.weight", { shape: [8], data: rnd(8) }],
  ]);
  await writeModelWeights(dir, tensors, { dtype, maxShardBytes: shardBytes });
  return dir;
}

let serial = 0;
/** The weights as loaded (widened to float32), as variables moved away from w0. */
async function trainedVars(dir: string): Promise<{ vars: Map<string, tf.Variable>; w0: Map<string, Float32Array> }> {
  const w0 = new Map([...(await readModelWeights(dir))].map(([n, t]) => [n, t.data]));
  const vars = new Map<string, tf.Variable>();
  for (const [n, d] of w0) {
    vars.set(n, tf.tidy(() => tf.variable(tf.add(tf.tensor(d), tf.scalar(0.125)), true, `anchor-test-${serial++}`)));
  }
  return { vars, w0 };
}

const bitsOf = (vars: Map<string, tf.Variable>): Map<string, number[]> => new Map([...snapshotWeights(vars)].map(([n, d]) => [n, [...new Uint32Array(d.buffer)]]));

test.each([
  ["F32, one file", "F32", undefined, "wasm", undefined],
  ["BF16, one file, slices of 7 values", "BF16", undefined, "wasm", 7],
  ["BF16, three shards", "BF16", 200, "wasm", undefined],
  ["BF16, three shards, slices of 7 values, cpu (a tensor at a time)", "BF16", 200, "cpu", 7],
] as const)("%s: w0 from the files averages as w0 in memory, bit for bit", async (name, dtype, shardBytes, backend, slice) => {
  await initBackend(backend);
  const dir = await modelDir(name.replace(/\W+/g, "-"), dtype, shardBytes);
  const anchor = await anchorFromFiles(dir);
  expect(anchor.files.length).toBe(shardBytes ? 3 : 1);
  const fromFiles = await trainedVars(dir);
  const inMemory = await trainedVars(dir);
  for (const lambda of [0.75, 0.3, 1]) {
    await averageToward(fromFiles.vars, anchor, lambda, slice);
    averageInto(inMemory.vars, inMemory.w0, lambda);
    expect(bitsOf(fromFiles.vars)).toEqual(bitsOf(inMemory.vars));
  }
  tf.dispose([...fromFiles.vars.values(), ...inMemory.vars.values()]);
});

test("λ = 0 changes nothing; a tensor the files lack or a bad λ is an InputError before any weight changes", async () => {
  const dir = await modelDir("checks", "F32");
  const anchor = await anchorFromFiles(dir);
  const { vars } = await trainedVars(dir);
  const start = bitsOf(vars);
  await averageToward(vars, anchor, 0);
  expect(bitsOf(vars)).toEqual(start);
  const extra = tf.tidy(() => tf.variable(tf.zeros([3]), true, `anchor-test-${serial++}`));
  await expect(averageToward(new Map([...vars, ["lm_head.weight", extra]]), anchor, 0.5)).rejects.toThrow(/has no tensor for "lm_head.weight"/);
  await expect(averageToward(vars, anchor, 1.5)).rejects.toThrow(InputError);
  expect(bitsOf(vars)).toEqual(start);
  tf.dispose([...vars.values(), extra]);
});

test("a weight file that changed since the anchor was made is a RuntimeFailure", async () => {
  const dir = await modelDir("changed", "F32");
  const anchor = await anchorFromFiles(dir);
  const { vars } = await trainedVars(dir);
  const file = anchor.files[0]?.path as string;
  await writeFile(file, Buffer.alloc(0));
  await expect(averageToward(vars, anchor, 0.5)).rejects.toThrow(RuntimeFailure);
  const again = await modelDir("changed-mtime", "F32");
  const a2 = await anchorFromFiles(again);
  await utimes(a2.files[0]?.path as string, new Date(), new Date(Date.now() + 5000));
  await expect(averageToward(vars, a2, 0.5)).rejects.toThrow(/changed during the run/);
  tf.dispose([...vars.values()]);
});

test.each([
  ["BF16, three shards, slices of 7 values", "wasm", 7],
  ["BF16, three shards, cpu", "cpu", undefined],
] as const)("anchorWeights (%s): the weights as loaded, as new tensors", async (name, backend, slice) => {
  await initBackend(backend);
  const dir = await modelDir(`weights-${backend}`, "BF16", 200);
  const loaded = await readModelWeights(dir);
  const shapes = new Map([...loaded].map(([n, t]) => [n, { shape: t.shape }]));
  const w = await anchorWeights(await anchorFromFiles(dir), shapes, slice);
  expect([...w.keys()].sort()).toEqual([...loaded.keys()].sort());
  for (const [n, t] of w) {
    expect(t.shape).toEqual(loaded.get(n)?.shape);
    expect([...new Uint32Array((t.dataSync() as Float32Array).slice().buffer)]).toEqual([...new Uint32Array(loaded.get(n)?.data.buffer ?? new ArrayBuffer(0))]);
  }
  tf.dispose([...w.values()]);
  await expect(anchorWeights(await anchorFromFiles(dir), new Map([...shapes, ["lm_head.weight", { shape: [2] }]]))).rejects.toThrow(/has no tensor "lm_head.weight"/);
});
