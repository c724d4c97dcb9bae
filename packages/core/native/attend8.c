/*
 * attend8: simd-attend.ts's fused attention for head size 8 in AVX2 (oml-native: addon.c), the
 * same bits, on both of its paths (transposed-K scores for nrep·T > 8 query rows per kv head,
 * per-key "direct" ones for fewer). For every batch row b and kv head g, over the R = nrep·T
 * query rows of the group (head g·nrep + r/T, t = r mod T):
 *   z[s] = (Σ_d q[d]·k_s[d])·scale + bias[t][s]  (the sum one FMA at a time in d order, then a
 *          multiply and an add, each rounded, as the wasm kernel and tf.mul / tf.add do)
 *   e[s] = exp(z[s] − max z) with the same rr2-p5 code (cutoff, masked lanes 0)
 *   Σ e in four lanes over the blocks of 4 keys in order, the S mod 4 last keys as one
 *     overlapping block of keys S−4 … S−1 whose new lanes count, then (l0 + l2) + (l1 + l3)
 *   y = ((Σ_u acc_u) · (1/Σ e)) with key LO + 4m + u into acc_u (u < 4), the keys past the
 *     last whole step into acc_0, over LO … HI: the blocks of 4 keys with any e > 0
 * Eight keys per ymm instead of four per v128 changes no element's order of operations.
 */
#include "common.h"

#if OML_X64
/* exp(d) for d ≤ 0 in the lanes of `mask` (d ≥ cutoff), 0 in the others: simd-softmax.ts's expCode with FMA. */
INLINE TARGET __m256 exp8(__m256 d, __m256 mask) {
  d = _mm256_and_ps(d, mask);
  EXP_RR2_P5(__m256, d, s, r, p, _mm256_set1_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_fmadd_ps, _mm256_slli_epi32, _mm256_castps_si256, _mm256_castsi256_ps)
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

/* Every (b, g) group: q (B, nh, T, 8); k, v (B, nkv, S − P, 8); bias (Bb, 1, T, S); out
 * (B, T, nh·8); with P > 0 row b's first P keys are prefix rowOf[b]'s of kShared, vShared
 * (G, nkv, P, 8). Byte addresses; scratch: 72·⌈S/8⌉ + 8·S floats. */
TARGET void omlAttend8(char *heap, uint64_t q, uint64_t k, uint64_t v, uint64_t bias, uint64_t out, uint64_t B, uint64_t nh, uint64_t nkv, uint64_t T, uint64_t S, uint64_t Bb,
                       uint64_t kSh, uint64_t vSh, const int32_t *rowOf, uint64_t P, float scale, float *scratch) {
  const int blocks = (int)(S + 7) / 8;
  const uint64_t L = S - P; /* each row's own keys */
  const int nrep = (int)(nh / nkv);
  const int direct = nrep * (int)T <= 8; /* the wasm kernel's choice (isDirect) */
  for (uint64_t b = 0; b < B; b++) {
    const float *biasRow = (const float *)(heap + bias) + (Bb == 1 ? 0 : b * T * S);
    for (uint64_t g = 0; g < nkv; g++) {
      const uint64_t own = (b * nkv + g) * L * 8;
      const uint64_t shared = P > 0 ? ((uint64_t)rowOf[b] * nkv + g) * P * 8 : 0;
      attendGroup8((const float *)(heap + q) + (b * nh + g * nrep) * T * 8, (const float *)(heap + kSh) + shared, (const float *)(heap + vSh) + shared, (int)P,
                   (const float *)(heap + k) + own, (const float *)(heap + v) + own, biasRow, (float *)(heap + out) + (b * T * nh + g * nrep) * 8, scratch,
                   scratch + 64 * blocks, scratch + 72 * blocks, nrep * (int)T, (int)T, (int)S, (int)nh * 8, scale, direct);
    }
  }
}
#endif
