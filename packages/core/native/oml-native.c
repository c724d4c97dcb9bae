/*
 * oml-native: the GEMM micro-kernel loop of src/kernels/simd-gemm.ts in AVX2 + FMA, for x86-64
 * CPUs that have them, as a Node-API addon. Built by scripts/build-native.mjs where a C
 * compiler is found (every `pnpm install` / `pnpm build`); without it everything runs on the
 * WebAssembly kernels, which compute the same bits (below).
 *
 * Why: WebAssembly SIMD has 128-bit vectors only, so our wasm GEMM tops out at ~47 GFLOP/s on
 * a core that does 256-bit FMAs; here the same loop runs at ~90 (bench/native-gemm.mjs). No
 * well-kept npm package gives a native sgemm without a system BLAS (which our machines may not
 * have), and tfjs-node's libtensorflow downloads at install time, which our machines cannot.
 *
 * Same bits as the wasm kernel with FMA (f32x4.relaxed_madd, which V8 lowers to vfmadd on
 * these CPUs): every C[i, j] starts at 0 (or at C when `accumulate`) and adds its products
 * A[i, k]·B[k, j] one fused multiply-add at a time in k order. Vector width and row blocking
 * change which elements are computed together, never the order of one element's sum.
 *
 * gemm(heap, a, panels, c, M, N, K, rsA, csA, ldc, accumulate), every address and stride in
 * bytes from the start of `heap` (a Float32Array over a WebAssembly memory, shared or not):
 *   C[i, j] (+)= Σ_k A[i, k] · B[k, j],  i < M, j < N, k < K
 *   A[i, k] at a + i·rsA + k·csA (in place: transposed or not);
 *   B packed as ⌈N/8⌉ panels of (K, 8) floats at `panels` (packPanels, zero-padded);
 *   C[i, j] at c + i·ldc + 4j.
 * Micro-kernel: 6 rows × 16 columns (two panels) in 12 ymm accumulators; per k two panel
 * loads, six broadcasts of A and twelve FMAs; 6 × 8 and fewer rows at the edges.
 */
#include <node_api.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define OML_X64 1
#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* The lanes l < w set (a masked load reads, and a masked store writes, only those). */
INLINE TARGET __m256i lanesBelow(int w) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* C rows i … i+R−1, NP panels (8·NP columns, the last `rem` ≥ 1 of them real), over K. */
INLINE TARGET void block(const char *a, const float *p, size_t pstride, char *c, int R, int NP, int K, int rsA, int csA, int ldc, int rem, int accumulate) {
  __m256 s[6][2];
  for (int r = 0; r < R; r++) {
    for (int h = 0; h < NP; h++) {
      const float *cr = (const float *)(c + (size_t)r * ldc) + 8 * h;
      int w = rem - 8 * h < 8 ? rem - 8 * h : 8;
      if (!accumulate) {
        s[r][h] = _mm256_setzero_ps();
      } else if (w == 8) {
        s[r][h] = _mm256_loadu_ps(cr);
      } else {
        s[r][h] = _mm256_maskload_ps(cr, lanesBelow(w));
      }
    }
  }
  const char *pa = a;
  const float *pb = p;
  for (int k = 0; k < K; k++) {
    __m256 b0 = _mm256_loadu_ps(pb);
    __m256 b1 = NP > 1 ? _mm256_loadu_ps(pb + pstride) : b0;
    for (int r = 0; r < R; r++) {
      __m256 av = _mm256_broadcast_ss((const float *)(pa + (size_t)r * rsA));
      s[r][0] = _mm256_fmadd_ps(av, b0, s[r][0]);
      if (NP > 1) s[r][1] = _mm256_fmadd_ps(av, b1, s[r][1]);
    }
    pa += csA;
    pb += 8;
  }
  for (int r = 0; r < R; r++) {
    for (int h = 0; h < NP; h++) {
      float *cr = (float *)(c + (size_t)r * ldc) + 8 * h;
      int w = rem - 8 * h < 8 ? rem - 8 * h : 8;
      if (w == 8) {
        _mm256_storeu_ps(cr, s[r][h]);
      } else {
        _mm256_maskstore_ps(cr, lanesBelow(w), s[r][h]);
      }
    }
  }
}

/* All M rows against NP panels: blocks of 6 rows, then one block of the 1–5 left (R constant in each call, so the accumulators stay in registers). */
#define ROWS(NP)                                                                                                                       \
  static TARGET void rows##NP(const char *a, const float *p, size_t pstride, char *c, int M, int K, int rsA, int csA, int ldc, int rem, \
                              int accumulate) {                                                                                         \
    int i = 0;                                                                                                                         \
    for (; i + 6 <= M; i += 6) block(a + (size_t)i * rsA, p, pstride, c + (size_t)i * ldc, 6, NP, K, rsA, csA, ldc, rem, accumulate); \
    const char *ai = a + (size_t)i * rsA;                                                                                              \
    char *ci = c + (size_t)i * ldc;                                                                                                    \
    switch (M - i) {                                                                                                                   \
      case 5: block(ai, p, pstride, ci, 5, NP, K, rsA, csA, ldc, rem, accumulate); break;                                             \
      case 4: block(ai, p, pstride, ci, 4, NP, K, rsA, csA, ldc, rem, accumulate); break;                                             \
      case 3: block(ai, p, pstride, ci, 3, NP, K, rsA, csA, ldc, rem, accumulate); break;                                             \
      case 2: block(ai, p, pstride, ci, 2, NP, K, rsA, csA, ldc, rem, accumulate); break;                                             \
      case 1: block(ai, p, pstride, ci, 1, NP, K, rsA, csA, ldc, rem, accumulate); break;                                             \
      default: break;                                                                                                                  \
    }                                                                                                                                  \
  }
ROWS(1)
ROWS(2)

static TARGET void gemm(char *heap, uint32_t a, uint32_t panels, uint32_t c, int M, int N, int K, int rsA, int csA, int ldc, int accumulate) {
  const float *p = (const float *)(heap + panels);
  size_t pstride = (size_t)8 * K; /* floats from one panel to the next */
  int j = 0;
  for (; j + 8 < N; j += 16) rows2(heap + a, p + (size_t)j * K, pstride, heap + c + 4 * (size_t)j, M, K, rsA, csA, ldc, N - j, accumulate);
  if (j < N) rows1(heap + a, p + (size_t)j * K, pstride, heap + c + 4 * (size_t)j, M, K, rsA, csA, ldc, N - j, accumulate);
}

static int cpuHasAvx2Fma(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
#define OML_X64 0
#endif

static napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 11) {
    napi_throw_type_error(env, NULL, "gemm(heap, a, panels, c, M, N, K, rsA, csA, ldc, accumulate): 11 arguments");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "gemm: heap must be a Float32Array");
    return NULL;
  }
  uint32_t u[10];
  for (int i = 0; i < 10; i++) {
    if (napi_get_value_uint32(env, argv[i + 1], &u[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "gemm: addresses, sizes and strides must be numbers");
      return NULL;
    }
  }
  uint64_t a = u[0], panels = u[1], c = u[2], M = u[3], N = u[4], K = u[5], rsA = u[6], csA = u[7], ldc = u[8];
  if (M == 0 || N == 0 || K == 0) return NULL;
  /* Every byte read or written inside the heap (the caller's tensors may not be; a wrong
   * address must throw, not write past the memory). */
  uint64_t bytes = (uint64_t)length * 4;
  uint64_t aEnd = a + (M - 1) * rsA + (K - 1) * csA + 4;
  uint64_t pEnd = panels + (N + 7) / 8 * 8 * K * 4;
  uint64_t cEnd = c + (M - 1) * ldc + N * 4;
  if (aEnd > bytes || pEnd > bytes || cEnd > bytes || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || rsA > INT32_MAX || csA > INT32_MAX || ldc > INT32_MAX) {
    napi_throw_range_error(env, NULL, "gemm: operands outside the heap");
    return NULL;
  }
#if OML_X64
  gemm((char *)data, (uint32_t)a, (uint32_t)panels, (uint32_t)c, (int)M, (int)N, (int)K, (int)rsA, (int)csA, (int)ldc, u[9] != 0);
#else
  napi_throw_error(env, NULL, "gemm: built without the x86-64 kernel");
#endif
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
  napi_value f;
  napi_create_function(env, "gemm", NAPI_AUTO_LENGTH, Gemm, NULL, &f);
  napi_set_named_property(env, exports, "gemm", f);
  napi_create_function(env, "available", NAPI_AUTO_LENGTH, Available, NULL, &f);
  napi_set_named_property(env, exports, "available", f);
  return exports;
}
