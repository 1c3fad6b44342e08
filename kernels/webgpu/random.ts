/**
 * WebGPU random kernels: one thread per counter hashes it with Threefry-2x32 (20 rounds) and
 * turns the two words into the mode's output, exactly as the CPU reference in
 * `../cpu/random.ts` does (same integers; floats equal up to the rounding of `log` and of any
 * multiply-add the shader compiler fuses).
 * @module
 */
import { dtypeInfo } from "../dtype.ts";
import {
  ERFINV_COEFFS,
  NORMAL_LO,
  PARITY,
  RANDOM_DTYPE,
  type RandomMode,
  type RandomParams,
  ROTATIONS,
} from "../specs/random.ts";
import { FLAT_ARGS, FLAT_INDEX, type GpuDevice, type GpuStorage, grid, WG } from "./device.ts";
import type { KernelTable } from "../backend.ts";
import { guarded, rowPieces } from "./windows.ts";

function threefryWgsl(): string {
  const body: string[] = [];
  const ks = ["k0", "k1", "k2"];
  for (let g = 0; g < 5; g++) {
    for (const s of ROTATIONS[g & 1]) body.push(`x0 += x1; x1 = rotl(x1, ${s}u) ^ x0;`);
    body.push(`x0 += ${ks[(g + 1) % 3]}; x1 += ${ks[(g + 2) % 3]} + ${g + 1}u;`);
  }
  return `
fn rotl(x: u32, s: u32) -> u32 { return (x << s) | (x >> (32u - s)); }
fn threefry(k0: u32, k1: u32, c0: u32, c1: u32) -> vec2<u32> {
  let k2 = k0 ^ k1 ^ ${PARITY}u;
  var x0 = c0 + k0;
  var x1 = c1 + k1;
  ${body.join("\n  ")}
  return vec2<u32>(x0, x1);
}`;
}

function poly(coeffs: readonly number[]): string {
  let p = `${coeffs[0]}`;
  for (let j = 1; j < coeffs.length; j++) p = `(${coeffs[j]} + ${p} * w)`;
  return p;
}

const ERFINV_WGSL = `
fn erfinv_(x: f32) -> f32 {
  var w = -log((1.0 - x) * (1.0 + x));
  var p: f32;
  if (w < 5.0) {
    w = w - 2.5;
    p = ${poly(ERFINV_COEFFS.central)};
  } else {
    w = sqrt(w) - 3.0;
    p = ${poly(ERFINV_COEFFS.tail)};
  }
  return p * x;
}`;

/** The f32 in [0, 1) made from the top 23 bits of `b`, as JAX builds it. */
const UNIT_WGSL = `
fn unit(b: u32) -> f32 { return bitcast<f32>((b >> 9u) | 0x3f800000u) - 1.0; }`;

const fp = (k: number) => `bitcast<f32>(p.w${k})`;

/** The WGSL statements that write output `i` from the hash `r` (and `r2` for randint). */
const BODY: Readonly<Record<RandomMode, string>> = {
  keys: "out[2u * i] = r.x; out[2u * i + 1u] = r.y;",
  bits: "out[i] = b;",
  uniform: `out[i] = min(max(${fp(0)}, unit(b) * ${fp(1)} + ${fp(0)}), ${fp(2)});`,
  normal: `let u = max(${NORMAL_LO}, unit(b) * 2.0 + ${NORMAL_LO});
  out[i] = (${Math.fround(Math.SQRT2)} * erfinv_(u)) * ${fp(1)} + ${fp(0)};`,
  truncatedNormal: `let u = max(${fp(0)}, unit(b) * ${fp(1)} + ${fp(0)});
  out[i] = min(max(${Math.fround(Math.SQRT2)} * erfinv_(u), ${fp(2)}), ${fp(3)});`,
  bernoulli: `out[i] = select(0u, 1u, unit(b) < ${fp(0)});`,
  // A span of 0 stands for 2^32; max() keeps the unused branch from dividing by zero.
  randint: `let r2 = threefry(keys[2], keys[3], hi, lo);
  let low = r2.x ^ r2.y;
  let span = max(p.w0, 1u);
  let off = select(((b % span) * p.w1 + low % span) % span, low, p.w0 == 0u);
  out[i] = bitcast<i32>(p.w2) + bitcast<i32>(off);`,
};

function code(mode: RandomMode): string {
  const outType = dtypeInfo(RANDOM_DTYPE[mode]).wgsl;
  return `
struct P { n: u32, hi: u32, lo: u32, pad: u32, w0: u32, w1: u32, w2: u32, w3: u32 }
@group(0) @binding(0) var<storage, read> keys: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<${outType}>;
@group(0) @binding(2) var<uniform> p: P;
${threefryWgsl()}
${UNIT_WGSL}
${mode === "normal" || mode === "truncatedNormal" ? ERFINV_WGSL : ""}
@compute @workgroup_size(${WG})
fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= p.n) { return; }
  let lo = p.lo + i;
  let hi = p.hi + select(0u, 1u, lo < i);
  let r = threefry(keys[0], keys[1], hi, lo);
  let b = r.x ^ r.y;
  ${BODY[mode]}
}`;
}

/**
 * Runs a random kernel: `keys` holds the key words (two keys for `randint`). An output past
 * one storage binding is drawn in pieces, each from its first element's counter.
 */
export function randomGpu(device: GpuDevice, keys: GpuStorage, p: RandomParams): GpuStorage {
  const out = device.alloc(RANDOM_DTYPE[p.mode], p.mode === "keys" ? 2 * p.n : p.n);
  if (p.n === 0) return out;
  // Past one binding, pieces of the output draw from the counters their first element has.
  const perRow = p.mode === "keys" ? 2 : 1;
  const pieces = guarded(device, out, () =>
    rowPieces(device, "random", [p.n], p.n, [
      { storage: keys, eb: 4, perRow: 0 },
      { storage: out, eb: device.elementBytes(RANDOM_DTYPE[p.mode]), perRow },
    ]));
  for (const { start, count, binds } of pieces) {
    // The 64-bit counter (hi, lo) plus start, with the carry.
    const sum = p.counterLo + start;
    const lo = sum % 2 ** 32, hi = (p.counterHi + Math.floor(sum / 2 ** 32)) >>> 0;
    const params = new Uint32Array(8);
    params.set([count, hi, lo, 0]);
    params.set(p.words, 4);
    device.run({ code: code(p.mode) }, binds, grid(count), params);
  }
  return out;
}

/** The random family's kernels. */
export const randomKernels: KernelTable = {
  random: (d: GpuDevice, [keys]: GpuStorage[], s: RandomParams) => randomGpu(d, keys, s),
};
