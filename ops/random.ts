/**
 * Random numbers with explicit keys, JAX style. A key is a `u32` tensor of shape `[2]`; every
 * sampler takes one, never changes it, and returns the same values for the same key, on the
 * key's device. Make independent keys with {@linkcode split} / {@linkcode splitN} or
 * {@linkcode foldIn}; never reuse a key for two purposes. Keys from `key`, `split`, `splitN`,
 * `foldIn` and `at` need no dispose (they are freed when garbage collected; `dispose()` still
 * frees one at once), so `random.normal(random.foldIn(random.key(0), step), shape)` leaks
 * nothing but the result.
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
import { f32Words, nextF32 } from "../kernels/specs/random.ts";
import { fmt, Tensor } from "./tensor.ts";
import { broadcastShapes } from "./broadcast.ts";
import { checkShape } from "./validate.ts";
import { arange } from "./creation.ts";
import { sameDevice } from "./validate.ts";
import { less } from "./compare.ts";
import { argsort, gatherByIndex } from "./sort.ts";
import { erf64 } from "../kernels/erf.ts";
import { checkCount, checkFinite, checkKey, deriveKeys, run } from "./random_keys.ts";

export { at, bits, foldIn, key, split, splitN } from "./random_keys.ts";

/**
 * Uniform f32 values in `[minval, maxval)`: the top 23 bits of each word make `f` in [0, 1),
 * and the value is `f * (maxval - minval) + minval` in f32 (clamped into the range against
 * rounding).
 *
 * @returns f32 of `shape`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * const u = random.uniform(random.key(0), [2, 3], { minval: -1, maxval: 1 });
 * assert.deepEqual(u.shape, [2, 3]);
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
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * const w = random.normal(random.key(0), [4, 8], { stddev: 0.02 });
 * assert.equal(w.dtype, "f32");
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
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * const w = random.truncatedNormal(random.key(0), [3], { lower: -1, upper: 1 });
 * assert.deepEqual(w.shape, [3]);
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
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * const keep = random.bernoulli(random.key(0), 0.9, [2, 4]);
 * assert.equal(keep.dtype, "bool");
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
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * const die = random.randint(random.key(0), [5], 1, 7); // values in 1..6
 * assert.equal(die.dtype, "i32");
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
  using keys = deriveKeys(key, 2, [2, 2]);
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
 * import assert from "node:assert/strict";
 * import { random, tensor } from "@longseq/tensor";
 * const perm = Array.from(await random.permutation(random.key(0), 5).data());
 * assert.deepEqual([...perm].sort(), [0, 1, 2, 3, 4]);
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
    const next = deriveKeys(k, 1, [2], [0, 0]);
    using sub = deriveKeys(k, 1, [2], [0, 1]);
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
