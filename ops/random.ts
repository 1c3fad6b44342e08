/**
 * Random numbers with explicit keys, JAX style. A key is a `u32` tensor of shape `[2]`; every
 * sampler takes one, never changes it, and returns the same values for the same key, on the
 * key's device. Make independent keys with {@linkcode split} / {@linkcode splitN} or
 * {@linkcode foldIn}; never reuse a key for two purposes.
 *
 * The generator is Threefry-2x32 with 20 rounds, counter based: element `i` of
 * `bits(key, shape)` is the xor of the two words of `threefry(key, counter i)`, so the CPU and
 * WebGPU backends give bit-identical integers. The bit streams follow JAX's default
 * ("partitionable") Threefry layout: `key(seed)` is `[seed >> 32, seed & 0xffffffff]`,
 * `split(key, n)[i]` and `foldIn(key, i)` are both `threefry(key, (0, i))`, and `uniform`,
 * `normal` (sqrt(2) times Giles' f32 inverse erf of a uniform on (-1, 1)), `bernoulli`,
 * `randint` and `permutation` transform the bits as `jax.random` does.
 *
 * Floats: integer results are identical on both backends; `uniform` with the default range
 * is too; other float results may differ by a few ulps where the GPU's `log` or a fused
 * multiply-add rounds differently from the CPU's f32 emulation (the tests allow
 * `|a - b| <= 1e-5 * (1 + |b|)` for `normal`).
 * @module
 */
import type { DeviceName } from "../kernels/device.ts";
import type { CpuDevice, CpuStorage } from "../kernels/cpu/device.ts";
import type { GpuDevice, GpuStorage } from "../kernels/webgpu/device.ts";
import {
  f32Words,
  nextF32,
  RANDOM_DTYPE,
  randomCpu,
  type RandomMode,
} from "../kernels/cpu/random.ts";
import { randomGpu } from "../kernels/webgpu/random.ts";
import { bind1, definePrimitive } from "./primitive.ts";
import { fmt, sizeOf, Tensor } from "./tensor.ts";
import { broadcastShapes, checkShape } from "./broadcast.ts";
import { arange, fromTypedArray } from "./creation.ts";
import { runElementwise, sameDevice } from "./kernel.ts";
import { less } from "./compare.ts";
import { argsort, gatherByIndex } from "./sort.ts";
import { erf64 } from "./erf.ts";

/** Static parameters of the `random` primitive. */
interface SampleParams {
  readonly mode: RandomMode;
  readonly shape: readonly number[];
  readonly n: number;
  readonly counterHi: number;
  readonly counterLo: number;
  readonly words: Uint32Array;
}

const randomPrim = definePrimitive<SampleParams>({
  name: "random",
  forward: ([keys], p) => {
    const dev = keys.backend;
    const storage = dev.name === "cpu"
      ? randomCpu(dev as CpuDevice, keys.storage as CpuStorage, p)
      : randomGpu(dev as GpuDevice, keys.storage as GpuStorage, p);
    return [Tensor.fromStorage(dev, storage, p.shape, RANDOM_DTYPE[p.mode])];
  },
  vjp: "none",
});

function run(
  keys: Tensor,
  mode: RandomMode,
  shape: readonly number[],
  words: Uint32Array = new Uint32Array(4),
  counter: readonly [number, number] = [0, 0],
): Tensor {
  const n = mode === "keys" ? sizeOf(shape) / 2 : sizeOf(shape);
  const [counterHi, counterLo] = counter;
  return bind1(randomPrim, [keys], { mode, shape: [...shape], n, counterHi, counterLo, words });
}

function checkKey(op: string, key: unknown): asserts key is Tensor {
  if (!(key instanceof Tensor)) {
    throw new TypeError(`${op}: key must be a Tensor from random.key, got ${typeof key}`);
  }
  if (key.disposed) throw new TypeError(`${op}: key ${key.toString()} was disposed`);
  if (key.dtype !== "u32" || key.rank !== 1 || key.shape[0] !== 2) {
    throw new TypeError(
      `${op}: key must be a u32 tensor of shape [2] (from random.key), got ` +
        `${key.dtype}${fmt(key.shape)}` +
        (key.rank === 2 && key.shape[1] === 2 ? "; pick one row with random.at" : ""),
    );
  }
}

/** The two's-complement 64-bit words `[hi, lo]` of a safe integer. */
function words64(op: string, name: string, v: unknown): [number, number] {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new TypeError(`${op}: ${name} must be a safe integer, got ${String(v)}`);
  }
  const u = BigInt.asUintN(64, BigInt(v));
  return [Number(u >> 32n), Number(u & 0xffffffffn)];
}

function checkCount(op: string, n: unknown): asserts n is number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 2 ** 30) {
    throw new RangeError(`${op}: n must be an integer in [0, 2^30], got ${String(n)}`);
  }
}

function checkFinite(op: string, name: string, v: unknown): asserts v is number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(`${op}: ${name} must be a finite number, got ${String(v)}`);
  }
}

/**
 * A key from an integer seed: `[hi, lo]`, the high and low 32 bits of the seed as a 64-bit
 * two's-complement integer (so `key(42)` holds `[0, 42]`, as `jax.random.key(42)` does).
 *
 * @param seed any safe integer.
 * @returns `[2]` u32 on `options.device` (default: the default device).
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * console.log(await random.key(42).array()); // [0, 42]
 * ```
 */
export function key(seed: number, options: { device?: DeviceName } = {}): Tensor {
  const [hi, lo] = words64("random.key", "seed", seed);
  return fromTypedArray(Uint32Array.of(hi, lo), [2], "u32", options.device);
}

/**
 * `n` new keys derived from `key`, as rows of one tensor (row `i` equals `foldIn(key, i)`).
 * Use {@linkcode at} to pick a row, or {@linkcode splitN} to get separate keys.
 *
 * @param key `[2]` u32.
 * @returns `[n, 2]` u32 on the key's device.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const keys = random.split(random.key(0), 3);
 * console.log(keys.shape); // [3, 2]
 * ```
 */
export function split(key: Tensor, n = 2): Tensor {
  checkKey("random.split", key);
  checkCount("random.split", n);
  return run(key, "keys", [n, 2]);
}

/**
 * `n` new keys derived from `key`, as separate `[2]` tensors (the rows of `split(key, n)`).
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const [k1, k2] = random.splitN(random.key(0), 2);
 * console.log(k1.shape, k2.shape); // [2] [2]
 * ```
 */
export function splitN(key: Tensor, n = 2): Tensor[] {
  checkKey("random.splitN", key);
  checkCount("random.splitN", n);
  return Array.from({ length: n }, (_, i) => run(key, "keys", [2], undefined, [0, i]));
}

/**
 * Key `i` of a `[n, 2]` tensor of keys (negative `i` counts from the end), as a new `[2]` key.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const keys = random.split(random.key(0), 4);
 * const last = random.at(keys, -1); // equals random.foldIn(random.key(0), 3)
 * ```
 */
export function at(keys: Tensor, i: number): Tensor {
  const op = "random.at";
  if (!(keys instanceof Tensor) || keys.dtype !== "u32" || keys.rank !== 2 || keys.shape[1] !== 2) {
    throw new TypeError(
      `${op}: keys must be a u32 tensor of shape [n, 2] (from random.split), got ${
        keys instanceof Tensor ? `${keys.dtype}${fmt(keys.shape)}` : typeof keys
      }`,
    );
  }
  const n = keys.shape[0];
  if (!Number.isInteger(i) || i < -n || i >= n) {
    throw new RangeError(`${op}: index ${i} is out of range for ${n} keys`);
  }
  const row = i < 0 ? i + n : i;
  return runElementwise(
    op,
    { cpu: (a) => a, wgsl: "a" },
    [{ tensor: keys, strides: [1], offset: 2 * row }],
    [2],
    "u32",
  );
}

/**
 * A new key from `key` and an integer, e.g. a step or layer index: `threefry(key, data)` with
 * `data` as a 64-bit counter. `foldIn(key, i)` equals row `i` of `split(key, n)`.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const stepKey = random.foldIn(random.key(0), 17);
 * console.log(stepKey.shape); // [2]
 * ```
 */
export function foldIn(key: Tensor, data: number): Tensor {
  checkKey("random.foldIn", key);
  const counter = words64("random.foldIn", "data", data);
  return run(key, "keys", [2], undefined, counter);
}

/**
 * Uniform random 32-bit words.
 *
 * @returns u32 of `shape`.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * console.log((await random.bits(random.key(0), [3]).data()).length); // 3
 * ```
 */
export function bits(key: Tensor, shape: readonly number[]): Tensor {
  checkKey("random.bits", key);
  checkShape("random.bits", shape);
  return run(key, "bits", shape);
}

/**
 * Uniform f32 values in `[minval, maxval)`: the top 23 bits of each word make `f` in [0, 1),
 * and the value is `f * (maxval - minval) + minval` in f32 (clamped into the range against
 * rounding).
 *
 * @returns f32 of `shape`.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const u = random.uniform(random.key(0), [2, 3], { minval: -1, maxval: 1 });
 * console.log(u.shape); // [2, 3]
 * ```
 */
export function uniform(
  key: Tensor,
  shape: readonly number[],
  options: { minval?: number; maxval?: number } = {},
): Tensor {
  const op = "random.uniform";
  checkKey(op, key);
  checkShape(op, shape);
  const { minval = 0, maxval = 1 } = options;
  checkFinite(op, "minval", minval);
  checkFinite(op, "maxval", maxval);
  const lo = Math.fround(minval), hi = Math.fround(maxval);
  if (!(lo < hi)) {
    throw new RangeError(`${op}: minval ${minval} must be below maxval ${maxval} (as f32)`);
  }
  const span = Math.fround(hi - lo);
  if (!Number.isFinite(span)) {
    throw new RangeError(`${op}: range [${minval}, ${maxval}) is too wide for f32`);
  }
  return run(key, "uniform", shape, f32Words(lo, span, nextF32(hi, false)));
}

/**
 * Normal (Gaussian) f32 values: `mean + stddev * z` with `z = sqrt(2) * erfinv(u)` for `u`
 * uniform on (-1, 1), as `jax.random.normal` computes `z`.
 *
 * @returns f32 of `shape`.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const w = random.normal(random.key(0), [4, 8], { stddev: 0.02 });
 * console.log(w.dtype); // "f32"
 * ```
 */
export function normal(
  key: Tensor,
  shape: readonly number[],
  options: { mean?: number; stddev?: number } = {},
): Tensor {
  const op = "random.normal";
  checkKey(op, key);
  checkShape(op, shape);
  const { mean = 0, stddev = 1 } = options;
  checkFinite(op, "mean", mean);
  checkFinite(op, "stddev", stddev);
  if (stddev < 0) throw new RangeError(`${op}: stddev must be >= 0, got ${stddev}`);
  return run(key, "normal", shape, f32Words(mean, stddev));
}

/**
 * Standard normal f32 values truncated to the open interval `(lower, upper)` (default
 * (-2, 2)), by the inverse-CDF method as `jax.random.truncated_normal` does: accurate while
 * the interval holds noticeable mass (bounds within about ±5).
 *
 * @returns f32 of `shape`.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const w = random.truncatedNormal(random.key(0), [3], { lower: -1, upper: 1 });
 * console.log(w.shape); // [3]
 * ```
 */
export function truncatedNormal(
  key: Tensor,
  shape: readonly number[],
  options: { lower?: number; upper?: number } = {},
): Tensor {
  const op = "random.truncatedNormal";
  checkKey(op, key);
  checkShape(op, shape);
  const { lower = -2, upper = 2 } = options;
  for (const [name, v] of [["lower", lower], ["upper", upper]] as const) {
    if (typeof v !== "number" || Number.isNaN(v)) {
      throw new TypeError(`${op}: ${name} must be a number, got ${String(v)}`);
    }
  }
  const lo = Math.fround(lower), hi = Math.fround(upper);
  if (!(lo < hi)) throw new RangeError(`${op}: lower ${lower} must be below upper ${upper}`);
  const a = Math.fround(erf64(lo / Math.SQRT2)), b = Math.fround(erf64(hi / Math.SQRT2));
  const words = f32Words(a, Math.fround(b - a), nextF32(lo, true), nextF32(hi, false));
  return run(key, "truncatedNormal", shape, words);
}

/**
 * Bernoulli samples: `true` with probability `p` (`uniform(key, shape) < p`). `p` is a number
 * in [0, 1] or an f32 tensor on the key's device that broadcasts to `shape` (default: its own
 * shape); tensor entries outside [0, 1] act as 0 or 1.
 *
 * @returns bool of `shape`.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const keep = random.bernoulli(random.key(0), 0.9, [2, 4]);
 * console.log(keep.dtype); // "bool"
 * ```
 */
export function bernoulli(key: Tensor, p: number | Tensor, shape?: readonly number[]): Tensor {
  const op = "random.bernoulli";
  checkKey(op, key);
  if (shape !== undefined) checkShape(op, shape);
  if (p instanceof Tensor) {
    if (p.dtype !== "f32") throw new TypeError(`${op}: p must be f32, got ${p.toString()}`);
    sameDevice(op, [key, p]);
    const out = shape ?? p.shape;
    const b = broadcastShapes(op, p.shape, out);
    if (b.length !== out.length || b.some((d, i) => d !== out[i])) {
      throw new RangeError(`${op}: p of shape ${fmt(p.shape)} does not broadcast to ${fmt(out)}`);
    }
    using u = run(key, "uniform", out, f32Words(0, 1, nextF32(1, false)));
    return less(u, p);
  }
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
    throw new RangeError(`${op}: p must be a number in [0, 1] or a tensor, got ${String(p)}`);
  }
  return run(key, "bernoulli", shape ?? [], f32Words(p));
}

/**
 * Random i32 integers in `[minval, maxval)`, by JAX's method: two 32-bit words per value,
 * `(hi % span * (2^32 % span) + lo % span) % span` in wrapping u32 arithmetic. As in JAX,
 * spans above 2^16 use the low word only, which biases the result by up to span / 2^32.
 *
 * @param minval integer, at least -2^31.
 * @param maxval integer above minval, at most 2^31.
 * @returns i32 of `shape`.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const die = random.randint(random.key(0), [5], 1, 7); // values in 1..6
 * console.log(die.dtype); // "i32"
 * ```
 */
export function randint(
  key: Tensor,
  shape: readonly number[],
  minval: number,
  maxval: number,
): Tensor {
  const op = "random.randint";
  checkKey(op, key);
  checkShape(op, shape);
  if (!Number.isInteger(minval) || !Number.isInteger(maxval)) {
    throw new TypeError(`${op}: minval and maxval must be integers, got ${minval}, ${maxval}`);
  }
  if (minval < -(2 ** 31) || maxval > 2 ** 31 || minval >= maxval) {
    throw new RangeError(
      `${op}: need -2^31 <= minval < maxval <= 2^31, got minval ${minval}, maxval ${maxval}`,
    );
  }
  const span = maxval - minval;
  const m = 2 ** 16 % span;
  const words = Uint32Array.of(span % 2 ** 32, (m * m) % 2 ** 32 % span, minval | 0, 0);
  using keys = run(key, "keys", [2, 2]);
  return run(keys, "randint", shape, words);
}

/**
 * A random permutation of `0..n-1` (i32), or of the first axis of a tensor `x` (rows move
 * whole). As in JAX, indices are sorted by fresh random 32-bit keys, in
 * `ceil(3 ln(n) / ln(2^32 - 1))` rounds (one round up to n = 1625) so that ties between keys
 * do not bias the result.
 *
 * @returns `[n]` i32, or a tensor of x's shape and dtype, on the key's device.
 *
 * @example
 * ```ts
 * import { random, tensor } from "@longseq/tensor";
 * console.log((await random.permutation(random.key(0), 5).data()).length); // 5
 * const rows = random.permutation(random.key(1), tensor([[1, 2], [3, 4], [5, 6]]));
 * ```
 */
export function permutation(key: Tensor, n: number | Tensor): Tensor {
  const op = "random.permutation";
  checkKey(op, key);
  if (n instanceof Tensor) {
    if (n.rank === 0) throw new RangeError(`${op}: x must have at least one axis, got a scalar`);
    sameDevice(op, [key, n]);
    using perm = permutation(key, n.shape[0]);
    return gatherByIndex(n, perm);
  }
  checkCount(op, n);
  const rounds = Math.ceil(3 * Math.log(Math.max(1, n)) / Math.log(2 ** 32 - 1));
  if (rounds === 0) return arange(n, undefined, 1, { dtype: "i32", device: key.device });
  let perm: Tensor | null = null;
  let k = key;
  for (let r = 0; r < rounds; r++) {
    // Round r sorts by the bits of subkey r, as JAX's `key, subkey = split(key)` chain does.
    const next = run(k, "keys", [2], undefined, [0, 0]);
    using sub = run(k, "keys", [2], undefined, [0, 1]);
    if (k !== key) k.dispose();
    k = next;
    using sortKeys = run(sub, "bits", [n]);
    const order = argsort(sortKeys);
    if (perm) {
      using old = perm;
      using o = order;
      perm = gatherByIndex(old, o);
    } else perm = order;
  }
  k.dispose();
  return perm!;
}

/**
 * This module as one namespace object (`random.key`, `random.split`, ..., `random.permutation`),
 * the way `mod.ts` exports it; `import * as random from "./ops/random.ts"` is the same object.
 *
 * @example
 * ```ts
 * import { random } from "@longseq/tensor";
 * const [k1, k2] = random.splitN(random.key(0), 2);
 * const x = random.normal(k1, [2, 3]);
 * const mask = random.bernoulli(k2, 0.5, [2, 3]);
 * ```
 */
export * as random from "./random.ts";
