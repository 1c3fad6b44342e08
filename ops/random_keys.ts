/**
 * Random keys and raw bits: the Threefry-2x32 `random` primitive (kernel `random`), `key`, `split`, `splitN`, `at`, `foldIn` and `bits`, and
 * the argument checks the samplers in `random.ts` share. Everything here is re-exported by
 * `random.ts`, the public `random` namespace.
 * @module
 */
import type { DeviceName } from "../kernels/device.ts";
import { RANDOM_DTYPE, type RandomMode, type RandomParams } from "../kernels/specs/random.ts";
import { bind1, definePrimitive, launch1 } from "./primitive.ts";
import { fmt, sizeOf, Tensor } from "./tensor.ts";
import { checkShape } from "./validate.ts";
import { fromTypedArray } from "./creation.ts";
import { runElementwise } from "./elementwise.ts";

/** Static parameters of the `random` primitive: the kernel's spec and the output shape. */
interface SampleParams extends RandomParams {
  readonly shape: readonly number[];
}

const randomPrim = definePrimitive<SampleParams>({
  name: "random",
  forward: ([keys], p) => [launch1(
    "random",
    [keys],
    p,
    {
      shape: p.shape,
      dtype: RANDOM_DTYPE[p.mode],
    },
    undefined,
    `random.${p.mode}`,
  )],
  vjp: "none",
});

export function run(
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

export function checkKey(op: string, key: unknown): asserts key is Tensor {
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
export function words64(op: string, name: string, v: unknown): [number, number] {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new TypeError(`${op}: ${name} must be a safe integer, got ${String(v)}`);
  }
  const u = BigInt.asUintN(64, BigInt(v));
  return [Number(u >> 32n), Number(u & 0xffffffffn)];
}

export function checkCount(op: string, n: unknown): asserts n is number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 2 ** 30) {
    throw new RangeError(`${op}: n must be an integer in [0, 2^30], got ${String(n)}`);
  }
}

export function checkFinite(op: string, name: string, v: unknown): asserts v is number {
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
  return runElementwise("copy", [{ tensor: keys, strides: [1], offset: 2 * row }], [2], "u32");
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
