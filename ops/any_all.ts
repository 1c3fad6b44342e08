/**
 * `any` and `all`: compositions that count the non-zero elements (`isNonZero`, `sum`)
 * and compare the count. Bool results, no gradient.
 * @module
 */
import { checkTensor, normAxes } from "./validate.ts";
import type { Tensor } from "./tensor.ts";
import { isNonZero } from "./logical.ts";
import { equal, greater } from "./compare.ts";

import { reducedCount, type ReduceOptions, sum } from "./reduce.ts";
import { scope } from "./scope.ts";

function count(
  op: string,
  x: Tensor,
  axes: number | readonly number[] | undefined,
  o: ReduceOptions,
) {
  checkTensor(op, "x", x);
  const ax = normAxes(op, axes, x.rank);
  const nonZero = x.dtype === "bool" ? x : isNonZero(x);
  return { ax, n: reducedCount(x.shape, ax), c: sum(nonZero, ax, o) };
}

/**
 * Whether any element over `axes` (default: all) is non-zero (NaN counts as non-zero), as
 * bool. Over no elements it is false.
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { any, tensor } from "@longseq/tensor";
 * assert.deepEqual(await any(tensor([[0, 0], [0, 3]]), 1).array(), [false, true]);
 * ```
 */
export function any(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  return scope(() => greater(count("any", x, axes, options).c, 0));
}

/**
 * Whether every element over `axes` (default: all) is non-zero (NaN counts as non-zero), as
 * bool. Over no elements it is true.
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { all, tensor } from "@longseq/tensor";
 * assert.deepEqual(await all(tensor([[1, 2], [0, 3]]), 1).array(), [true, false]);
 * ```
 */
export function all(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  return scope(() => {
    const { n, c } = count("all", x, axes, options);
    return equal(c, n);
  });
}
