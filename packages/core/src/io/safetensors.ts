/**
 * Reading safetensors files (https://huggingface.co/docs/safetensors) into float32.
 *
 * The file is untrusted: the header is read and fully validated first
 * (`safetensors-header.ts`), and only then is anything allocated, one tensor at a time, each
 * no larger than its validated byte range. Reads go through a file handle: the header, then
 * each tensor's range (F32 straight into its Float32Array, other dtypes through a small
 * reusable chunk), so a multi-GB file never sits in one Buffer.
 *
 * dtypes: F32, F16, BF16 and F64 become float32 (`data`). Integer and bool tensors (I64, I32,
 * U8, BOOL, ...) keep their exact values in `ints` and also get a float32 copy in `data`
 * (exact up to |x| = 2^24); pass `integers: "skip"` to leave them out instead.
 *
 * Writing lives in `safetensors-write.ts` and is re-exported here.
 */
import { open, type FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import { BackendError, InternalError, ModelLoadError, SafetensorsFormatError } from "../errors.js";
import { DTYPE_BYTES, bf16ToF32Into, f16ToF32Into, type IntegerArray, type SafetensorsDtype } from "./safetensors-dtypes.js";
import { HEADER_PREFIX_BYTES, parseHeaderLength, parseSafetensorsHeader, quoteName, type SafetensorsEntry, type SafetensorsHeader } from "./safetensors-header.js";

export { SAFETENSORS_DTYPES, DTYPE_BYTES, type SafetensorsDtype, type FloatDtype, type IntegerArray } from "./safetensors-dtypes.js";
export { MAX_HEADER_BYTES, parseSafetensorsHeader, validateTensorEntry, type SafetensorsEntry, type SafetensorsHeader } from "./safetensors-header.js";
export { writeSafetensors, type TensorToWrite, type WriteSafetensorsOptions } from "./safetensors-write.js";

/** Bytes per read() when converting: big enough to amortise syscalls, small next to any model. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/** Node's fs.read() takes at most 2^31 - 1 bytes per call; F32 tensors are read in slices of this. */
const MAX_READ_BYTES = 1024 * 1024 * 1024;

export interface LoadedTensor {
  /** dtype as stored in the file */
  dtype: SafetensorsDtype;
  shape: number[];
  /** values widened (or, for F64 and large integers, rounded) to float32 */
  data: Float32Array;
  /**
   * Exact values of an integer or bool tensor (I64 -> BigInt64Array, U64 -> BigUint64Array,
   * I32 -> Int32Array, U8 and BOOL -> Uint8Array, ...); absent for float dtypes.
   */
  ints?: IntegerArray;
}

export interface ReadSafetensorsOptions {
  /** Load only the tensors for which this returns true (default: all). The others are never read. */
  filter?: (name: string, entry: SafetensorsEntry) => boolean;
  /** Integer and bool tensors: `"load"` (default) fills `ints` and `data`; `"skip"` leaves them out. */
  integers?: "load" | "skip";
}

/** A whole file: its tensors and its `__metadata__`. */
export interface SafetensorsFile {
  /** `__metadata__` (string -> string), `{}` when absent; transformers writes `{ format: "pt" }`. */
  metadata: Record<string, string>;
  /** Tensors in file order. */
  tensors: Map<string, LoadedTensor>;
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set(["F32", "F16", "BF16", "F64"]);

async function openForRead(file: string): Promise<{ fh: FileHandle; size: number }> {
  if (endianness() !== "LE") {
    throw new InternalError("safetensors I/O assumes a little-endian host");
  }
  let fh: FileHandle;
  try {
    fh = await open(file, "r");
  } catch (cause) {
    throw new ModelLoadError(`${file}: cannot open (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new ModelLoadError(`${file}: not a regular file`);
    }
    return { fh, size: st.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Fill `target` from `position`, looping over short reads; a file that ends early is a format error. */
async function readExactly(fh: FileHandle, file: string, target: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const want = Math.min(target.length - done, MAX_READ_BYTES);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(target, done, want, position + done));
    } catch (cause) {
      throw new ModelLoadError(`${file}: read failed at byte ${position + done} (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
    }
    if (bytesRead === 0) {
      throw new SafetensorsFormatError(`${file}: ${what}: file ended at byte ${position + done} (was it truncated while reading?)`);
    }
    done += bytesRead;
  }
}

async function readHeaderFrom(fh: FileHandle, file: string, size: number): Promise<SafetensorsHeader> {
  const prefix = new Uint8Array(HEADER_PREFIX_BYTES);
  if (size >= HEADER_PREFIX_BYTES) {
    await readExactly(fh, file, prefix, 0, "header length");
  }
  const n = parseHeaderLength(file, prefix, size); // checks n against the limit and the file size
  const headerBytes = new Uint8Array(n);
  await readExactly(fh, file, headerBytes, HEADER_PREFIX_BYTES, "header");
  return parseSafetensorsHeader(file, headerBytes, size);
}

/**
 * Read and validate only the header of a safetensors file (names, dtypes, shapes, offsets,
 * `__metadata__`), without touching the data.
 * @param file path of a `.safetensors` file
 */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const { fh, size } = await openForRead(file);
  try {
    return await readHeaderFrom(fh, file, size);
  } finally {
    await fh.close();
  }
}

function allocate<T>(file: string, e: SafetensorsEntry, make: () => T): T {
  try {
    return make();
  } catch (cause) {
    if (cause instanceof RangeError) {
      throw new BackendError(`${file}: tensor ${quoteName(e.name)}: cannot allocate ${e.size} elements (${e.dtype} [${e.shape.join(", ")}])`, {
        code: "OUT_OF_MEMORY",
        hint: "the tensor is larger than a JS typed array can hold or than free memory",
        cause,
      });
    }
    throw cause;
  }
}

function makeIntegerArray(dtype: SafetensorsDtype, n: number): IntegerArray {
  switch (dtype) {
    case "BOOL":
    case "U8":
      return new Uint8Array(n);
    case "I8":
      return new Int8Array(n);
    case "I16":
      return new Int16Array(n);
    case "U16":
      return new Uint16Array(n);
    case "I32":
      return new Int32Array(n);
    case "U32":
      return new Uint32Array(n);
    case "I64":
      return new BigInt64Array(n);
    case "U64":
      return new BigUint64Array(n);
    default:
      throw new InternalError(`makeIntegerArray: ${dtype} is not an integer dtype`);
  }
}

/** Read one validated tensor: allocations are bounded by its byte range, which lies inside the file. */
async function readTensor(fh: FileHandle, file: string, h: SafetensorsHeader, e: SafetensorsEntry, chunk: ArrayBuffer): Promise<LoadedTensor> {
  const what = `tensor ${quoteName(e.name)}`;
  const start = h.dataStart + e.begin;
  const data = allocate(file, e, () => new Float32Array(e.size));
  const shape = [...e.shape];
  if (e.dtype === "F32") {
    await readExactly(fh, file, new Uint8Array(data.buffer), start, what);
    return { dtype: e.dtype, shape, data };
  }
  if (!FLOAT_DTYPES.has(e.dtype)) {
    const ints = allocate(file, e, () => makeIntegerArray(e.dtype, e.size));
    await readExactly(fh, file, new Uint8Array(ints.buffer), start, what);
    if (ints instanceof BigInt64Array || ints instanceof BigUint64Array) {
      for (let i = 0; i < ints.length; i++) {
        data[i] = Number(ints[i]);
      }
    } else {
      data.set(ints);
    }
    return { dtype: e.dtype, shape, data, ints };
  }
  // F16 / BF16 / F64: convert one chunk at a time into the preallocated output.
  const elemBytes = DTYPE_BYTES[e.dtype];
  const perChunk = Math.floor(chunk.byteLength / elemBytes);
  const out32 = new Uint32Array(data.buffer);
  for (let i = 0; i < e.size; i += perChunk) {
    const count = Math.min(perChunk, e.size - i);
    await readExactly(fh, file, new Uint8Array(chunk, 0, count * elemBytes), start + i * elemBytes, what);
    if (e.dtype === "F16") {
      f16ToF32Into(new Uint16Array(chunk, 0, count), out32, i);
    } else if (e.dtype === "BF16") {
      bf16ToF32Into(new Uint16Array(chunk, 0, count), out32, i);
    } else {
      data.set(new Float64Array(chunk, 0, count), i); // F64 -> F32, round to nearest
    }
  }
  return { dtype: e.dtype, shape, data };
}

/** How eachSafetensorSlice hands out a tensor's values: `values` (valid until the callback returns) are elements `offset`… of `name`. */
export type SafetensorSlice = (name: string, entry: SafetensorsEntry, values: Float32Array, offset: number) => void;

/**
 * The float tensors of a safetensors file (or those `filter` keeps), in file order, each in
 * slices of at most `sliceElements` values widened to float32 through one reused buffer:
 * a tensor of any size is read with `sliceElements` × 4 bytes (+ as many raw bytes for a
 * narrower dtype) of memory and no garbage. Integer and bool tensors are skipped. Same checks and errors as readSafetensorsFile.
 */
export async function eachSafetensorSlice(file: string, options: { filter?: (name: string, entry: SafetensorsEntry) => boolean; sliceElements: number }, fn: SafetensorSlice): Promise<void> {
  if (!Number.isInteger(options.sliceElements) || options.sliceElements < 1) {
    throw new InternalError(`eachSafetensorSlice: sliceElements = ${options.sliceElements} must be a positive integer`);
  }
  const { fh, size } = await openForRead(file);
  try {
    const h = await readHeaderFrom(fh, file, size);
    let values: Float32Array | undefined;
    let raw: ArrayBuffer | undefined;
    for (const e of h.entries) {
      if (!FLOAT_DTYPES.has(e.dtype) || (options.filter && !options.filter(e.name, e))) {
        continue;
      }
      const what = `tensor ${quoteName(e.name)}`;
      const elemBytes = DTYPE_BYTES[e.dtype];
      const n = Math.min(options.sliceElements, e.size);
      values = values && values.length >= n ? values : new Float32Array(n);
      if (e.dtype !== "F32") {
        raw = raw && raw.byteLength >= n * elemBytes ? raw : new ArrayBuffer(n * elemBytes);
      }
      for (let i = 0; i < e.size; i += n) {
        const count = Math.min(n, e.size - i);
        const start = h.dataStart + e.begin + i * elemBytes;
        const out = values.subarray(0, count);
        if (e.dtype === "F32") {
          await readExactly(fh, file, new Uint8Array(out.buffer, 0, count * 4), start, what);
        } else {
          const bytes = raw as ArrayBuffer;
          await readExactly(fh, file, new Uint8Array(bytes, 0, count * elemBytes), start, what);
          if (e.dtype === "F16") {
            f16ToF32Into(new Uint16Array(bytes, 0, count), new Uint32Array(out.buffer, 0, count));
          } else if (e.dtype === "BF16") {
            bf16ToF32Into(new Uint16Array(bytes, 0, count), new Uint32Array(out.buffer, 0, count));
          } else {
            out.set(new Float64Array(bytes, 0, count)); // F64 -> F32, round to nearest
          }
        }
        fn(e.name, e, out, i);
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * Read a safetensors file: every tensor (or those `filter` keeps) widened to float32, plus
 * `__metadata__`. Throws SafetensorsFormatError, naming the file and the tensor, for any
 * malformed or hostile content; ModelLoadError when the file cannot be opened or read.
 * @param file path of a `.safetensors` file
 * @param options `filter` (which tensors to load) and `integers` ("load" | "skip")
 */
export async function readSafetensorsFile(file: string, options: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  const { fh, size } = await openForRead(file);
  try {
    const h = await readHeaderFrom(fh, file, size);
    const tensors = new Map<string, LoadedTensor>();
    let chunk: ArrayBuffer | undefined;
    for (const e of h.entries) {
      if (options.integers === "skip" && !FLOAT_DTYPES.has(e.dtype)) {
        continue;
      }
      if (options.filter && !options.filter(e.name, e)) {
        continue;
      }
      if (e.dtype !== "F32" && FLOAT_DTYPES.has(e.dtype)) {
        chunk ??= new ArrayBuffer(Math.min(CHUNK_BYTES, Math.max(8, h.dataBytes)));
      }
      tensors.set(e.name, await readTensor(fh, file, h, e, chunk ?? new ArrayBuffer(0)));
    }
    return { metadata: h.metadata, tensors };
  } finally {
    await fh.close();
  }
}

/**
 * Read every tensor of one safetensors file (or those `filter` keeps), widened to float32.
 * Same checks and errors as `readSafetensorsFile`, which also returns `__metadata__`.
 * @param file path of a `.safetensors` file
 * @param options `filter` (which tensors to load) and `integers` ("load" | "skip")
 */
export async function readSafetensors(file: string, options: ReadSafetensorsOptions = {}): Promise<Map<string, LoadedTensor>> {
  return (await readSafetensorsFile(file, options)).tensors;
}
