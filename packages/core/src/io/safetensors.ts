/**
 * safetensors reading and writing (https://huggingface.co/docs/safetensors).
 * Layout: u64 little-endian header length N, N bytes of JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }`, then the data.
 *
 * PROVISIONAL minimal reader: the hardened parser (limits, validation, sharding, writer) replaces it.
 */
import { readFile } from "node:fs/promises";
import { SafetensorsFormatError } from "../errors.js";

export type SafetensorsDtype = "F32" | "F16" | "BF16" | "I32" | "I64" | "U8" | "BOOL" | "F64";

export interface LoadedTensor {
  /** dtype as stored in the file */
  dtype: SafetensorsDtype;
  shape: number[];
  /** values widened to float32 */
  data: Float32Array;
}

function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    out[i] = (src[i] as number) << 16;
  }
  return new Float32Array(out.buffer);
}

/** Read every tensor of one safetensors file, widened to float32. */
export async function readSafetensors(file: string): Promise<Map<string, LoadedTensor>> {
  const buf = await readFile(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: SafetensorsDtype; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + n;
  const out = new Map<string, LoadedTensor>();
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") {
      continue;
    }
    const [b, en] = e.data_offsets;
    const bytes = buf.subarray(base + b, base + en);
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    let data: Float32Array;
    if (e.dtype === "F32") {
      data = new Float32Array(copy.buffer);
    } else if (e.dtype === "BF16") {
      data = bf16ToF32(new Uint16Array(copy.buffer));
    } else {
      throw new SafetensorsFormatError(`${file}: tensor "${name}" has unsupported dtype ${e.dtype}`);
    }
    out.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}
