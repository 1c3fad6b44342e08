/**
 * Argument validation shared by the layers and models of `nn/`: integer hyperparameters,
 * dropout rates, param and input tensors, and layers given to combinators. Every check names
 * the operation and the argument in its error.
 * @module
 */
import { fmt, Tensor } from "../ops/tensor.ts";
import type { Layer } from "./layer.ts";

/** A value for an error message: a number as is, anything else with its type (`"4" (a string)`). */
export function showValue(v: unknown): string {
  if (typeof v === "number" || v === undefined || v === null) return String(v);
  if (typeof v === "string") return `${JSON.stringify(v)} (a string)`;
  if (typeof v === "object") return Array.isArray(v) ? "an array" : "an object";
  return `${String(v)} (a ${typeof v})`;
}

/** Throws a RangeError unless `n` is a positive integer. */
export function checkPositiveInt(op: string, name: string, n: unknown): asserts n is number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new RangeError(`${op}: ${name} must be a positive integer, got ${showValue(n)}`);
  }
}

/** Throws a TypeError unless `key` (an `opts.key`) is a PRNG key tensor or undefined. */
export function checkKey(op: string, key: unknown): asserts key is Tensor | undefined {
  if (key !== undefined && !(key instanceof Tensor)) {
    throw new TypeError(
      `${op}: opts.key must be a PRNG key tensor (random.key), got ${typeof key}`,
    );
  }
}

/** Returns `v` if it is an integer `>= min`, else throws a RangeError naming `name`. */
export function checkIntAtLeast(op: string, name: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new RangeError(`${op}: ${name} must be an integer >= ${min}, got ${showValue(v)}`);
  }
  return v;
}

/** Throws a RangeError unless `v` is a finite number >= 0; returns it. */
export function checkNonNegative(op: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
    throw new RangeError(`${op}: ${name} must be a finite number >= 0, got ${showValue(v)}`);
  }
  return v;
}

/** Throws unless `x` is a tensor whose last axis has size `n`. */
export function checkLastDim(op: string, x: unknown, n: number, what = "x"): asserts x is Tensor {
  if (!(x instanceof Tensor)) {
    throw new TypeError(`${op}: ${what} must be a Tensor, got ${x === null ? "null" : typeof x}`);
  }
  if (x.rank === 0 || x.shape[x.rank - 1] !== n) {
    throw new RangeError(
      `${op}: ${what} ${fmt(x.shape)} must have last axis ${n} (the layer's input features)`,
    );
  }
  checkFloat(op, what, x);
}

/** Float dtypes layers compute in: f32, or f16 under mixed precision. */
const FLOATS: readonly string[] = ["f32", "f16"];

/** Throws a TypeError unless `t`'s dtype is one layers compute in (f32 or f16). */
export function checkFloat(op: string, what: string, t: Tensor): void {
  if (!FLOATS.includes(t.dtype)) {
    throw new TypeError(`${op}: ${what} must be f32 or f16, got ${t.dtype}`);
  }
}

/** Throws unless `t` is an f32 (or f16) tensor of exactly `shape`. */
export function checkParam(op: string, name: string, t: unknown, shape: readonly number[]): void {
  if (!(t instanceof Tensor)) {
    throw new TypeError(
      `${op}: param ${name} must be a Tensor of shape ${fmt(shape)}, got ${
        t === null ? "null" : typeof t
      }`,
    );
  }
  if (fmt(t.shape) !== fmt(shape)) {
    throw new RangeError(`${op}: param ${name} has shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
  }
  checkFloat(op, `param ${name}`, t);
}

/** Throws a RangeError unless `rate` is in `[0, 1)`. */
export function checkDropoutRate(op: string, rate: unknown): asserts rate is number {
  if (typeof rate !== "number" || !(rate >= 0 && rate < 1)) {
    throw new RangeError(`${op}: dropout rate must be a number in [0, 1), got ${showValue(rate)}`);
  }
}

/** Throws unless `layer` looks like a `{ init, apply }` layer. */
export function checkLayer(op: string, layer: unknown, what = "layer"): asserts layer is Layer {
  const l = layer as Layer | null;
  if (typeof l?.init !== "function" || typeof l?.apply !== "function") {
    throw new TypeError(`${op}: ${what} must be a layer with init and apply functions`);
  }
}
