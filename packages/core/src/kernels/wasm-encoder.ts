/**
 * A tiny WebAssembly binary encoder, enough to write SIMD kernels that run in place in the
 * tfjs wasm heap: the tfjs module exports its `WebAssembly.Memory`, so a module of ours that
 * imports it (as `env.memory`) reads and writes tensors by their heap address, with no copy.
 * Kernels are generated as structured code (block / loop / if) from the helpers of `op`;
 * each helper returns the instruction's bytes. Spec: webassembly.github.io/spec/core/binary.
 */

/** Value types. */
export const WasmType = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;
export type WasmValueType = (typeof WasmType)[keyof typeof WasmType];

/** Bytes of straight-line code. */
export type Code = number[];

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) {
      byte |= 0x80;
    }
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32 constants). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A SIMD instruction (prefix 0xfd) by its opcode. */
export const simdOp = (opcode: number): Code => [0xfd, ...uleb(opcode)];
const simd = simdOp;
/** memarg: alignment exponent, byte offset. */
const mem = (align: number, offset: number): Code => [align, ...uleb(offset)];

/** Instructions (i32 arithmetic is signed where it matters). */
export const op = {
  get: (i: number): Code => [0x20, ...uleb(i)],
  set: (i: number): Code => [0x21, ...uleb(i)],
  tee: (i: number): Code => [0x22, ...uleb(i)],
  i32: (n: number): Code => [0x41, ...sleb(n)],
  f32: (x: number): Code => [0x43, ...new Uint8Array(new Float32Array([x]).buffer)],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  shl: [0x74],
  shrS: [0x75],
  and: [0x71],
  eqz: [0x45],
  eq: [0x46],
  ne: [0x47],
  ltS: [0x48],
  gtS: [0x4a],
  leS: [0x4c],
  geS: [0x4e],
  fadd: [0x92],
  fsub: [0x93],
  fmul: [0x94],
  fdiv: [0x95],
  fsqrt: [0x91],
  /** f32.load at [addr + offset] */
  f32Load: (offset = 0): Code => [0x2a, ...mem(2, offset)],
  /** f32.store value at [addr + offset] */
  f32Store: (offset = 0): Code => [0x38, ...mem(2, offset)],
  /** v128.load at [addr + offset] (unaligned allowed) */
  vLoad: (offset = 0): Code => [...simd(0x00), ...mem(0, offset)],
  /** v128.store */
  vStore: (offset = 0): Code => [...simd(0x0b), ...mem(0, offset)],
  /** v128.load32_splat: one f32 into all four lanes */
  vLoadSplat: (offset = 0): Code => [...simd(0x09), ...mem(2, offset)],
  vZero: [...simd(0x0c), ...new Array<number>(16).fill(0)],
  f4Splat: simd(0x13),
  f4Lane: (lane: number): Code => [...simd(0x1f), lane],
  /** f32x4.replace_lane: (v128, f32) → v128 */
  f4ReplaceLane: (lane: number): Code => [...simd(0x20), lane],
  f4Add: simd(0xe4),
  f4Sub: simd(0xe5),
  f4Mul: simd(0xe6),
  f4Div: simd(0xe7),
  f4Sqrt: simd(0xe3),
  /** f32x4.relaxed_madd (relaxed SIMD): a·b + c, fused where the hardware has FMA */
  f4Madd: simd(0x105),
  f4Neg: simd(0xe1),
  /** f32x4.pmin: b < a ? b : a, one minps (f32x4.min's NaN rules cost V8 several instructions) */
  f4Pmin: simd(0xea),
  /** f32x4.pmax: b > a ? b : a, one maxps */
  f4Pmax: simd(0xeb),
  i4Shl: simd(0xab),
  /** v128.and */
  vAnd: simd(0x4e),
  i4Splat: simd(0x11),
  /** i32x4.ge_s */
  i4GeS: simd(0x3f),
  /** v128.const of the i32x4 lanes 0, 1, 2, 3 (with i4Splat and i4GeS: a mask of a row's last lanes) */
  i4Lanes: [...simd(0x0c), ...new Uint8Array(new Int32Array([0, 1, 2, 3]).buffer)],
  /** v128.const of four equal f32 lanes */
  f4Const: (x: number): Code => [...simd(0x0c), ...new Uint8Array(new Float32Array([x, x, x, x]).buffer)],
  block: (body: Code): Code => [0x02, 0x40, ...body, 0x0b],
  loop: (body: Code): Code => [0x03, 0x40, ...body, 0x0b],
  if: (then: Code, otherwise?: Code): Code => [0x04, 0x40, ...then, ...(otherwise ? [0x05, ...otherwise] : []), 0x0b],
  /** if … else … end with a v128 result */
  ifV128: (then: Code, otherwise: Code): Code => [0x04, WasmType.v128, ...then, 0x05, ...otherwise, 0x0b],
  br: (depth: number): Code => [0x0c, ...uleb(depth)],
  brIf: (depth: number): Code => [0x0d, ...uleb(depth)],
  /** call the module's function `index` (the order given to wasmModule) */
  call: (index: number): Code => [0x10, ...uleb(index)],
};

/** One exported function without results. */
export interface WasmFunction {
  name: string;
  params: WasmValueType[];
  /** extra locals, numbered after the params */
  locals: WasmValueType[];
  body: Code;
}

const name = (s: string): Code => [...uleb(s.length), ...new TextEncoder().encode(s)];
const vec = (items: Code[]): Code => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Code): Code => [id, ...uleb(body.length), ...body];

/** The maximum pages of a shared memory our modules import (4 GiB). */
export const SHARED_MEMORY_MAX_PAGES = 65536;

/**
 * A module that imports `env.memory` (any size) and exports `funcs`. `shared`: the memory is
 * a shared one (maximum SHARED_MEMORY_MAX_PAGES), as the GEMM pool's (gemm-pool.ts).
 */
export function wasmModule(funcs: WasmFunction[], opts: { shared?: boolean } = {}): Uint8Array {
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((p) => [p])), 0]);
  const limits = opts.shared ? [0x03, 0x00, ...uleb(SHARED_MEMORY_MAX_PAGES)] : [0x00, 0x00]; // shared: min 0, max; else min 0, no max
  const memoryImport = [...name("env"), ...name("memory"), 0x02, ...limits];
  const codes = funcs.map((f) => {
    const body = [...vec(f.locals.map((t) => [1, t])), ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(2, vec([memoryImport])),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(codes)),
  ]);
}
