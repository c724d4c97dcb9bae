/**
 * Fuzzing the reader with fast-check: truncated files, corrupted bytes, forged lengths and
 * hostile headers must each either load consistently or throw SafetensorsFormatError (never
 * another error, never a hang, never an allocation beyond a small multiple of the file size).
 * And the writer: random tensors round-trip exactly (F32) or as the conversions say (F16/BF16).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SafetensorsFormatError } from "../errors.js";
import { f32BitsToBf16Bits, f32BitsToF16Bits, f16BitsToF32Bits } from "./safetensors-dtypes.js";
import { readSafetensors, writeSafetensors, type LoadedTensor, type TensorToWrite } from "./safetensors.js";

let dir: string;
let base: Buffer; // a valid file with several dtypes and metadata
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "oml-st-fuzz-"));
  const file = path.join(dir, "base.safetensors");
  const tensors = new Map<string, TensorToWrite>([
    ["model.norm.weight", { shape: [4], data: new Float32Array([1, 2, 3, 4]) }],
    ["model.embed_tokens.weight", { shape: [3, 2], data: new Float32Array([0.5, -1, 2, 8, 1e-3, -0]) }],
    ["position_ids", { shape: [1, 3], dtype: "I64", ints: new BigInt64Array([0n, 1n, 2n]) }],
    ["mask", { shape: [2], dtype: "BOOL", ints: new Uint8Array([1, 0]) }],
    ["scalar", { shape: [], data: new Float32Array([7]) }],
  ]);
  await writeSafetensors(file, tensors, { dtype: "BF16", metadata: { format: "pt" } });
  base = await readFile(file);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bytes a loaded result holds: must stay within a small multiple of the file size. */
function loadedBytes(tensors: Map<string, LoadedTensor>): number {
  let n = 0;
  for (const t of tensors.values()) {
    n += t.data.byteLength + (t.ints?.byteLength ?? 0);
  }
  return n;
}

/** Read `bytes` from a file: it must load consistently or fail with SafetensorsFormatError. */
async function loadsOrFormatError(bytes: Uint8Array): Promise<void> {
  const file = path.join(dir, `case-${counter++}.safetensors`);
  await writeFile(file, bytes);
  try {
    const tensors = await readSafetensors(file);
    for (const [name, t] of tensors) {
      expect(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), name).toBe(true);
      const size = t.shape.reduce((a, b) => a * b, 1);
      expect(t.data.length, name).toBe(size);
    }
    // Worst case: 1-byte ints become 4-byte floats plus the 1-byte exact copy.
    expect(loadedBytes(tensors)).toBeLessThanOrEqual(5 * bytes.length);
  } catch (err) {
    if (!(err instanceof SafetensorsFormatError)) {
      throw err;
    }
    expect(err.message).toContain(file);
  } finally {
    await rm(file, { force: true });
  }
}

const FUZZ_TIMEOUT = 30_000;

describe("reader fuzzing", () => {
  it("the base file loads", async () => {
    const file = path.join(dir, "base-check.safetensors");
    await writeFile(file, base);
    expect((await readSafetensors(file)).size).toBe(5);
  });

  it(
    "truncated files",
    async () => {
      await fc.assert(fc.asyncProperty(fc.nat({ max: base.length - 1 }), (len) => loadsOrFormatError(base.subarray(0, len))), { numRuns: 150 });
    },
    FUZZ_TIMEOUT,
  );

  it(
    "random byte corruption, biased to the length prefix and the header",
    async () => {
      const headerEnd = 8 + Number(base.readBigUInt64LE(0));
      const edit = fc.record({
        at: fc.oneof(fc.nat({ max: 7 }), fc.nat({ max: headerEnd - 1 }), fc.nat({ max: base.length - 1 })),
        value: fc.integer({ min: 0, max: 255 }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 6 }), async (edits) => {
          const bytes = Buffer.from(base);
          for (const { at, value } of edits) {
            bytes[at] = value;
          }
          await loadsOrFormatError(bytes);
        }),
        { numRuns: 300 },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    "forged header lengths (huge, past the file, inside the header)",
    async () => {
      const len = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: BigInt(base.length + 16) }), fc.constantFrom(2n ** 63n, 2n ** 64n - 1n, 100_000_001n));
      await fc.assert(
        fc.asyncProperty(len, async (n) => {
          const bytes = Buffer.from(base);
          bytes.writeBigUInt64LE(n, 0);
          await loadsOrFormatError(bytes);
        }),
        { numRuns: 150 },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    "hostile headers: bad dtypes, shapes, offsets, overlaps, overflow",
    async () => {
      const num = fc.oneof(
        fc.nat({ max: 64 }),
        fc.integer({ min: -5, max: -1 }),
        fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e308, 0.5, -0),
        fc.double(),
      );
      const entry = fc.record(
        {
          dtype: fc.oneof(fc.constantFrom("F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "f32", ""), fc.string(), fc.integer()),
          shape: fc.oneof(fc.array(num, { maxLength: 4 }), fc.anything()),
          data_offsets: fc.oneof(fc.tuple(num, num), fc.array(num, { maxLength: 3 }), fc.anything()),
        },
        { requiredKeys: [] },
      );
      const header = fc.oneof(
        fc.dictionary(fc.oneof(fc.string(), fc.constantFrom("__metadata__", "__proto__", "constructor", "0")), fc.oneof(entry, fc.anything()), { maxKeys: 5 }),
        fc.jsonValue(),
      );
      await fc.assert(
        fc.asyncProperty(header, fc.nat({ max: 300 }), fc.boolean(), async (h, dataLen, pad) => {
          let json: string;
          try {
            json = JSON.stringify(h) ?? "null";
          } catch {
            return; // e.g. BigInt from fc.anything(): not representable in a header
          }
          const text = Buffer.from(pad ? json.padEnd(Math.ceil(json.length / 8) * 8, " ") : json, "utf8");
          const bytes = Buffer.alloc(8 + text.length + dataLen, 0x41);
          bytes.writeBigUInt64LE(BigInt(text.length), 0);
          text.copy(bytes, 8);
          await loadsOrFormatError(bytes);
        }),
        { numRuns: 300 },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    "near-valid headers: offsets match a naive product of a bad shape",
    async () => {
      const dim = fc.oneof(fc.nat({ max: 6 }), fc.constantFrom(-1, -2, 0.5, 1.5, 2 ** 53, 2 ** 32, -0, 2 ** -1074));
      await fc.assert(
        fc.asyncProperty(fc.array(dim, { maxLength: 4 }), fc.constantFrom("F32", "F16", "U8"), async (shape, dtype) => {
          const bytesPer = { F32: 4, F16: 2, U8: 1 }[dtype];
          const naive = shape.reduce((a, b) => a * b, 1) * bytesPer;
          const end = Number.isFinite(naive) && Math.abs(naive) < 4096 ? Math.round(naive) : 16;
          const text = Buffer.from(JSON.stringify({ w: { dtype, shape, data_offsets: [0, end] } }), "utf8");
          const bytes = Buffer.alloc(8 + text.length + Math.max(0, end), 0x3c);
          bytes.writeBigUInt64LE(BigInt(text.length), 0);
          text.copy(bytes, 8);
          await loadsOrFormatError(bytes);
        }),
        { numRuns: 200 },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    "headers that are valid but tile the data section with random consistent entries still load",
    async () => {
      const dtypes = ["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL"] as const;
      const sizes = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1, BOOL: 1 };
      const spec = fc.array(fc.record({ dtype: fc.constantFrom(...dtypes), shape: fc.array(fc.nat({ max: 5 }), { maxLength: 3 }) }), { maxLength: 6 });
      await fc.assert(
        fc.asyncProperty(spec, async (list) => {
          const header: Record<string, unknown> = {};
          let offset = 0;
          list.forEach(({ dtype, shape }, i) => {
            const n = shape.reduce((a, b) => a * b, 1) * sizes[dtype];
            header[`t${i}`] = { dtype, shape, data_offsets: [offset, offset + n] };
            offset += n;
          });
          const text = Buffer.from(JSON.stringify(header), "utf8");
          const bytes = Buffer.alloc(8 + text.length + offset, 0x3f);
          bytes.writeBigUInt64LE(BigInt(text.length), 0);
          text.copy(bytes, 8);
          const file = path.join(dir, `valid-${counter++}.safetensors`);
          await writeFile(file, bytes);
          const tensors = await readSafetensors(file);
          expect(tensors.size).toBe(list.length);
          await rm(file);
        }),
        { numRuns: 100 },
      );
    },
    FUZZ_TIMEOUT,
  );
});

describe("writer round trip", () => {
  const name = fc.string({ minLength: 0, maxLength: 12 }).filter((s) => s !== "__metadata__");
  const tensor = fc
    .array(fc.nat({ max: 4 }), { maxLength: 3 })
    .chain((shape) =>
      fc.record({ shape: fc.constant(shape), bits: fc.array(fc.nat({ max: 0xffffffff }), { minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) }) }),
    );
  const widen = { F32: (b: number) => b, F16: (b: number) => f16BitsToF32Bits(f32BitsToF16Bits(b)), BF16: (b: number) => (f32BitsToBf16Bits(b) << 16) >>> 0 };

  it(
    "random tensors read back as written (F32 bit-exact, F16/BF16 as rounded)",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.dictionary(name, tensor, { maxKeys: 5 }), fc.constantFrom("F32", "F16", "BF16" as const), async (dict, dtype) => {
          const tensors = new Map<string, TensorToWrite>(Object.entries(dict).map(([k, t]) => [k, { shape: t.shape, data: new Float32Array(new Uint32Array(t.bits).buffer) }]));
          const file = path.join(dir, `rt-${counter++}.safetensors`);
          await writeSafetensors(file, tensors, { dtype });
          const back = await readSafetensors(file);
          expect([...back.keys()].sort()).toEqual([...tensors.keys()].sort());
          for (const [k, t] of Object.entries(dict)) {
            const got = back.get(k);
            expect(got?.shape).toEqual(t.shape);
            expect([...new Uint32Array((got?.data ?? new Float32Array()).buffer)]).toEqual(t.bits.map((b) => widen[dtype](b)));
          }
          await rm(file);
        }),
        { numRuns: 150 },
      );
    },
    FUZZ_TIMEOUT,
  );
});
