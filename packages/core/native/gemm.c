/*
 * The GEMM micro-kernel loop of src/kernels/simd-gemm.ts in AVX2 + FMA (oml-native: addon.c).
 *
 * Why: WebAssembly SIMD has 128-bit vectors only, so our wasm GEMM tops out at ~47 GFLOP/s on
 * a core that does 256-bit FMAs; here the same loop runs at ~80-95 (bench/native-kernels.mjs). No
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
#include "common.h"

#if OML_X64
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

TARGET void omlGemm(char *heap, uint32_t a, uint32_t panels, uint32_t c, int M, int N, int K, int rsA, int csA, int ldc, int accumulate) {
  const float *p = (const float *)(heap + panels);
  size_t pstride = (size_t)8 * K; /* floats from one panel to the next */
  int j = 0;
  for (; j + 8 < N; j += 16) rows2(heap + a, p + (size_t)j * K, pstride, heap + c + 4 * (size_t)j, M, K, rsA, csA, ldc, N - j, accumulate);
  if (j < N) rows1(heap + a, p + (size_t)j * K, pstride, heap + c + 4 * (size_t)j, M, K, rsA, csA, ldc, N - j, accumulate);
}

/* simd-gemm.ts's packPanels: B[k0 … k0+kc, j0 … j0+nc) into ⌈nc/8⌉ panels of (kc, 8) floats at
 * float index dst, zero-padded; B(k, j) at float index src + k·rs + j·cs. A copy: the same bits. */
void omlPack(float *heap, uint64_t src, uint64_t rs, uint64_t cs, uint64_t k0, uint64_t kc, uint64_t j0, uint64_t nc, uint64_t dst) {
  const uint64_t panels = (nc + 7) / 8;
  for (uint64_t p = 0; p < panels; p++) {
    float *out = heap + dst + p * kc * 8;
    const uint64_t width = nc - p * 8 < 8 ? nc - p * 8 : 8;
    if (width < 8) memset(out, 0, sizeof(float) * kc * 8);
    if (cs == 1) {
      for (uint64_t k = 0; k < kc; k++) memcpy(out + k * 8, heap + src + (k0 + k) * rs + j0 + p * 8, sizeof(float) * width);
    } else {
      for (uint64_t l = 0; l < width; l++) {
        const float *s = heap + src + (j0 + p * 8 + l) * cs + k0 * rs;
        for (uint64_t k = 0; k < kc; k++) out[k * 8 + l] = s[k * rs];
      }
    }
  }
}

/* simd-gemm.ts's gemmBatch: `batch` products, A, B and C advanced by sA, sB, sC bytes, each B
 * packed whole into the scratch and multiplied over all M rows, C overwritten. Byte addresses
 * and strides (B(k, j) at b + k·rsB + j·csB). Many tiny products (attention's, in training)
 * in one call: the wasm version paid ~2.4 µs of calls and setup a product. */
void omlGemmBatch(char *heap, uint64_t a, uint64_t b, uint64_t c, int batch, int M, int N, int K, int rsA, int csA, int rsB, int csB, uint64_t sA, uint64_t sB, uint64_t sC,
                  uint64_t scratch) {
  for (int p = 0; p < batch; p++) {
    omlPack((float *)heap, (b + (uint64_t)p * sB) / 4, (uint64_t)rsB / 4, (uint64_t)csB / 4, 0, (uint64_t)K, 0, (uint64_t)N, scratch / 4);
    omlGemm(heap, (uint32_t)(a + (uint64_t)p * sA), (uint32_t)scratch, (uint32_t)(c + (uint64_t)p * sC), M, N, K, rsA, csA, N * 4, 0);
  }
}
#endif

