/**
 * Writing safetensors files in the layout of the Rust `safetensors` library
 * (safetensors/src/tensor.rs `prepare`):
 * - tensors sorted by dtype alignment descending (the `Dtype` enum order), then by name;
 * - compact JSON header, `__metadata__` first, then the tensors in data order;
 * - header padded with spaces to a multiple of 8 bytes, so every tensor starts 8-aligned.
 * The file is written to a temporary name in the same directory, synced, then renamed over
 * the target, so readers never see a half-written file.
 */
import { randomBytes } from "node:crypto";
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { CoreError, InputError, RuntimeFailure } from "../errors.js";
import {
  DTYPE_BYTES,
  DTYPE_RANK,
  f32ToBf16Into,
  f32ToF16Into,
  isSafetensorsDtype,
  type FloatDtype,
  type IntegerArray,
  type SafetensorsDtype,
} from "./safetensors-dtypes.js";
import { quoteName } from "./safetensors-header.js";

/** Elements converted per write() for F16/BF16 output (2 MB of output per call). */
const CHUNK_ELEMENTS = 1024 * 1024;

/** Bytes per write() call: Node rejects single writes above 2^31 - 1 bytes. */
const MAX_WRITE_BYTES = 1024 * 1024 * 1024;

/** One tensor to write. A `LoadedTensor` from `readSafetensors` is a valid `TensorToWrite`. */
export interface TensorToWrite {
  shape: readonly number[];
  /**
   * float32 values, stored as the `dtype` option (default F32). Ignored when `ints` is given.
   * A function is called once, right before this tensor is written, and its array must stay
   * valid until the tensor is written: e.g. a view of a tensor in the wasm heap (no copy; valid
   * while nothing allocates in that heap), so a model's weights are written without a copy.
   */
  data?: Float32Array | (() => Float32Array);
  /** Exact integer or bool values, stored as `dtype` (which must match the array type). */
  ints?: IntegerArray;
  /** Only used with `ints` (e.g. "I64", "BOOL"); float data always takes the `dtype` option. */
  dtype?: SafetensorsDtype;
}

export interface WriteSafetensorsOptions {
  /** Storage dtype of float tensors (default "F32"): bf16 and f16 round to nearest even. */
  dtype?: FloatDtype;
  /** `__metadata__` (string -> string); omitted from the header when undefined. */
  metadata?: Record<string, string>;
}

/** A tensor after validation, with its place in the data section. */
interface PlannedTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  size: number;
  begin: number;
  end: number;
  floats?: Float32Array | (() => Float32Array);
  ints?: IntegerArray;
}

const INT_ARRAY_OF: Partial<Record<SafetensorsDtype, new (n: number) => IntegerArray>> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  I16: Int16Array,
  U16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};

/** Compare names as the Rust `String` order does: by UTF-8 bytes. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function checkFloats(where: string, data: unknown, size: number, shape: readonly number[]): asserts data is Float32Array {
  if (!(data instanceof Float32Array)) {
    throw new InputError(`${where}: data must be a Float32Array (or give ints with an integer dtype)`);
  }
  if (data.length !== size) {
    throw new InputError(`${where}: data has ${data.length} values but shape [${shape.join(", ")}] needs ${size}`);
  }
}

function planTensor(file: string, name: string, t: TensorToWrite, floatDtype: FloatDtype): Omit<PlannedTensor, "begin" | "end"> {
  const where = `${file}: tensor ${quoteName(name)}`;
  if (name === "__metadata__") {
    throw new InputError(`${where}: "__metadata__" is reserved for the header metadata`);
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InputError(`${where}: shape must be non-negative integers, got ${JSON.stringify(t.shape)}`);
  }
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(size)) {
    throw new InputError(`${where}: shape [${t.shape.join(", ")}] is too large`);
  }
  const shape = [...t.shape];
  if (t.ints !== undefined) {
    const dtype = t.dtype;
    const ctor = dtype === undefined ? undefined : INT_ARRAY_OF[dtype];
    if (!isSafetensorsDtype(dtype) || ctor === undefined || !(t.ints instanceof ctor)) {
      throw new InputError(`${where}: ints is a ${t.ints.constructor.name} but dtype is ${String(dtype)}; give the matching integer dtype`);
    }
    if (t.ints.length !== size) {
      throw new InputError(`${where}: ints has ${t.ints.length} values but shape [${shape.join(", ")}] needs ${size}`);
    }
    return { name, dtype, shape, size, ints: t.ints };
  }
  if (typeof t.data === "function") {
    return { name, dtype: floatDtype, shape, size, floats: t.data }; // its length is checked when it is written
  }
  checkFloats(where, t.data, size, shape);
  return { name, dtype: floatDtype, shape, size, floats: t.data };
}

/**
 * Validate the tensors and lay them out as the Rust library does.
 * @returns the tensors in data order, with offsets, and the padded header bytes
 */
function planSafetensors(
  file: string,
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  options: WriteSafetensorsOptions = {},
): { planned: PlannedTensor[]; header: Buffer } {
  const floatDtype = options.dtype ?? "F32";
  if (floatDtype !== "F32" && floatDtype !== "F16" && floatDtype !== "BF16") {
    throw new InputError(`${file}: dtype must be F32, F16 or BF16, got ${String(floatDtype)}`);
  }
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const items = list.map(([name, t]) => planTensor(file, name, t, floatDtype));
  items.sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareUtf8(a.name, b.name));
  let offset = 0;
  const planned: PlannedTensor[] = items.map((t) => {
    const begin = offset;
    offset += t.size * DTYPE_BYTES[t.dtype];
    return { ...t, begin, end: offset };
  });
  // Built by hand, not JSON.stringify(object): an object would move integer-like names first.
  const parts: string[] = [];
  if (options.metadata !== undefined) {
    for (const [k, v] of Object.entries(options.metadata)) {
      if (typeof v !== "string") {
        throw new InputError(`${file}: metadata ${quoteName(k)} must be a string, got ${typeof v}`);
      }
    }
    const fields = Object.entries(options.metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`"__metadata__":{${fields.join(",")}}`);
  }
  for (const t of planned) {
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${t.begin},${t.end}]}`);
  }
  const json = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const padded = Buffer.alloc(8 + Math.ceil(json.length / 8) * 8, 0x20); // spaces
  padded.writeBigUInt64LE(BigInt(padded.length - 8), 0);
  json.copy(padded, 8);
  return { planned, header: padded };
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.length - done, MAX_WRITE_BYTES));
    done += bytesWritten;
  }
}

async function writeTensor(file: string, fh: FileHandle, t: PlannedTensor, chunk: Uint16Array): Promise<void> {
  if (t.ints) {
    await writeAll(fh, new Uint8Array(t.ints.buffer, t.ints.byteOffset, t.ints.byteLength));
    return;
  }
  const src = typeof t.floats === "function" ? t.floats() : t.floats;
  checkFloats(`${file}: tensor ${quoteName(t.name)}`, src, t.size, t.shape);
  if (t.dtype === "F32") {
    await writeAll(fh, new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    return;
  }
  const narrow = t.dtype === "F16" ? f32ToF16Into : f32ToBf16Into;
  for (let i = 0; i < t.size; i += chunk.length) {
    const out = chunk.subarray(0, Math.min(chunk.length, t.size - i));
    narrow(src, i, out);
    await writeAll(fh, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }
}

/**
 * Write `tensors` to a safetensors file, atomically (temp file in the same directory + rename).
 * Float tensors are stored as `options.dtype` (F32, F16 or BF16, rounded to nearest even);
 * integer tensors (`ints` + `dtype`) are stored exactly.
 * @param file destination path; replaced if it exists
 * @param tensors name -> tensor (a Map or a plain object); names are written sorted
 * @param options `dtype` for float tensors, `metadata` for `__metadata__`
 */
export async function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  const { planned, header } = planSafetensors(file, tensors, options);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, "wx");
    await writeAll(fh, header);
    const chunk = new Uint16Array(CHUNK_ELEMENTS);
    for (const t of planned) {
      await writeTensor(file, fh, t, chunk);
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, file);
  } catch (cause) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    if (cause instanceof CoreError) {
      throw cause;
    }
    throw new RuntimeFailure(`${file}: cannot write (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
}
