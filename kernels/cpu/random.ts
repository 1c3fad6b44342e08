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
import { dtypeInfo, type TypedArray } from "../dtype.ts";
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

/**
 * Writes the outputs of counters `[from, to)` of the random kernel `p` into `out` (the whole
 * output: `2 * n` u32 for `keys`, else `n` elements of the mode's dtype); `k` holds the key
 * words (two keys for `randint`). Each element depends only on the key and its index, so
 * any split of `[0, n)` into ranges fills the same bits (the wasm backend splits it across
 * threads).
 */
export function randomFill(
  k: ArrayLike<number>,
  p: RandomParams,
  out: TypedArray,
  from: number,
  to: number,
): void {
  const f = new Float32Array(p.words.buffer, p.words.byteOffset, 4);
  const [f0, f1, f2, f3] = f, [w0, w1, w2] = p.words;
  const { counterHi, counterLo } = p;
  const r = new Uint32Array(2), r2 = new Uint32Array(2);
  const k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3];
  /** Hashes counter `i` under `(a, b)` into `into`. */
  const hash = (i: number, a: number, b: number, into: Uint32Array) => {
    const s = counterLo + i;
    threefry2x32(a, b, (counterHi + (s >= 2 ** 32 ? 1 : 0)) >>> 0, s >>> 0, into);
  };
  /** The random word of counter `i`: the XOR of its two hash words. */
  const word = (i: number) => (hash(i, k0, k1, r), (r[0] ^ r[1]) >>> 0);
  // One loop per mode, so that each store sees one typed array class.
  switch (p.mode) {
    case "keys":
      for (let i = from; i < to; i++) {
        hash(i, k0, k1, r);
        out[2 * i] = r[0];
        out[2 * i + 1] = r[1];
      }
      return;
    case "bits":
      for (let i = from; i < to; i++) out[i] = word(i);
      return;
    case "uniform":
      for (let i = from; i < to; i++) {
        out[i] = Math.min(Math.max(f0, fr(fr(unit(word(i)) * f1) + f0)), f2);
      }
      return;
    case "normal":
      for (let i = from; i < to; i++) {
        const u = Math.max(NORMAL_LO, fr(unit(word(i)) * 2 + NORMAL_LO));
        out[i] = fr(fr(fr(SQRT2 * erfinvF32(u)) * f1) + f0);
      }
      return;
    case "truncatedNormal":
      for (let i = from; i < to; i++) {
        const u = Math.max(f0, fr(fr(unit(word(i)) * f1) + f0));
        out[i] = Math.min(Math.max(fr(SQRT2 * erfinvF32(u)), f2), f3);
      }
      return;
    case "bernoulli":
      for (let i = from; i < to; i++) out[i] = unit(word(i)) < f0 ? 1 : 0;
      return;
    case "randint":
      for (let i = from; i < to; i++) {
        const high = word(i);
        hash(i, k2, k3, r2);
        const low = (r2[0] ^ r2[1]) >>> 0;
        // span w0 = 0 stands for 2^32: every remainder is the value itself.
        const off = w0 === 0 ? low : ((Math.imul(high % w0, w1) >>> 0) + (low % w0)) % 2 ** 32 % w0;
        out[i] = (w2 + off) | 0;
      }
      return;
  }
}

/** Runs a random kernel: `keys` holds the key words (two keys for `randint`). */
export function randomCpu(device: CpuDevice, keys: CpuStorage, p: RandomParams): CpuStorage {
  const out = dtypeInfo(RANDOM_DTYPE[p.mode]).create(p.mode === "keys" ? 2 * p.n : p.n);
  randomFill(keys.data, p, out, 0, p.n);
  return device.adopt(out);
}

/** The random family's kernels. */
export const randomKernels: KernelTable = {
  random: (d: CpuDevice, [keys]: CpuStorage[], s: RandomParams) => randomCpu(d, keys, s),
};
