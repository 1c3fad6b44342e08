/**
 * Float classification and exclusive or: `isnan` and `isfinite` are primitives with their own
 * kernel entries (the backends' elementwise tables; the WGSL tests the bit pattern, since a compiler may fold
 * `x != x` away); `logicalXor` is a composition of `logicalNot` and `notEqual`. All return
 * bool and have no gradient.
 * @module
 */
import type { Tensor } from "./tensor.ts";
import { type BinaryFn, logicalNot, notEqual } from "./compare.ts";
import { pair, type TensorLike } from "./binary.ts";
import { scope } from "./scope.ts";
import { defineUnary } from "./unary_def.ts";

const classify = (name: "isnan" | "isfinite" | "nonZero") =>
  defineUnary(name, {
    floatOnly: false,
    allowBool: true,
    vjp: "none",
    outDtype: () => "bool",
  }).fn;

/**
 * Whether each element is NaN, as bool (always false for integer and bool dtypes).
 *
 * Shapes: `x [...]` to `[...]` bool.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isnan, tensor } from "@longseq/tensor";
 * assert.deepEqual(await isnan(tensor([1, NaN, Infinity])).array(), [false, true, false]);
 * ```
 */
export const isnan: (x: Tensor) => Tensor = classify("isnan");

/**
 * Whether each element is finite (neither NaN nor infinite), as bool (always true for integer
 * and bool dtypes).
 *
 * Shapes: `x [...]` to `[...]` bool.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isfinite, tensor } from "@longseq/tensor";
 * assert.deepEqual(await isfinite(tensor([1, NaN, -Infinity])).array(), [true, false, false]);
 * ```
 */
export const isfinite: (x: Tensor) => Tensor = classify("isfinite");

/**
 * Whether each element is non-zero (NaN included), as bool: `x != 0` without relying on NaN
 * comparisons, which a GPU compiler may assume never happen. Used by `any`, `all` and `norm`.
 */
export const isNonZero: (x: Tensor) => Tensor = classify("nonZero");

/**
 * Elementwise exclusive or (non-zero is true), as bool, with broadcasting. A composition.
 *
 * Shapes: `a`, `b` broadcast to the bool result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logicalXor, tensor } from "@longseq/tensor";
 * const y = logicalXor(tensor([true, true, false]), tensor([true, false, false]));
 * assert.deepEqual(await y.array(), [false, true, false]);
 * ```
 */
export const logicalXor: BinaryFn = (a: TensorLike, b: TensorLike): Tensor => {
  const [ta, tb, made] = pair("logicalXor", a, b);
  try {
    return scope(() => notEqual(logicalNot(ta), logicalNot(tb)));
  } finally {
    for (const t of made) t.dispose();
  }
};
