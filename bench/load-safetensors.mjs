#!/usr/bin/env node
// Model loading: a ~500 MB bf16 safetensors file (Llama-like tensor shapes, generated in
// /tmp, never committed) read and widened to float32, then uploaded as tfjs tensors.
//
//   npx tsc -b packages/core && node bench/load-safetensors.mjs [--mb 500] [--backend wasm] [--reps 3] [--keep]
//
// Prints the median seconds of: read + widen (readSafetensors → Float32Arrays), and ready
// (the same plus one tfjs tensor per weight on --backend). The file sits in the page cache
// (it was just written): this measures our code, not the disk.
import { closeSync, existsSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { dist, lcg, tf } from "./lib/llama-20m.mjs";

const { values: args } = parseArgs({
  options: {
    mb: { type: "string", default: "500" },
    backend: { type: "string", default: "wasm" },
    reps: { type: "string", default: "3" },
    keep: { type: "boolean", default: false },
  },
});
const targetBytes = Number(args.mb) * 1e6;
const file = path.join(os.tmpdir(), `oml-bench-load-${args.mb}mb-bf16.safetensors`);

/** Llama-like layers (hidden 2048, intermediate 5632) until the file reaches the target size. */
function plan() {
  const C = 2048;
  const I = 5632;
  const tensors = [["model.embed_tokens.weight", [32000, C], "BF16"]];
  let bytes = 32000 * C * 2;
  for (let i = 0; bytes < targetBytes; i++) {
    const p = `model.layers.${i}`;
    for (const [name, shape] of [[`${p}.self_attn.q_proj.weight`, [C, C]], [`${p}.self_attn.k_proj.weight`, [C, C]], [`${p}.self_attn.v_proj.weight`, [C, C]], [`${p}.self_attn.o_proj.weight`, [C, C]], [`${p}.mlp.gate_proj.weight`, [I, C]], [`${p}.mlp.up_proj.weight`, [I, C]], [`${p}.mlp.down_proj.weight`, [C, I]], [`${p}.input_layernorm.weight`, [C]], [`${p}.post_attention_layernorm.weight`, [C]]]) {
      tensors.push([name, shape, "BF16"]);
      bytes += shape.reduce((a, b) => a * b, 1) * 2;
      if (bytes >= targetBytes) break;
    }
  }
  return tensors;
}

/** Write the file: header, then random bf16 values (normal-ish, |x| < 0.1). */
function generate() {
  const tensors = plan();
  const header = {};
  let offset = 0;
  for (const [name, shape, dtype] of tensors) {
    const n = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype, shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((json.length + 8) % 8)) % 8);
  const fd = openSync(file, "w");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, prefix);
  writeSync(fd, Buffer.from(json));
  const rnd = lcg(3);
  const chunk = new Uint16Array(8 << 20);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let left = offset / 2; left > 0; ) {
    const n = Math.min(left, chunk.length);
    for (let i = 0; i < n; i++) {
      f32[0] = (rnd() - 0.5) * 0.2;
      chunk[i] = u32[0] >>> 16;
    }
    writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 2));
    left -= n;
  }
  closeSync(fd);
}

if (!existsSync(file) || Math.abs(statSync(file).size - targetBytes) > 64e6) {
  process.stderr.write(`writing ${file} …\n`);
  generate();
}
const { readSafetensors } = await dist("io/safetensors.js");
const { initBackend } = await dist("backend.js");
await initBackend(args.backend);

const read = [];
const ready = [];
for (let r = 0; r < Number(args.reps); r++) {
  const t0 = performance.now();
  const loaded = await readSafetensors(file);
  const t1 = performance.now();
  const tensors = [...loaded.values()].map((t) => tf.tensor(t.data, t.shape, "float32"));
  const t2 = performance.now();
  tf.dispose(tensors);
  read.push((t1 - t0) / 1000);
  ready.push((t2 - t0) / 1000);
  process.stderr.write(`rep ${r + 1}: read + widen ${((t1 - t0) / 1000).toFixed(2)} s, ready on ${args.backend} ${((t2 - t0) / 1000).toFixed(2)} s\n`);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const size = statSync(file).size;
console.log(`| ${(size / 1e6).toFixed(0)} MB bf16 safetensors (${os.cpus()[0]?.model ?? "?"}, Node ${process.version}) | median s |`);
console.log("|---|---:|");
console.log(`| read + widen to float32 | ${median(read).toFixed(2)} |`);
console.log(`| ready as tfjs ${args.backend} tensors | ${median(ready).toFixed(2)} |`);
if (!args.keep) {
  rmSync(file, { force: true });
}
