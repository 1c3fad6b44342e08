/**
 * CPU reference of the counter-based random kernels: the Threefry-2x32 hash (20 rounds, the
 * construction of Salmon et al. "Parallel random numbers: as easy as 1, 2, 3" that JAX uses)
 * and the samplers built on it. Thread `i` hashes the 64-bit counter `start + i` (as the pair
 * `(hi, lo)`) under the key, so every element depends only on the key and its own index: the
 * WebGPU kernel computes the same integers, and float results differ at most where `log` or a
 * fused multiply-add rounds differently.
 *
 * Float samplers emulate f32 arithmetic with `Math.fround` after every step.
 * @module
 */
import { dtypeInfo } from "../dtype.ts";
import type { CpuDevice, CpuStorage } from "./device.ts";
import {
  ERFINV_COEFFS,
  NORMAL_LO,
  RANDOM_DTYPE,
  type RandomParams,
  threefry2x32,
} from "../specs/random.ts";
import type { KernelTable } from "../backend.ts";

export { threefry2x32 };

const fr = Math.fround;
/**
 * The inverse error function in f32 arithmetic: M. Giles' single-precision polynomial
 * ("Approximating the erfinv function", GPU Computing Gems, 2011), the approximation XLA uses.
 * Relative error about 1e-7 for |x| < 1.
 */
export function erfinvF32(x: number): number {
  let w = -fr(Math.log(fr(fr(1 - x) * fr(1 + x))));
  let c: number[];
  if (w < 5) {
    w = fr(w - 2.5);
    c = ERFINV_COEFFS.central;
  } else {
    w = fr(fr(Math.sqrt(w)) - 3);
    c = ERFINV_COEFFS.tail;
  }
  let p = c[0];
  for (let j = 1; j < c.length; j++) p = fr(c[j] + fr(p * w));
  return fr(p * x);
}

/** The f32 in [0, 1) made from the top 23 bits of `b` (exact: `(b >>> 9) * 2^-23`). */
function unit(b: number): number {
  return (b >>> 9) * 2 ** -23;
}

const SQRT2 = fr(Math.SQRT2);

/** Runs a random kernel: `keys` holds the key words (two keys for `randint`). */
export function randomCpu(device: CpuDevice, keys: CpuStorage, p: RandomParams): CpuStorage {
  const k = keys.data;
  const { mode, n } = p;
  const out = dtypeInfo(RANDOM_DTYPE[mode]).create(mode === "keys" ? 2 * n : n);
  const f = new Float32Array(p.words.buffer, p.words.byteOffset, 4);
  const w = p.words;
  const r = new Uint32Array(2);
  const r2 = new Uint32Array(2);
  for (let i = 0; i < n; i++) {
    const s = p.counterLo + i;
    const lo = s >>> 0;
    const hi = (p.counterHi + (s >= 2 ** 32 ? 1 : 0)) >>> 0;
    threefry2x32(k[0], k[1], hi, lo, r);
    const b = (r[0] ^ r[1]) >>> 0;
    switch (mode) {
      case "keys":
        out[2 * i] = r[0];
        out[2 * i + 1] = r[1];
        break;
      case "bits":
        out[i] = b;
        break;
      case "uniform":
        out[i] = Math.min(Math.max(f[0], fr(fr(unit(b) * f[1]) + f[0])), f[2]);
        break;
      case "normal": {
        const u = Math.max(NORMAL_LO, fr(unit(b) * 2 + NORMAL_LO));
        out[i] = fr(fr(fr(SQRT2 * erfinvF32(u)) * f[1]) + f[0]);
        break;
      }
      case "truncatedNormal": {
        const u = Math.max(f[0], fr(fr(unit(b) * f[1]) + f[0]));
        out[i] = Math.min(Math.max(fr(SQRT2 * erfinvF32(u)), f[2]), f[3]);
        break;
      }
      case "bernoulli":
        out[i] = unit(b) < f[0] ? 1 : 0;
        break;
      case "randint": {
        threefry2x32(k[2], k[3], hi, lo, r2);
        const low = (r2[0] ^ r2[1]) >>> 0;
        const span = w[0];
        // span 0 stands for 2^32: every remainder is the value itself.
        const off = span === 0
          ? low
          : ((Math.imul(b % span, w[1]) >>> 0) + (low % span)) % 2 ** 32 % span;
        out[i] = (w[2] + off) | 0;
        break;
      }
    }
  }
  return device.adopt(out);
}

/** The random family's kernels. */
export const randomKernels: KernelTable = {
  random: (d: CpuDevice, [keys]: CpuStorage[], s: RandomParams) => randomCpu(d, keys, s),
};
