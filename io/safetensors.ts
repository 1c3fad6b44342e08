/**
 * The safetensors file format, as pure functions on bytes: an 8-byte little-endian header
 * length `N`, `N` bytes of JSON header (`{"name": {"dtype", "shape", "data_offsets"}, …,
 * "__metadata__": {string: string}}`, padded with spaces), then the tensors' little-endian,
 * row-major data, contiguous and without holes. Offsets count from the start of the data.
 *
 * {@linkcode saveCheckpoint} and {@linkcode loadCheckpoint} build on these to write pytrees to
 * files atomically.
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../kernels/dtype.ts";
import { fmt, sizeOf } from "../ops/tensor.ts";
import {
  CASTABLE_TO_F32,
  checkBoolBytes,
  decodeFloatsToF32,
  fromLittleEndian,
  toLittleEndian,
} from "./tensor_bytes.ts";

export {
  CASTABLE_TO_F32,
  checkBoolBytes,
  decodeFloatsToF32,
  f16BitsToF32,
  fromLittleEndian,
  toLittleEndian,
} from "./tensor_bytes.ts";

/** The safetensors names of the library's dtypes. */
const TO_FORMAT: Readonly<Record<DType, string>> = {
  f32: "F32",
  f16: "F16",
  i32: "I32",
  u32: "U32",
  bool: "BOOL",
};
const FROM_FORMAT: Readonly<Record<string, DType>> = {
  F32: "f32",
  F16: "f16",
  I32: "i32",
  U32: "u32",
  BOOL: "bool",
};
/** Bytes per element of every dtype the format defines (so foreign files can be parsed). */
const FORMAT_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
};
/** The format's own cap on the header, which guards against reading garbage as a length. */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's values on the host: what {@linkcode encodeSafetensors} takes and decode gives. */
export interface HostTensor {
  /** Element type. */
  dtype: DType;
  /** Dimensions, outermost first (`[]` for a scalar). */
  shape: readonly number[];
  /** `sizeOf(shape)` values, row-major, in the dtype's typed array (`Uint8Array` 0/1 for bool). */
  data: TypedArray;
}

/** One tensor's header entry, as found in a file. */
export interface HeaderEntry {
  /** Tensor name. */
  name: string;
  /** Format dtype name (`F32`, `I32`, `U32`, `BOOL`, or another the format defines). */
  format: string;
  /** The library's dtype, or `null` for a format dtype the library has no counterpart for. */
  dtype: DType | null;
  /** Dimensions. */
  shape: number[];
  /** Start and end byte, relative to the start of the data section. */
  offsets: [number, number];
}

/** A parsed and validated header. */
export interface SafetensorsHeader {
  /** Entries ordered by their data offsets. */
  entries: HeaderEntry[];
  /** The `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
  /** Byte position where the data section starts (8 + header length). */
  dataStart: number;
  /** Total file size the header implies. */
  totalBytes: number;
}

const fail = (msg: string): never => {
  throw new RangeError(`safetensors: ${msg}`);
};

/** The format dtype name of a library dtype. */
export function formatDtype(dtype: DType): string {
  return TO_FORMAT[dtypeInfo(dtype, "safetensors").name];
}

/**
 * Builds the length prefix and JSON header for tensors laid out back to back in the given
 * order. The header is padded with spaces so the data starts at a multiple of 8 bytes.
 * Returns the header bytes (prefix included) and each tensor's `[begin, end)` data offsets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildSafetensorsHeader } from "@longseq/tensor";
 * const { header, offsets } = buildSafetensorsHeader([{ name: "w", dtype: "f32", shape: [2] }]);
 * assert.equal(header.length % 8, 0);
 * assert.deepEqual(offsets, [[0, 8]]);
 * ```
 */
export function buildSafetensorsHeader(
  entries: readonly { name: string; dtype: DType; shape: readonly number[] }[],
  metadata: Readonly<Record<string, string>> = {},
): { header: Uint8Array; offsets: [number, number][] } {
  const json: Record<string, unknown> = {};
  const meta = Object.entries(metadata);
  if (meta.length) {
    for (const [k, v] of meta) {
      if (typeof v !== "string") fail(`metadata value of ${JSON.stringify(k)} is not a string`);
    }
    json.__metadata__ = Object.fromEntries(meta);
  }
  const offsets: [number, number][] = [];
  let at = 0;
  for (const { name, dtype, shape } of entries) {
    if (name === "__metadata__") fail(`"__metadata__" cannot name a tensor`);
    if (Object.hasOwn(json, name)) fail(`two tensors are named ${JSON.stringify(name)}`);
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        fail(`tensor ${JSON.stringify(name)} has shape ${fmt(shape)}`);
      }
    }
    const end = at + sizeOf(shape) * dtypeInfo(dtype, "safetensors").bytes;
    json[name] = { dtype: formatDtype(dtype), shape: [...shape], data_offsets: [at, end] };
    offsets.push([at, end]);
    at = end;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil((8 + text.length) / 8) * 8;
  const header = new Uint8Array(padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded - 8), true);
  header.set(text, 8);
  return { header, offsets };
}

/**
 * Encodes named host tensors (in iteration order) and string metadata as a safetensors file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "@longseq/tensor";
 * const bytes = encodeSafetensors({ w: { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) } });
 * assert.deepEqual(decodeSafetensors(bytes).tensors.get("w")?.data, new Float32Array([1, 2]));
 * ```
 */
export function encodeSafetensors(
  tensors: Iterable<[string, HostTensor]> | Readonly<Record<string, HostTensor>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const list = Symbol.iterator in tensors
    ? [...(tensors as Iterable<[string, HostTensor]>)]
    : Object.entries(tensors as Record<string, HostTensor>);
  for (const [name, t] of list) {
    const info = dtypeInfo(t.dtype, "safetensors");
    const expected = info.create(0).constructor;
    if (t.data.constructor !== expected || t.data.length !== sizeOf(t.shape)) {
      fail(
        `tensor ${JSON.stringify(name)} (${t.dtype}${fmt(t.shape)}) needs a ${expected.name} of ` +
          `${sizeOf(t.shape)} values, got a ${t.data.constructor.name} of ${t.data.length}`,
      );
    }
  }
  const { header, offsets } = buildSafetensorsHeader(
    list.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    metadata,
  );
  const out = new Uint8Array(header.length + (offsets.at(-1)?.[1] ?? 0));
  out.set(header);
  list.forEach(([, t], i) => out.set(toLittleEndian(t.data), header.length + offsets[i][0]));
  return out;
}

function parseEntry(name: string, value: unknown): HeaderEntry {
  const what = `tensor ${JSON.stringify(name)}`;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return fail(`${what}: header entry is not an object`);
  }
  const { dtype, shape, data_offsets: offs } = value as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in FORMAT_BYTES)) {
    return fail(`${what}: unknown dtype ${JSON.stringify(dtype)}`);
  }
  const isDim = (d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isDim)) {
    return fail(`${what}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isDim) || offs[0] > offs[1]) {
    return fail(
      `${what}: data_offsets ${JSON.stringify(offs)} is not [begin, end] with begin <= end`,
    );
  }
  const need = sizeOf(shape) * FORMAT_BYTES[dtype];
  if (offs[1] - offs[0] !== need) {
    fail(
      `${what}: ${dtype}${fmt(shape)} needs ${need} bytes but data_offsets ` +
        `[${offs[0]},${offs[1]}] span ${offs[1] - offs[0]}`,
    );
  }
  return {
    name,
    format: dtype,
    dtype: FROM_FORMAT[dtype] ?? null,
    shape: [...shape],
    offsets: [offs[0], offs[1]],
  };
}

/**
 * Parses and validates the header at the start of `bytes` (which may hold only the first part
 * of a file; pass the real file size as `fileBytes` then). Checks everything the format
 * requires: the length prefix, UTF-8 JSON starting with `{`, known dtypes, offsets matching
 * dtype × shape, a data section covered without holes or overlaps, and a file size equal to
 * what the header implies. Errors are RangeErrors naming the tensor at fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSafetensors, parseSafetensorsHeader } from "@longseq/tensor";
 * const bytes = encodeSafetensors({ n: { dtype: "i32", shape: [], data: new Int32Array([7]) } });
 * assert.deepEqual(parseSafetensorsHeader(bytes).entries[0].offsets, [0, 4]);
 * ```
 */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  fileBytes: number = bytes.length,
): SafetensorsHeader {
  if (fileBytes < 8) {
    fail(
      `${fileBytes} bytes is shorter than the 8-byte header length: truncated or not safetensors`,
    );
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES) || 8 + Number(n) > fileBytes) {
    fail(`header length ${n} does not fit in ${fileBytes} bytes: truncated or not safetensors`);
  }
  const dataStart = 8 + Number(n);
  if (bytes.length < dataStart) fail(`need the first ${dataStart} bytes to read the header`);
  let json: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart));
    if (!text.startsWith("{")) throw new SyntaxError("the header does not start with '{'");
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return fail("header is not a JSON object");
  }
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name !== "__metadata__") {
      entries.push(parseEntry(name, value));
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      fail("__metadata__ is not an object");
    }
    for (const [k, v] of Object.entries(value as object)) {
      if (typeof v !== "string") fail(`__metadata__ value of ${JSON.stringify(k)} is not a string`);
      metadata[k] = v;
    }
  }
  entries.sort((a, b) => a.offsets[0] - b.offsets[0] || a.offsets[1] - b.offsets[1]);
  let at = 0;
  let prev = "the start of the data";
  for (const e of entries) {
    if (e.offsets[0] !== at) {
      fail(
        `data_offsets of ${JSON.stringify(e.name)} start at ${e.offsets[0]} but ${prev} ends at ` +
          `${at} (${e.offsets[0] > at ? "a hole" : "an overlap"})`,
      );
    }
    at = e.offsets[1];
    prev = JSON.stringify(e.name);
  }
  const totalBytes = dataStart + at;
  if (fileBytes < totalBytes) {
    const cut = entries.find((e) => dataStart + e.offsets[1] > fileBytes)!;
    fail(
      `truncated: tensor ${JSON.stringify(cut.name)} (${cut.format}${
        fmt(cut.shape)
      }) ends at byte ` +
        `${
          dataStart + cut.offsets[1]
        } but the file has ${fileBytes} bytes (expected ${totalBytes})`,
    );
  }
  if (fileBytes > totalBytes) {
    fail(`${fileBytes - totalBytes} bytes follow the last tensor (expected ${totalBytes} in all)`);
  }
  return { entries, metadata, dataStart, totalBytes };
}

/** Options of {@linkcode decodeSafetensors} (and of `loadCheckpoint`). */
export interface DecodeOptions {
  /**
   * `"f32"`: convert tensors stored as F16, BF16 or F64 to f32 on load. Without it F16 loads
   * as f16, and BF16 or F64 (which the library has no dtype for) make the load throw, naming
   * the tensor.
   */
  castTo?: "f32";
}

/**
 * The library dtype a header entry loads as: f32 for a castable float format (F16 included)
 * when `castTo` is `"f32"`, else its own; `null` when it cannot be loaded.
 */
export function loadedDtype(e: HeaderEntry, castTo?: "f32"): DType | null {
  if (castTo === "f32" && CASTABLE_TO_F32.includes(e.format)) return "f32";
  return e.dtype;
}

/** Why a header entry cannot be loaded (for error messages). */
export function cannotHold(e: HeaderEntry, castTo?: "f32"): string {
  const hint = !castTo && CASTABLE_TO_F32.includes(e.format)
    ? ` (pass castTo: "f32" to convert it)`
    : "";
  return `tensor ${JSON.stringify(e.name)} has dtype ${e.format}, which this library cannot hold` +
    hint;
}

/**
 * One tensor from its raw little-endian bytes, validated (BOOL bytes) and cast as `castTo`
 * asks. `where` and `fileOffset` only serve error messages.
 */
export function hostTensorFromBytes(
  e: HeaderEntry,
  raw: Uint8Array,
  options: DecodeOptions & { where?: string; fileOffset?: number } = {},
): HostTensor {
  const dtype = loadedDtype(e, options.castTo) ?? fail(cannotHold(e, options.castTo));
  if (e.format === "BOOL") {
    checkBoolBytes(raw, e.name, options.where ?? "data", options.fileOffset ?? e.offsets[0]);
  }
  const data = e.dtype === dtype ? fromLittleEndian(raw, dtype) : decodeFloatsToF32(e.format, raw);
  return { dtype, shape: e.shape, data };
}

/**
 * Decodes a whole safetensors file. Tensors come back in data order; a tensor whose format
 * dtype the library lacks (BF16, I64, …) makes it throw, naming the tensor, unless `castTo:
 * "f32"` converts it (BF16, F64; F16 too, which otherwise loads as f16). BOOL tensors must hold only bytes 0 and 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "@longseq/tensor";
 * const bytes = encodeSafetensors({}, { step: "3" });
 * assert.deepEqual(decodeSafetensors(bytes).metadata, { step: "3" });
 * ```
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const { entries, metadata, dataStart } = parseSafetensorsHeader(bytes);
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const at = dataStart + e.offsets[0];
    const raw = bytes.subarray(at, dataStart + e.offsets[1]);
    tensors.set(e.name, hostTensorFromBytes(e, raw, { ...options, fileOffset: at }));
  }
  return { tensors, metadata };
}
