/**
 * Random keys and raw bits: the Threefry-2x32 `random` primitive (kernel `random`), `key`, `split`, `splitN`, `at`, `foldIn` and `bits`, and
 * the argument checks the samplers in `random.ts` share. Everything here is re-exported by
 * `random.ts`, the public `random` namespace.
 *
 * Keys need no dispose. Every key these functions return is a collectable tensor: it is not
 * counted in `memory().liveTensors`, no `scope` owns it, and its 8 bytes (shown as
 * `memory().constantBytes`) are freed when the key is garbage collected, or at once by
 * `dispose()`. So `random.foldIn(random.key(seed), step)` leaks nothing. A key also keeps
 * its two words on the host: `split`, `splitN`, `foldIn` and `at` of such a key hash on the
 * host (the same Threefry-2x32 as the kernels, so the same words) and upload the result,
 * launching no kernel; keys made otherwise (e.g. `tensor(..., { dtype: "u32" })`) derive
 * children with the `random` kernel, as before.
 * @module
 */
import type { DeviceName } from "../kernels/device.ts";
import {
  RANDOM_DTYPE,
  type RandomMode,
  type RandomParams,
  threefry2x32,
} from "../kernels/specs/random.ts";
import { bind1, definePrimitive, launch1 } from "./primitive.ts";
import { collectable, fmt, isCollectable, setRowOverride, sizeOf, Tensor } from "./tensor.ts";
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

/** The host copy of the words of keys made here (`[2]` keys and `[n, 2]` key arrays). */
const hostWords = new WeakMap<Tensor, Uint32Array>();

/** Most keys `split` derives on the host; more use the kernel. */
const HOST_SPLIT_MAX = 4096;

/** A collectable key (or key array) of `words` on `device`, remembering the words. */
function hostKey(words: Uint32Array, shape: readonly number[], device?: DeviceName): Tensor {
  const t = collectable(fromTypedArray(words, shape, "u32", device));
  hostWords.set(t, words);
  return t;
}

/** The 64-bit counter `(hi, lo)` plus `i`, as `[hi, lo]` u32 words. */
function addCounter(counter: readonly [number, number], i: number): [number, number] {
  const s = counter[1] + i;
  return [(counter[0] + Math.floor(s / 2 ** 32)) >>> 0, s >>> 0];
}

/**
 * The keys `threefry(key, counter + i)` for `i < n`, as `[n, 2]` (or `[2]` when `shape` says
 * so): hashed on the host when the key's words are known there, else by the kernel. Always
 * a collectable tensor.
 */
export function deriveKeys(
  key: Tensor,
  n: number,
  shape: readonly number[],
  counter: readonly [number, number] = [0, 0],
): Tensor {
  const words = hostWords.get(key);
  if (words && n <= HOST_SPLIT_MAX) {
    const out = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      const [hi, lo] = addCounter(counter, i);
      threefry2x32(words[0], words[1], hi, lo, out.subarray(2 * i, 2 * i + 2));
    }
    return hostKey(out, shape, key.device);
  }
  return collectable(run(key, "keys", shape, undefined, counter));
}

/** Row `row` of the key array `keys` as a collectable `[2]` key (on the host when known). */
function keyRow(keys: Tensor, row: number): Tensor {
  const words = hostWords.get(keys);
  if (words) return hostKey(words.slice(2 * row, 2 * row + 2), [2], keys.device);
  return collectable(
    runElementwise("copy", [{ tensor: keys, strides: [1], offset: 2 * row }], [2], "u32"),
  );
}

// Iterating a key array (`const [k1, k2] = random.split(key)`) yields keys that need no dispose.
setRowOverride((t, i) =>
  (hostWords.has(t) || isCollectable(t)) && t.dtype === "u32" && t.rank === 2 &&
    t.shape[1] === 2
    ? keyRow(t, i)
    : undefined
);

/** Launches the `random` kernel for `mode` under `keys` (counters from `counter`). */
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
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * assert.deepEqual(await random.key(42).array(), [0, 42]);
 * ```
 */
export function key(seed: number, options: { device?: DeviceName } = {}): Tensor {
  const [hi, lo] = words64("random.key", "seed", seed);
  return hostKey(Uint32Array.of(hi, lo), [2], options.device);
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
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * const keys = random.split(random.key(0), 3);
 * assert.deepEqual(keys.shape, [3, 2]);
 * ```
 */
export function split(key: Tensor, n = 2): Tensor {
  checkKey("random.split", key);
  checkCount("random.split", n);
  return deriveKeys(key, n, [n, 2]);
}

/**
 * `n` new keys derived from `key`, as separate `[2]` tensors (the rows of `split(key, n)`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * const [k1, k2] = random.splitN(random.key(0), 2);
 * assert.deepEqual([k1.shape, k2.shape], [[2], [2]]);
 * ```
 */
export function splitN(key: Tensor, n = 2): Tensor[] {
  checkKey("random.splitN", key);
  checkCount("random.splitN", n);
  return Array.from({ length: n }, (_, i) => deriveKeys(key, 1, [2], [0, i]));
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
  return keyRow(keys, i < 0 ? i + n : i);
}

/**
 * A new key from `key` and an integer, e.g. a step or layer index: `threefry(key, data)` with
 * `data` as a 64-bit counter. `foldIn(key, i)` equals row `i` of `split(key, n)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * const stepKey = random.foldIn(random.key(0), 17);
 * assert.deepEqual(stepKey.shape, [2]);
 * ```
 */
export function foldIn(key: Tensor, data: number): Tensor {
  checkKey("random.foldIn", key);
  const counter = words64("random.foldIn", "data", data);
  return deriveKeys(key, 1, [2], counter);
}

/**
 * Uniform random 32-bit words.
 *
 * @returns u32 of `shape`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { random } from "@longseq/tensor";
 * assert.equal((await random.bits(random.key(0), [3]).data()).length, 3);
 * ```
 */
export function bits(key: Tensor, shape: readonly number[]): Tensor {
  checkKey("random.bits", key);
  checkShape("random.bits", shape);
  return run(key, "bits", shape);
}
