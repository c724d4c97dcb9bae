/*
 * oml-native: the GEMM micro-kernel loop of src/kernels/simd-gemm.ts in AVX2 + FMA, for x86-64
 * CPUs that have them, as a Node-API addon. Built by scripts/build-native.mjs where a C
 * compiler is found (every `pnpm install` / `pnpm build`); without it everything runs on the
 * WebAssembly kernels, which compute the same bits (below).
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
 * Built with -ffp-contract=off (scripts/build-native.mjs): a multiply then an add must stay two
 * roundings wherever the wasm kernels have two.
 *
 * Micro-kernel: 6 rows × 16 columns (two panels) in 12 ymm accumulators; per k two panel
 * loads, six broadcasts of A and twelve FMAs; 6 × 8 and fewer rows at the edges.
 */
#include <math.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
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

/*
 * attend8: simd-attend.ts's fused attention for head size 8, same bits, on both of its paths
 * (transposed-K scores for nrep·T > 8 query rows per kv head, per-key "direct" ones below). For every batch row b and kv
 * head g, over the R = nrep·T query rows of the group (head g·nrep + r/T, t = r mod T):
 *   z[s] = (Σ_d q[d]·k_s[d])·scale + bias[t][s]  (the sum one FMA at a time in d order, then a
 *          multiply and an add, each rounded, as the wasm kernel and tf.mul / tf.add do)
 *   e[s] = exp(z[s] − max z) with the same rr2-p5 code (cutoff, masked lanes 0)
 *   Σ e in four lanes over the blocks of 4 keys in order, the S mod 4 last keys as one
 *     overlapping block of keys S−4 … S−1 whose new lanes count, then (l0 + l2) + (l1 + l3)
 *   y = ((Σ_u acc_u) · (1/Σ e)) with key LO + 4m + u into acc_u (u < 4), the keys past the
 *     last whole step into acc_0, over LO … HI: the blocks of 4 keys with any e > 0
 * Eight keys per ymm instead of four per v128 changes no element's order of operations.
 */
#define EXP_LOG2E 1.44269502f
#define EXP_MAGIC 12583039.0f
#define EXP_LN2_HI -0.693145751953125f
#define EXP_LN2_LO -1.428606765330187e-6f
#define EXP_CUTOFF -87.33654022216797f

/* exp(d) for d ≤ 0 in the lanes of `mask` (d ≥ cutoff), 0 in the others: simd-softmax.ts's expCode with FMA. */
INLINE TARGET __m256 exp8(__m256 d, __m256 mask) {
  d = _mm256_and_ps(d, mask);
  __m256 n = _mm256_add_ps(_mm256_mul_ps(d, _mm256_set1_ps(EXP_LOG2E)), _mm256_set1_ps(EXP_MAGIC));
  __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(n), 23));
  n = _mm256_sub_ps(n, _mm256_set1_ps(EXP_MAGIC));
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), _mm256_fmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), d));
  __m256 p = _mm256_set1_ps(0.008289290592074394f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.04189782217144966f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.16667652130126953f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.4999915063381195f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.9999997019767761f));
  return _mm256_and_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, s), s), mask);
}

/* r[d] lane l ← r[l] lane d (an 8 × 8 transpose in registers). */
INLINE TARGET void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

/* One group: R query rows at q (8 floats each); its S keys and values: the first P at kp, vp
 * (a shared prompt prefix, kept once for many rows), the rest at k, v; bias rows at bias
 * (t·S); y rows at out (row t at out + t·ostride floats, head block h·8). Scratch: kt
 * 64·⌈S/8⌉ floats, z 8·⌈S/8⌉, vc 8·S (the values in one block when P > 0). `direct`: the
 * wasm kernel's scores for few rows (R ≤ 8), per key in 4 lanes: p = q[4…8)·k[4…8) + q[0…4)·k[0…4)
 * (FMAs), then (p0 + p2) + (p1 + p3); else (R > 8) its transposed-K scores. */
static TARGET void attendGroup8(const float *q, const float *kp, const float *vp, int P, const float *k, const float *v, const float *bias, float *out, float *kt, float *z,
                                float *vc, int R, int T, int S, int ostride, float scale, int direct) {
  const int blocks = (S + 7) / 8;
#define KEY(s) ((s) < P ? kp + 8 * (size_t)(s) : k + 8 * (size_t)((s) - P))
  if (!direct) {
    /* Kt: block j holds keys 8j … 8j+7 as 8 rows of d (zeros past S) */
    for (int j = 0; j < blocks; j++) {
      float *dst = kt + 64 * j;
      if (8 * j + 8 <= S) {
        __m256 r[8];
        for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_ps(KEY(8 * j + l));
        transpose8(r);
        for (int d = 0; d < 8; d++) _mm256_storeu_ps(dst + 8 * d, r[d]);
      } else {
        for (int l = 0; l < 8; l++) {
          int s = 8 * j + l;
          const float *key = s < S ? KEY(s) : NULL;
          for (int d = 0; d < 8; d++) dst[8 * d + l] = key ? key[d] : 0.0f;
        }
      }
    }
  }
  if (P > 0) {
    memcpy(vc, vp, sizeof(float) * 8 * (size_t)P);
    memcpy(vc + 8 * (size_t)P, v, sizeof(float) * 8 * (size_t)(S - P));
    v = vc;
  }
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256 cutoff = _mm256_set1_ps(EXP_CUTOFF);
  const int tailLanes = S - 8 * (blocks - 1); /* real keys in the last block, 1 … 8 */
  const __m256i tailMask = lanesBelow(tailLanes);
  for (int r = 0; r < R; r++) {
    const int t = r % T, h = r / T;
    const float *qr = q + 8 * r;
    const float *br = bias + (size_t)t * S;
    /* scores z and their max */
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    if (direct) {
      const __m128 qlo = _mm_loadu_ps(qr), qhi = _mm_loadu_ps(qr + 4);
      for (int s = 0; s < S; s++) {
        const float *key = KEY(s);
        __m128 p4 = _mm_fmadd_ps(qhi, _mm_loadu_ps(key + 4), _mm_fmadd_ps(qlo, _mm_loadu_ps(key), _mm_setzero_ps()));
        __m128 t2 = _mm_add_ps(p4, _mm_shuffle_ps(p4, p4, _MM_SHUFFLE(1, 0, 3, 2))); /* p0 + p2, p1 + p3 */
        __m128 dot = _mm_add_ss(t2, _mm_shuffle_ps(t2, t2, _MM_SHUFFLE(3, 2, 0, 1)));
        __m128 zz = _mm_add_ss(_mm_mul_ss(dot, _mm256_castps256_ps128(vscale)), _mm_load_ss(br + s));
        _mm_store_ss(z + s, zz);
      }
      for (int s = S; s < 8 * blocks; s++) z[s] = -INFINITY;
      for (int j = 0; j < blocks; j++) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(z + 8 * j));
    } else {
      __m256 qs[8];
      for (int d = 0; d < 8; d++) qs[d] = _mm256_broadcast_ss(qr + d);
      for (int j = 0; j < blocks; j++) {
        const float *kb = kt + 64 * j;
        __m256 acc = _mm256_setzero_ps();
        for (int d = 0; d < 8; d++) acc = _mm256_fmadd_ps(qs[d], _mm256_loadu_ps(kb + 8 * d), acc);
        __m256 zz;
        if (j < blocks - 1) {
          zz = _mm256_add_ps(_mm256_mul_ps(acc, vscale), _mm256_loadu_ps(br + 8 * j));
        } else {
          zz = _mm256_add_ps(_mm256_mul_ps(acc, vscale), _mm256_maskload_ps(br + 8 * j, tailMask));
          zz = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), zz, _mm256_castsi256_ps(tailMask));
        }
        _mm256_storeu_ps(z + 8 * j, zz);
        vmax = _mm256_max_ps(vmax, zz);
      }
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_shuffle_ps(m4, m4, _MM_SHUFFLE(1, 0, 3, 2)));
    m4 = _mm_max_ps(m4, _mm_shuffle_ps(m4, m4, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m256 mx = _mm256_broadcastss_ps(m4);
    /* e = exp(z − max) in place; Σ e over the whole blocks of 4 keys in order, and LO … HI
     * (the first and the last of those blocks with any e > 0), as the wasm kernel has them */
    const int full = S / 4;
    __m128 sum = _mm_setzero_ps();
    int lo = S, hi = 0;
    uint32_t prevBits = 0, lastBits = 0; /* of the last two blocks of 8 (the overlapping tail's keys) */
    for (int j = 0; j < blocks; j++) {
      __m256 dd = _mm256_sub_ps(_mm256_loadu_ps(z + 8 * j), mx);
      __m256 mask = _mm256_cmp_ps(dd, cutoff, _CMP_GE_OQ);
      int bits = _mm256_movemask_ps(mask);
      if (j == blocks - 1) bits &= (1 << tailLanes) - 1;
      __m256 e = bits ? exp8(dd, mask) : _mm256_setzero_ps();
      _mm256_storeu_ps(z + 8 * j, e);
      if (2 * j < full) {
        sum = _mm_add_ps(sum, _mm256_castps256_ps128(e));
        if (bits & 15) {
          lo = lo < 8 * j ? lo : 8 * j;
          hi = 8 * j + 4;
        }
        if (2 * j + 1 < full) {
          sum = _mm_add_ps(sum, _mm256_extractf128_ps(e, 1));
          if (bits & 0xF0) {
            lo = lo < 8 * j + 4 ? lo : 8 * j + 4;
            hi = 8 * j + 8;
          }
        }
      }
      prevBits = lastBits;
      lastBits = (uint32_t)bits;
    }
    if (S % 4) {
      const int first = S - 4, fresh = S % 4; /* keys S−4 … S−1; the last `fresh` are new */
      const __m128i lanes = _mm_cmpgt_epi32(_mm_set1_epi32(4 - fresh), _mm_setr_epi32(0, 1, 2, 3));
      sum = _mm_add_ps(sum, _mm_andnot_ps(_mm_castsi128_ps(lanes), _mm_loadu_ps(z + first)));
      const int base = blocks >= 2 ? 8 * (blocks - 2) : 0; /* key of bit 0 in (prev | last << 8) */
      const uint32_t two = blocks >= 2 ? prevBits | lastBits << 8 : lastBits;
      if ((two >> (first - base)) & 15) {
        lo = lo < 4 * full ? lo : 4 * full;
        hi = S;
      }
    }
    __m128 s2 = _mm_add_ps(sum, _mm_shuffle_ps(sum, sum, _MM_SHUFFLE(1, 0, 3, 2)));
    s2 = _mm_add_ps(s2, _mm_shuffle_ps(s2, s2, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_broadcastss_ps(s2));
    /* y = Σ e·v over LO … HI, four keys a step into four sums */
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int s = lo;
    for (; s + 3 < hi; s += 4) {
      a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(z + s), _mm256_loadu_ps(v + 8 * s), a0);
      a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(z + s + 1), _mm256_loadu_ps(v + 8 * (s + 1)), a1);
      a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(z + s + 2), _mm256_loadu_ps(v + 8 * (s + 2)), a2);
      a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(z + s + 3), _mm256_loadu_ps(v + 8 * (s + 3)), a3);
    }
    for (; s < hi; s++) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(z + s), _mm256_loadu_ps(v + 8 * s), a0);
    __m256 y = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), a2), a3), inv);
    _mm256_storeu_ps(out + (size_t)t * ostride + 8 * h, y);
  }
#undef KEY
}

/*
 * swiglu / swigluGrad: simd-swiglu.ts's forward and backward with FMA, the same bits (every
 * element goes through the same operations in the same order; 8 lanes at a time, the I mod 8
 * last in 4):
 *   σ = 1 / ((r·s)·p + s + 1) with d = −g within ±87.34, n, s, r and p as its exp has them
 *   forward   y = (g·σ)·u
 *   backward  du = dy·(g·σ);  dg = ((dy·u)·σ)·(1 + g·(1 − σ))
 * pmax / pmin as wasm's (max_ps / min_ps with the operands swapped, for the same NaN lanes).
 */
#define SIGMOID_BODY(V, XOR, SET1, MUL, ADD, SUB, DIV, MAX, MIN, FMA, SLLI, CASTI, CASTF)                                             \
  V d = MIN(SET1(-EXP_CUTOFF), MAX(SET1(EXP_CUTOFF), XOR(g, SET1(-0.0f)))); /* −g exactly (f32x4.neg) */                           \
  V n = ADD(MUL(d, SET1(EXP_LOG2E)), SET1(EXP_MAGIC));                                                                              \
  V s = CASTF(SLLI(CASTI(n), 23));                                                                                                   \
  n = SUB(n, SET1(EXP_MAGIC));                                                                                                       \
  V r = FMA(n, SET1(EXP_LN2_LO), FMA(n, SET1(EXP_LN2_HI), d));                                                                      \
  V p = SET1(0.008289290592074394f);                                                                                                 \
  p = FMA(p, r, SET1(0.04189782217144966f));                                                                                         \
  p = FMA(p, r, SET1(0.16667652130126953f));                                                                                         \
  p = FMA(p, r, SET1(0.4999915063381195f));                                                                                          \
  p = FMA(p, r, SET1(0.9999997019767761f));                                                                                          \
  V e = ADD(MUL(p, MUL(r, s)), s);                                                                                                   \
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
static TARGET void swigluRows(const char *g, const char *u, float *out, int rows, int I, int stride) {
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

static TARGET void swigluGradRows(const float *dy, const char *g, const char *u, char *dg, char *du, int rows, int I, int stride) {
  for (int row = 0; row < rows; row++, dy += I, g += stride, u += stride, dg += stride, du += stride) {
    const float *gr = (const float *)g, *ur = (const float *)u, *dyr = dy;
    float *dgr = (float *)dg, *dur = (float *)du;
    int j = 0;
    for (; j + 8 <= I; j += 8) SWIGLU_GRAD(__m256, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_set1_ps, sigmoid8, j)
    for (; j < I; j += 4) SWIGLU_GRAD(__m128, _mm_loadu_ps, _mm_storeu_ps, _mm_mul_ps, _mm_add_ps, _mm_sub_ps, _mm_set1_ps, sigmoid4, j)
  }
}

static int cpuHasAvx2Fma(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
#define OML_X64 0
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

static napi_value Gemm(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  void *data;
  uint64_t bytes;
  uint32_t u[10];
  if (!kernelArgs(env, info, 11, argv, &data, &bytes, u, 10, "gemm(heap: Float32Array, a, panels, c, M, N, K, rsA, csA, ldc, accumulate: numbers)")) return NULL;
  uint64_t a = u[0], panels = u[1], c = u[2], M = u[3], N = u[4], K = u[5], rsA = u[6], csA = u[7], ldc = u[8];
  if (M == 0 || N == 0 || K == 0) return NULL;
  /* Every byte read or written inside the heap (the caller's tensors may not be; a wrong
   * address must throw, not write past the memory). */
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

/* attend8(heap, q, k, v, bias, out, B, nh, nkv, T, S, Bb, kShared, vShared, rows, P, G, scale):
 * simd-attend.ts's wasmAttend for hs = 8, every (b, g) group in one call; addresses in bytes.
 * q (B, nh, T, 8); k, v (B, nkv, S − P, 8); bias (Bb, 1, T, S); out (B, T, nh·8). With P > 0
 * the first P keys of batch row b are those of prefix rows[b] (int32 (B) at `rows`, each < G)
 * of kShared, vShared (G, nkv, P, 8): a shared prompt prefix, never copied per row. */
static napi_value Attend8(napi_env env, napi_callback_info info) {
  napi_value argv[18];
  void *data;
  uint64_t bytes;
  uint32_t u[16];
  if (!kernelArgs(env, info, 18, argv, &data, &bytes, u, 16, "attend8(heap: Float32Array, q, k, v, bias, out, B, nh, nkv, T, S, Bb, kShared, vShared, rows, P, G, scale: numbers)")) return NULL;
  double scale;
  if (napi_get_value_double(env, argv[17], &scale) != napi_ok) {
    napi_throw_type_error(env, NULL, "attend8: scale must be a number");
    return NULL;
  }
  uint64_t q = u[0], k = u[1], v = u[2], bias = u[3], out = u[4], B = u[5], nh = u[6], nkv = u[7], T = u[8], S = u[9], Bb = u[10];
  uint64_t kSh = u[11], vSh = u[12], rows = u[13], P = u[14], G = u[15];
  if (B == 0 || T == 0) return NULL;
  if (nkv == 0 || nh % nkv != 0 || S < 4 || S < T + P || S > 2048 || (Bb != 1 && Bb != B) || ((q | k | v | bias | out | kSh | vSh | rows) & 3) || (P > 0 && G == 0)) {
    napi_throw_range_error(env, NULL, "attend8: nh must be a multiple of nkv > 0, 4 ≤ S ≤ 2048, S ≥ T + P, Bb 1 or B, addresses 4-aligned");
    return NULL;
  }
  const uint64_t L = S - P; /* each row's own keys */
  if (q + B * nh * T * 32 > bytes || k + B * nkv * L * 32 > bytes || v + B * nkv * L * 32 > bytes || bias + Bb * T * S * 4 > bytes || out + B * T * nh * 32 > bytes ||
      (P > 0 && (kSh + G * nkv * P * 32 > bytes || vSh + G * nkv * P * 32 > bytes || rows + B * 4 > bytes))) {
    napi_throw_range_error(env, NULL, "attend8: operands outside the heap");
    return NULL;
  }
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
  const int nrep = (int)(nh / nkv);
  const int direct = nrep * (int)T <= 8; /* the wasm kernel's choice (isDirect) */
  for (uint64_t b = 0; b < B; b++) {
    const float *biasRow = (const float *)(heap + bias) + (Bb == 1 ? 0 : b * T * S);
    for (uint64_t g = 0; g < nkv; g++) {
      const uint64_t own = (b * nkv + g) * L * 8;
      const uint64_t shared = P > 0 ? ((uint64_t)rowOf[b] * nkv + g) * P * 8 : 0;
      attendGroup8((const float *)(heap + q) + (b * nh + g * nrep) * T * 8, (const float *)(heap + kSh) + shared, (const float *)(heap + vSh) + shared, (int)P,
                   (const float *)(heap + k) + own, (const float *)(heap + v) + own, biasRow, (float *)(heap + out) + (b * T * nh + g * nrep) * 8, scratch,
                   scratch + 64 * blocks, scratch + 72 * blocks, nrep * (int)T, (int)T, (int)S, (int)nh * 8, (float)scale, direct);
    }
  }
  free(scratch);
#else
  napi_throw_error(env, NULL, "attend8: built without the x86-64 kernel");
#endif
  return NULL;
}

/* swiglu(heap, g, u, out, rows, I, stride) and swigluGrad(heap, dy, g, u, dg, du, rows, I, stride):
 * simd-swiglu.ts's forward and backward (I mod 4 = 0; byte addresses and stride). */
static napi_value Swiglu(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  void *data;
  uint64_t bytes;
  uint32_t u[6];
  if (!kernelArgs(env, info, 7, argv, &data, &bytes, u, 6, "swiglu(heap: Float32Array, g, u, out, rows, I, stride: numbers)")) return NULL;
  uint64_t g = u[0], up = u[1], out = u[2], rows = u[3], I = u[4], stride = u[5];
  if (rows == 0 || I == 0) return NULL;
  if (I % 4 || stride < I * 4 || ((g | up | out | stride) & 3) || g + (rows - 1) * stride + I * 4 > bytes || up + (rows - 1) * stride + I * 4 > bytes || out + rows * I * 4 > bytes ||
      stride > INT32_MAX || I > INT32_MAX || rows > INT32_MAX) {
    napi_throw_range_error(env, NULL, "swiglu: I mod 4 = 0, stride ≥ 4I, operands inside the heap");
    return NULL;
  }
#if OML_X64
  swigluRows((const char *)data + g, (const char *)data + up, (float *)((char *)data + out), (int)rows, (int)I, (int)stride);
#endif
  return NULL;
}

static napi_value SwigluGrad(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  void *data;
  uint64_t bytes;
  uint32_t u[8];
  if (!kernelArgs(env, info, 9, argv, &data, &bytes, u, 8, "swigluGrad(heap: Float32Array, dy, g, u, dg, du, rows, I, stride: numbers)")) return NULL;
  uint64_t dy = u[0], g = u[1], up = u[2], dg = u[3], du = u[4], rows = u[5], I = u[6], stride = u[7];
  if (rows == 0 || I == 0) return NULL;
  uint64_t span = (rows - 1) * stride + I * 4;
  if (I % 4 || stride < I * 4 || ((dy | g | up | dg | du | stride) & 3) || dy + rows * I * 4 > bytes || g + span > bytes || up + span > bytes || dg + span > bytes || du + span > bytes ||
      stride > INT32_MAX || I > INT32_MAX || rows > INT32_MAX) {
    napi_throw_range_error(env, NULL, "swigluGrad: I mod 4 = 0, stride ≥ 4I, operands inside the heap");
    return NULL;
  }
#if OML_X64
  char *h = data;
  swigluGradRows((const float *)(h + dy), h + g, h + up, h + dg, h + du, (int)rows, (int)I, (int)stride);
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
  napi_create_function(env, "attend8", NAPI_AUTO_LENGTH, Attend8, NULL, &f);
  napi_set_named_property(env, exports, "attend8", f);
  napi_create_function(env, "swiglu", NAPI_AUTO_LENGTH, Swiglu, NULL, &f);
  napi_set_named_property(env, exports, "swiglu", f);
  napi_create_function(env, "swigluGrad", NAPI_AUTO_LENGTH, SwigluGrad, NULL, &f);
  napi_set_named_property(env, exports, "swigluGrad", f);
  napi_create_function(env, "available", NAPI_AUTO_LENGTH, Available, NULL, &f);
  napi_set_named_property(env, exports, "available", f);
  return exports;
}
