/**
 * The averaging anchor w0 (averaging.ts) of a fine-tuning run, in one of two places:
 * - in memory: Float32Arrays by tensor name, 4 bytes a parameter outside the tfjs heap;
 * - in the model's own safetensors files (anchorFromFiles): nothing is kept. Each averaging
 *   streams the weights again in slices of SLICE_ELEMENTS through one reused buffer (from the
 *   page cache when RAM allows: the 20M Llama's 78 MB take ~0.1 s) and mixes each slice into
 *   the variable's own memory where the backend exposes it (wasm; elsewhere a tensor at a
 *   time through averageInto). Reading widens bf16/f16/f64 to float32 exactly as loading did,
 *   and the mix is averageInto's, so the result is the in-memory anchor's bit for bit. The
 *   files' sizes and modification times are recorded when the anchor is made, and a file that
 *   changed since is an error, not a silently different w0.
 */
import { stat } from "node:fs/promises";
import * as tf from "@tensorflow/tfjs-core";
import { InputError, RuntimeFailure } from "../errors.js";
import { eachModelWeightSlice, modelWeightFiles } from "../io/model-files.js";
import { readSafetensorsHeader } from "../io/safetensors.js";
import { averageValues } from "../kernels/average-into.js";
import { averageInto, checkLambda } from "./averaging.js";

/** Values per slice read from the files (4 MiB as float32). */
export const SLICE_ELEMENTS = 1 << 20;

/** w0 in the safetensors files of a model directory, as loadModel read them. */
export interface AnchorFiles {
  dir: string;
  files: { path: string; size: number; mtimeMs: number }[];
}

/** w0 in memory (by tensor name) or in the model's files. */
export type Anchor = Map<string, Float32Array> | AnchorFiles;

/** The anchor as the weight files of `dir` are now (make it no later than loading the model). */
export async function anchorFromFiles(dir: string): Promise<AnchorFiles> {
  const files = [];
  for (const path of await modelWeightFiles(dir)) {
    const s = await stat(path);
    files.push({ path, size: s.size, mtimeMs: s.mtimeMs });
  }
  if (files.length === 0) {
    throw new InputError(`${dir}: no safetensors weights to read the averaging anchor from`);
  }
  return { dir, files };
}

/** Throws RuntimeFailure when a weight file changed since anchorFromFiles recorded it. */
export async function checkUnchanged(a: AnchorFiles): Promise<void> {
  for (const f of a.files) {
    const s = await stat(f.path).catch(() => null);
    if (!s || s.size !== f.size || s.mtimeMs !== f.mtimeMs) {
      throw new RuntimeFailure(`${f.path}: changed during the run, and its weights are the averaging anchor w0`, {
        hint: "leave the model directory alone while a run trains on it, and start the run again",
      });
    }
  }
}

interface HeapBackend {
  typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array;
  refCount?: (dataId: object) => number;
}

/**
 * w ← (1 − λ)·w + λ·w0 for every variable (averageInto), w0 from memory or streamed from the
 * model's files. Every name and size is checked before any weight changes.
 * @param sliceElements values per slice read from the files (tests use small ones)
 */
export async function averageToward(vars: Map<string, tf.Variable>, anchor: Anchor, lambda: number, sliceElements = SLICE_ELEMENTS): Promise<void> {
  if (anchor instanceof Map) {
    averageInto(vars, anchor, lambda);
    return;
  }
  checkLambda(lambda);
  await checkUnchanged(anchor);
  const sizes = new Map<string, number>();
  for (const f of anchor.files) {
    for (const e of (await readSafetensorsHeader(f.path)).entries) {
      sizes.set(e.name, e.size);
    }
  }
  for (const [name, v] of vars) {
    if (sizes.get(name) !== v.size || v.dtype !== "float32") {
      throw new InputError(`averageToward: ${anchor.dir} has ${sizes.has(name) ? `${sizes.get(name)} values` : "no tensor"} for "${name}" (${v.size} ${v.dtype} values)`, {
        hint: "the anchor must be the model the variables were loaded from",
      });
    }
  }
  if (lambda === 0) {
    return;
  }
  const b = tf.backend() as unknown as HeapBackend;
  const heap = typeof b.typedArrayFromHeap === "function" && typeof b.refCount === "function" ? (b as Required<HeapBackend>) : null;
  let whole: Float32Array | null = null; // elsewhere, and for λ = 1 (an exact copy of w0): one tensor at a time
  await eachModelWeightSlice(anchor.dir, { filter: (name) => vars.has(name), sliceElements }, (name, _e, w0, offset) => {
    const v = vars.get(name) as tf.Variable;
    if (heap && lambda !== 1 && heap.refCount(v.dataId) === 1) {
      const w = heap.typedArrayFromHeap(v).subarray(offset, offset + w0.length); // the variable's own memory
      averageValues(w, w0, lambda, w);
      return;
    }
    whole = offset === 0 ? new Float32Array(v.size) : whole;
    (whole as Float32Array).set(w0, offset);
    if (offset + w0.length === v.size) {
      averageInto(new Map([[name, v]]), new Map([[name, whole as Float32Array]]), lambda);
      whole = null;
    }
  });
}

/**
 * The anchor's weights as new tensors of the given shapes (e.g. the base model again after
 * training), streamed from the files into each tensor's own memory where the backend exposes
 * it (wasm): no copy of the model outside the tfjs heap. Elsewhere, a tensor at a time.
 * The caller disposes the tensors.
 */
export async function anchorWeights(anchor: AnchorFiles, shapes: ReadonlyMap<string, { shape: number[] }>, sliceElements = SLICE_ELEMENTS): Promise<Map<string, tf.Tensor>> {
  await checkUnchanged(anchor);
  const b = tf.backend() as unknown as HeapBackend;
  const heapView = typeof b.typedArrayFromHeap === "function" ? b.typedArrayFromHeap.bind(b) : null;
  const out = new Map<string, tf.Tensor>();
  let whole: Float32Array | null = null;
  try {
    await eachModelWeightSlice(anchor.dir, { filter: (name) => shapes.has(name), sliceElements }, (name, e, w0, offset) => {
      const shape = (shapes.get(name) as { shape: number[] }).shape;
      if (e.size !== shape.reduce((a, c) => a * c, 1)) {
        throw new InputError(`anchorWeights: ${anchor.dir} has ${e.size} values for "${name}", its shape [${shape.join(", ")}] needs ${shape.reduce((a, c) => a * c, 1)}`);
      }
      if (heapView) {
        if (offset === 0) {
          out.set(name, tf.zeros(shape, "float32")); // fresh memory of its own, filled below
        }
        heapView(out.get(name) as tf.Tensor).set(w0, offset);
        return;
      }
      whole = offset === 0 ? new Float32Array(e.size) : whole;
      (whole as Float32Array).set(w0, offset);
      if (offset + w0.length === e.size) {
        out.set(name, tf.tensor(whole as Float32Array, shape, "float32"));
        whole = null;
      }
    });
    const missing = [...shapes.keys()].filter((n) => !out.has(n));
    if (missing.length > 0) {
      throw new InputError(`anchorWeights: ${anchor.dir} has no tensor ${missing.slice(0, 4).map((n) => `"${n}"`).join(", ")}`);
    }
    return out;
  } catch (err) {
    tf.dispose([...out.values()]);
    throw err;
  }
}
