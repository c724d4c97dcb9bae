/*
 * What the kernels of oml-native share (see addon.c for the addon as a whole): the x86-64
 * target attributes, the lane masks, and the core of XNNPACK's rr2-p5 exp, which the attention
 * and SwiGLU kernels both mirror operation for operation.
 */
#ifndef OML_NATIVE_COMMON_H
#define OML_NATIVE_COMMON_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define OML_X64 1
#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

/* The lanes l < w set (a masked load reads, and a masked store writes, only those). */
INLINE TARGET __m256i lanesBelow(int w) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define EXP_LOG2E 1.44269502f
#define EXP_MAGIC 12583039.0f
#define EXP_LN2_HI -0.693145751953125f
#define EXP_LN2_LO -1.428606765330187e-6f
#define EXP_CUTOFF -87.33654022216797f

/* XNNPACK's rr2-p5 exp up to its last step, as simd-softmax.ts's expCode and simd-swiglu.ts's
 * sigmoid both have it (with FMA): from d, s = 2ⁿ, r = d − n·ln2 (in two parts) and the
 * degree-5 polynomial p, in vectors of type V with the given operations. exp(d) is then
 * (r·s)·p + s, fused or not as each kernel rounds it. */
#define EXP_RR2_P5(V, d, s, r, p, SET1, MUL, ADD, SUB, FMA, SLLI, CASTI, CASTF) \
  V s, r, p;                                                                      \
  {                                                                               \
    V n_ = ADD(MUL(d, SET1(EXP_LOG2E)), SET1(EXP_MAGIC));                         \
    s = CASTF(SLLI(CASTI(n_), 23));                                               \
    n_ = SUB(n_, SET1(EXP_MAGIC));                                                \
    r = FMA(n_, SET1(EXP_LN2_LO), FMA(n_, SET1(EXP_LN2_HI), d));                  \
    p = SET1(0.008289290592074394f);                                              \
    p = FMA(p, r, SET1(0.04189782217144966f));                                    \
    p = FMA(p, r, SET1(0.16667652130126953f));                                    \
    p = FMA(p, r, SET1(0.4999915063381195f));                                     \
    p = FMA(p, r, SET1(0.9999997019767761f));                                     \
  }

/* The kernels (gemm.c, attend8.c, swiglu.c); addon.c checks every argument first. */
void omlGemm(char *heap, uint32_t a, uint32_t panels, uint32_t c, int M, int N, int K, int rsA, int csA, int ldc, int accumulate);
void omlPack(float *heap, uint64_t src, uint64_t rs, uint64_t cs, uint64_t k0, uint64_t kc, uint64_t j0, uint64_t nc, uint64_t dst);
void omlGemmBatch(char *heap, uint64_t a, uint64_t b, uint64_t c, int batch, int M, int N, int K, int rsA, int csA, int rsB, int csB, uint64_t sA, uint64_t sB, uint64_t sC,
                  uint64_t scratch);
void omlAttend8(char *heap, uint64_t q, uint64_t k, uint64_t v, uint64_t bias, uint64_t out, uint64_t B, uint64_t nh, uint64_t nkv, uint64_t T, uint64_t S, uint64_t Bb,
                uint64_t kShared, uint64_t vShared, const int32_t *rowOf, uint64_t P, float scale, float *scratch);
void omlSwiglu(const char *g, const char *u, float *out, int rows, int I, int stride);
void omlSwigluGrad(const float *dy, const char *g, const char *u, char *dg, char *du, int rows, int I, int stride);
#else
#define OML_X64 0
#endif
#endif
