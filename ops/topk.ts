/**
 * `topk`: the `k` largest (or smallest) entries along the last axis and their positions, a
 * composition of the stable sort in `sort.ts` and a slice, so it inherits the sort's tie and
 * NaN rules and its gradient (the cotangent of each value goes back to where it came from).
 * @module
 */
import { checkTensor } from "./validate.ts";
import { fmt, type Tensor } from "./tensor.ts";
import { sortWithIndices } from "./sort.ts";
import { slice } from "./slicing.ts";

import { scope } from "./scope.ts";

/** Options of {@linkcode topk}. */
export interface TopkOptions {
  /** Take the largest entries (default true); false takes the smallest, least first. */
  largest?: boolean;
}

/**
 * The `k` largest entries of each row along the last axis, largest first, and their i32
 * positions (`jax.lax.top_k`, PyTorch `topk`). Ties are stable: of equal values the one at the
 * lower index comes first. NaN counts as larger than every number (so it comes first). With
 * `largest: false`, the `k` smallest, least first (ties again lower index first).
 * Differentiable in `x` through the values.
 *
 * Shapes: `x [..., n]` to `[values [..., k], indices [..., k]]`, `0 <= k <= n`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, topk } from "@longseq/tensor";
 * const [v, i] = topk(tensor([[1, 3, 2, 3], [0, -1, 5, 4]]), 2);
 * assert.deepEqual(await v.array(), [[3, 3], [5, 4]]);
 * assert.deepEqual(await i.array(), [[1, 3], [2, 3]]);
 * ```
 */
export function topk(x: Tensor, k: number, options: TopkOptions = {}): [Tensor, Tensor] {
  checkTensor("topk", "x", x);
  if (x.rank === 0) {
    throw new RangeError(
      `topk: expected a tensor with at least one axis, got a scalar ${fmt(x.shape)}`,
    );
  }
  const n = x.shape[x.rank - 1];
  if (!Number.isInteger(k) || k < 0 || k > n) {
    throw new RangeError(
      `topk: k must be an integer in [0, ${n}] (the last axis of ${fmt(x.shape)}), got ${k}`,
    );
  }
  const { largest = true } = options;
  if (typeof largest !== "boolean") {
    throw new TypeError(`topk: options.largest must be a boolean, got ${JSON.stringify(largest)}`);
  }
  return scope(() => {
    const [values, indices] = sortWithIndices(x, { descending: largest });
    if (k === n) return [values, indices];
    const ends = [...x.shape.slice(0, -1).map(() => undefined), k];
    const starts = x.shape.map(() => 0);
    return [slice(values, starts, ends), slice(indices, starts, ends)];
  });
}
