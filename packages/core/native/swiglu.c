/*
 * SwiGLU forward and backward of src/kernels/simd-swiglu.ts (with FMA) in AVX2 (oml-native:
 * addon.c), the same bits: every element goes through the same operations in the same order,
 * 8 lanes at a time, the I mod 8 last in 4:
 *   σ = 1 / ((r·s)·p + s + 1) with d = −g within ±87.34, n, s, r and p as its exp has them
 *   forward   y = (g·σ)·u
 *   backward  du = dy·(g·σ);  dg = ((dy·u)·σ)·(1 + g·(1 − σ))
 * pmax / pmin as wasm's (max_ps / min_ps with the operands swapped, for the same NaN lanes).
 */
#include "common.h"

#if OML_X64
#define SIGMOID_BODY(V, XOR, SET1, MUL, ADD, SUB, DIV, MAX, MIN, FMA, SLLI, CASTI, CASTF)                   \
  V d = MIN(SET1(-EXP_CUTOFF), MAX(SET1(EXP_CUTOFF), XOR(g, SET1(-0.0f)))); /* −g exactly (f32x4.neg) */ \
  EXP_RR2_P5(V, d, s, r, p, SET1, MUL, ADD, SUB, FMA, SLLI, CASTI, CASTF)                                  \
  V e = ADD(MUL(p, MUL(r, s)), s);                                                                         \
  V sig = DIV(SET1(1.0f), ADD(e, SET1(1.0f)));

INLINE TARGET __m256 sigmoid8(__m256 g) {
  SIGMOID_BODY(__m256, _mm256_xor_ps, _mm256_set1_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_div_ps, _mm256_max_ps, _mm256_min_ps, _mm256_fmadd_ps,
               _mm256_slli_epi32, _mm256_castps_si256, _mm256_castsi256_ps)
  return sig;
}

INLINE TARGET __m128 sigmoid4(__m128 g) {
  SIGMOID_BODY(__m128, _mm_xor_ps, _mm_set1_ps, _mm_mul_ps, _mm_add_ps, _mm_sub_ps, _mm_div_ps, _mm_max_ps, _mm_min_ps, _mm_fmadd_ps, _mm_slli_epi32,
               _mm_castps_si128, _mm_castsi128_ps)
  return sig;
}

/* rows of I values (I mod 4 = 0): g and u rows `stride` bytes apart, out / dy rows I floats apart */
TARGET void omlSwiglu(const char *g, const char *u, float *out, int rows, int I, int stride) {
  for (int row = 0; row < rows; row++, g += stride, u += stride, out += I) {
    const float *gr = (const float *)g, *ur = (const float *)u;
    int j = 0;
    for (; j + 8 <= I; j += 8) {
      __m256 gv = _mm256_loadu_ps(gr + j);
      _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_mul_ps(gv, sigmoid8(gv)), _mm256_loadu_ps(ur + j)));
    }
    for (; j < I; j += 4) {
      __m128 gv = _mm_loadu_ps(gr + j);
      _mm_storeu_ps(out + j, _mm_mul_ps(_mm_mul_ps(gv, sigmoid4(gv)), _mm_loadu_ps(ur + j)));
    }
  }
}

#define SWIGLU_GRAD(V, LOAD, STORE, MUL, ADD, SUB, SET1, SIG, j)                                                              \
  {                                                                                                                          \
    V gv = LOAD(gr + j), sg = SIG(gv), dyv = LOAD(dyr + j), one = SET1(1.0f);                                                \
    STORE(dur + j, MUL(dyv, MUL(gv, sg)));                                                                                   \
    STORE(dgr + j, MUL(MUL(MUL(dyv, LOAD(ur + j)), sg), ADD(one, MUL(gv, SUB(one, sg)))));                                   \
  }

TARGET void omlSwigluGrad(const float *dy, const char *g, const char *u, char *dg, char *du, int rows, int I, int stride) {
  for (int row = 0; row < rows; row++, dy += I, g += stride, u += stride, dg += stride, du += stride) {
    const float *gr = (const float *)g, *ur = (const float *)u, *dyr = dy;
    float *dgr = (float *)dg, *dur = (float *)du;
    int j = 0;
    for (; j + 8 <= I; j += 8) SWIGLU_GRAD(__m256, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_set1_ps, sigmoid8, j)
    for (; j < I; j += 4) SWIGLU_GRAD(__m128, _mm_loadu_ps, _mm_storeu_ps, _mm_mul_ps, _mm_add_ps, _mm_sub_ps, _mm_set1_ps, sigmoid4, j)
  }
}
#endif
