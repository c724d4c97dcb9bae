/**
 * Choosing and starting the tfjs backend: the only file that names a backend.
 *
 * Order for `auto`: `tensorflow` (native libtensorflow from @tensorflow/tfjs-node-gpu, then
 * @tensorflow/tfjs-node; optional dependencies whose install script may have failed), then
 * `wasm`, then `cpu`. Model code imports only @tensorflow/tfjs-core, so any backend serves.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { BackendError } from "./errors.js";
import { nativeStatus } from "./kernels/native.js";
import { registerCustomKernels } from "./kernels/register.js";
import { silentLogger, type Logger } from "./log.js";
import { corePackageRoot } from "./util/package-root.js";

export const BACKEND_NAMES = ["auto", "tensorflow", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** The wasm heap cannot grow past 4 GiB (32-bit addresses). */
export const WASM_HEAP_LIMIT_BYTES = 4 * 1024 ** 3;

let gradientsLoaded: Promise<unknown> | undefined;

/**
 * tfjs-core's Node entry registers no gradients; `pnpm build` bundles tfjs-core's
 * register_all_gradients into vendor/ (scripts/bundle-tfjs-gradients.mjs).
 */
export function loadGradients(): Promise<unknown> {
  gradientsLoaded ??= import(pathToFileURL(path.join(corePackageRoot(), "vendor", "tfjs-gradients.js")).href).catch((cause: unknown) => {
    gradientsLoaded = undefined;
    throw new BackendError("tfjs gradients are not built (packages/core/vendor/tfjs-gradients.js is missing)", {
      hint: "run `pnpm install` (or `pnpm build`) at the repository root",
      cause,
    });
  });
  return gradientsLoaded;
}

/** A dependency of @oml-ts/core, resolved from its package (this code may run from a bundle). */
function resolveFromCore(specifier: string): string {
  return createRequire(path.join(corePackageRoot(), "package.json")).resolve(specifier);
}

/**
 * Point tfjs-backend-wasm at the .wasm files of the installed package. Left to itself, its
 * emscripten loader looks beside the script that runs it (`__dirname`), which is wrong once
 * the code is bundled (the bundles of scripts/bundle.mjs).
 */
function locateWasmBinaries(): void {
  const main = resolveFromCore("@tensorflow/tfjs-backend-wasm");
  setWasmPaths(path.dirname(main) + path.sep);
}

const NATIVE_TENSORFLOW_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;

/**
 * Does a tfjs-node(-gpu) package directory hold its native addon? The install script puts it
 * at lib/napi-v<N>/tfjs_binding.node (package.json `binary.module_path`) once libtensorflow
 * downloads. Where that failed (our machines, CI), importing the package loads all of
 * @tensorflow/tfjs (layers, converter, data, webgl: ~0.65 s measured) only to throw on the
 * missing binding, at every `auto` start of every CLI.
 */
export function hasNativeAddon(packageDir: string): boolean {
  const lib = path.join(packageDir, "lib");
  try {
    return readdirSync(lib).some((d) => d.startsWith("napi-v") && existsSync(path.join(lib, d, "tfjs_binding.node")));
  } catch {
    return false;
  }
}

/** Import a native tensorflow package, unless it is missing or has no addon (then throw at once). */
async function importNative(pkg: string): Promise<void> {
  const dir = path.dirname(resolveFromCore(`${pkg}/package.json`)); // throws when not installed
  if (!hasNativeAddon(dir)) {
    throw new Error(`${pkg} is installed without its native addon (${path.join(dir, "lib", "napi-v*", "tfjs_binding.node")})`);
  }
  await import(pkg);
}

/**
 * The native tensorflow package `auto` would start (tfjs-node-gpu first), without making it
 * the current backend; undefined when neither loads. For plans (`oml-finetune --dry-run`).
 */
export async function nativeTensorflowPackage(log: Logger = silentLogger): Promise<string | undefined> {
  for (const pkg of NATIVE_TENSORFLOW_PACKAGES) {
    try {
      await importNative(pkg);
      return pkg;
    } catch (err) {
      log.debug({ pkg, err: String(err).split("\n")[0] }, "native tensorflow unavailable");
    }
  }
  return undefined;
}

async function tryNativeTensorflow(log: Logger): Promise<string | undefined> {
  for (const pkg of NATIVE_TENSORFLOW_PACKAGES) {
    try {
      await importNative(pkg);
      if (await tf.setBackend("tensorflow")) {
        return pkg;
      }
    } catch (err) {
      log.debug({ pkg, err: String(err).split("\n")[0] }, "native tensorflow unavailable");
    }
  }
  return undefined;
}

export interface BackendInfo {
  /** The tfjs backend name that runs: `tensorflow`, `wasm` or `cpu`. */
  name: string;
  /** Where it came from, e.g. `@tensorflow/tfjs-node` for `tensorflow`. */
  source: string;
  /** wasm and cpu: whether our native GEMM serves their matrix products, or why not (kernels/native.ts). */
  native?: string;
}

/**
 * Start a backend and make it the current one. Safe to call again: a later call with
 * another name switches backends.
 */
export async function initBackend(requested: BackendName = "auto", log: Logger = silentLogger, opts: { allowWasm?: boolean } = {}): Promise<BackendInfo> {
  // Silence tfjs's console banners ("looks like you are running TensorFlow.js in Node.js"):
  // core never prints. PROD only turns off tfjs's own warn/log helpers.
  tf.env().set("PROD", true);
  await loadGradients();
  registerCustomKernels();
  let info: BackendInfo | undefined;
  if (requested === "tensorflow" || requested === "auto") {
    const pkg = await tryNativeTensorflow(log);
    if (pkg) {
      info = { name: "tensorflow", source: pkg };
    } else if (requested === "tensorflow") {
      throw new BackendError("the tensorflow backend is not available (neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node loads)", {
        hint: "install @tensorflow/tfjs-node where its install script can download libtensorflow, or use --backend wasm",
      });
    }
  }
  if (!info && !(opts.allowWasm ?? true) && requested === "auto") {
    log.warn("the model does not fit the wasm backend's 4 GiB heap; using cpu (slower)");
  }
  if (!info && (requested === "wasm" || (requested === "auto" && (opts.allowWasm ?? true)))) {
    let cause: unknown;
    try {
      locateWasmBinaries();
      if (await tf.setBackend("wasm")) {
        info = { name: "wasm", source: "@tensorflow/tfjs-backend-wasm" };
      }
    } catch (err) {
      cause = err;
    }
    // setBackend answers false (tfjs logs the reason) rather than throwing
    if (!info && requested === "wasm") {
      throw new BackendError("the wasm backend failed to start", { cause, hint: "use --backend cpu" });
    }
  }
  if (!info) {
    if (!(await tf.setBackend("cpu"))) {
      throw new BackendError("the cpu backend failed to start");
    }
    info = { name: "cpu", source: "@tensorflow/tfjs-backend-cpu" };
  }
  await tf.ready();
  if (info.name !== "tensorflow") {
    info.native = nativeStatus();
  }
  log.info({ backend: info.name, source: info.source, native: info.native }, `tfjs backend: ${info.name}${info.native ? ` (native kernels: ${info.native})` : ""}`);
  return info;
}
