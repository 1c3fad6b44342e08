/**
 * Spec of the counter-based `random` kernel (input: the key or keys, u32) and the constants of
 * the Threefry-2x32 hash and of the samplers, shared by every backend so that all produce the
 * same bits for the same key.
 * @module
 */
import type { DType } from "../dtype.ts";

/** What a random kernel computes per counter. */
export type RandomMode =
  | "keys"
  | "bits"
  | "uniform"
  | "normal"
  | "truncatedNormal"
  | "bernoulli"
  | "randint";

/**
 * Parameters of one random kernel launch. `words` holds four 32-bit parameters whose meaning
 * depends on the mode (f32 values stored as their bits, i32 as two's complement):
 * - `uniform`: minval, maxval - minval, largest allowed value, unused.
 * - `normal`: mean, stddev, unused, unused.
 * - `truncatedNormal`: a, b - a, lowest allowed value, largest allowed value.
 * - `bernoulli`: p.
 * - `randint`: span (u32, 0 meaning 2^32), multiplier (u32), minval (i32); reads two keys.
 */
export interface RandomParams {
  /** The kernel's output. */
  readonly mode: RandomMode;
  /** Number of counters hashed (output pairs for `keys`, elements otherwise). */
  readonly n: number;
  /** High 32 bits of the first counter. */
  readonly counterHi: number;
  /** Low 32 bits of the first counter. */
  readonly counterLo: number;
  /** Mode parameters as raw 32-bit words. */
  readonly words: Uint32Array;
}

/** Output dtype of each mode. */
export const RANDOM_DTYPE: Readonly<Record<RandomMode, DType>> = {
  keys: "u32",
  bits: "u32",
  uniform: "f32",
  normal: "f32",
  truncatedNormal: "f32",
  bernoulli: "bool",
  randint: "i32",
};

/** Rotation constants of the two alternating groups of four rounds. */
export const ROTATIONS: readonly (readonly number[])[] = [[13, 15, 26, 6], [17, 29, 16, 24]];
/** Key-schedule parity constant of Threefry (Skein's C240). */
export const PARITY = 0x1bd11bda;

/**
 * Threefry-2x32 with 20 rounds: hashes the counter `(c0, c1)` under the key `(k0, k1)`.
 * Writes the two output words into `out` (avoiding an allocation per call) and returns it.
 */
export function threefry2x32(
  k0: number,
  k1: number,
  c0: number,
  c1: number,
  out: Uint32Array = new Uint32Array(2),
): Uint32Array {
  const ks0 = k0 | 0, ks1 = k1 | 0, ks2 = (k0 ^ k1 ^ PARITY) | 0;
  let x0 = (c0 + ks0) | 0, x1 = (c1 + ks1) | 0;
  // The key schedule rotates through (k1, k0^k1^C, k0) for x0, one step ahead for x1.
  let ka = ks1, kb = ks2, kc = ks0;
  for (let g = 0; g < 5; g++) {
    // The ROTATIONS of group g as literal shifts: the CPU samplers spend most of their time
    // here, and reading them from the table made this several times slower.
    const odd = g & 1;
    x0 = (x0 + x1) | 0;
    x1 = (odd ? (x1 << 17) | (x1 >>> 15) : (x1 << 13) | (x1 >>> 19)) ^ x0;
    x0 = (x0 + x1) | 0;
    x1 = (odd ? (x1 << 29) | (x1 >>> 3) : (x1 << 15) | (x1 >>> 17)) ^ x0;
    x0 = (x0 + x1) | 0;
    x1 = (odd ? (x1 << 16) | (x1 >>> 16) : (x1 << 26) | (x1 >>> 6)) ^ x0;
    x0 = (x0 + x1) | 0;
    x1 = (odd ? (x1 << 24) | (x1 >>> 8) : (x1 << 6) | (x1 >>> 26)) ^ x0;
    // Key injection after every 4 rounds.
    x0 = (x0 + ka) | 0;
    x1 = (x1 + kb + g + 1) | 0;
    const k = ka;
    ka = kb, kb = kc, kc = k;
  }
  out[0] = x0;
  out[1] = x1;
  return out;
}

/** `nextafter(-1, 0)` in f32: the lower end of the uniform that feeds the inverse erf. */
export const NORMAL_LO = -1 + 2 ** -24;

/** Four parameter words written as f32 values. */
export function f32Words(...values: number[]): Uint32Array {
  const words = new Uint32Array(4);
  new Float32Array(words.buffer).set(values);
  return words;
}

/** The adjacent f32 of `x` towards +inf (`up`) or -inf. */
export function nextF32(x: number, up: boolean): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  if (f[0] === 0) return up ? 2 ** -149 : -(2 ** -149);
  u[0] += (f[0] > 0) === up ? 1 : -1;
  return f[0];
}

const fr = Math.fround;
/** Giles' coefficients for erfinv, highest degree first, rounded to f32. */
export const ERFINV_COEFFS: { readonly central: number[]; readonly tail: number[] } = {
  central: [
    2.81022636e-08,
    3.43273939e-07,
    -3.5233877e-06,
    -4.39150654e-06,
    0.00021858087,
    -0.00125372503,
    -0.00417768164,
    0.246640727,
    1.50140941,
  ].map(fr),
  tail: [
    -0.000200214257,
    0.000100950558,
    0.00134934322,
    -0.00367342844,
    0.00573950773,
    -0.0076224613,
    0.00943887047,
    1.00167406,
    2.83297682,
  ].map(fr),
};
