/**
 * Product reduction, a composition: the reduced axes are moved last and the rows multiplied
 * pairwise in a tree (`log2 n` elementwise products of halves), so the gradient comes from
 * `mul`'s rule and is exact when elements are zero (no division by the product).
 * @module
 */
import { checkTensor, normAxes } from "./validate.ts";
import type { Tensor } from "./tensor.ts";
import { cast, mul } from "./binary.ts";
import { full } from "./creation.ts";
import { concat, slice } from "./slicing.ts";
import { reshape, transpose } from "./shape.ts";

import { asInputFloat, reducedCount, reducedShape, type ReduceOptions } from "./reduce.ts";
import { scope } from "./scope.ts";

/**
 * Product of the elements over `axes` (default: all). f32, i32 and u32 keep their dtype
 * (integers wrap on overflow); bool is counted as i32 0/1. A product over no elements is 1.
 * The gradient with respect to each element is the product of the others, computed without
 * dividing, so zeros (one or several) are handled exactly.
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prod, tensor } from "@longseq/tensor";
 * const x = tensor([[1, 2, 3], [4, 5, 6]]);
 * assert.equal(await prod(x).array(), 720);
 * assert.deepEqual(await prod(x, 1, { keepdims: true }).array(), [[6], [120]]);
 * ```
 */
export function prod(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  checkTensor("prod", "x", x);
  if (x.dtype === "f16") {
    // Multiplied in f32 and rounded once, as the f16 sums are.
    using wide = cast(x, "f32");
    return asInputFloat(x, prod(wide, axes, options));
  }
  const ax = normAxes("prod", axes, x.rank);
  const outShape = reducedShape(x.shape, ax, options.keepdims ?? false);
  const dtype = x.dtype === "bool" ? "i32" : x.dtype;
  let n = reducedCount(x.shape, ax);
  if (n === 0) return full(outShape, 1, { dtype, device: x.device });
  return scope(() => {
    let t = x.dtype === "bool" ? cast(x, "i32") : x;
    const kept = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
    const perm = [...kept, ...ax];
    if (perm.some((p, i) => p !== i)) t = transpose(t, perm);
    t = reshape(t, [-1, n]);
    while (n > 1) {
      const h = Math.floor(n / 2);
      let p = mul(slice(t, [0, 0], [undefined, h]), slice(t, [0, h], [undefined, 2 * h]));
      if (n % 2 === 1) p = concat([p, slice(t, [0, 2 * h])], 1);
      t = p;
      n = h + (n % 2);
    }
    return reshape(t, outShape);
  });
}
