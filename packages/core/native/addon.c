/*
 * oml-native: AVX2 + FMA versions of three of our WebAssembly kernels, as a Node-API addon
 * (src/kernels/native.ts loads it): the GEMM micro-kernel loop (gemm.c), the fused inference
 * attention for head size 8 (attend8.c) and SwiGLU with its gradient (swiglu.c). Built by
 * scripts/build-native.mjs where a C compiler is found (every `pnpm install` / `pnpm build`);
 * without it everything runs on the WebAssembly kernels. Each kernel computes the same bits
 * as the wasm one it mirrors (each element's operations in the same order and rounding; built
 * with -ffp-contract=off so no multiply and add fuse where the wasm code has two roundings),
 * so results never depend on whether the addon is there. The tests compare them word for word.
 *
 * This file: the JS-facing functions. Every address, size and stride is checked against the
 * heap before a kernel runs (a wrong address must throw, not write past the memory).
 */
#include <node_api.h>
#include <stdlib.h>
#include "common.h"

#if OML_X64
static int cpuHasAvx2Fma(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

/* Byte length of a Float32Array argument and its data, or a thrown TypeError (returns 0). */
static int heapArg(napi_env env, napi_value value, void **data, uint64_t *bytes) {
  napi_typedarray_type type;
  size_t length;
  if (napi_get_typedarray_info(env, value, &type, &length, data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "heap must be a Float32Array");
    return 0;
  }
  *bytes = (uint64_t)length * 4;
  return 1;
}

/* The arguments every kernel takes: the heap (argv[0]), then nu uint32s (addresses, sizes,
 * strides) into u; `usage` names them. argv gets all `want` arguments. 0 after a thrown TypeError. */
static int kernelArgs(napi_env env, napi_callback_info info, size_t want, napi_value *argv, void **data, uint64_t *bytes, uint32_t *u, size_t nu, const char *usage) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  if (!heapArg(env, argv[0], data, bytes)) return 0;
  for (size_t i = 0; i < nu; i++) {
    if (napi_get_value_uint32(env, argv[i + 1], &u[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, usage);
      return 0;
    }
  }
  return 1;
}

/* A kernel function's start: its `nargs` arguments, the heap then `nu` numbers read as uint32
 * into u, or a return after a TypeError naming `usage`. */
#define KERNEL_ARGS(nargs, nu, usage)                                                                        \
  napi_value argv[nargs];                                                                                    \
  void *data;                                                                                                \
  uint64_t bytes;                                                                                            \
  uint32_t u[nu];                                                                                            \
  if (!kernelArgs(env, info, nargs, argv, &data, &bytes, u, nu, usage)) return NULL

/* Run a kernel call; a build for another CPU has none (native.ts never calls it there: available() is false). */
#if OML_X64
#define RUN(call) call
#else
#define RUN(call) napi_throw_error(env, NULL, "oml-native: built without its x86-64 kernels")
#endif

/* A RangeError when `bad` (operands outside the heap, sizes the kernel does not take): 1 if thrown. */
static int refuse(napi_env env, int bad, const char *message) {
  if (bad) napi_throw_range_error(env, NULL, message);
  return bad;
}

static napi_value Gemm(napi_env env, napi_callback_info info) {
  KERNEL_ARGS(11, 10, "gemm(heap: Float32Array, a, panels, c, M, N, K, rsA, csA, ldc, accumulate: numbers)");
  uint64_t a = u[0], panels = u[1], c = u[2], M = u[3], N = u[4], K = u[5], rsA = u[6], csA = u[7], ldc = u[8];
  if (M == 0 || N == 0 || K == 0) return NULL;
  /* Every byte read or written inside the heap (the caller's tensors may not be; a wrong
   * address must throw, not write past the memory). */
  uint64_t aEnd = a + (M - 1) * rsA + (K - 1) * csA + 4;
  uint64_t pEnd = panels + (N + 7) / 8 * 8 * K * 4;
  uint64_t cEnd = c + (M - 1) * ldc + N * 4;
  if (refuse(env, aEnd > bytes || pEnd > bytes || cEnd > bytes || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || rsA > INT32_MAX || csA > INT32_MAX || ldc > INT32_MAX, "gemm: operands outside the heap")) return NULL;
  RUN(omlGemm((char *)data, (uint32_t)a, (uint32_t)panels, (uint32_t)c, (int)M, (int)N, (int)K, (int)rsA, (int)csA, (int)ldc, u[9] != 0));
  return NULL;
}

/* gemmBatch(heap, a, b, c, batch, M, N, K, rsA, csA, rsB, csB, sA, sB, sC, scratch): simd-gemm.ts's
 * gemmBatch (byte addresses and strides; the scratch takes ⌈N/8⌉·8·K floats). */
static napi_value GemmBatch(napi_env env, napi_callback_info info) {
  KERNEL_ARGS(16, 15, "gemmBatch(heap: Float32Array, a, b, c, batch, M, N, K, rsA, csA, rsB, csB, sA, sB, sC, scratch: numbers)");
  uint64_t a = u[0], b = u[1], c = u[2], batch = u[3], M = u[4], N = u[5], K = u[6], rsA = u[7], csA = u[8], rsB = u[9], csB = u[10], sA = u[11], sB = u[12], sC = u[13], scratch = u[14];
  if (batch == 0 || M == 0 || N == 0 || K == 0) return NULL;
  if (refuse(env, a + (batch - 1) * sA + (M - 1) * rsA + (K - 1) * csA + 4 > bytes || b + (batch - 1) * sB + (K - 1) * rsB + (N - 1) * csB + 4 > bytes ||
      c + (batch - 1) * sC + M * N * 4 > bytes || scratch + (N + 7) / 8 * 8 * K * 4 > bytes || ((b | rsB | csB | scratch) & 3) || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX ||
      batch > INT32_MAX || rsA > INT32_MAX || csA > INT32_MAX || rsB > INT32_MAX || csB > INT32_MAX, "gemmBatch: operands outside the heap")) return NULL;
  RUN(omlGemmBatch(data, a, b, c, (int)batch, (int)M, (int)N, (int)K, (int)rsA, (int)csA, (int)rsB, (int)csB, sA, sB, sC, scratch));
  return NULL;
}

/* pack(heap, src, rs, cs, k0, kc, j0, nc, dst): simd-gemm.ts's packPanels (float indices). */
static napi_value Pack(napi_env env, napi_callback_info info) {
  KERNEL_ARGS(9, 8, "pack(heap: Float32Array, src, rs, cs, k0, kc, j0, nc, dst: numbers)");
  uint64_t src = u[0], rs = u[1], cs = u[2], k0 = u[3], kc = u[4], j0 = u[5], nc = u[6], dst = u[7], floats = bytes / 4;
  if (kc == 0 || nc == 0) return NULL;
  if (refuse(env, src + (k0 + kc - 1) * rs + (j0 + nc - 1) * cs >= floats || dst + (nc + 7) / 8 * 8 * kc > floats, "pack: operands outside the heap")) return NULL;
  RUN(omlPack(data, src, rs, cs, k0, kc, j0, nc, dst));
  return NULL;
}

/* attend8(heap, q, k, v, bias, out, B, nh, nkv, T, S, Bb, kShared, vShared, rows, P, G, scale):
 * simd-attend.ts's wasmAttend for hs = 8, every (b, g) group in one call; addresses in bytes.
 * q (B, nh, T, 8); k, v (B, nkv, S − P, 8); bias (Bb, 1, T, S); out (B, T, nh·8). With P > 0
 * the first P keys of batch row b are those of prefix rows[b] (int32 (B) at `rows`, each < G)
 * of kShared, vShared (G, nkv, P, 8): a shared prompt prefix, never copied per row. */
static napi_value Attend8(napi_env env, napi_callback_info info) {
  KERNEL_ARGS(18, 16, "attend8(heap: Float32Array, q, k, v, bias, out, B, nh, nkv, T, S, Bb, kShared, vShared, rows, P, G, scale: numbers)");
  double scale;
  if (napi_get_value_double(env, argv[17], &scale) != napi_ok) {
    napi_throw_type_error(env, NULL, "attend8: scale must be a number");
    return NULL;
  }
  uint64_t q = u[0], k = u[1], v = u[2], bias = u[3], out = u[4], B = u[5], nh = u[6], nkv = u[7], T = u[8], S = u[9], Bb = u[10];
  uint64_t kSh = u[11], vSh = u[12], rows = u[13], P = u[14], G = u[15];
  if (B == 0 || T == 0) return NULL;
  if (refuse(env, nkv == 0 || nh % nkv != 0 || S < 4 || S < T + P || S > 2048 || (Bb != 1 && Bb != B) || ((q | k | v | bias | out | kSh | vSh | rows) & 3) || (P > 0 && G == 0), "attend8: nh must be a multiple of nkv > 0, 4 ≤ S ≤ 2048, S ≥ T + P, Bb 1 or B, addresses 4-aligned")) return NULL;
  const uint64_t L = S - P; /* each row's own keys */
  if (refuse(env, q + B * nh * T * 32 > bytes || k + B * nkv * L * 32 > bytes || v + B * nkv * L * 32 > bytes || bias + Bb * T * S * 4 > bytes || out + B * T * nh * 32 > bytes ||
      (P > 0 && (kSh + G * nkv * P * 32 > bytes || vSh + G * nkv * P * 32 > bytes || rows + B * 4 > bytes)), "attend8: operands outside the heap")) return NULL;
  char *heap = data;
  const int32_t *rowOf = (const int32_t *)(heap + rows);
  for (uint64_t b = 0; P > 0 && b < B; b++) {
    if (rowOf[b] < 0 || (uint64_t)rowOf[b] >= G) {
      napi_throw_range_error(env, NULL, "attend8: a prefix row index outside 0 … G−1");
      return NULL;
    }
  }
#if OML_X64
  const int blocks = (int)(S + 7) / 8;
  float *scratch = malloc(sizeof(float) * (72 * (size_t)blocks + 8 * (size_t)S));
  if (!scratch) {
    napi_throw_error(env, NULL, "attend8: out of memory");
    return NULL;
  }
  omlAttend8(heap, q, k, v, bias, out, B, nh, nkv, T, S, Bb, kSh, vSh, rowOf, P, (float)scale, scratch);
  free(scratch);
#else
  napi_throw_error(env, NULL, "oml-native: built without its x86-64 kernels");
#endif
  return NULL;
}

/* swiglu(heap, g, u, out, rows, I, stride) and swigluGrad(heap, dy, g, u, dg, du, rows, I, stride):
 * simd-swiglu.ts's forward and backward (I mod 4 = 0; byte addresses and stride). */
static napi_value Swiglu(napi_env env, napi_callback_info info) {
  KERNEL_ARGS(7, 6, "swiglu(heap: Float32Array, g, u, out, rows, I, stride: numbers)");
  uint64_t g = u[0], up = u[1], out = u[2], rows = u[3], I = u[4], stride = u[5];
  if (rows == 0 || I == 0) return NULL;
  if (refuse(env, I % 4 || stride < I * 4 || ((g | up | out | stride) & 3) || g + (rows - 1) * stride + I * 4 > bytes || up + (rows - 1) * stride + I * 4 > bytes || out + rows * I * 4 > bytes ||
      stride > INT32_MAX || I > INT32_MAX || rows > INT32_MAX, "swiglu: I mod 4 = 0, stride ≥ 4I, operands inside the heap")) return NULL;
  RUN(omlSwiglu((const char *)data + g, (const char *)data + up, (float *)((char *)data + out), (int)rows, (int)I, (int)stride));
  return NULL;
}

static napi_value SwigluGrad(napi_env env, napi_callback_info info) {
  KERNEL_ARGS(9, 8, "swigluGrad(heap: Float32Array, dy, g, u, dg, du, rows, I, stride: numbers)");
  uint64_t dy = u[0], g = u[1], up = u[2], dg = u[3], du = u[4], rows = u[5], I = u[6], stride = u[7];
  if (rows == 0 || I == 0) return NULL;
  uint64_t span = (rows - 1) * stride + I * 4;
  if (refuse(env, I % 4 || stride < I * 4 || ((dy | g | up | dg | du | stride) & 3) || dy + rows * I * 4 > bytes || g + span > bytes || up + span > bytes || dg + span > bytes || du + span > bytes ||
      stride > INT32_MAX || I > INT32_MAX || rows > INT32_MAX, "swigluGrad: I mod 4 = 0, stride ≥ 4I, operands inside the heap")) return NULL;
  char *h = data;
  RUN(omlSwigluGrad((const float *)(h + dy), h + g, h + up, h + dg, h + du, (int)rows, (int)I, (int)stride));
  return NULL;
}

/* Whether this CPU runs the kernels (x86-64 with AVX2 and FMA). */
static napi_value Available(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value r;
#if OML_X64
  napi_get_boolean(env, cpuHasAvx2Fma(), &r);
#else
  napi_get_boolean(env, 0, &r);
#endif
  return r;
}

NAPI_MODULE_INIT() {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
  const napi_property_descriptor functions[] = {
      FN("gemm", Gemm), FN("gemmBatch", GemmBatch), FN("pack", Pack), FN("attend8", Attend8), FN("swiglu", Swiglu), FN("swigluGrad", SwigluGrad), FN("available", Available),
  };
#undef FN
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
