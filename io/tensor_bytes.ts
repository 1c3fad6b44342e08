/**
 * The bytes of tensors in safetensors files: byte order, the check of BOOL bytes, and the
 * decoding of the float dtypes the library has no tensor type for (F16, BF16, F64) into f32, so
 * files from other tools (HuggingFace models are often F16 or BF16) load with `castTo: "f32"`.
 * @module
 */
import { type DType, dtypeInfo, type TypedArray } from "../kernels/dtype.ts";

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian bytes of a typed array (a view when the host is little-endian). */
export function toLittleEndian(data: TypedArray): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1
    ? bytes
    : swapped(bytes, data.BYTES_PER_ELEMENT);
}

function swapped(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) {
    for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  }
  return out;
}

/** A new typed array of `dtype` holding little-endian `bytes` (NaN payloads and -0 are kept). */
export function fromLittleEndian(bytes: Uint8Array, dtype: DType): TypedArray {
  const info = dtypeInfo(dtype, "safetensors");
  const out = info.create(bytes.length / info.bytes);
  const src = LITTLE_ENDIAN || info.bytes === 1 ? bytes : swapped(bytes, info.bytes);
  new Uint8Array(out.buffer).set(src);
  return out;
}

/**
 * Throws a RangeError unless every byte of a BOOL tensor's data is 0 or 1 (the format allows
 * nothing else, and other bytes would read as true but count as their value in arithmetic).
 * `where` names the file or source; `fileOffset` is the position of `bytes[0]` in it.
 */
export function checkBoolBytes(
  bytes: Uint8Array,
  name: string,
  where: string,
  fileOffset: number,
): void {
  const i = bytes.findIndex((b) => b > 1);
  if (i >= 0) {
    throw new RangeError(
      `safetensors: ${where}: BOOL tensor ${JSON.stringify(name)} has byte 0x${
        bytes[i].toString(16).padStart(2, "0")
      } at element ${i} (file offset ${fileOffset + i}); BOOL bytes must be 0 or 1`,
    );
  }
}

/** The safetensors dtypes {@linkcode decodeFloatsToF32} can decode. */
export const CASTABLE_TO_F32: readonly string[] = ["F16", "BF16", "F32", "F64"];

const BYTES: Readonly<Record<string, number>> = { F16: 2, BF16: 2, F32: 4, F64: 8 };

/**
 * The f32 value of IEEE 754 half-precision bits (`0..0xffff`): normals, subnormals, ±0,
 * ±Infinity and NaN (its payload moves to the top of the f32 mantissa; {@linkcode decodeFloatsToF32}
 * keeps those bits exactly, a JS number may quiet a signalling NaN). Every
 * f16 value is exactly representable in f32.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { f16BitsToF32 } from "@longseq/tensor";
 * assert.equal(f16BitsToF32(0x3c00), 1);
 * assert.equal(f16BitsToF32(0x0001), 2 ** -24); // the smallest subnormal
 * assert.equal(f16BitsToF32(0xfc00), -Infinity);
 * ```
 */
export function f16BitsToF32(bits: number): number {
  const out = new Float32Array(1);
  new Uint32Array(out.buffer)[0] = f16ToF32Bits(bits);
  return out[0];
}

/** The f32 bit pattern of f16 bits, computed on integers so NaN payloads survive. */
function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // ±Infinity, NaN
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0; // ±0
  // Subnormal: mant × 2^-24. Shift until the implicit bit (0x400) appears; e extra shifts.
  let e = 0;
  for (mant <<= 1; (mant & 0x400) === 0; mant <<= 1) e++;
  return (sign | ((112 - e) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/**
 * Decodes the little-endian bytes of a safetensors tensor of dtype `format` (`F16`, `BF16`,
 * `F32` or `F64`) into a new Float32Array. F16 is converted exactly (subnormals, infinities and
 * NaN included); BF16 is the upper 16 bits of an f32, so it is exact too; F64 is rounded to the
 * nearest f32 (magnitudes beyond f32's range become ±Infinity). Throws a RangeError for other
 * dtypes or a byte count that is not a multiple of the element size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFloatsToF32 } from "@longseq/tensor";
 * const f = decodeFloatsToF32("BF16", new Uint8Array([0x80, 0x3f, 0x00, 0xc0])); // 2 elements
 * assert.deepEqual(f, new Float32Array([1, -2]));
 * ```
 */
export function decodeFloatsToF32(format: string, bytes: Uint8Array): Float32Array {
  const width = BYTES[format];
  if (!width) {
    throw new RangeError(
      `decodeFloatsToF32: cannot cast ${format} to f32 (castable: ${CASTABLE_TO_F32.join(", ")})`,
    );
  }
  if (bytes.length % width !== 0) {
    throw new RangeError(
      `decodeFloatsToF32: ${bytes.length} bytes is not a whole number of ${format} values`,
    );
  }
  const n = bytes.length / width;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bits = new Uint32Array(out.buffer);
  if (format === "F16") {
    for (let i = 0; i < n; i++) bits[i] = f16ToF32Bits(view.getUint16(2 * i, true));
  } else if (format === "BF16") {
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  } else if (format === "F32") {
    for (let i = 0; i < n; i++) bits[i] = view.getUint32(4 * i, true);
  } else {
    for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
  }
  return out;
}
