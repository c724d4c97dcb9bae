/**
 * Just enough of the ONNX protobuf (onnx/onnx.proto, proto2) to write a model: ModelProto,
 * GraphProto, NodeProto, AttributeProto, TensorProto and ValueInfoProto. Field numbers are
 * the ones of onnx.proto; repeated scalars are written unpacked, as proto2 does by default.
 * Used to export our own models to ONNX (export-llama-onnx.ts), e.g. to test the onnx engine.
 */

/** TensorProto.DataType values we use. */
export const ONNX_DTYPE = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const;

/** AttributeProto.AttributeType values we use. */
const ATTR_TYPE = { FLOAT: 1, INT: 2, INTS: 7 } as const;

const utf8 = new TextEncoder();

/** A protobuf message being written: a list of byte chunks (weights are not copied twice). */
export class PbWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  private varint(value: bigint): void {
    // int64 as two's complement: negatives take 10 bytes, as protobuf writes them
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wireType: 0 | 2 | 5): void {
    this.varint(BigInt((field << 3) | wireType));
  }

  /** An int32/int64/enum field (wire type 0). */
  int(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.varint(BigInt(value));
    return this;
  }

  /** A float field (wire type 5). */
  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  /** A bytes field. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.varint(BigInt(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** An embedded message field. */
  message(field: number, m: PbWriter): this {
    this.tag(field, 2);
    this.varint(BigInt(m.size));
    for (const c of m.chunks) {
      this.push(c);
    }
    return this;
  }

  /** The encoded message. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** A tensor of an ONNX graph (initializer or constant): float32, int64 or bool data. */
export interface OnnxTensor {
  name: string;
  dims: readonly number[];
  data: Float32Array | BigInt64Array | Uint8Array;
  dtype: (typeof ONNX_DTYPE)[keyof typeof ONNX_DTYPE];
}

/** TensorProto: dims(1), data_type(2), name(8), raw_data(9, little-endian). */
export function tensorProto(t: OnnxTensor): PbWriter {
  const m = new PbWriter();
  for (const d of t.dims) {
    m.int(1, d);
  }
  m.int(2, t.dtype).string(8, t.name);
  // raw_data is little-endian; typed arrays are little-endian on every platform Node runs on
  m.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return m;
}

/** An attribute value: a float, an int, or a list of ints. */
export type OnnxAttribute = { f: number } | { i: number } | { ints: readonly number[] };

/** AttributeProto: name(1), f(2), i(3), ints(8), type(20). */
function attributeProto(name: string, a: OnnxAttribute): PbWriter {
  const m = new PbWriter().string(1, name);
  if ("f" in a) {
    m.float(2, a.f).int(20, ATTR_TYPE.FLOAT);
  } else if ("i" in a) {
    m.int(3, a.i).int(20, ATTR_TYPE.INT);
  } else {
    for (const v of a.ints) {
      m.int(8, v);
    }
    m.int(20, ATTR_TYPE.INTS);
  }
  return m;
}

export interface OnnxNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name: string;
  attributes?: Readonly<Record<string, OnnxAttribute>>;
}

/** NodeProto: input(1), output(2), name(3), op_type(4), attribute(5). */
function nodeProto(n: OnnxNode): PbWriter {
  const m = new PbWriter();
  for (const i of n.inputs) {
    m.string(1, i);
  }
  for (const o of n.outputs) {
    m.string(2, o);
  }
  m.string(3, n.name).string(4, n.op);
  for (const [k, v] of Object.entries(n.attributes ?? {})) {
    m.message(5, attributeProto(k, v));
  }
  return m;
}

/** A graph input or output: element type and dims (a number, or a symbolic name). */
export interface OnnxValueInfo {
  name: string;
  dtype: (typeof ONNX_DTYPE)[keyof typeof ONNX_DTYPE];
  dims: readonly (number | string)[];
}

/** ValueInfoProto{name(1), type(2): TypeProto{tensor_type(1): {elem_type(1), shape(2): {dim(1): {dim_value(1) | dim_param(2)}}}}}. */
function valueInfoProto(v: OnnxValueInfo): PbWriter {
  const shape = new PbWriter();
  for (const d of v.dims) {
    shape.message(1, typeof d === "number" ? new PbWriter().int(1, d) : new PbWriter().string(2, d));
  }
  const tensorType = new PbWriter().int(1, v.dtype).message(2, shape);
  return new PbWriter().string(1, v.name).message(2, new PbWriter().message(1, tensorType));
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
}

/**
 * Encode a ModelProto: ir_version(1), producer_name(2), graph(7), opset_import(8).
 * GraphProto: node(1), name(2), initializer(5), input(11), output(12).
 */
export function encodeOnnxModel(g: OnnxGraph, opts: { opset: number; irVersion: number; producer: string }): Uint8Array {
  const graph = new PbWriter();
  for (const n of g.nodes) {
    graph.message(1, nodeProto(n));
  }
  graph.string(2, g.name);
  for (const t of g.initializers) {
    graph.message(5, tensorProto(t));
  }
  for (const v of g.inputs) {
    graph.message(11, valueInfoProto(v));
  }
  for (const v of g.outputs) {
    graph.message(12, valueInfoProto(v));
  }
  const opset = new PbWriter().string(1, "").int(2, opts.opset);
  return new PbWriter().int(1, opts.irVersion).string(2, opts.producer).message(7, graph).message(8, opset).finish();
}
