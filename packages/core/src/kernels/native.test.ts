import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { nativeAddonPath, nativeKernels, nativeStatus } from "./native.js";
import { fmaAvailable, packPanels, simdGemm } from "./simd-gemm.js";
import { WebAssemblyApi } from "./wasm-heap.js";

/** Deterministic values in [-1, 1), some tiny (products that round differently fused or not). */
function fill(heap: Float32Array, at: number, n: number, seed: number): void {
  let s = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    heap[at + i] = (s / 1073741824 - 1) * (i % 7 === 2 ? 1e-3 : 1);
  }
}

const hasCompiler = process.arch === "x64" && (process.platform === "linux" || process.platform === "darwin") && process.env.OML_NATIVE_BUILD !== "0" && spawnSync(process.env.CC || "cc", ["--version"], { stdio: "ignore" }).status === 0;

describe("native kernels", () => {
  test("`pnpm build` made the addon wherever a C compiler is", () => {
    // A machine with a compiler that ends up without the addon means the build broke.
    expect(existsSync(nativeAddonPath()) || !hasCompiler).toBe(true);
    expect(nativeStatus()).toMatch(/\S/);
  });

  const kernels = nativeKernels();
  describe.skipIf(!kernels)("AVX2 GEMM (here: " + nativeStatus() + ")", () => {
    const native = kernels?.gemm;
    // One memory, shared or not, operands at byte addresses as runGemm lays them out.
    const run = (shared: boolean, M: number, N: number, K: number, transposeA: boolean, accumulate: boolean): void => {
      const memory = new WebAssemblyApi.Memory({ initial: 64, maximum: 1024, shared });
      const heap = new Float32Array(memory.buffer);
      const a = 64; // floats, A stored (M, K) or (K, M)
      const b = a + M * K + 16; // (K, N)
      const panels = b + K * N + 16;
      const c1 = panels + Math.ceil(N / 8) * 8 * K + 16;
      const c2 = c1 + M * N + 16;
      fill(heap, a, M * K, M + 3 * N + 7 * K);
      fill(heap, b, K * N, 11 * M + N);
      fill(heap, c1, M * N, 5); // the C that `accumulate` adds to
      heap.copyWithin(c2, c1, c1 + M * N);
      packPanels(heap, b, N, 1, 0, K, 0, N, panels);
      const [rsA, csA] = transposeA ? [4, M * 4] : [K * 4, 4];
      simdGemm(memory).gemm(a * 4, panels * 4, c1 * 4, M, N, K, rsA, csA, N * 4, accumulate ? 1 : 0);
      native?.(heap, a * 4, panels * 4, c2 * 4, M, N, K, rsA, csA, N * 4, accumulate ? 1 : 0);
      // bit for bit: each element sums its products in k order, one FMA at a time, in both
      const w = new Uint32Array(memory.buffer);
      let diff = 0;
      for (let i = 0; i < M * N; i++) {
        diff += w[c1 + i] === w[c2 + i] ? 0 : 1;
      }
      expect(diff, `(${M}, ${K})·(${K}, ${N}) transposeA=${transposeA} accumulate=${accumulate} shared=${shared}`).toBe(0);
      // and the product itself, against its float64 definition
      for (const i of accumulate ? [] : [0, M * N - 1, (M * N) >> 1]) {
        const [r, col] = [Math.floor(i / N), i % N];
        let s = 0;
        for (let k = 0; k < K; k++) {
          s += (heap[a + (transposeA ? k * M + r : r * K + k)] as number) * (heap[b + k * N + col] as number);
        }
        expect(Math.abs((heap[c2 + i] as number) - s)).toBeLessThan(1e-5 * (1 + Math.abs(s)));
      }
    };

    test("the same bits as the wasm FMA kernel: edges of the 6 × 16 blocks, both A layouts, accumulate, shared memory", () => {
      expect(fmaAvailable()).toBe(true);
      for (const M of [1, 5, 6, 7, 13, 128]) {
        for (const N of [1, 7, 8, 9, 16, 17, 24, 172]) {
          for (const K of [1, 3, 64]) {
            run(false, M, N, K, (M + N) % 2 === 0, (M + K) % 3 === 0);
          }
        }
      }
      run(true, 37, 172, 64, false, false);
      run(true, 128, 64, 172, true, true);
    });

    test("gemmBatch gives the wasm gemmBatch's bits (attention's batched products, every transpose)", () => {
      const memory = new WebAssemblyApi.Memory({ initial: 64 });
      const heap = new Float32Array(memory.buffer);
      const { gemmBatch } = simdGemm(memory);
      for (const [batch, M, N, K, ta, tb] of [[128, 36, 18, 8, false, true], [128, 36, 8, 18, false, false], [64, 18, 8, 36, true, false], [5, 7, 13, 3, true, true], [3, 1, 1, 1, false, false]] as const) {
        const [a, b] = [64, 64 + batch * M * K + 16];
        const [scratch, c1] = [b + batch * K * N + 16, b + batch * K * N + 16 + Math.ceil(N / 8) * 8 * K + 16];
        const c2 = c1 + batch * M * N + 16;
        fill(heap, a, batch * M * K, M + N);
        fill(heap, b, batch * K * N, K + 2 * N);
        const [rsA, csA] = ta ? [4, M * 4] : [K * 4, 4];
        const [rsB, csB] = tb ? [4, K * 4] : [N * 4, 4];
        const args = [rsA, csA, rsB, csB, M * K * 4, K * N * 4, M * N * 4, scratch * 4] as const;
        gemmBatch(a * 4, b * 4, c1 * 4, batch, M, N, K, ...args);
        kernels?.gemmBatch(heap, a * 4, b * 4, c2 * 4, batch, M, N, K, ...args);
        const w = new Uint32Array(memory.buffer);
        expect(Array.from(w.subarray(c2, c2 + batch * M * N)), `${batch} × (${M}, ${K})·(${K}, ${N}) ta ${ta} tb ${tb}`).toEqual(Array.from(w.subarray(c1, c1 + batch * M * N)));
      }
    });

    test("pack gives packPanels' panels, both layouts, partial panels", () => {
      const heap = new Float32Array(new WebAssemblyApi.Memory({ initial: 8 }).buffer);
      fill(heap, 0, 40000, 3);
      for (const [K, N, k0, kc, j0, nc, transposed] of [[64, 172, 0, 64, 0, 172, true], [300, 70, 256, 44, 0, 70, false], [9, 13, 2, 5, 3, 10, true], [5, 8, 0, 5, 0, 8, false]] as const) {
        const [rs, cs] = transposed ? [1, K] : [N, 1];
        const [d1, d2] = [50000, 80000];
        heap.fill(7, d1, d2 + 30000); // padding lanes must come back zero, not stale
        packPanels(heap, 100, rs, cs, k0, kc, j0, nc, d1);
        kernels?.pack(heap, 100, rs, cs, k0, kc, j0, nc, d2);
        const n = Math.ceil(nc / 8) * 8 * kc;
        expect(Array.from(heap.subarray(d2, d2 + n)), `K ${K} N ${N} k0 ${k0} kc ${kc} j0 ${j0} nc ${nc}`).toEqual(Array.from(heap.subarray(d1, d1 + n)));
      }
      expect(() => kernels?.pack(heap, 0, 1, 64, 0, 64, 0, 1e6, 0)).toThrow(RangeError);
    });

    test("operands outside the heap throw a RangeError instead of writing past it", () => {
      const heap = new Float32Array(new WebAssemblyApi.Memory({ initial: 1 }).buffer); // 64 KiB
      expect(() => native?.(heap, 0, 0, 65536 - 64, 8, 32, 4, 16, 4, 128, 0)).toThrow(RangeError);
      expect(() => native?.(heap, 60000, 0, 0, 100, 8, 64, 256, 4, 32, 0)).toThrow(RangeError);
    });
  });
});
