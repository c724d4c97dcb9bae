/**
 * Parsing and validating a safetensors header, treating the file as untrusted.
 *
 * Layout (https://huggingface.co/docs/safetensors): u64 little-endian N, N bytes of UTF-8 JSON
 * `{ "__metadata__"?: { string: string }, name: { dtype, shape, data_offsets: [begin, end] } }`,
 * then the data section. Offsets are relative to the data section; the tensors must cover it
 * exactly, without gaps or overlaps (the Rust library's `Metadata::validate` plus its
 * `MetadataIncompleteBuffer` check). Nothing here allocates more than the header itself.
 */
import { SafetensorsFormatError } from "../errors.js";
import { DTYPE_BYTES, SAFETENSORS_DTYPES, isSafetensorsDtype, type SafetensorsDtype } from "./safetensors-dtypes.js";

/** The Rust library refuses headers above 100 MB (`MAX_HEADER_SIZE`); real ones are < 1 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes of the u64 header-length prefix. */
export const HEADER_PREFIX_BYTES = 8;

/** Longest tensor name or shape quoted in an error message, so a hostile header cannot flood logs. */
const MAX_QUOTED_CHARS = 120;

/** One validated tensor entry of the header. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Number of elements: product(shape), 1 for a scalar `[]`. */
  size: number;
  /** Byte range inside the data section, `end - begin === size * DTYPE_BYTES[dtype]`. */
  begin: number;
  end: number;
}

/** A validated header: what `readSafetensorsHeader` returns. */
export interface SafetensorsHeader {
  /** The file path, as given (used in error messages). */
  file: string;
  /** `__metadata__` (string -> string), `{}` when absent. */
  metadata: Record<string, string>;
  /** The tensors, sorted by `begin` (file order). */
  entries: SafetensorsEntry[];
  /** Absolute file offset of the data section: 8 + N. */
  dataStart: number;
  /** Bytes of the data section: file size - 8 - N. */
  dataBytes: number;
}

/** `name` quoted for a message, cut to a readable length. */
export function quoteName(name: string): string {
  const cut = name.length > MAX_QUOTED_CHARS ? `${name.slice(0, MAX_QUOTED_CHARS)}…` : name;
  return JSON.stringify(cut);
}

function show(x: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(x) ?? String(x);
  } catch {
    s = String(x);
  }
  s = s.replace(/,/g, ", ");
  return s.length > MAX_QUOTED_CHARS ? `${s.slice(0, MAX_QUOTED_CHARS)}…` : s;
}

/**
 * Check the 8-byte prefix: the header length N must fit the limit and the file.
 * @param prefix the first 8 bytes of the file
 * @param fileSize total file size in bytes
 * @returns N
 */
export function parseHeaderLength(file: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < HEADER_PREFIX_BYTES || prefix.length < HEADER_PREFIX_BYTES) {
    throw new SafetensorsFormatError(`${file}: ${fileSize} bytes is too small for a safetensors file (it starts with an 8-byte header length)`, {
      hint: "the file is truncated or not a safetensors file",
    });
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsFormatError(`${file}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`, {
      hint: "the file is corrupt or not a safetensors file",
    });
  }
  const len = Number(n);
  if (HEADER_PREFIX_BYTES + len > fileSize) {
    throw new SafetensorsFormatError(`${file}: header length ${len} runs past the end of the ${fileSize}-byte file`, {
      hint: "the file is truncated; download or write it again",
    });
  }
  return len;
}

/** Decode and JSON-parse the header bytes; the result must be a JSON object. */
function parseHeaderJson(file: string, bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw new SafetensorsFormatError(`${file}: header is not valid UTF-8`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new SafetensorsFormatError(`${file}: header is not valid JSON (${why.slice(0, 200)})`, { cause });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SafetensorsFormatError(`${file}: header must be a JSON object, got ${Array.isArray(json) ? "an array" : json === null ? "null" : typeof json}`);
  }
  return json as Record<string, unknown>;
}

function parseMetadata(file: string, raw: unknown): Record<string, string> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsFormatError(`${file}: "__metadata__" must be an object of strings, got ${show(raw)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") {
      throw new SafetensorsFormatError(`${file}: "__metadata__" field ${quoteName(k)} must be a string, got ${show(v)}`);
    }
    // defineProperty, not `out[k] = v`: a key "__proto__" must stay a plain field.
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Validate one header entry on its own (dtype, shape, offsets, size) against the data section.
 * @param dataBytes size of the data section, the bound for `data_offsets`
 */
export function validateTensorEntry(file: string, name: string, raw: unknown, dataBytes: number): SafetensorsEntry {
  const where = `${file}: tensor ${quoteName(name)}`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsFormatError(`${where}: entry must be an object { dtype, shape, data_offsets }, got ${show(raw)}`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (!isSafetensorsDtype(dtype)) {
    throw new SafetensorsFormatError(`${where}: unsupported dtype ${show(dtype)} (supported: ${SAFETENSORS_DTYPES.join(", ")})`, {
      hint: "convert the checkpoint to float32, float16 or bfloat16",
    });
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new SafetensorsFormatError(`${where}: shape must be an array of non-negative integers, got ${show(shape)}`);
  }
  let size = 1;
  for (const d of shape as number[]) {
    size *= d;
    if (!Number.isSafeInteger(size)) {
      throw new SafetensorsFormatError(`${where}: shape ${show(shape)} has more than 2^53 elements`);
    }
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw new SafetensorsFormatError(`${where}: data_offsets must be two non-negative integers [begin, end], got ${show(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) {
    throw new SafetensorsFormatError(`${where}: data_offsets ${show(offsets)} end before they begin`);
  }
  if (end > dataBytes) {
    throw new SafetensorsFormatError(`${where}: data_offsets ${show(offsets)} run past the end of the ${dataBytes}-byte data section`, {
      hint: "the file is truncated; download or write it again",
    });
  }
  // size * bytes cannot lose precision here unless it exceeds 2^53, and then it cannot match `end - begin`.
  const need = size * DTYPE_BYTES[dtype];
  if (end - begin !== need) {
    throw new SafetensorsFormatError(`${where}: data_offsets ${show(offsets)} hold ${end - begin} bytes but shape ${show(shape)} × ${dtype} needs ${need}`);
  }
  return { name, dtype, shape: [...(shape as number[])], size, begin, end };
}

/**
 * Parse and fully validate a header.
 * @param file path, for messages
 * @param headerBytes the N header bytes (after the 8-byte prefix)
 * @param fileSize total file size, to bound the data section
 */
export function parseSafetensorsHeader(file: string, headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataStart = HEADER_PREFIX_BYTES + headerBytes.length;
  const dataBytes = fileSize - dataStart;
  if (dataBytes < 0) {
    throw new SafetensorsFormatError(`${file}: header length ${headerBytes.length} runs past the end of the ${fileSize}-byte file`);
  }
  const json = parseHeaderJson(file, headerBytes);
  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === "__metadata__") {
      metadata = parseMetadata(file, raw);
      continue;
    }
    entries.push(validateTensorEntry(file, name, raw, dataBytes));
  }
  // File order, then check that the ranges tile [0, dataBytes) exactly.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: SafetensorsEntry | undefined;
  for (const e of entries) {
    if (e.begin < cursor) {
      throw new SafetensorsFormatError(
        `${file}: tensor ${quoteName(e.name)}: data_offsets [${e.begin}, ${e.end}] overlap tensor ${quoteName(previous?.name ?? "")} [${previous?.begin}, ${previous?.end}]`,
      );
    }
    if (e.begin > cursor) {
      throw new SafetensorsFormatError(
        `${file}: tensor ${quoteName(e.name)}: data_offsets [${e.begin}, ${e.end}] leave a gap of ${e.begin - cursor} bytes after byte ${cursor} of the data section (the spec forbids holes)`,
      );
    }
    cursor = e.end;
    previous = e;
  }
  if (cursor !== dataBytes) {
    throw new SafetensorsFormatError(
      `${file}: the tensors cover ${cursor} bytes but the data section holds ${dataBytes} (${dataBytes - cursor} trailing bytes belong to no tensor)`,
      { hint: "the file is corrupt or was written by a broken tool" },
    );
  }
  return { file, metadata, entries, dataStart, dataBytes };
}
