/**
 * Standard deviation with a `ddof` correction, a composition (two passes: the mean, then the
 * squared deviations).
 * @module
 */
import type { Tensor } from "./tensor.ts";
import { div, sub } from "./binary.ts";
import { sqrt, square } from "./unary.ts";
import { asInputFloat, floatInput, mean, reducedCount, type ReduceOptions, sum } from "./reduce.ts";
import { scope } from "./scope.ts";

/** Options of {@linkcode std}. */
export interface StdOptions extends ReduceOptions {
  /** Delta degrees of freedom: the divisor is `n - ddof` (default 0, as NumPy and JAX). */
  ddof?: number;
}

/**
 * Standard deviation over `axes` (default: all), as f32: `sqrt(sum((x - mean)^2) / (n - ddof))`
 * (`ddof: 1` gives the sample estimate, as PyTorch's default). Throws a RangeError for an
 * empty axis or when `n - ddof <= 0`. The gradient is infinite where all elements are equal
 * (as for `sqrt` at 0).
 *
 * Shapes: `x [..dims]` to `dims` without `axes` (or with them as 1 when `keepdims`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { std, tensor } from "@longseq/tensor";
 * assert.equal(await std(tensor([1, 2, 3, 4, 5])).array(), Math.fround(Math.SQRT2));
 * assert.deepEqual(await std(tensor([[1, 3], [2, 2]]), 1, { ddof: 1 }).array(), [
 *   Math.fround(Math.SQRT2),
 *   0,
 * ]);
 * ```
 */
export function std(
  x: Tensor,
  axes?: number | readonly number[],
  options: StdOptions = {},
): Tensor {
  const { ddof = 0, keepdims = false } = options;
  if (typeof ddof !== "number" || !Number.isFinite(ddof) || ddof < 0) {
    throw new RangeError(`std: ddof must be a finite number >= 0, got ${ddof}`);
  }
  const { ax, xf } = floatInput("std", x, axes);
  const n = reducedCount(x.shape, ax);
  if (n - ddof <= 0) {
    if (xf !== x) xf.dispose();
    throw new RangeError(
      `std: ddof ${ddof} leaves no degrees of freedom for ${n} element(s) per result ` +
        `(n - ddof must be > 0)`,
    );
  }
  return scope(() => {
    const m = mean(xf, ax, { keepdims: true });
    const ss = sum(square(sub(xf, m)), ax, { keepdims });
    if (xf !== x) xf.dispose();
    return asInputFloat(x, sqrt(div(ss, n - ddof)));
  });
}
